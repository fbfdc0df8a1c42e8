"""Stage 4, train: seeded, reproducible Keras training with a progress bar and early stopping."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from tinyml_edu._fd import import_tensorflow, quiet_fd2

if TYPE_CHECKING:
    import keras


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
        y_val: np.ndarray, *, loss: str, metrics: tuple[str, ...] = (), epochs: int = 100,
        batch_size: int = 32, learning_rate: float = 1e-3, patience: int = 20, seed: int = 0,
        progress: bool = True, monitor: str = "val_loss", lr_schedule: str = "constant",
        callbacks: tuple[keras.callbacks.Callback, ...] = ()) -> TrainResult:
    """Compile and train ``model`` in place; keep the weights of the best validation epoch.

    ``seed`` fixes the shuffling; call ``set_seed`` before *building* the model as well, since
    the initial weights are drawn then.

    ``steps_per_execution`` runs many batches per Python call: on small models that call
    overhead, not the maths, is what a 2-core laptop spends its time on.

    ``monitor``: the validation metric that early stopping watches and whose best epoch is
    kept (``val_loss``, or e.g. ``val_accuracy`` with ``"accuracy"`` in ``metrics``).
    ``lr_schedule``: ``"constant"`` or ``"cosine"`` (decays ``learning_rate`` to 0 over
    ``epochs``). ``callbacks``: extra Keras callbacks.
    """
    import keras

    set_seed(seed)
    steps = max(1, int(np.ceil(len(x_train) / batch_size)))
    if lr_schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=epochs * steps)
    elif lr_schedule == "constant":
        rate = learning_rate
    else:
        raise ValueError(f"unknown lr_schedule {lr_schedule!r}; use 'constant' or 'cosine'")
    model.compile(optimizer=keras.optimizers.Adam(rate), loss=loss,
                  metrics=list(metrics), steps_per_execution=steps)
    callbacks = [keras.callbacks.EarlyStopping(monitor=monitor, patience=patience,
                                               restore_best_weights=True), *callbacks]
    if progress:
        callbacks.append(_progress_callback(epochs, monitor, patience))
    start = time.perf_counter()
    with quiet_fd2():  # tf.data logs a harmless NodeDef attribute mismatch on every fit
        history = model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=epochs,
                            batch_size=batch_size, shuffle=True, verbose=0, callbacks=callbacks)
    seconds = time.perf_counter() - start
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    watched = hist.get(monitor, [0.0])
    best = np.argmax(watched) if _higher_is_better(monitor) else np.argmin(watched)
    return TrainResult(history=hist, epochs_run=len(watched), best_epoch=int(best) + 1,
                       seconds=seconds)


def _higher_is_better(monitor: str) -> bool:
    # as Keras' EarlyStopping(mode="auto") decides
    return any(k in monitor for k in ("acc", "auc", "precision", "recall", "f1"))
