"""Stage 4, train: seeded, reproducible Keras training with a progress bar and early stopping.

``TrainConfig`` is how to train (loss, epochs, learning rate, ...), checked when it is made;
``fit`` trains a model with one, or with the same settings given as keyword arguments.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from tinyml_edu._fd import import_tensorflow, quiet_fd2
from tinyml_edu.errors import InputError

if TYPE_CHECKING:
    import keras

LR_SCHEDULES = ("constant", "cosine")


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise InputError(message)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


@dataclass(frozen=True)
class TrainConfig:
    """How ``fit`` trains a model: Adam on ``loss``, in batches, for at most ``epochs`` epochs,
    keeping the weights of the epoch with the best ``monitor`` value.

    ``metrics``: what Keras computes besides the loss (e.g. ``("accuracy",)``).
    ``patience``: stop after this many epochs without a better ``monitor``.
    ``seed``: fixes the shuffling (call ``set_seed`` before *building* the model as well, since
    the initial weights are drawn then).
    ``monitor``: ``"val_loss"``, or ``"val_"`` + one of ``metrics`` (e.g. ``"val_accuracy"``).
    ``lr_schedule``: ``"constant"``, or ``"cosine"`` (decays ``learning_rate`` to 0 over
    ``epochs``).
    """

    loss: str | Callable[..., Any]
    metrics: tuple[str, ...] = ()
    epochs: int = 100
    batch_size: int = 32
    learning_rate: float = 1e-3
    patience: int = 20
    seed: int = 0
    monitor: str = "val_loss"
    lr_schedule: str = "constant"

    def __post_init__(self) -> None:
        _require(callable(self.loss) or (isinstance(self.loss, str) and bool(self.loss)),
                 f"loss must name a Keras loss like 'mse' or "
                 f"'sparse_categorical_crossentropy', got {self.loss!r}")
        _require(not isinstance(self.metrics, str),
                 f"metrics must be a sequence like ({self.metrics!r},), not the string "
                 f"{self.metrics!r}")
        # Accept lists (e.g. from JSON) but store a tuple so the object stays hashable.
        object.__setattr__(self, "metrics", tuple(self.metrics))
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            _require(_is_int(value) and value >= 1,
                     f"{name} must be a whole number >= 1, got {value!r}")
        _require(_is_int(self.patience) and self.patience >= 0,
                 f"patience must be a whole number of epochs >= 0, got {self.patience!r}")
        _require(_is_int(self.seed) and self.seed >= 0,
                 f"seed must be a whole number >= 0, got {self.seed!r}")
        _require(isinstance(self.learning_rate, (int, float)) and not isinstance(
                     self.learning_rate, bool) and math.isfinite(self.learning_rate)
                 and self.learning_rate >= 0,
                 f"learning_rate must be a number >= 0 (e.g. 1e-3), got {self.learning_rate!r}")
        _require(self.lr_schedule in LR_SCHEDULES,
                 f"unknown lr_schedule {self.lr_schedule!r}; use 'constant' or 'cosine'")
        watchable = _watchable(self.metrics)
        _require(watchable is None or self.monitor in watchable,
                 f"monitor {self.monitor!r} is not something fit computes; use one of "
                 f"{sorted(watchable or ())}, or add the metric to metrics (e.g. "
                 f"metrics=('accuracy',) for monitor='val_accuracy')")

    @property
    def higher_is_better(self) -> bool:
        return _higher_is_better(self.monitor)


def _watchable(metrics: tuple[Any, ...]) -> set[str] | None:
    """The names early stopping can watch, or None when a metric is an object whose logged
    name only Keras knows."""
    if not all(isinstance(m, str) for m in metrics):
        return None
    names = ["loss", *metrics]
    return {*names, *(f"val_{n}" for n in names)}


def _config(config: TrainConfig | None, settings: dict[str, Any]) -> TrainConfig:
    """``config`` with ``settings`` (fit's keyword form) on top of it."""
    known = [f.name for f in dataclasses.fields(TrainConfig)]
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise TypeError(f"fit() got unknown setting(s) {', '.join(unknown)}; the settings "
                        f"are {', '.join(known)}, progress and callbacks")
    if config is not None:
        return dataclasses.replace(config, **settings)
    if "loss" not in settings:
        raise TypeError("fit() needs a loss: fit(..., loss='mse') or "
                        "fit(..., config=TrainConfig(loss='mse'))")
    return TrainConfig(**settings)


@dataclass
class TrainResult:
    history: dict[str, list[float]] = field(default_factory=dict)
    epochs_run: int = 0
    best_epoch: int = 0
    seconds: float = 0.0


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow, and ask TensorFlow for deterministic kernels,
    so that two students running the same cell get the same model."""
    tf = import_tensorflow()
    import keras

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def end_of_training_message(watched: list[float], total_epochs: int, monitor: str,
                            patience: int) -> str:
    """What the progress bar says when training ends: a finished run, not a failure, even
    when early stopping ends it before ``total_epochs`` (it then says why)."""
    epochs = len(watched)
    if not watched:
        return "no epoch ran"
    best = int(np.argmax(watched) if _higher_is_better(monitor) else np.argmin(watched)) + 1
    kept = f"kept the best epoch, {best}"
    if epochs >= total_epochs:
        return f"done: {epochs} epochs; {kept}"
    if epochs - best >= patience:
        return (f"stopped early after {epochs} of {total_epochs} epochs: {monitor} had not "
                f"improved for {patience} epochs, so more would not help; {kept}")
    return f"stopped after {epochs} of {total_epochs} epochs (a callback asked to); {kept}"


def _progress_callback(total_epochs: int, monitor: str, patience: int):
    import keras
    from tqdm.auto import tqdm

    class Progress(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.watched: list[float] = []
            self.bar = tqdm(total=total_epochs, unit="epoch", desc="training",
                            disable=None)  # None: no bar when output is not a terminal

        def on_epoch_end(self, epoch, logs=None):
            self.bar.update(1)
            if logs and monitor in logs:
                self.watched.append(float(logs[monitor]))
                self.bar.set_postfix({monitor: f"{logs[monitor]:.4f}"})

        def on_train_end(self, logs=None):
            # A bar closed short of its total ends red in Jupyter, as after an error: early
            # stopping is a success, so the bar's total becomes the epochs that ran.
            self.bar.total = self.bar.n
            container = getattr(self.bar, "container", None)  # Jupyter's widget bar
            if container is not None:
                container.children[1].max = self.bar.n  # the widget keeps its own total
            self.bar.set_postfix_str(end_of_training_message(self.watched, total_epochs,
                                                             monitor, patience))
            self.bar.close()

    return Progress()


def fit(model: keras.Model, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
        y_val: np.ndarray, *, config: TrainConfig | None = None, progress: bool = True,
        callbacks: tuple[keras.callbacks.Callback, ...] = (), **settings: Any) -> TrainResult:
    """Compile and train ``model`` in place; keep the weights of the best validation epoch.

    How to train is ``config`` (a ``TrainConfig``) or the same settings as keyword arguments:
    ``fit(model, x, y, xv, yv, loss="mse", epochs=300)``; keyword settings given with a
    ``config`` replace its values (``fit(..., config=project.training, seed=1)``).
    ``progress``: show a progress bar. ``callbacks``: extra Keras callbacks.

    ``steps_per_execution`` runs many batches per Python call: on small models that call
    overhead, not the maths, is what a 2-core laptop spends its time on.
    """
    import keras

    cfg = _config(config, settings)
    set_seed(cfg.seed)
    steps = max(1, int(np.ceil(len(x_train) / cfg.batch_size)))
    rate = cfg.learning_rate
    if cfg.lr_schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(rate, decay_steps=cfg.epochs * steps)
    model.compile(optimizer=keras.optimizers.Adam(rate), loss=cfg.loss,
                  metrics=list(cfg.metrics), steps_per_execution=steps)
    callbacks = [keras.callbacks.EarlyStopping(monitor=cfg.monitor, patience=cfg.patience,
                                               restore_best_weights=True), *callbacks]
    if progress:
        callbacks.append(_progress_callback(cfg.epochs, cfg.monitor, cfg.patience))
    start = time.perf_counter()
    with quiet_fd2():  # tf.data logs a harmless NodeDef attribute mismatch on every fit
        history = model.fit(x_train, y_train, validation_data=(x_val, y_val),
                            epochs=cfg.epochs, batch_size=cfg.batch_size, shuffle=True,
                            verbose=0, callbacks=callbacks)
    seconds = time.perf_counter() - start
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    watched = hist.get(cfg.monitor, [0.0])
    best = np.argmax(watched) if cfg.higher_is_better else np.argmin(watched)
    return TrainResult(history=hist, epochs_run=len(watched), best_epoch=int(best) + 1,
                       seconds=seconds)


def _higher_is_better(monitor: str) -> bool:
    # as Keras' EarlyStopping(mode="auto") decides
    return any(k in monitor for k in ("acc", "auc", "precision", "recall", "f1"))
