"""Heart rhythm: tell normal sinus rhythm, atrial fibrillation and ectopic beats apart.

What a low-cost rhythm monitor does: find the R peaks (a slope-energy detector, cheap on a
microcontroller), then describe the window with a short vector of numbers that a small MLP
classifies:

- rhythm, from the RR intervals: rate, irregularity (CV, RMSSD, successive differences), how many
  intervals sit close to the median (ectopic rhythms are regular apart from a few beats, AF is
  irregular throughout), short-then-long pairs (premature beat + compensatory pause), lag-1
  autocorrelation (bigeminy alternates, sinus arrhythmia drifts smoothly, AF is uncorrelated);
- morphology, from the beats cut out around each R peak: how unlike the median beat the
  oddest beats are (PVCs are wide and large), the P wave in the median beat (absent in AF) and
  fibrillatory 4-9 Hz power left after subtracting the median beat from every beat.

Every step is plain arithmetic on one 10 s window (moving averages, one 1024-point FFT, sorting a
few dozen numbers), so the board can compute the same vector. The features are standardised
with the training-set mean and standard deviation, which travel in ``feature_params``.
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

SAMPLE_RATE = 100  # Hz
WINDOW_SAMPLES = 1000  # 10 s
MICROVOLTS_PER_MV = 1000.0

# R-peak detector and beat geometry, in seconds (converted to samples at SAMPLE_RATE).
ENERGY_WINDOW_S = 0.12  # slope energy integrated over about one QRS
THRESHOLD_FRACTION = 0.3  # of the median per-second maximum of the slope energy
REFRACTORY_S = 0.22  # two beats are never closer than this
BASELINE_WINDOW_S = 0.31  # moving average (applied twice) that estimates baseline wander
BEAT_HALF_WIDTH_S = 0.35  # a beat is cut out from R - 0.35 s to R + 0.35 s
QRS_HALF_WIDTH_S = 0.08  # the part of the beat compared with the median beat
P_REGION_S = (0.30, 0.08)  # the P wave is looked for from 0.30 s to 0.08 s before R
REGULAR_TOLERANCE = (0.08, 0.15)  # "close to the median RR": within 8 % / 15 %
FIBRILLATION_BAND_HZ = (4.0, 9.0)
FFT_SIZE = 1024
CLIP_SD = 6.0  # standardised features are clipped to +-6 sd (keeps the int8 input scale fine)

FEATURE_NAMES = (
    "heart_rate_per_100bpm", "rr_cv", "rmssd_over_mean_rr", "frac_diff_over_50ms",
    "min_rr_over_median", "max_rr_over_median", "frac_rr_within_8pct", "frac_rr_within_15pct",
    "median_abs_diff_over_median", "rr_lag1_autocorr", "frac_short_long_pairs",
    "cv_of_regular_rr", "rr_dev_q10", "rr_dev_q25", "rr_dev_q75", "rr_dev_q90",
    "min_qrs_corr", "frac_qrs_corr_below_0.9", "frac_qrs_corr_below_0.7", "r_amp_ratio_sd",
    "r_amp_ratio_max_dev", "p_region_peak_to_peak", "p_region_sd", "p_region_beat_noise",
    "fwave_power_fraction", "fwave_log_power",
)
NUM_FEATURES = len(FEATURE_NAMES)

# Everything the board needs to compute the same features (JSON-safe; the training-set mean and
# standard deviation are added by ``prepare``).
SETTINGS: dict[str, Any] = {
    "sample_rate": SAMPLE_RATE, "window_samples": WINDOW_SAMPLES, "units": "mV",
    "scale": "int16 microvolts / 1000",
    "features": ",".join(FEATURE_NAMES), "num_features": NUM_FEATURES,
    "energy_window_s": ENERGY_WINDOW_S, "threshold_fraction": THRESHOLD_FRACTION,
    "refractory_s": REFRACTORY_S, "baseline_window_s": BASELINE_WINDOW_S,
    "beat_half_width_s": BEAT_HALF_WIDTH_S, "qrs_half_width_s": QRS_HALF_WIDTH_S,
    "p_region_s": list(P_REGION_S), "regular_tolerance": list(REGULAR_TOLERANCE),
    "fibrillation_band_hz": list(FIBRILLATION_BAND_HZ), "fft_size": FFT_SIZE,
    "clip_sd": CLIP_SD,
}


def _samples(seconds: float) -> int:
    return int(round(seconds * SAMPLE_RATE))


def _moving_average(x: np.ndarray, width: int) -> np.ndarray:
    return np.convolve(x, np.ones(width) / width, "same")


def find_r_peaks(x_mv: np.ndarray) -> np.ndarray:
    """Sample indices of the R peaks (or PVC peaks) in one window given in millivolts.

    The squared slope (difference across two samples) averaged over ~one QRS is large on the
    steep QRS and small on P/T waves and wander. A candidate is a local maximum of that energy
    above a fraction of the median per-second maximum (one artifact cannot raise the threshold
    for the whole window); within the refractory period only the strongest candidate is kept.
    Each peak is then moved to the largest deflection from the local median just before it.
    """
    x = np.asarray(x_mv, dtype=np.float64)
    slope = np.zeros_like(x)
    slope[1:-1] = x[2:] - x[:-2]
    energy = _moving_average(slope * slope, _samples(ENERGY_WINDOW_S))
    seconds = len(energy) // SAMPLE_RATE
    per_second_max = energy[:seconds * SAMPLE_RATE].reshape(seconds, SAMPLE_RATE).max(axis=1)
    threshold = THRESHOLD_FRACTION * np.median(per_second_max)
    local_max = (energy[1:-1] > energy[:-2]) & (energy[1:-1] >= energy[2:])
    refractory = _samples(REFRACTORY_S)
    kept: list[int] = []
    for c in np.flatnonzero(local_max & (energy[1:-1] > threshold)) + 1:
        if kept and c - kept[-1] < refractory:
            if energy[c] > energy[kept[-1]]:
                kept[-1] = int(c)
        else:
            kept.append(int(c))
    peaks = []
    for c in kept:  # the energy maximum lags the R wave by a few samples
        lo, hi = max(0, c - 10), min(len(x), c + 6)
        level = np.median(x[max(0, c - 30):c + 30])
        peaks.append(lo + int(np.argmax(np.abs(x[lo:hi] - level))))
    return np.asarray(peaks, dtype=np.int64)


def _rhythm_features(rr: np.ndarray) -> list[float]:
    if len(rr) < 3:  # too few beats found: a neutral, regular 60 bpm
        rr = np.ones(3)
    median, mean = float(np.median(rr)), float(rr.mean())
    diff = np.diff(rr)
    dev = rr / median - 1.0
    centred = rr - mean
    autocorr = float(np.sum(centred[1:] * centred[:-1]) / (np.sum(centred ** 2) + 1e-9))
    short_long = float(np.mean((rr[:-1] < 0.88 * median) & (rr[1:] > 1.08 * median)))
    regular = rr[np.abs(dev) < REGULAR_TOLERANCE[1]]
    cv_regular = float(regular.std() / regular.mean()) if len(regular) > 1 else 0.3
    return [
        60.0 / mean / 100.0, rr.std() / mean, float(np.sqrt(np.mean(diff ** 2))) / mean,
        float(np.mean(np.abs(diff) > 0.05)), rr.min() / median, rr.max() / median,
        float(np.mean(np.abs(dev) < REGULAR_TOLERANCE[0])),
        float(np.mean(np.abs(dev) < REGULAR_TOLERANCE[1])),
        float(np.median(np.abs(diff))) / median, autocorr, short_long, cv_regular,
        *np.quantile(dev, [0.1, 0.25, 0.75, 0.9]).tolist(),
    ]


def _morphology_features(detrended: np.ndarray, peaks: np.ndarray) -> list[float]:
    half = _samples(BEAT_HALF_WIDTH_S)
    inside = [p for p in peaks if p - half >= 0 and p + half <= len(detrended)]
    beats = np.array([detrended[p - half:p + half] for p in inside])
    if len(beats) < 2:
        beats = np.zeros((2, 2 * half))
    template = np.median(beats, axis=0)
    r_size = abs(template[half]) + 1e-3
    q = _samples(QRS_HALF_WIDTH_S)
    qrs = beats[:, half - q:half + q] - beats[:, half - q:half + q].mean(axis=1, keepdims=True)
    t_qrs = template[half - q:half + q] - template[half - q:half + q].mean()
    corr = qrs @ t_qrs / (np.linalg.norm(qrs, axis=1) * np.linalg.norm(t_qrs) + 1e-9)
    r_ref = template[half] if abs(template[half]) > 1e-3 else 1e-3
    amp_ratio = beats[:, half] / r_ref
    p0, p1 = half - _samples(P_REGION_S[0]), half - _samples(P_REGION_S[1])
    p_template = template[p0:p1]
    p_noise = float(np.std(beats[:, p0:p1] - p_template))
    # What is left after removing the median beat: f-waves in AF, noise otherwise.
    residual = detrended.copy()
    for p in inside:
        residual[p - half:p + half] -= template
    spectrum = np.abs(np.fft.rfft(residual * np.hanning(len(residual)), n=FFT_SIZE)) ** 2
    freqs = np.fft.rfftfreq(FFT_SIZE, 1.0 / SAMPLE_RATE)
    band = spectrum[(freqs > FIBRILLATION_BAND_HZ[0]) & (freqs < FIBRILLATION_BAND_HZ[1])].sum()
    total = spectrum[(freqs > 1.0) & (freqs < 40.0)].sum() + 1e-12
    return [
        float(corr.min()), float(np.mean(corr < 0.9)), float(np.mean(corr < 0.7)),
        float(np.std(amp_ratio)), float(np.max(np.abs(amp_ratio - 1.0))),
        float(p_template.max() - p_template.min()) / r_size, float(np.std(p_template)) / r_size,
        p_noise / r_size, float(band / total), float(np.log(band / r_size ** 2 + 1e-9)) / 10.0,
    ]


def window_features(x_microvolts: np.ndarray) -> np.ndarray:
    """The raw (unstandardised) feature vector of one window, shape (NUM_FEATURES,)."""
    x = np.asarray(x_microvolts, dtype=np.float64) / MICROVOLTS_PER_MV
    baseline_width = _samples(BASELINE_WINDOW_S)
    detrended = x - _moving_average(_moving_average(x, baseline_width), baseline_width)
    peaks = find_r_peaks(x)
    rr = np.diff(peaks) / SAMPLE_RATE
    return np.array(_rhythm_features(rr) + _morphology_features(detrended, peaks))


def raw_features(x: np.ndarray) -> np.ndarray:
    """(n, 1000) int16 microvolts -> (n, NUM_FEATURES) float64."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != WINDOW_SAMPLES:
        raise ValueError(f"expected ECG windows of shape (n, {WINDOW_SAMPLES}), got {x.shape}")
    return np.stack([window_features(w) for w in x]) if len(x) else np.zeros((0, NUM_FEATURES))


def model_inputs(x: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    """Raw windows as the data set stores them + saved feature parameters -> model inputs
    (what `tinyml-edu predict` uses on new recordings)."""
    check_settings(params, SETTINGS)
    x = np.asarray(x)
    if x.ndim == 3 and x.shape[-1] == 1:  # a one-column CSV recording
        x = x[..., 0]
    return standardise(raw_features(x), params)


def prepare(ds: datasets.Dataset) -> Prepared:
    return prepare_standardised(ds, raw_features, SETTINGS)


def build(prep: Prepared):
    """A small MLP: features -> 32 -> 16 -> classes (about 1.4 k weights), dropout 0.2 after
    the first layer."""
    return models.mlp(prep.x["train"].shape[1], (32, 16), len(prep.labels), name="ecg",
                      dropout=0.2)


PROJECT = Project(
    name="ecg",
    dataset="ecg",
    description="Heart rhythm: R peaks -> 26 rhythm and beat-shape features -> a small MLP "
                "tells sinus rhythm, AF and ectopic beats apart.",
    prepare=prepare,
    build=build,
    training=TrainConfig(
        loss="sparse_categorical_crossentropy",
        epochs=200,
        batch_size=32,
        learning_rate=3e-3,
        patience=25,
    ),
    features=model_inputs,
)
