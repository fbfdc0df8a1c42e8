"""Tests for the pond water-quality generator (tinyml_edu.generators.water_quality)."""

import numpy as np
import pytest

from tinyml_edu import datasets
from tinyml_edu.generators import water_quality as wq
from tinyml_edu.metrics import roc_auc

SMALL = 0.05
SPLITS = ("train", "val", "test")
DO, TEMP, PH = 0, 1, 2


@pytest.fixture(scope="module")
def small() -> dict[str, np.ndarray]:
    return wq.generate(scale=SMALL)


@pytest.fixture(scope="module")
def full() -> dict[str, np.ndarray]:
    return wq.generate()


def night_min_do(x: np.ndarray) -> np.ndarray:
    night = (wq.HOURS < 7) | (wq.HOURS >= 19)
    return x[:, night, DO].min(axis=1)


# ---------------------------------------------------------------------------------------------
# Baseline: distance to the mean normal window in z-scores, scored with the library's AUC


def zscore_scores(x_train: np.ndarray, x: np.ndarray) -> dict[str, np.ndarray]:
    """Per-(time, channel) z-scores against the normal train windows; two summaries."""
    z = (x - x_train.mean(0)) / (x_train.std(0) + 1e-6)
    return {"mean_z2": (z**2).mean(axis=(1, 2)), "max_abs_z": np.abs(z).max(axis=(1, 2))}


def auc_by_kind(scores: np.ndarray, kinds: np.ndarray) -> dict[str, float]:
    out = {"all": roc_auc(scores, (kinds != "normal").astype(int))}
    for kind in wq.ANOMALY_KINDS:
        keep = (kinds == kind) | (kinds == "normal")
        out[kind] = roc_auc(scores[keep], (kinds[keep] == kind).astype(int))
    return out


# ---------------------------------------------------------------------------------------------
# Contract


def test_keys_shapes_dtypes(small):
    counts = wq.split_counts(SMALL)
    expected = {f"{a}_{s}" for a in ("x", "y") for s in SPLITS}
    assert set(small) == expected | {"anomaly_kind_val", "anomaly_kind_test"}
    for split in SPLITS:
        n = sum(counts[split].values())
        x, y = small[f"x_{split}"], small[f"y_{split}"]
        assert x.shape == (n, wq.WINDOW, 3) and x.dtype == np.float32
        assert y.shape == (n,) and y.dtype == np.int64
        assert np.isfinite(x).all()


def test_counts_at_scale_one():
    counts = wq.split_counts(1.0)
    assert counts["train"] == {"normal": 800}
    for split in ("val", "test"):
        assert sum(counts[split].values()) == 300
        assert counts[split]["normal"] == 210  # 70 % normal, 5 kinds x 18 anomalies
    assert wq.EXTRA["anomaly_counts_at_scale_1"] == counts


def test_train_is_normal_only_and_eval_splits_hold_every_kind(small):
    assert (small["y_train"] == 0).all()
    for split in ("val", "test"):
        y, kinds = small[f"y_{split}"], small[f"anomaly_kind_{split}"]
        assert kinds.dtype.kind == "U"
        np.testing.assert_array_equal(y, (kinds != "normal").astype(np.int64))
        assert set(kinds) == {"normal", *wq.ANOMALY_KINDS}
        assert set(y) == {0, 1}


def test_deterministic(small):
    again = wq.generate(scale=SMALL)
    other = wq.generate(seed=wq.DEFAULT_SEED + 1, scale=SMALL)
    for key in small:
        np.testing.assert_array_equal(small[key], again[key])
    assert not np.array_equal(small["x_train"], other["x_train"])


# ---------------------------------------------------------------------------------------------
# Documented statistics


def test_normal_ranges(full):
    x = full["x_train"]
    assert 3.0 < x[..., DO].min() and x[..., DO].max() < 14.0
    assert 23.0 < x[..., TEMP].min() and x[..., TEMP].max() < 33.0
    assert 6.7 < x[..., PH].min() and x[..., PH].max() < 9.2
    swing = np.ptp(x[..., DO], axis=1)
    assert 2.0 < np.median(swing) < 8.0  # a pond's DO swings several mg/L every day


def test_do_peaks_by_day_and_bottoms_at_night(full):
    x = full["x_train"]
    peak_hour = wq.HOURS[x[..., DO].argmax(axis=1)]
    low_hour = wq.HOURS[x[..., DO].argmin(axis=1)]
    # A sunny day after a cloudy one (or the reverse) can move an extreme to midnight.
    assert np.mean((peak_hour >= 11) & (peak_hour <= 19)) > 0.9
    assert np.mean((low_hour < 9) | (low_hour >= 20)) > 0.9
    # Water is warmest in the afternoon, and pH follows DO.
    warm_hour = wq.HOURS[x[..., TEMP].argmax(axis=1)]
    assert np.mean((warm_hour >= 11) & (warm_hour <= 20)) > 0.85
    corr = [np.corrcoef(w[:, DO], w[:, PH])[0, 1] for w in x[:100]]
    assert np.median(corr) > 0.8


def test_crash_windows_fall_below_threshold_at_night(full):
    for split in ("val", "test"):
        x, kinds = full[f"x_{split}"], full[f"anomaly_kind_{split}"]
        assert (night_min_do(x[kinds == "crash"]) < wq.CRASH_DO_MG_L).all()
        assert (night_min_do(x[kinds == "normal"]) > wq.CRASH_DO_MG_L + 1).all()


def test_stuck_windows_have_a_long_flat_run(full):
    x, kinds = full["x_test"], full["anomaly_kind_test"]
    for w in x[kinds == "stuck"]:
        flat = np.diff(w, axis=0) == 0
        longest = 0
        for ch in range(3):  # longest run of unchanged readings, in samples
            run = 0
            for f in flat[:, ch]:
                run = run + 1 if f else 0
                longest = max(longest, run)
        assert longest >= 3 / (10 / 60) - 2  # at least ~3 h


def test_do_saturation_matches_tables():
    # Oxygen solubility in fresh water: about 9.1 mg/L at 20 degC, 8.3 at 25, 7.6 at 30.
    np.testing.assert_allclose(wq.do_saturation(np.array([20.0, 25.0, 30.0])),
                               [9.09, 8.26, 7.56], atol=0.15)


# ---------------------------------------------------------------------------------------------
# Registry round trip and baseline


def test_registry_round_trip(tmp_path, small):
    info = datasets.generate("water_quality", scale=SMALL, root=tmp_path)
    assert info.task == "anomaly" and info.input_shape == (wq.WINDOW, 3)
    assert info.extra["anomaly_kinds"] == list(wq.ANOMALY_KINDS)
    loaded = datasets.load("water_quality", root=tmp_path)
    for key in small:
        np.testing.assert_array_equal(loaded.arrays[key], small[key])


def test_zscore_baseline_is_learnable_but_not_perfect(full):
    # The numbers quoted in datasets/water_quality/DATASHEET.md ("sanity baseline") come from:
    # python3 -m pytest tests/test_gen_water_quality.py -k baseline -s -q
    results = {}
    for name, scores in zscore_scores(full["x_train"], full["x_test"]).items():
        results[name] = auc_by_kind(scores, full["anomaly_kind_test"])
        print(f"\nwater_quality test AUC ({name}): "
              + ", ".join(f"{k} {v:.3f}" for k, v in results[name].items()))
    for res in results.values():
        assert res["all"] > 0.65
        assert res["crash"] > 0.9  # the dangerous one is also the obvious one
        assert min(res.values()) < 0.9  # some faults hide inside the normal daily swing
