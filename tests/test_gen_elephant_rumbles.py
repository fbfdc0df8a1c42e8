"""Tests for the synthetic elephant rumble generator (tinyml_edu.generators.elephant_rumbles)."""

import csv
import json
import zipfile

import numpy as np
import pytest

from tinyml_edu import datasets
from tinyml_edu.generators import elephant_rumbles as er

SPLITS = ("train", "val", "test")
SCALE = 0.05


@pytest.fixture(scope="module")
def small() -> dict[str, np.ndarray]:
    return er.generate(scale=SCALE)


@pytest.fixture(scope="module")
def medium() -> dict[str, np.ndarray]:
    return er.generate(scale=0.2)


def test_metadata():
    assert er.TASK == "classification"
    assert er.CLASSES == ("rumble", "engine", "thunder", "wind")
    assert er.SAMPLE_RATE == 1000 and er.LICENSE == "CC0-1.0"
    assert sum(er.SITES_PER_SPLIT.values()) == er.NUM_SITES
    json.dumps(er.EXTRA)  # must be JSON-safe for the manifest


def test_keys_shapes_dtypes(small):
    assert set(small) == {f"{a}_{s}" for a in ("x", "y", "group") for s in SPLITS}
    for s in SPLITS:
        x, y = small[f"x_{s}"], small[f"y_{s}"]
        assert x.dtype == np.int16 and x.shape == (len(y), 5000)
        assert y.dtype == np.int64 and small[f"group_{s}"].dtype == np.int64
        assert set(y.tolist()) == {0, 1, 2, 3}, f"a class is missing from {s}"


def test_stratified_60_20_20(small):
    assert int(round(er.CLIPS_PER_CLASS * SCALE)) == 15
    expected = {"train": 9, "val": 3, "test": 3}
    for s in SPLITS:
        assert np.bincount(small[f"y_{s}"], minlength=4).tolist() == [expected[s]] * 4


def test_whole_sites_per_split(medium):
    sites = er.split_sites(er.DEFAULT_SEED)
    assert sorted(sum(sites.values(), [])) == list(range(er.NUM_SITES))
    for s in SPLITS:
        assert len(sites[s]) == er.SITES_PER_SPLIT[s]
        # every site of the split is used, and no other
        assert set(medium[f"group_{s}"].tolist()) == set(sites[s])


def test_deterministic(small):
    again = er.generate(scale=SCALE)
    assert all(np.array_equal(small[k], again[k]) for k in small)
    other = er.generate(seed=er.DEFAULT_SEED + 1, scale=SCALE)
    assert not np.array_equal(small["x_train"][:5], other["x_train"][:5])
    # A site (its noise, elephants and engines) does not depend on the scale.
    assert er.site_profile(1, 4)["elephants"] == er.site_profile(1, 4)["elephants"]


def test_int16_range_not_clipped_not_silent(medium):
    x = np.concatenate([medium[f"x_{s}"] for s in SPLITS]).astype(np.int32)
    assert np.abs(x).max() < 32767  # no clip saturates
    assert np.all(x.std(axis=1) > 3)


def test_rumbles_glide_in_the_infrasonic_band_while_gensets_hold():
    rng = np.random.default_rng(0)
    site = er.site_profile(er.DEFAULT_SEED, 0)
    for elephant in site["elephants"]:
        lo, hi = er.RUMBLE_F0_HZ
        assert lo <= elephant["f0"] <= hi
        for _ in range(5):
            x, active, f0 = er.rumble(rng, elephant)
            call = f0[~np.isnan(f0)]
            assert len(call) >= er.RUMBLE_MIN_IN_CLIP_S * er.SAMPLE_RATE - 1
            assert 8.0 <= call.min() and call.max() <= 45.0
            assert active.any() and np.all(np.isfinite(x))
    # A full call rises by at least 5 % and falls again; a genset's rate stays within 2 %.
    glides = []
    for _ in range(20):
        f0 = er.rumble(rng, site["elephants"][0])[2]
        call = f0[~np.isnan(f0)]
        glides.append(call.max() / min(call[0], call[-1]))
    assert np.median(glides) > 1.05
    genset = {"engines": [site["engines"][0]] * 2}
    for _ in range(10):
        _, _, rate, kind = er.engine(np.random.default_rng(rng.integers(1 << 30)), genset)
        if kind == "genset":
            assert rate.max() / rate.min() < 1.02


def test_dominant_frequencies_by_class(medium):
    x = np.concatenate([medium[f"x_{s}"] for s in SPLITS])
    y = np.concatenate([medium[f"y_{s}"] for s in SPLITS])
    peak = er.dominant_frequency(x)
    # Rumbles and engines peak at a low harmonic (< 150 Hz); wind is reddest of all.
    assert np.mean(peak[y == 0] < 150) >= 0.9
    assert np.mean(peak[y == 1] < 150) >= 0.9
    assert np.median(peak[y == 3]) < min(np.median(peak[y == c]) for c in (0, 1, 2))


def test_round_trip_through_flac_clips(tmp_path, small):
    info = datasets.generate("elephant_rumbles", scale=SCALE, root=tmp_path)
    assert info.input_shape == (5000,) and info.sample_rate == 1000
    assert info.classes == er.CLASSES
    assert info.splits == {"train": 36, "val": 12, "test": 12}
    assert {f.path for f in info.files} == {"elephant_rumbles/clips.zip",
                                            "elephant_rumbles/index.csv"}
    with open(tmp_path / "elephant_rumbles" / "index.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["file", "label", "split", "group", "individual", "source",
                             "distance_km", "snr_db", "f0_hz"]
    assert all(r["file"].startswith(f"clips/{r['split']}/{r['label']}/{r['label']}_")
               for r in rows)
    # No elephant is heard in two splits; only rumbles name one.
    heard = {s: {r["individual"] for r in rows if r["split"] == s and r["individual"]}
             for s in SPLITS}
    assert not (heard["train"] & heard["val"] or heard["train"] & heard["test"]
                or heard["val"] & heard["test"])
    assert all(bool(r["individual"]) == (r["label"] == "rumble") for r in rows)
    loaded = datasets.load("elephant_rumbles", root=tmp_path)
    for s in SPLITS:
        assert np.array_equal(loaded.arrays[f"x_{s}"], small[f"x_{s}"])  # FLAC is lossless
        assert np.array_equal(loaded.arrays[f"y_{s}"], small[f"y_{s}"])
        assert loaded.groups(s).astype(np.int64).tolist() == small[f"group_{s}"].tolist()


def test_write_files_is_byte_reproducible_and_rewrites_the_archive(tmp_path):
    a = er.write_files(tmp_path / "a", seed=3, scale=SCALE)
    b = er.write_files(tmp_path / "b", seed=3, scale=SCALE)
    assert [p.relative_to(tmp_path / "a") for p in a] == [p.relative_to(tmp_path / "b") for p in b]
    assert all(pa.read_bytes() == pb.read_bytes() for pa, pb in zip(a, b, strict=True))
    # Regenerating smaller leaves exactly the listed clips in the archive, nothing loose.
    er.write_files(tmp_path / "a", seed=3, scale=0.04)
    with open(tmp_path / "a" / "index.csv", newline="", encoding="utf-8") as f:
        listed = [r["file"] for r in csv.DictReader(f)]
    with zipfile.ZipFile(tmp_path / "a" / "clips.zip") as zf:
        assert zf.namelist() == listed and len(listed) < 60
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["clips.zip", "index.csv"]


def test_baseline_above_chance_but_far_from_perfect():
    # Scale 0.5 (150 per class): smaller test splits make the score too noisy to bound.
    arrays = er.generate(scale=0.5)
    peak_only = er.baseline_accuracy(arrays)
    all_three = er.baseline_accuracy(arrays, columns=(0, 1, 2))
    assert 0.3 < peak_only < 0.75
    assert peak_only < all_three < 0.85


def test_shipped_entry_matches_the_generator():
    info = datasets.info("elephant_rumbles")
    assert info.classes == er.CLASSES and info.sample_rate == er.SAMPLE_RATE
    assert info.input_shape == (er.CLIP_SAMPLES,) and info.seed == er.DEFAULT_SEED
    assert info.splits == {"train": 720, "val": 240, "test": 240}
    assert sum(f.bytes for f in info.files) <= 6e6  # its share of the 60 MB budget
    assert (datasets.data_dir() / info.datasheet).is_file()
