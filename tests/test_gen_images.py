"""Tests for the image generators: hand-drawn symbols (``images``) and the camera model."""

import numpy as np
import pytest

from tinyml_edu import datasets
from tinyml_edu.generators import camera
from tinyml_edu.generators import images as g
from tinyml_edu.generators.baseline import softmax_regression_accuracy

SMALL = 0.1
SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def small() -> dict[str, np.ndarray]:
    return g.generate(scale=SMALL)


@pytest.fixture(scope="module")
def shipped() -> datasets.Dataset:
    return datasets.load("images")


def test_metadata():
    assert g.TASK == "classification" and g.CLASSES == ("circle", "cross", "triangle", "none")
    assert g.LICENSE == "CC0-1.0" and g.SAMPLE_RATE is None
    assert not set(g.PRETRAIN_CLASSES) & set(g.CLASSES)  # pre-training must not see the task


def test_keys_shapes_dtypes(small):
    counts = g.split_counts(SMALL)
    for split in SPLITS:
        x, y = small[f"x_{split}"], small[f"y_{split}"]
        n = counts[split] * len(g.CLASSES)
        assert x.shape == (n, 96, 96, 1) and x.dtype == np.uint8
        assert y.shape == (n,) and y.dtype == np.int64
        assert np.bincount(y, minlength=4).tolist() == [counts[split]] * 4
        for key in ("group", "condition", "light"):
            assert small[f"{key}_{split}"].shape == (n,)
        assert set(small[f"condition_{split}"]) <= set(g.CONDITIONS)


def test_deterministic_and_seed_dependent(small):
    again = g.generate(scale=SMALL)
    other = g.generate(seed=g.DEFAULT_SEED + 1, scale=SMALL)
    for key in small:
        np.testing.assert_array_equal(small[key], again[key])
    assert not np.array_equal(small["x_train"], other["x_train"])


def test_frames_use_the_whole_range_and_differ(small):
    x = small["x_train"].astype(float)
    assert x.min() == 0 or x.max() == 255  # noise and lights reach the ends somewhere
    means = x.mean(axis=(1, 2, 3))
    assert means.std() > 10  # exposure varies from frame to frame
    flat = x.reshape(len(x), -1)
    assert len({f.tobytes() for f in small["x_train"]}) == len(x)  # no two frames equal
    assert np.abs(flat[0] - flat[1]).mean() > 5


def _noise(x: np.ndarray) -> np.ndarray:
    """Per frame: rms of the difference of neighbouring pixels (mostly sensor noise)."""
    x = x[..., 0].astype(float)
    return np.sqrt(np.mean(np.diff(x, axis=2) ** 2, axis=(1, 2)))


def test_night_frames_are_darker_and_noisier(small):
    x = np.concatenate([small[f"x_{s}"] for s in SPLITS])
    cond = np.concatenate([small[f"condition_{s}"] for s in SPLITS])
    day, night = cond == "day", cond == "night"
    assert day.sum() > 10 and night.sum() > 5
    brightness = x.mean(axis=(1, 2, 3))
    assert np.median(brightness[night]) < np.median(brightness[day]) - 20
    assert np.median(_noise(x)[night]) > 2 * np.median(_noise(x)[day])


def _texture(x: np.ndarray) -> np.ndarray:
    """Per frame: quartiles of pixel-to-pixel steps at full and at 1/4 resolution, and the
    contrast. Background families differ in grain, so these differ by scene."""
    x = x[..., 0].astype(float)
    coarse = x.reshape(len(x), 24, 4, 24, 4).mean(axis=(2, 4))
    steps = [np.abs(np.diff(a, axis=2)) for a in (x, coarse)]
    return np.stack([np.percentile(d, q, axis=(1, 2)) for d in steps for q in (25, 50, 75, 90)]
                    + [x.std(axis=(1, 2))], axis=1)


def test_held_out_scenes_differ_in_family_and_in_pixels(small, shipped):
    groups = {s: set(small[f"group_{s}"]) for s in SPLITS}
    assert groups["train"] == set(g.FAMILIES["train"])
    assert not groups["train"] & groups["test"] and not groups["train"] & groups["val"]
    assert not groups["val"] & groups["test"]
    # The backgrounds really look different: a classifier on texture statistics, fitted on
    # half of the train and test frames, tells the other halves' scenes apart (chance: 0.5).
    f = {s: _texture(shipped.split(s)[0][shipped.arrays[f"condition_{s}"] != "night"])
         for s in ("train", "test")}
    half = {s: len(f[s]) // 2 for s in f}
    fit = np.concatenate([f["train"][:half["train"]], f["test"][:half["test"]]])
    y_fit = np.r_[np.zeros(half["train"], int), np.ones(half["test"], int)]
    held = np.concatenate([f["train"][half["train"]:], f["test"][half["test"]:]])
    y_held = np.r_[np.zeros(len(f["train"]) - half["train"], int),
                   np.ones(len(f["test"]) - half["test"], int)]
    assert softmax_regression_accuracy(fit, y_fit, held, y_held, 2) > 0.7


def test_pretraining_set_is_other_symbols_on_training_scenes():
    pre = g.pretraining(per_class=3)
    assert pre["x"].shape == (3 * len(g.PRETRAIN_CLASSES), 96, 96, 1)
    assert np.bincount(pre["y"]).tolist() == [3] * len(g.PRETRAIN_CLASSES)
    assert set(pre["group"]) <= set(g.FAMILIES["train"])
    np.testing.assert_array_equal(pre["x"], g.pretraining(per_class=3)["x"])
    assert not np.array_equal(pre["x"], g.pretraining(seed=1, per_class=3)["x"])


def test_pretraining_command_writes_a_reproducible_file(tmp_path, capsys):
    for name in ("a.npz", "b.npz"):
        assert g.main(["--pretraining", str(tmp_path / name), "--per-class", "2"]) == 0
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    assert "sha256" in capsys.readouterr().out
    with np.load(tmp_path / "a.npz") as npz:
        assert npz["x"].shape == (2 * len(g.PRETRAIN_CLASSES), 96, 96, 1)


# ---------------------------------------------------------------------------------------------
# The camera model


def test_exposure_gain_runs_out_in_the_dark():
    rng = np.random.default_rng(0)
    albedo = np.full((96, 96), 0.5)
    bright = camera.expose(rng, albedo, np.full((96, 96), 1.0))
    dim = camera.expose(rng, albedo, np.full((96, 96), 0.1))
    dark = camera.expose(rng, albedo, np.full((96, 96), 0.002))
    # Auto-exposure makes bright and dim light look alike; too little light cannot be fixed.
    assert abs(float(bright.mean()) - float(dim.mean())) < 10
    assert dark.mean() < bright.mean() - 40
    assert dim.std() > bright.std()  # more gain, more noise


def test_blur_keeps_the_mean_and_smooths():
    rng = np.random.default_rng(1)
    a = rng.random((96, 96))
    for blurred in (camera.gaussian_blur(a, 1.5), camera.motion_blur(a, 5, 0.7)):
        assert blurred.shape == a.shape
        assert abs(blurred.mean() - a.mean()) < 0.01
        assert blurred.std() < 0.6 * a.std()
    assert camera.gaussian_blur(a, 0.0) is a


def test_polyline_distance_is_exact_near_the_line():
    rr, cc = camera.coords()
    d = camera.polyline_distance(rr, cc, np.array([[48.0, 10.0], [48.0, 80.0]]), reach=3)
    row = np.argmin(np.abs(rr[:, 0] - 50.25))  # 2.25 px below the line
    assert d[row, 80] == pytest.approx(2.25)
    assert d[0, 0] == 1e3  # beyond reach: not computed


# ---------------------------------------------------------------------------------------------
# The shipped files


def test_shipped_entry_and_loader(shipped):
    info = shipped.info
    assert info.classes == g.CLASSES and info.seed == g.DEFAULT_SEED
    assert info.input_shape == (96, 96, 1) and info.task == "classification"
    assert info.splits == {s: n * 4 for s, n in g.PER_CLASS.items()}
    assert (datasets.data_dir() / info.datasheet).is_file()
    x, y = shipped.split("test")
    assert x.dtype == np.uint8 and x.shape[1:] == (96, 96, 1) and y.dtype == np.int64
    assert set(shipped.groups("test")) == set(g.FAMILIES["test"])
    with pytest.raises(datasets.DatasetError, match="no object centres"):
        shipped.centroids("test")


def test_both_image_sets_fit_15_mb_in_two_files():
    files = [f for name in ("images", "cars") for f in datasets.info(name).files]
    assert len(files) == 2
    assert sum(f.bytes for f in files) <= 15e6


@pytest.mark.slow
def test_regenerating_reproduces_the_shipped_file_byte_for_byte(tmp_path):
    shipped = datasets.info("images")
    regenerated = datasets.generate("images", root=tmp_path)
    assert regenerated.files[0].sha256 == shipped.files[0].sha256
    assert regenerated.arrays_sha256 == shipped.arrays_sha256
