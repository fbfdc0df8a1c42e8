"""The `kws` project: features, augmentation and (slow) the whole pipeline."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tinyml_edu import datasets, features
from tinyml_edu.projects import PROJECTS, kws

# Measured with `tinyml-edu run kws` (seed 0): int8 accuracy 0.8381 (float 0.8476), int8 model
# 18,976 bytes, TFLM arena 8,176 bytes. Below the project's 0.92 target: see kws.py. The same
# seed gives another model on another CPU: 0.8000 on the 2026-12-03 CI machine (the shipped
# tinyml_edu/pretrained/kws run), and seeds 0-2 spread 81-84 % on one machine; the floor below
# allows that spread and still catches a broken pipeline (a few points lower).
MEASURED_INT8_ACCURACY = 0.8381
SEED_AND_MACHINE_SPREAD = 0.05
MAX_MODEL_BYTES = 20_000
MAX_ARENA_BYTES = 10_000


@pytest.fixture(scope="module")
def dataset() -> datasets.Dataset:
    return datasets.load("kws")


@pytest.fixture(scope="module")
def prepared(dataset):
    return kws.prepare(dataset)


def test_registered_as_audio_project():
    assert PROJECTS["kws"] is kws.PROJECT
    assert kws.PROJECT.sensor == "audio" and kws.PROJECT.features is not None


def test_prepare_shapes(dataset, prepared):
    n_train = len(dataset.split("train")[0]) * (kws.AUG_COPIES + 1)
    for split, n in {"train": n_train, "val": 360, "test": 420}.items():
        x, y = prepared.x[split], prepared.y[split]
        assert x.shape == (n, 49, 40) and x.dtype == np.float32
        assert y.shape == (n,)
        assert np.all(np.isfinite(x))
    assert len(prepared.labels) == 12 and prepared.labels[:2] == ["silence", "unknown"]
    _, y_train = dataset.split("train")
    np.testing.assert_array_equal(prepared.y["train"], np.tile(y_train, kws.AUG_COPIES + 1))


def test_features_reproduce_prepared_inputs(dataset, prepared):
    params = json.loads(json.dumps(prepared.feature_params))
    for split in ("test", "val"):
        raw, _ = dataset.split(split)
        np.testing.assert_allclose(kws.PROJECT.features(raw, params), prepared.x[split],
                                   rtol=1e-6, atol=1e-6)
    raw_train, _ = dataset.split("train")  # the originals come first, augmented copies follow
    np.testing.assert_allclose(kws.PROJECT.features(raw_train[:50], params),
                               prepared.x["train"][:50], rtol=1e-6, atol=1e-6)


def test_features_are_per_clip_gain_invariant(dataset):
    raw, _ = dataset.split("test")
    clips = raw[:8]
    params = kws.feature_params()
    louder = np.clip(clips.astype(np.int32) * 2, -32768, 32767).astype(np.int16)
    # log-mel shifts by log(4) everywhere (except at the floor): the clip mean removes most of it
    diff = np.abs(kws.model_inputs(louder, params) - kws.model_inputs(clips, params))
    assert np.median(diff) < 0.05  # without the clip mean: log(4) * 0.25 = 0.35 everywhere


def test_feature_params_json_round_trip(prepared):
    params = json.loads(json.dumps(prepared.feature_params))
    assert params == prepared.feature_params
    assert params["shape"] == [49, 40] == list(prepared.x["train"].shape[1:])
    for key in features.AudioFeatureParams().to_dict():
        assert key in params
    assert params["norm"] == "clip_mean" and params["input_scale"] == kws.INPUT_SCALE
    audio = {k: v for k, v in params.items() if k not in ("norm", "input_scale")}
    assert features.AudioFeatureParams.from_dict(audio) == kws.FEATURES


def test_augmentation_is_deterministic(dataset):
    x, y = dataset.split("train")
    x, y = x[::40], y[::40]
    params = kws.feature_params()
    xa, ya = kws.augment_train(x, y, params, copies=2, seed=5, unknown_copies=0)
    xb, yb = kws.augment_train(x, y, params, copies=2, seed=5, unknown_copies=0)
    assert xa.shape == (3 * len(x), 49, 40) and xa.dtype == np.float32
    np.testing.assert_array_equal(xa, xb)
    np.testing.assert_array_equal(ya, yb)
    np.testing.assert_array_equal(ya, np.tile(y, 3))
    assert not np.array_equal(xa[len(x):2 * len(x)], xa[:len(x)])


def test_unknown_clips_get_extra_augmented_copies(dataset):
    x, y = dataset.split("train")
    x, y = x[::40], y[::40]
    unknown = int(np.sum(y == 1))
    assert unknown > 0
    xa, ya = kws.augment_train(x, y, kws.feature_params(), copies=1, seed=5, unknown_copies=3)
    assert len(xa) == len(ya) == 2 * len(x) + 3 * unknown
    np.testing.assert_array_equal(ya[:2 * len(x)], np.tile(y, 2))
    assert np.all(ya[2 * len(x):] == 1)
    extra = xa[2 * len(x):].reshape(3, unknown, 49, 40)
    assert not np.array_equal(extra[0], extra[1])  # each copy augmented anew


def test_speed_change_moves_the_pitch_about_the_centre():
    t = np.arange(16000) / 16000
    tone = np.where(np.abs(t - 0.5) < 0.2, np.sin(2 * np.pi * 400 * t), 0.0)[None].repeat(3, 0)
    out = kws._speed(tone, np.array([1.0, 1.25, 0.8]))
    np.testing.assert_allclose(out[0], tone[0], atol=1e-12)
    spectrum = np.abs(np.fft.rfft(out[:, 6000:10000], axis=1))
    hz = np.fft.rfftfreq(4000, 1 / 16000)[spectrum.argmax(axis=1)]
    np.testing.assert_allclose(hz, [400, 500, 320], atol=8)
    spans = [np.flatnonzero(np.abs(row) > 0.5)[[0, -1]] for row in out]
    lengths = [(b - a) / (spans[0][1] - spans[0][0]) for a, b in spans]
    np.testing.assert_allclose(lengths, [1, 0.8, 1.25], atol=0.01)
    assert all(abs((a + b) / 2 - 8000) < 20 for a, b in spans)  # still centred


def test_warp_mel_moves_formants_and_keeps_the_frame():
    # A "formant" peak at channel 20: a warp by alpha moves it to channel 20 / alpha.
    x = np.zeros((200, 49, 40), np.float32)
    x[:, :, 20] = 1.0
    warped = kws.warp_mel(x, np.random.default_rng(0), amount=0.1)
    peak = warped.mean(axis=1).argmax(axis=1)
    assert 18 <= peak.min() and peak.max() <= 22 and len(set(peak.tolist())) >= 3
    assert warped.shape == x.shape and warped.dtype == np.float32
    assert np.allclose(warped.sum(axis=2), warped[:, :1].sum(axis=2))  # same warp in every frame
    np.testing.assert_allclose(kws.warp_mel(x, np.random.default_rng(0), amount=0.0), x)


def test_import_does_not_load_tensorflow():
    code = ("import sys; import tinyml_edu.projects.kws; "
            "print('tensorflow' in sys.modules or 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_pipeline_end_to_end(tmp_path):
    from tinyml_edu import pipeline

    rep = pipeline.run("kws", tmp_path / "k", progress=False, log=lambda m: None)
    assert rep["int8_accuracy"] >= MEASURED_INT8_ACCURACY - SEED_AND_MACHINE_SPREAD
    assert rep["model_bytes"] <= MAX_MODEL_BYTES
    assert rep["arena_bytes"] <= MAX_ARENA_BYTES
    assert rep["feature_params"]["shape"] == [49, 40]
    assert (tmp_path / "k" / "export" / "model_settings.h").exists()
