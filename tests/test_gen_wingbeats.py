"""Tests for the synthetic mosquito wingbeat generator (tinyml_edu.generators.wingbeats)."""

import csv
import json
import zipfile

import numpy as np
import pytest

from tinyml_edu import datasets
from tinyml_edu.generators import wingbeats as wb

SPLITS = ("train", "val", "test")
SCALE = 0.05


@pytest.fixture(scope="module")
def small() -> dict[str, np.ndarray]:
    return wb.generate(scale=SCALE)


@pytest.fixture(scope="module")
def medium() -> dict[str, np.ndarray]:
    return wb.generate(scale=0.2)


def test_metadata():
    assert wb.TASK == "classification" and len(wb.CLASSES) == 4
    assert wb.SAMPLE_RATE == 8000 and wb.LICENSE == "CC0-1.0"
    assert set(wb.F0_AT_REF_HZ) == set(wb.HARMONICS) == set(wb.CLASSES)
    json.dumps(wb.EXTRA)


def test_keys_shapes_dtypes(small):
    expected = {f"{a}_{s}" for a in ("x", "y", "group", "temperature") for s in SPLITS}
    assert set(small) == expected
    for s in SPLITS:
        x, y = small[f"x_{s}"], small[f"y_{s}"]
        assert x.dtype == np.int16 and x.shape == (len(y), 4000)
        assert y.dtype == np.int64 and small[f"group_{s}"].dtype == np.int64
        assert set(y.tolist()) == {0, 1, 2, 3}, f"a class is missing from {s}"


def test_stratified_60_20_20(small):
    per_class = int(round(wb.CLIPS_PER_CLASS * SCALE))
    expected = {"train": 9, "val": 3, "test": 3}
    assert per_class == 15
    for s in SPLITS:
        assert np.bincount(small[f"y_{s}"], minlength=4).tolist() == [expected[s]] * 4
    ids = np.concatenate([small[f"group_{s}"] for s in SPLITS])
    assert len(np.unique(ids)) == len(ids)  # one id per clip


def test_deterministic(small):
    again = wb.generate(scale=SCALE)
    assert all(np.array_equal(small[k], again[k]) for k in small)
    other = wb.generate(seed=wb.DEFAULT_SEED + 1, scale=SCALE)
    assert not np.array_equal(small["x_train"][:5], other["x_train"][:5])


def test_int16_range_not_clipped_not_silent(medium):
    x = np.concatenate([medium[f"x_{s}"] for s in SPLITS]).astype(np.int32)
    assert x.min() >= -32768 and x.max() <= 32767
    assert np.abs(x).max() < 32767  # no clip saturates
    assert np.all(x.std(axis=1) > 10)


def test_dominant_peak_in_species_range(medium):
    x = np.concatenate([medium[f"x_{s}"] for s in SPLITS])
    y = np.concatenate([medium[f"y_{s}"] for s in SPLITS])
    peak = wb.dominant_frequency(x)
    for c, label in enumerate(wb.CLASSES):
        lo, hi = wb.f0_range_hz(label)
        # 3 % slack for vibrato; a few clips have a stronger 2nd harmonic than fundamental.
        inside = (peak[y == c] >= 0.97 * lo) & (peak[y == c] <= 1.03 * hi)
        assert inside.mean() >= 0.85, f"{label}: {inside.mean():.2f} in {lo:.0f}-{hi:.0f} Hz"


def test_wingbeat_rises_with_temperature(medium):
    x = np.concatenate([medium[f"x_{s}"] for s in SPLITS])
    y = np.concatenate([medium[f"y_{s}"] for s in SPLITS])
    temp = np.concatenate([medium[f"temperature_{s}"] for s in SPLITS])
    lo_t, hi_t = wb.TEMPERATURE_RANGE_C
    assert temp.min() >= lo_t and temp.max() <= hi_t
    mean_f0 = np.array([wb.F0_AT_REF_HZ[wb.CLASSES[c]][0] for c in y])
    relative = wb.dominant_frequency(x) / mean_f0
    ok = relative < 1.5  # leave out the few 2nd-harmonic peaks
    assert np.corrcoef(temp[ok], relative[ok])[0, 1] > 0.3


def test_round_trip_through_flac_clips(tmp_path, small):
    info = datasets.generate("wingbeats", scale=SCALE, root=tmp_path)
    assert info.input_shape == (4000,) and info.sample_rate == 8000
    assert info.splits == {"train": 36, "val": 12, "test": 12}
    assert {f.path for f in info.files} == {"wingbeats/clips.zip", "wingbeats/index.csv"}
    with open(tmp_path / "wingbeats" / "index.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[:4] == ["file", "label", "split", "group"]
    assert all(r["file"] == f"clips/{r['split']}/{r['label']}/{r['label']}_{int(r['group']):05d}"
               ".flac" for r in rows)
    loaded = datasets.load("wingbeats", root=tmp_path)
    for s in SPLITS:
        assert np.array_equal(loaded.arrays[f"x_{s}"], small[f"x_{s}"])  # FLAC is lossless
        assert np.array_equal(loaded.arrays[f"y_{s}"], small[f"y_{s}"])
        assert loaded.groups(s).astype(np.int64).tolist() == small[f"group_{s}"].tolist()


def test_write_files_is_byte_reproducible_and_rewrites_the_archive(tmp_path):
    a = wb.write_files(tmp_path / "a", seed=3, scale=SCALE)
    b = wb.write_files(tmp_path / "b", seed=3, scale=SCALE)
    assert [p.relative_to(tmp_path / "a") for p in a] == [p.relative_to(tmp_path / "b") for p in b]
    assert all(pa.read_bytes() == pb.read_bytes() for pa, pb in zip(a, b, strict=True))
    # Regenerating smaller leaves exactly the listed clips in the archive, nothing loose.
    wb.write_files(tmp_path / "a", seed=3, scale=0.04)
    with open(tmp_path / "a" / "index.csv", newline="", encoding="utf-8") as f:
        listed = [r["file"] for r in csv.DictReader(f)]
    with zipfile.ZipFile(tmp_path / "a" / "clips.zip") as zf:
        assert zf.namelist() == listed and len(listed) < 60
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["clips.zip", "index.csv"]


def test_baseline_above_chance():
    # Scale 0.5 (120 test clips): smaller test splits make the score too noisy to bound.
    acc = wb.baseline_accuracy(wb.generate(scale=0.5))  # spectral-peak frequency only
    assert 0.35 < acc < 0.9


@pytest.mark.slow
def test_regenerating_reproduces_the_shipped_archive_byte_for_byte(tmp_path):
    shipped = datasets.info("wingbeats")
    regenerated = datasets.generate("wingbeats", root=tmp_path)
    assert [(f.path, f.sha256) for f in regenerated.files] == [
        (f.path, f.sha256) for f in shipped.files]
    assert regenerated.arrays_sha256 == shipped.arrays_sha256
