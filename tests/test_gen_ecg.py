"""Tests for the synthetic ECG rhythm generator (tinyml_edu.generators.ecg)."""

import numpy as np
import pytest

from tinyml_edu import datasets
from tinyml_edu.generators import ecg

SPLITS = ("train", "val", "test")
SCALE = 0.05


@pytest.fixture(scope="module")
def small() -> dict[str, np.ndarray]:
    return ecg.generate(scale=SCALE)


@pytest.fixture(scope="module")
def medium() -> dict[str, np.ndarray]:
    return ecg.generate(scale=0.25)


def test_metadata():
    assert ecg.TASK == "classification"
    assert ecg.CLASSES == ("normal_sinus", "atrial_fibrillation", "sinus_with_ectopics")
    assert ecg.SAMPLE_RATE == 100 and ecg.LICENSE == "CC0-1.0"
    assert set(ecg.HEART_RATE_BPM) == set(ecg.CLASSES)
    import json
    json.dumps(ecg.EXTRA)  # must be JSON-safe for the manifest


def test_keys_shapes_dtypes(small):
    assert set(small) == {f"{a}_{s}" for a in ("x", "y", "group") for s in SPLITS}
    for s in SPLITS:
        x, y, g = small[f"x_{s}"], small[f"y_{s}"], small[f"group_{s}"]
        assert x.dtype == np.int16 and x.ndim == 2 and x.shape[1] == 1000
        assert y.dtype == np.int64 and g.dtype == np.int64
        assert len(x) == len(y) == len(g)
        assert set(y.tolist()) == {0, 1, 2}, f"a class is missing from {s}"


def test_counts_at_scale_one_are_about_400_per_class_split_60_20_20(medium):
    # Checked at scale 0.25 (100 per class) to stay fast; scale multiplies counts linearly.
    total = sum(len(medium[f"y_{s}"]) for s in SPLITS)
    assert total == 3 * 100
    assert abs(len(medium["y_train"]) / total - 0.6) < 0.06
    assert abs(len(medium["y_test"]) / total - 0.2) < 0.06


def test_patients_disjoint_across_splits(medium):
    groups = [set(medium[f"group_{s}"].tolist()) for s in SPLITS]
    assert not (groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2])
    # A patient has one rhythm class and 2-6 windows.
    g = np.concatenate([medium[f"group_{s}"] for s in SPLITS])
    y = np.concatenate([medium[f"y_{s}"] for s in SPLITS])
    for pid in np.unique(g):
        assert len(set(y[g == pid].tolist())) == 1
        assert 1 <= np.sum(g == pid) <= 6


def test_deterministic(small):
    again = ecg.generate(scale=SCALE)
    assert all(np.array_equal(small[k], again[k]) for k in small)
    other = ecg.generate(seed=ecg.DEFAULT_SEED + 1, scale=SCALE)
    assert not np.array_equal(small["x_train"][:5], other["x_train"][:5])


def test_amplitudes_are_plausible_microvolts(small):
    x = np.concatenate([small[f"x_{s}"] for s in SPLITS]).astype(np.int64)
    peak_to_peak_mv = (x.max(axis=1) - x.min(axis=1)) / 1000
    assert np.all(peak_to_peak_mv > 0.4) and np.all(peak_to_peak_mv < 12)
    assert np.abs(x).max() < 32767  # never saturates the int16 store


def test_detector_finds_true_beats():
    rng = np.random.default_rng(7)
    found = total = false = 0
    for label in ecg.CLASSES:
        for _ in range(10):
            x, beats = ecg._window(rng, label, ecg._new_patient(rng, label))
            true_t = np.array([t for t, _ in beats if 0.2 < t < ecg.DURATION_S - 0.2])
            det_t = ecg.detect_r_peaks(x) / ecg.SAMPLE_RATE
            det_t = det_t[(det_t > 0.2) & (det_t < ecg.DURATION_S - 0.2)]
            near = np.abs(det_t[:, None] - true_t[None, :]) < 0.05
            found += near.any(axis=0).sum()
            total += len(true_t)
            false += (~near.any(axis=1)).sum()
    assert found / total > 0.97 and false / total < 0.03


def test_heart_rate_from_r_peaks_in_documented_range(medium):
    x = np.concatenate([medium[f"x_{s}"] for s in SPLITS])
    y = np.concatenate([medium[f"y_{s}"] for s in SPLITS])
    hr = ecg.rr_features(x)[:, 0]
    for c, label in enumerate(ecg.CLASSES):
        lo, hi = ecg.HEART_RATE_BPM[label]
        # 10 % slack: a 10 s window is a small sample, and ectopic beats add a few counts.
        inside = (hr[y == c] >= 0.9 * lo) & (hr[y == c] <= 1.1 * hi)
        assert inside.mean() >= 0.9, f"{label}: {inside.mean():.2f} within {lo}-{hi} bpm"


def test_af_rr_more_irregular_than_sinus(medium):
    x = np.concatenate([medium[f"x_{s}"] for s in SPLITS])
    y = np.concatenate([medium[f"y_{s}"] for s in SPLITS])
    cv = ecg.rr_features(x)[:, 1]
    normal, af = cv[y == 0], cv[y == 1]
    assert af.mean() > 2 * normal.mean()
    # ...but not trivially: some sinus windows (strong arrhythmia) overlap the AF range.
    assert normal.max() > np.percentile(af, 5)


def test_round_trip_through_registry(tmp_path, small):
    info = datasets.generate("ecg", scale=SCALE, root=tmp_path)
    assert info.input_shape == (1000,) and info.classes == ecg.CLASSES
    assert info.splits == {s: len(small[f"y_{s}"]) for s in SPLITS}
    assert (tmp_path / "ecg" / "ecg.npz").stat().st_size < 200_000
    loaded = datasets.load("ecg", root=tmp_path)
    for key, value in small.items():
        assert np.array_equal(loaded.arrays[key], value), key
    assert np.array_equal(loaded.groups("test"), small["group_test"])


def test_baseline_above_chance_but_not_perfect(medium):
    acc = ecg.baseline_accuracy(medium)
    assert 0.5 < acc < 0.98
