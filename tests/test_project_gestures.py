"""The `gestures` project: features, augmentation and (slow) the whole pipeline."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tinyml_edu import datasets, features
from tinyml_edu.projects import gestures

# Measured with `tinyml-edu run gestures` (seed 0): int8 accuracy 0.9975, int8 model 11,992
# bytes, TFLM arena 6,368 bytes. The bounds leave room for other CPUs and library versions.
MIN_INT8_ACCURACY = 0.9775
MAX_MODEL_BYTES = 14_000
MAX_ARENA_BYTES = 8_000


@pytest.fixture(scope="module")
def dataset() -> datasets.Dataset:
    return datasets.load("gestures")


@pytest.fixture(scope="module")
def prepared(dataset):
    return gestures.prepare(dataset)


def test_prepare_shapes_and_scaling(dataset, prepared):
    n_train = len(dataset.split("train")[0]) * (gestures.AUG_COPIES + 1)
    expected = {"train": n_train, "val": 400, "test": 400}
    for split, n in expected.items():
        x, y = prepared.x[split], prepared.y[split]
        assert x.shape == (n, 128, gestures.NUM_CHANNELS) and x.dtype == np.float32
        assert y.shape == (n,)
        assert np.all(np.abs(x) <= 1.0)
    assert prepared.labels == ["W", "O", "L", "none"]
    # Validation and test windows are not augmented: scaled sensor channels plus |a|.
    raw, y = dataset.split("test")
    x = prepared.x["test"]
    np.testing.assert_array_equal(prepared.y["test"], y)
    np.testing.assert_allclose(x[..., :6], features.scale_imu(raw, gestures.FEATURES))
    assert gestures.FEATURES.gyro_range_dps == 500.0
    np.testing.assert_allclose(x[0, :, 3:6], raw[0, :, 3:6] / 500.0, rtol=1e-6)
    amag = (np.linalg.norm(raw[..., :3].astype(np.float64), axis=-1) - 1.0) / 4.0
    np.testing.assert_allclose(x[..., 6], np.clip(amag, -1, 1), atol=1e-6)
    # The training split starts with the original windows, augmented copies follow.
    raw_train, y_train = dataset.split("train")
    np.testing.assert_allclose(prepared.x["train"][:len(raw_train)],
                               gestures.imu_features(raw_train))
    np.testing.assert_array_equal(prepared.y["train"],
                                  np.tile(y_train, gestures.AUG_COPIES + 1))


def test_feature_params_json_round_trip(prepared):
    params = json.loads(json.dumps(prepared.feature_params))
    assert params == prepared.feature_params
    assert params["shape"] == list(prepared.x["train"].shape[1:])
    assert params["num_channels"] == gestures.NUM_CHANNELS == 7
    assert params["derived_channels"] == ["amag"] and params["amag_offset_g"] == 1.0
    imu = {k: v for k, v in params.items() if k not in ("derived_channels", "amag_offset_g")}
    assert features.ImuFeatureParams.from_dict(imu) == gestures.FEATURES


def test_augmentation_is_deterministic_and_keeps_shapes(dataset):
    x, y = dataset.split("train")
    x, y = x[:64], y[:64]
    xa, ya = gestures.augment_train(x, y, copies=2, seed=5)
    xb, yb = gestures.augment_train(x, y, copies=2, seed=5)
    assert xa.shape == (192, 128, 6) and xa.dtype == np.float32 and ya.shape == (192,)
    np.testing.assert_array_equal(xa, xb)
    np.testing.assert_array_equal(ya, yb)
    np.testing.assert_array_equal(ya, np.tile(y, 3))
    np.testing.assert_array_equal(xa[:64], x)
    assert not np.array_equal(xa[64:128], x)
    assert not np.array_equal(gestures.augment_train(x, y, copies=1, seed=6)[0][64:], xa[64:128])
    assert np.all(np.abs(xa[..., :3]) <= 4.0) and np.all(np.abs(xa[..., 3:]) <= 2000.0)


def test_augment_rotates_accel_and_gyro_alike():
    # A pure rotation keeps each 3-axis vector's length; the gain scales both sensors alike.
    rng = np.random.default_rng(0)
    x = rng.normal(0, [0.5, 0.5, 0.5, 50, 50, 50], (8, 128, 6)).astype(np.float32)
    out = gestures.augment(x, np.random.default_rng(1))
    assert out.shape == x.shape
    def length(v):
        return np.linalg.norm(v, axis=-1).sum(axis=1)

    ratio_a = length(out[..., :3]) / length(x[..., :3])
    ratio_g = length(out[..., 3:]) / length(x[..., 3:])
    np.testing.assert_allclose(ratio_a, ratio_g, rtol=0.05)
    assert np.all(np.abs(ratio_a - 1) < 0.3)


def test_import_does_not_load_tensorflow():
    code = ("import sys, tinyml_edu.projects.gestures; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
def test_pipeline_end_to_end(tmp_path):
    from tinyml_edu import pipeline

    rep = pipeline.run("gestures", tmp_path / "g", progress=False, log=lambda m: None)
    assert rep["int8_accuracy"] >= MIN_INT8_ACCURACY
    assert abs(rep["float_accuracy"] - rep["int8_accuracy"]) <= 0.015
    assert rep["arena_bytes"] <= MAX_ARENA_BYTES
    assert rep["model_bytes"] < MAX_MODEL_BYTES
    assert rep["feature_params"]["shape"] == [128, 7]
    assert (tmp_path / "g" / "export" / "model_settings.h").exists()
