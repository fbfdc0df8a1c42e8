import csv
import importlib.util
import json
import shutil
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tinyml_edu import datasets


def test_registry_lists_sine_with_metadata():
    info = datasets.info("sine")
    assert info.task == "regression"
    assert info.splits == {"train": 600, "val": 200, "test": 200}
    assert info.files and all(len(f.sha256) == 64 for f in info.files)


def test_load_returns_documented_arrays():
    ds = datasets.load("sine")
    x, y = ds.split("train")
    assert x.shape == (600, 1) and y.shape == (600, 1)
    assert x.dtype == np.float32
    assert 0 <= x.min() and x.max() < 2 * np.pi
    # y is sin(x) plus noise of std 0.1
    assert np.std(y - np.sin(x)) == pytest.approx(0.1, rel=0.15)


def test_unknown_name_lists_the_available_ones():
    with pytest.raises(datasets.DatasetError, match="available: .*sine"):
        datasets.load("speech_commands")


def test_corrupted_file_names_the_file_and_how_to_restore(data_copy):
    path = data_copy / "sine" / "sine.npz"
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # one flipped byte, same size
    path.write_bytes(bytes(blob))
    with pytest.raises(datasets.DatasetError) as err:
        datasets.load("sine", root=data_copy)
    message = str(err.value)
    assert "sine.npz" in message and "sha256" in message
    assert "git checkout" in message and "tinyml-edu data generate sine" in message


def test_missing_and_truncated_files_are_reported(data_copy):
    path = data_copy / "sine" / "sine.npz"
    path.write_bytes(path.read_bytes()[:100])
    problems = datasets.verify(root=data_copy)
    assert len(problems) == 1 and "expected" in problems[0].reason
    path.unlink()
    problems = datasets.verify("sine", root=data_copy)
    assert "missing" in problems[0].reason


def test_generator_reproduces_the_shipped_file_byte_for_byte(tmp_path):
    shipped = datasets.info("sine")
    regenerated = datasets.generate("sine", root=tmp_path)
    assert regenerated.files[0].sha256 == shipped.files[0].sha256


def test_a_folder_given_as_text_works_like_a_path(tmp_path):
    info = datasets.generate("sine", root=str(tmp_path))
    x_train, _ = datasets.load("sine", root=str(tmp_path)).split("train")
    assert len(x_train) == info.splits["train"]
    assert not datasets.verify("sine", root=str(tmp_path))


def test_generate_scales_and_keeps_other_entries(data_copy):
    manifest = json.loads((data_copy / "manifest.json").read_text())
    manifest["datasets"]["other"] = manifest["datasets"]["sine"]
    (data_copy / "manifest.json").write_text(json.dumps(manifest))
    info = datasets.generate("sine", seed=1, scale=0.5, root=data_copy)
    assert sum(info.splits.values()) == 500
    assert set(datasets.registry(data_copy)) == {"sine", "other"}
    assert datasets.load("sine", root=data_copy).split("test")[0].shape == (100, 1)


def test_broken_manifest_gives_a_clear_error(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(datasets.DatasetError, match="not valid JSON"):
        datasets.registry(tmp_path)


def test_shipped_data_fits_the_70_mb_budget():
    # Everything in datasets/ travels in the wheel and on every USB stick. 60 MB until the
    # vision track (issue 19) added its two image sets (about 13 MB).
    total = sum(f.bytes for ds in datasets.registry().values() for f in ds.files)
    assert total <= 70e6, f"shipped data sets take {total / 1e6:.1f} MB (budget 70 MB)"


# ---------------------------------------------------------------------------------------------
# Audio data sets: FLAC clips in one uncompressed clips.zip per data set, read in place

CLIP_SETS = ("kws", "wingbeats", "elephant_rumbles")


@pytest.mark.parametrize("name", sorted(datasets.registry()))
def test_shipped_data_set_decodes_to_the_recorded_arrays(name):
    # arrays_sha256 was recorded from the loose FLAC files before they were packed into
    # clips.zip: the storage changed, the arrays every lesson sees did not.
    ds = datasets.load(name)
    assert len(ds.info.arrays_sha256) == 64
    assert datasets.arrays_digest(ds.arrays) == ds.info.arrays_sha256


def test_arrays_digest_sees_values_dtype_and_names():
    a = {"x": np.arange(4, dtype=np.int16)}
    assert datasets.arrays_digest(a) == datasets.arrays_digest({"x": np.arange(4, dtype=np.int16)})
    assert datasets.arrays_digest(a) != datasets.arrays_digest({"x": np.arange(4, dtype=np.int32)})
    assert datasets.arrays_digest(a) != datasets.arrays_digest({"y": a["x"]})
    assert datasets.arrays_digest(a) != datasets.arrays_digest({"x": a["x"][::-1].copy()})


@pytest.mark.parametrize("name", CLIP_SETS)
def test_clip_sets_ship_as_one_archive_and_an_index(name):
    assert {f.path for f in datasets.info(name).files} == {f"{name}/clips.zip",
                                                           f"{name}/index.csv"}
    assert not (datasets.data_dir() / name / "clips").exists()


def test_clip_reads_one_clip_in_place():
    ds = datasets.load("wingbeats")
    with open(datasets.data_dir() / "wingbeats" / "index.csv", encoding="utf-8") as f:
        first_test = next(r for r in csv.DictReader(f) if r["split"] == "test")
    samples, rate = datasets.clip("wingbeats", first_test["file"])
    assert rate == ds.info.sample_rate and samples.dtype == np.int16
    assert np.array_equal(samples, ds.split("test")[0][0])
    with pytest.raises(datasets.DatasetError, match="no clip 'clips/nope.flac'"):
        datasets.clip("wingbeats", "clips/nope.flac")
    with pytest.raises(datasets.DatasetError, match="has no clips"):
        datasets.clip("sine", "clips/a.flac")


def test_a_damaged_clip_is_named(tmp_path):
    src = datasets.data_dir()
    manifest = json.loads((src / "manifest.json").read_text())
    manifest["datasets"] = {"wingbeats": manifest["datasets"]["wingbeats"]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    shutil.copytree(src / "wingbeats", tmp_path / "wingbeats")
    archive = tmp_path / "wingbeats" / "clips.zip"
    with zipfile.ZipFile(archive) as zf:
        member = zf.infolist()[100]
    blob = bytearray(archive.read_bytes())
    # Stored members: the clip's bytes follow its 30-byte local header and name.
    blob[member.header_offset + 30 + len(member.filename) + member.file_size // 2] ^= 0xFF
    archive.write_bytes(bytes(blob))
    problems = datasets.verify(root=tmp_path)
    assert len(problems) == 1 and problems[0].path == archive
    assert f"damaged clip: {member.filename}" in problems[0].reason
    assert "git checkout -- datasets/wingbeats/clips.zip" in problems[0].reason
    with pytest.raises(datasets.DatasetError, match=member.filename):
        datasets.load("wingbeats", root=tmp_path)


def test_shipped_data_fits_a_usb_stick_with_big_clusters():
    # exFAT on sticks of 64 GB and more stores every file in whole 128 KB clusters.
    bench = _bench_footprint()
    fp = bench.footprint(datasets.data_dir(), (128 * 1024,))
    assert fp.files <= bench.DATASETS_MAX_FILES
    assert fp.on_disk[128 * 1024] <= bench.DATASETS_MAX_BYTES
    assert bench.rounded(1, 4096) == 4096 and bench.rounded(8192, 4096) == 8192


def _bench_footprint():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_footprint.py"
    spec = importlib.util.spec_from_file_location("bench_footprint", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------------------------
# The bundle ships the data once: inside the tinyml-edu wheel


def test_bundle_refuses_a_wheel_without_the_data(tmp_path):
    from tinyml_edu.bundle import build

    wheel = tmp_path / "tinyml_edu-0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("tinyml_edu/__init__.py", "")
    with pytest.raises(build.BundleError, match="carries no data sets"):
        build.check_wheel_carries_data(wheel)
    with zipfile.ZipFile(wheel, "a") as zf:
        zf.writestr("tinyml_edu/_data/manifest.json", "{}")
    build.check_wheel_carries_data(wheel)


def test_every_generator_keeps_the_documented_contract():
    import pkgutil

    import tinyml_edu.generators as generators

    helpers = {"baseline", "camera", "clips", "kws_stream"}  # shared code or derived data
    names = sorted(m.name for m in pkgutil.iter_modules(generators.__path__))
    assert sorted(set(names) - helpers) == sorted(datasets.registry())
    for name in datasets.registry():
        module = datasets.generator_module(name)
        assert datasets.writes_clips(module) == (name in {"kws", "wingbeats",
                                                          "elephant_rumbles"}), name
        assert module.TASK in {"classification", "regression", "anomaly", "counting"}, name
        assert bool(module.CLASSES) == (module.TASK != "regression"), name


def test_a_generator_that_breaks_the_contract_is_named(monkeypatch):
    import sys
    import types

    broken = types.ModuleType("tinyml_edu.generators.broken")
    broken.TASK, broken.CLASSES = "classification", ["a"]
    monkeypatch.setitem(sys.modules, "tinyml_edu.generators.broken", broken)
    with pytest.raises(datasets.DatasetError, match=r"broken\.py lacks DESCRIPTION, "
                       r"SAMPLE_RATE, LICENSE, DEFAULT_SEED, write_files\(\) or generate\(\)"):
        datasets.generator_module("broken")
