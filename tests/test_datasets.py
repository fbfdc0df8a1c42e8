import json

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


def test_shipped_data_fits_the_60_mb_budget():
    # Everything in datasets/ travels in the wheel and on every USB stick.
    total = sum(f.bytes for ds in datasets.registry().values() for f in ds.files)
    assert total <= 60e6, f"shipped data sets take {total / 1e6:.1f} MB (budget 60 MB)"
