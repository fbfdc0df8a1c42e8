"""Tests for the magic-wand gesture generator (tinyml_edu.generators.gestures)."""

import numpy as np
import pytest

from tinyml_edu import datasets
from tinyml_edu.generators import gestures as g
from tinyml_edu.generators.baseline import nearest_centroid_accuracy, softmax_regression_accuracy

SMALL = 0.05
SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def small() -> dict[str, np.ndarray]:
    return g.generate(scale=SMALL)


@pytest.fixture(scope="module")
def full() -> dict[str, np.ndarray]:
    return g.generate()


# ---------------------------------------------------------------------------------------------
# Baselines: summary features for the library's softmax regression and nearest centroid


def summary_features(x: np.ndarray) -> np.ndarray:
    """Per channel mean, std, min and max over the window: 24 features."""
    return np.concatenate([x.mean(1), x.std(1), x.min(1), x.max(1)], axis=1)


# ---------------------------------------------------------------------------------------------
# Contract


def test_keys_shapes_dtypes(small):
    counts = g.split_counts(SMALL)
    assert set(small) == {f"{a}_{s}" for a in ("x", "y") for s in SPLITS}
    for split in SPLITS:
        x, y = small[f"x_{split}"], small[f"y_{split}"]
        n = counts[split] * len(g.CLASSES)
        assert x.shape == (n, g.WINDOW, len(g.CHANNELS)) and x.dtype == np.float32
        assert y.shape == (n,) and y.dtype == np.int64
        # Stratified: every class, the same number of times, in every split.
        assert np.bincount(y, minlength=len(g.CLASSES)).tolist() == [counts[split]] * 4


def test_metadata():
    assert g.TASK == "classification" and g.CLASSES == ("W", "O", "L", "none")
    assert g.SAMPLE_RATE == 100 and g.LICENSE == "CC0-1.0"
    assert g.EXTRA["channels"] == ["ax", "ay", "az", "gx", "gy", "gz"]
    assert g.split_counts(1.0) == {"train": 300, "val": 100, "test": 100}


def test_deterministic(small):
    again = g.generate(scale=SMALL)
    other = g.generate(seed=g.DEFAULT_SEED + 1, scale=SMALL)
    for key in small:
        np.testing.assert_array_equal(small[key], again[key])
    assert not np.array_equal(small["x_train"], other["x_train"])


# ---------------------------------------------------------------------------------------------
# Physics and sensor statistics


def test_values_finite_clipped_and_quantised(full):
    for split in SPLITS:
        x = full[f"x_{split}"]
        assert np.isfinite(x).all()
        assert np.abs(x[..., :3]).max() <= g.ACCEL_RANGE_G
        assert np.abs(x[..., 3:]).max() <= g.GYRO_RANGE_DPS
        steps = x / np.array([g.ACCEL_LSB_G] * 3 + [g.GYRO_LSB_DPS] * 3, np.float32)
        np.testing.assert_array_equal(steps, np.round(steps))


def test_at_rest_accelerometer_reads_one_g():
    rng = np.random.default_rng(0)
    for _ in range(20):
        x = g.simulate_window("none", rng, kind="idle")
        norm = np.linalg.norm(x[:, :3], axis=1)
        assert abs(norm.mean() - 1.0) < 0.05  # gravity, a little gain/bias error
        assert norm.std() < 0.03
        # Only bias, noise, sway and at most a slow re-positioning of the arm.
        assert np.sqrt((x[:, 3:] ** 2).mean()) < 25


def test_gravity_dominates_every_window(full):
    # Even during a gesture the median |a| stays near 1 g: the hand rests before and after.
    median = np.median(np.linalg.norm(full["x_train"][..., :3], axis=-1), axis=1)
    assert np.mean(np.abs(median - 1.0) < 0.15) > 0.95


def test_letters_move_more_than_none(full):
    x, y = full["x_train"], full["y_train"]
    gyro_rms = np.sqrt((x[..., 3:] ** 2).mean(axis=(1, 2)))
    by_class = [np.median(gyro_rms[y == c]) for c in range(4)]
    assert min(by_class[:3]) > 1.5 * by_class[3]
    assert 30 < max(by_class) < 400  # tens to hundreds of dps, as wrist motion


@pytest.mark.parametrize("letter", ["W", "O", "L"])
def test_gyro_integrates_to_the_gravity_change(letter):
    # Rotating the start gravity vector by the integrated gyro must predict the end one:
    # accelerometer and gyroscope come from one consistent motion.
    rng = np.random.default_rng(7)
    t = np.arange(g.WINDOW * g.OVERSAMPLE) / (g.SAMPLE_RATE * g.OVERSAMPLE)
    dt = t[1] - t[0]
    for _ in range(3):
        ideal = g._render(rng, t, g._gesture_path(letter, rng, t), sway=0.0)
        rot = np.eye(3)
        for w in np.radians(ideal[:-1, 3:] + ideal[1:, 3:]) / 2:
            rot = rot @ g._rodrigues(w * dt)
        predicted, measured = rot.T @ ideal[0, :3], ideal[-1, :3]
        assert np.linalg.norm(ideal[0, :3]) == pytest.approx(1.0, abs=1e-6)
        cos = predicted @ measured / np.linalg.norm(predicted) / np.linalg.norm(measured)
        assert np.degrees(np.arccos(min(1.0, cos))) < 0.1


def test_unknown_label_is_rejected():
    with pytest.raises(ValueError):
        g.simulate_window("Z", np.random.default_rng(0))
    with pytest.raises(ValueError):
        g.simulate_window("none", np.random.default_rng(0), kind="dance")


# ---------------------------------------------------------------------------------------------
# Registry round trip and baseline


def test_registry_round_trip(tmp_path, small):
    info = datasets.generate("gestures", scale=SMALL, root=tmp_path)
    assert info.task == "classification" and info.input_shape == (g.WINDOW, 6)
    assert info.classes == g.CLASSES and info.extra["units"][3] == "deg/s"
    loaded = datasets.load("gestures", root=tmp_path)
    for key in small:
        np.testing.assert_array_equal(loaded.arrays[key], small[key])


def test_simple_baseline_is_above_chance_but_not_perfect(full):
    # The numbers quoted in datasets/gestures/DATASHEET.md ("sanity baseline") come from here:
    # python3 -m pytest tests/test_gen_gestures.py -k baseline -s -q
    f_train = summary_features(full["x_train"])
    f_test = summary_features(full["x_test"])
    y_train, y_test = full["y_train"], full["y_test"]
    acc_lr = softmax_regression_accuracy(f_train, y_train, f_test, y_test, 4, steps=2000)
    acc_nc = nearest_centroid_accuracy(f_train, y_train, f_test, y_test)
    print(f"\ngestures test accuracy: logistic regression {acc_lr:.3f}, "
          f"nearest centroid {acc_nc:.3f} (chance 0.25)")
    assert 0.6 < acc_lr < 0.97
    assert 0.45 < acc_nc < 0.97
