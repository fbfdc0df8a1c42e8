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


def _progress_callback(total_epochs: int, monitor: str):
    import keras
    from tqdm.auto import tqdm

    class Progress(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.bar = tqdm(total=total_epochs, unit="epoch", desc="training", leave=False,
                            disable=None)  # None: no bar when output is not a terminal

        def on_epoch_end(self, epoch, logs=None):
            self.bar.update(1)
            if logs and monitor in logs:
                self.bar.set_postfix({monitor: f"{logs[monitor]:.4f}"})

        def on_train_end(self, logs=None):
            self.bar.close()

    return Progress()


def fit(model: keras.Model, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
        y_val: np.ndarray, *, loss: str, metrics: tuple[str, ...] = (), epochs: int = 100,
        batch_size: int = 32, learning_rate: float = 1e-3, patience: int = 20, seed: int = 0,
        progress: bool = True) -> TrainResult:
    """Compile and train ``model`` in place; keep the weights of the best validation epoch.

    ``seed`` fixes the shuffling; call ``set_seed`` before *building* the model as well, since
    the initial weights are drawn then.

    ``steps_per_execution`` runs many batches per Python call: on small models that call
    overhead, not the maths, is what a 2-core laptop spends its time on.
    """
    import keras

    set_seed(seed)
    steps = max(1, int(np.ceil(len(x_train) / batch_size)))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss,
                  metrics=list(metrics), steps_per_execution=steps)
    callbacks = [keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience,
                                               restore_best_weights=True)]
    if progress:
        callbacks.append(_progress_callback(epochs, "val_loss"))
    start = time.perf_counter()
    with quiet_fd2():  # tf.data logs a harmless NodeDef attribute mismatch on every fit
        history = model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=epochs,
                            batch_size=batch_size, shuffle=True, verbose=0, callbacks=callbacks)
    seconds = time.perf_counter() - start
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    val_loss = hist.get("val_loss", [0.0])
    return TrainResult(history=hist, epochs_run=len(val_loss),
                       best_epoch=int(np.argmin(val_loss)) + 1, seconds=seconds)
