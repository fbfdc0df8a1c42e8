"""Listening for elephants: rumbles against engines, thunder and wind at 1 kHz.

A rumble is a harmonic stack whose fundamental (about 10-35 Hz) glides up and down over a few
seconds; an engine is a harmonic stack too, in the same band, but its pitch holds steady or
ramps; thunder and wind are broadband. What separates them is how the low-frequency spectrum
changes over time, so the front end is a low-frequency log-mel spectrogram, computed with
``tinyml_edu.features`` exactly as the inference sketch computes it on a board:

1. the 5 s clip at 1 kHz is cut into 500-sample Hann windows (0.5 s: long enough to resolve
   harmonics 10-20 Hz apart) every 125 samples -> 37 frames;
2. power spectrum (512-point FFT, 1.95 Hz bins) -> 40 mel channels over 5-400 Hz -> log;
3. ``norm = "clip_mean"``: the clip's mean log-mel value is subtracted (distance and recorder
   gain drop out), then ``input_scale`` (0.25) keeps the values near +-1 for int8.

``norm`` and ``input_scale`` are extra keys of ``feature_params`` (FEATURE_NORM and
FEATURE_INPUT_SCALE in the sketch's ``model_settings.h``). A board with a 16 kHz microphone
decimates by 16 to get 1 kHz.

The model is a small 2-D CNN over the (37, 40) spectrogram: strided 3x3 convolutions see the
slope of a harmonic (glide or steady) and whether energy comes in lines or in broad patches,
then a global average pools over time and frequency, so the same pattern counts wherever an
individual's pitch puts it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from tinyml_edu import datasets, features, models
from tinyml_edu.errors import InputError
from tinyml_edu.projects.base import Prepared, Project
from tinyml_edu.train import TrainConfig

if TYPE_CHECKING:  # keep importing this module free of TensorFlow
    import keras

FEATURES = features.AudioFeatureParams(
    sample_rate=1000, window_ms=500.0, stride_ms=125.0, clip_ms=5000.0, num_channels=40,
    fft_size=512, lower_hz=5.0, upper_hz=400.0)
NORM = "clip_mean"  # subtract the clip's mean log-mel value
INPUT_SCALE = 0.25
FILTERS = (8, 16, 24)  # one strided 3x3 convolution each
DROPOUT = 0.1

# Augmentation of the training split only (seeded): AUG_COPIES shifted copies of each clip's
# spectrogram. A circular shift in time (the call can be anywhere in the window) and a shift of
# up to AUG_MEL_SHIFT channels in frequency (unseen elephants have other pitches and formants).
AUG_COPIES = 3
AUG_SEED = 1
AUG_MEL_SHIFT = 2


def feature_params() -> dict[str, Any]:
    return {**FEATURES.to_dict(), "norm": NORM, "input_scale": INPUT_SCALE}


def model_inputs(clips: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    """Raw int16 clips (n, 5000) + saved feature parameters -> model inputs (n, 37, 40)."""
    audio = features.AudioFeatureParams.from_dict(
        {k: v for k, v in params.items() if k not in ("norm", "input_scale")})
    if params.get("norm") != NORM:
        raise InputError(f"this run's feature norm {params.get('norm')!r} differs from what this "
                         f"version of the project computes ({NORM!r}); train the run again")
    log_mel = features.audio_features_batch(np.asarray(clips), audio).astype(np.float64)
    log_mel -= log_mel.mean(axis=(-2, -1), keepdims=True)
    return (log_mel * float(params["input_scale"])).astype(np.float32)


def augment(x: np.ndarray, y: np.ndarray, copies: int = AUG_COPIES, seed: int = AUG_SEED
            ) -> tuple[np.ndarray, np.ndarray]:
    """The model inputs (n, frames, channels) plus ``copies`` shifted copies of each."""
    rng = np.random.default_rng(seed)
    out = [x]
    n, frames, channels = x.shape
    for _ in range(copies):
        t_shift = rng.integers(0, frames, n)
        f_shift = rng.integers(-AUG_MEL_SHIFT, AUG_MEL_SHIFT + 1, n)
        t_idx = (np.arange(frames)[None, :] - t_shift[:, None]) % frames
        # Edge channels are repeated rather than wrapped: 5 Hz is not next to 400 Hz.
        f_idx = np.clip(np.arange(channels)[None, :] - f_shift[:, None], 0, channels - 1)
        out.append(x[np.arange(n)[:, None, None], t_idx[:, :, None], f_idx[:, None, :]])
    return np.concatenate(out), np.concatenate([y] * (copies + 1))


def prepare(ds: datasets.Dataset) -> Prepared:
    params = feature_params()
    x = {split: model_inputs(ds.split(split)[0], params) for split in datasets.SPLITS}
    y = {split: ds.split(split)[1] for split in datasets.SPLITS}
    if AUG_COPIES:
        x["train"], y["train"] = augment(x["train"], y["train"])
    return Prepared(x, y, list(ds.info.classes), params)


def build(prep: Prepared) -> keras.Model:
    """``models.cnn2d_bn``: three strided 3x3 convolutions (batch norm, ReLU) -> global
    average -> softmax."""
    return models.cnn2d_bn(prep.x["train"].shape[1:], len(prep.labels), FILTERS, DROPOUT,
                           name="rumbles")


PROJECT = Project(
    name="elephant_rumbles",
    dataset="elephant_rumbles",
    description="Elephant rumbles vs engines, thunder and wind: a small CNN reads a 37x40 "
                "low-frequency log-mel spectrogram of 5 s at 1 kHz.",
    prepare=prepare,
    build=build,
    training=TrainConfig(
        loss="sparse_categorical_crossentropy",
        epochs=80,
        batch_size=32,
        learning_rate=3e-3,
        patience=80,  # no early stop: the cosine schedule runs to the end
        metrics=("accuracy",),
        monitor="val_accuracy",
        lr_schedule="cosine",
    ),
    features=model_inputs,
    sensor="audio",
)
