"""The images project: shipped backbone, frozen blocks, budget on the Nano, and one reduced run."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from tinyml_edu import boards, datasets
from tinyml_edu.errors import TinyMLEduError
from tinyml_edu.projects import PROJECTS, images

NANO = "nano33ble_sense_rev2"
MAX_FLASH = 400 * 1024  # model + runtime on the Nano 33 BLE Sense (issue 19)
MAX_ARENA = 160 * 1024
MAX_WEIGHTS_BYTES = 1024 * 1024


def test_registered_as_a_camera_project():
    assert PROJECTS["images"] is images.PROJECT
    assert datasets.info("images").task == "classification"
    assert images.PROJECT.frame_buffer_bytes == 160 * 120  # the sketch's camera frame


def test_importing_the_project_does_not_import_tensorflow():
    code = ("import sys, tinyml_edu.projects.images; "
            "sys.exit('tensorflow' in sys.modules or 'keras' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_backbone_ships_small_and_intact():
    assert images.BACKBONE_FILE.is_file()
    assert images.BACKBONE_FILE.stat().st_size <= MAX_WEIGHTS_BYTES
    assert images.file_sha256(images.BACKBONE_FILE) == images.BACKBONE_SHA256


def test_a_damaged_backbone_is_refused(tmp_path):
    bad = tmp_path / "backbone.npz"
    bad.write_bytes(images.BACKBONE_FILE.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(TinyMLEduError, match="damaged"):
        images.load_backbone_weights(images.backbone(), bad)


def test_build_loads_the_backbone_and_freezes_the_early_blocks():
    model = images.build(images.Prepared({}, {}, ["a", "b", "c", "d"]))
    assert model.output_shape == (None, 4)
    with np.load(images.BACKBONE_FILE) as saved:
        stem = saved["w0"]
    np.testing.assert_array_equal(model.get_layer("stem").get_weights()[0], stem)
    first_tuned = len(images.BLOCKS) - images.FINE_TUNE_BLOCKS
    assert not model.get_layer("stem").trainable
    assert not model.get_layer("stem_bn").trainable
    for i in range(len(images.BLOCKS)):
        assert model.get_layer(f"block{i}_pw").trainable == (i >= first_tuned), i
    assert model.get_layer("head").trainable


def test_scratch_model_is_the_same_network_untrained():
    scratch = images.build_scratch(images.Prepared({}, {}, ["a", "b", "c", "d"]))
    with np.load(images.BACKBONE_FILE) as saved:
        stem = saved["w0"]
    assert not np.array_equal(scratch.get_layer("stem").get_weights()[0], stem)
    assert all(layer.trainable for layer in scratch.layers)


def test_augment_keeps_originals_and_labels():
    rng = np.random.default_rng(0)
    x = rng.random((3, 96, 96, 1)).astype(np.float32)
    y = np.array([0, 1, 2])
    xa, ya = images.augment_train(x, y)
    assert xa.shape == (24, 96, 96, 1)
    np.testing.assert_array_equal(xa[:3], x)
    np.testing.assert_array_equal(ya, np.tile(y, 8))
    # Every transform is a different image of the same frame (no duplicates).
    flat = xa[0::3].reshape(8, -1)
    assert len({row.tobytes() for row in flat}) == 8


def test_bad_frames_get_a_clear_error():
    with pytest.raises(ValueError, match="96 x 96"):
        images.frames_to_inputs(np.zeros((2, 96, 96, 3), np.uint8))


def test_model_budget_on_the_nano():
    from tinyml_edu import profile, quantize

    model = images.build(images.Prepared({}, {}, ["a", "b", "c", "d"]))
    rng = np.random.default_rng(0)
    blob = quantize.convert(model, "int8", representative=rng.random((8, 96, 96, 1), np.float32))
    prof = profile.profile(blob, boards={NANO: boards.BOARDS[NANO]}, search_smallest=False,
                           extra_ram_bytes=images.FRAME_BUFFER_BYTES)
    assert prof.boards[NANO].flash_bytes <= MAX_FLASH
    assert prof.arena_bytes <= MAX_ARENA
    assert prof.boards[NANO].fits


@pytest.mark.slow
def test_end_to_end_reduced(tmp_path, monkeypatch):
    """Three epochs: the fine-tuned model beats chance, int8 stays close to float, and the
    report holds the comparison without pre-training."""
    from tinyml_edu import pipeline

    training = dataclasses.replace(images.TRAINING, epochs=3)
    project = dataclasses.replace(images.PROJECT, training=training,
                                  extra_report=lambda prep, seed: {"scratch_float_accuracy": 0.0})
    monkeypatch.setitem(PROJECTS, "images", project)
    report = pipeline.run("images", tmp_path / "images", progress=False, log=lambda m: None)
    assert report["float_accuracy"] > 0.5  # chance is 0.25
    assert abs(report["int8_accuracy"] - report["float_accuracy"]) <= 0.03
    assert report["frame_buffer_bytes"] == 160 * 120
    assert "scratch_float_accuracy" in report
    assert report["boards"][NANO]["fits"]
    from PIL import Image

    from tinyml_edu import predict

    pictures = tmp_path / "pictures"
    pictures.mkdir()

    ds = datasets.load("images")
    frames, labels = ds.split("test")
    for i in range(2):
        Image.fromarray(frames[i, :, :, 0]).save(pictures / f"frame_{i}.png")
    got = predict.predict_files(tmp_path / "images", [pictures])
    assert len(got) == 2 and all(r.label in ds.info.classes for r in got)
    # The PNG round trip is exact: predict gives what the run's int8 model gives the frame.
    from tinyml_edu import quantize

    model = (tmp_path / "images" / "model_int8.tflite").read_bytes()
    direct = quantize.predict(model, images.frames_to_inputs(frames[:2])).argmax(axis=1)
    assert [r.label for r in got] == [ds.info.classes[k] for k in direct]
    assert (tmp_path / "images" / "examples.png").is_file()
