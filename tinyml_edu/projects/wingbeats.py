"""Listening for mosquitoes: species from the sound of their wingbeats.

A wingbeat is a harmonic tone: the species differ (and overlap) in the fundamental and in how
strong the harmonics are relative to it. So instead of a coarse log-mel image, the front end
measures exactly that, with fine frequency resolution:

1. cut the 0.5 s clip into 1024-sample Hann frames (128 ms, 7.8 Hz bins) every 256 samples;
2. keep the frames where the insect is in the beam (band energy above 250 Hz at least a quarter
   of the loudest frame) and average their power spectra;
3. fundamental: the candidate in 300-720 Hz (1 Hz steps) whose first three harmonics have the
   largest summed log power, refined to the spectral peak within +-5 % (parabolic interpolation);
4. harmonic k = 1..6: power within +-3 % of k * f0, minus the noise floor (the median bin above
   250 Hz) times the number of bins; expressed in dB relative to the fundamental.

The model input is 7 numbers: f0 (Hz), the fundamental's level above the noise floor (dB, tells
the model how far to trust the weak harmonics) and the levels of harmonics 2-6 (dB re h1),
standardised with the training-set mean and standard deviation (in ``feature_params``). A board
computes the same with 12 real FFTs of 1024 points and a few hundred multiply-adds.

The fundamentals overlap by construction (the spectral peak alone separates only about half the
clips); it is the harmonic levels, measured together with the fundamental, that lift the MLP
above 90 %.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinyml_edu import datasets, models
from tinyml_edu.projects.base import (
    Prepared,
    Project,
    check_settings,
    prepare_standardised,
    standardise,
)
from tinyml_edu.train import TrainConfig

SAMPLE_RATE = 8000
CLIP_SAMPLES = 4000  # 0.5 s
FFT_SIZE = 1024
HOP = 256
BAND_LOW_HZ = 250.0  # below: hum and low-frequency noise
FRAME_KEEP_FRACTION = 0.25  # keep frames with at least this fraction of the loudest frame's energy
F0_SEARCH_HZ = (300.0, 720.0, 1.0)  # start, stop, step
F0_SEARCH_HARMONICS = 3
F0_REFINE = 0.05  # look for the peak within +-5 % of the harmonic-sum estimate
HARMONICS = 6
HARMONIC_BAND = 0.03  # power within +-3 % of k * f0
MISSING_HARMONIC_DB = -40.0  # a harmonic at or above 98 % of Nyquist
CLIP_SD = 6.0

FEATURE_NAMES = ("f0_hz", "h1_over_floor_db",
                 *(f"h{k}_re_h1_db" for k in range(2, HARMONICS + 1)))
NUM_FEATURES = len(FEATURE_NAMES)

# Everything the board needs to compute the same features (JSON-safe; the training-set mean and
# standard deviation are added by ``prepare``).
SETTINGS: dict[str, Any] = {
    "sample_rate": SAMPLE_RATE, "clip_samples": CLIP_SAMPLES, "scale": "int16 / 32768",
    "fft_size": FFT_SIZE, "hop_samples": HOP, "window": "periodic hann",
    "band_low_hz": BAND_LOW_HZ, "frame_keep_fraction": FRAME_KEEP_FRACTION,
    "f0_search_hz": list(F0_SEARCH_HZ), "f0_search_harmonics": F0_SEARCH_HARMONICS,
    "f0_refine": F0_REFINE, "harmonics": HARMONICS, "harmonic_band": HARMONIC_BAND,
    "missing_harmonic_db": MISSING_HARMONIC_DB,
    "features": ",".join(FEATURE_NAMES), "num_features": NUM_FEATURES, "clip_sd": CLIP_SD,
}


def _periodic_hann(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def beam_spectrum(clips: np.ndarray) -> np.ndarray:
    """(n, 4000) int16 -> (n, FFT_SIZE // 2 + 1) mean power spectrum of the loud frames."""
    x = np.asarray(clips, dtype=np.float64) / 32768.0
    n_frames = 1 + (x.shape[1] - FFT_SIZE) // HOP
    index = np.arange(n_frames)[:, None] * HOP + np.arange(FFT_SIZE)[None, :]
    power = np.abs(np.fft.rfft(x[:, index] * _periodic_hann(FFT_SIZE), axis=-1)) ** 2
    freqs = np.fft.rfftfreq(FFT_SIZE, 1.0 / SAMPLE_RATE)
    energy = power[:, :, freqs >= BAND_LOW_HZ].sum(axis=-1)
    keep = (energy >= FRAME_KEEP_FRACTION * energy.max(axis=1, keepdims=True)).astype(np.float64)
    return (power * keep[:, :, None]).sum(axis=1) / keep.sum(axis=1, keepdims=True)


def spectrum_features(spectrum: np.ndarray) -> np.ndarray:
    """One clip's mean power spectrum -> the raw feature vector, shape (NUM_FEATURES,)."""
    bin_hz = SAMPLE_RATE / FFT_SIZE
    freqs = np.arange(len(spectrum)) * bin_hz
    log_power = np.log(spectrum + 1e-20)
    floor = float(np.median(spectrum[freqs >= BAND_LOW_HZ]))
    candidates = np.arange(*F0_SEARCH_HZ)
    score = sum(np.interp(k * candidates, freqs, log_power)
                for k in range(1, F0_SEARCH_HARMONICS + 1))
    f0 = float(candidates[np.argmax(score)])
    lo = int(f0 * (1 - F0_REFINE) / bin_hz)
    peak = lo + int(np.argmax(spectrum[lo:int(f0 * (1 + F0_REFINE) / bin_hz) + 1]))
    a, b, c = log_power[peak - 1:peak + 2]
    curvature = a - 2 * b + c
    f0 = (peak + (0.5 * (a - c) / curvature if curvature < 0 else 0.0)) * bin_hz
    levels = []
    for k in range(1, HARMONICS + 1):
        fk = k * f0
        if fk >= 0.98 * SAMPLE_RATE / 2:
            levels.append(np.nan)
            continue
        lo, hi = int(fk * (1 - HARMONIC_BAND) / bin_hz), int(fk * (1 + HARMONIC_BAND) / bin_hz)
        power = spectrum[lo:hi + 2].sum() - floor * (hi + 2 - lo)
        levels.append(max(power, 0.5 * floor))
    level = np.asarray(levels)
    relative = np.nan_to_num(10.0 * np.log10(level[1:] / level[0]), nan=MISSING_HARMONIC_DB)
    return np.array([f0, 10.0 * np.log10(level[0] / floor), *relative])


def raw_features(clips: np.ndarray) -> np.ndarray:
    """(n, 4000) int16 clips -> (n, NUM_FEATURES) float64."""
    clips = np.asarray(clips)
    if clips.ndim != 2 or clips.shape[1] != CLIP_SAMPLES:
        raise ValueError(f"expected clips of shape (n, {CLIP_SAMPLES}), got {clips.shape}")
    out = np.zeros((len(clips), NUM_FEATURES))
    for start in range(0, len(clips), 128):  # chunks: the frame spectra of 128 clips ~ 50 MB
        spectra = beam_spectrum(clips[start:start + 128])
        out[start:start + 128] = [spectrum_features(s) for s in spectra]
    return out


def model_inputs(x: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    """Raw windows as the data set stores them + saved feature parameters -> model inputs
    (what `tinyml-edu predict` uses on new recordings)."""
    check_settings(params, SETTINGS)
    return standardise(raw_features(x), params)


def prepare(ds: datasets.Dataset) -> Prepared:
    return prepare_standardised(ds, raw_features, SETTINGS)


def build(prep: Prepared):
    """A small MLP: 7 features -> 32 -> 16 -> 4 species (under 1 k weights)."""
    return models.mlp(prep.x["train"].shape[1], (32, 16), len(prep.labels), name="wingbeats")


PROJECT = Project(
    name="wingbeats",
    dataset="wingbeats",
    description="Mosquito species from wingbeat sound: fundamental + harmonic levels from a "
                "fine spectrum -> a small MLP.",
    prepare=prepare,
    build=build,
    training=TrainConfig(
        loss="sparse_categorical_crossentropy",
        epochs=300,
        batch_size=32,
        learning_rate=3e-3,
        patience=30,
    ),
    features=model_inputs,
    sensor="audio",
)
