"""Shared fixtures: small real models built once per test session."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def sine_models() -> dict[str, bytes]:
    """The sine MLP (briefly trained) as float32 and int8 ``.tflite`` bytes."""
    from tinyml_edu import datasets, models, quantize, train

    ds = datasets.load("sine")
    (x, y), (xv, yv) = ds.split("train"), ds.split("val")
    train.set_seed(0)
    model = models.mlp(1, (16, 16), 1, name="sine")
    train.fit(model, x, y, xv, yv, loss="mse", epochs=20, batch_size=32, learning_rate=0.01,
              progress=False)
    return {
        "float32": quantize.convert(model, "float32"),
        "int8": quantize.convert(model, "int8", representative=x, per_channel_dense=False),
    }


def reshape_ds_cnn(input_shape: tuple[int, int], num_classes: int, width: int, blocks: int):
    """A DS-CNN for tests of the conv, depthwise and dense kernels: a 5x3 stride-2 convolution,
    then depthwise 3x3 + pointwise 1x1 blocks (batch norm, ReLU), global average, softmax.

    Not a model for the board: its ``keras.layers.Reshape`` adds the dynamic-batch SHAPE,
    STRIDED_SLICE and PACK ops that ``tinyml_edu.models``' builders avoid. The tests assert its
    exact ops and MACs (test_profile), so it stays as it is."""
    import keras

    x = inputs = keras.Input(input_shape, name="x")
    x = keras.layers.Reshape((*input_shape, 1), name="img")(x)
    x = keras.layers.Conv2D(width, (5, 3), strides=(2, 2), padding="same", use_bias=False,
                            name="conv0")(x)
    x = keras.layers.BatchNormalization(name="bn0")(x)
    x = keras.layers.ReLU(name="relu0")(x)
    for i in range(1, blocks + 1):
        x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"dw{i}")(x)
        x = keras.layers.BatchNormalization(name=f"bn_dw{i}")(x)
        x = keras.layers.ReLU(name=f"relu_dw{i}")(x)
        x = keras.layers.Conv2D(width, 1, use_bias=False, name=f"pw{i}")(x)
        x = keras.layers.BatchNormalization(name=f"bn_pw{i}")(x)
        x = keras.layers.ReLU(name=f"relu_pw{i}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="y")(x)
    return keras.Model(inputs, outputs, name="ds_cnn")


@pytest.fixture(scope="session")
def conv_int8() -> bytes:
    """A small untrained CNN with conv, depthwise and dense layers, quantized to int8."""
    from tinyml_edu import quantize, train

    train.set_seed(0)
    model = reshape_ds_cnn((49, 40), 4, width=8, blocks=1)
    rng = np.random.default_rng(0)
    return quantize.convert(model, "int8", representative=rng.normal(size=(50, 49, 40)))


@pytest.fixture()
def data_copy(tmp_path: Path) -> Path:
    """A private copy of the shipped ``sine`` data set and its manifest entry, safe to corrupt."""
    from tinyml_edu import datasets

    src = datasets.data_dir()
    dst = tmp_path / "datasets"
    dst.mkdir()
    manifest = json.loads((src / "manifest.json").read_text())
    manifest["datasets"] = {"sine": manifest["datasets"]["sine"]}
    (dst / "manifest.json").write_text(json.dumps(manifest))
    shutil.copytree(src / "sine", dst / "sine")
    return dst


# ---------------------------------------------------------------------------------------------
# Virtual boards (capture and virtual-board tests)

BOARD_SPEED = 40.0  # times real time: a second of IMU data streams in 25 ms


@pytest.fixture()
def flash_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private flash folder, also the default, so a model in ~/.tinyml-edu never leaks in."""
    from tinyml_edu import virtual_board

    folder = tmp_path / "flash"
    monkeypatch.setenv(virtual_board.FLASH_ENV_VAR, str(folder))
    return folder


@pytest.fixture()
def boards(flash_dir: Path):
    """Start boards with ``boards(**kwargs)``; all are stopped afterwards and must have left no
    thread, no open pty and no error behind."""
    import threading

    from tinyml_edu.virtual_board import VirtualBoard

    started: list[VirtualBoard] = []

    def make(**kwargs) -> VirtualBoard:
        kwargs.setdefault("speed", BOARD_SPEED)
        kwargs.setdefault("flash_dir", flash_dir)
        board = VirtualBoard(**kwargs)
        started.append(board)
        board.start()
        return board

    yield make
    for board in started:
        board.stop()
    for board in started:
        assert board._thread is None or not board._thread.is_alive()
        assert board._master is None and board._slave is None
        assert board.error is None, repr(board.error)
    assert not [t for t in threading.enumerate() if t.name.startswith("virtual-board")]


# ---------------------------------------------------------------------------------------------
# Camera runs (deploy, firmware and virtual-board tests)


def _write_run(folder: Path, project: str, task: str, model: bytes, labels: list[str],
               params: dict) -> Path:
    """A run folder as `tinyml-edu run` leaves it for deploy and predict."""
    folder.mkdir(parents=True)
    (folder / "model_int8.tflite").write_bytes(model)
    (folder / "report.json").write_text(json.dumps({
        "project": project, "task": task, "classes": labels, "feature_params": params}))
    return folder


@pytest.fixture(scope="session")
def camera_runs(tmp_path_factory) -> dict[str, Path]:
    """Run folders of the two camera projects, made in seconds:

    ``images``: the project's own network (the shipped backbone, an untrained head), quantized
    on a few training frames: its answers vary from frame to frame.
    ``cars``: a hand-made FOMO network with the cars project's settings, whose car probability
    per 8 x 8 cell rises with the cell's brightness (average pool, 1 x 1 convolution, softmax),
    so it counts bright blobs and the count varies from frame to frame. (The project's own
    network, untrained or trained for a few epochs on a few frames, gives the same heatmap for
    every frame, or one TFLM cannot run.)"""
    import keras

    from tinyml_edu import datasets, quantize, train
    from tinyml_edu.projects import cars, images

    folder = tmp_path_factory.mktemp("camera_runs")
    ds = datasets.load("images")
    small = datasets.Dataset(ds.info, {})
    for split in datasets.SPLITS:
        small.arrays.update({k: a[:8] for k, a in ds.arrays.items() if k.endswith(f"_{split}")})
    prep = images.prepare(small)
    train.set_seed(0)
    blob = quantize.convert(images.build(prep), "int8", representative=prep.x["train"])
    runs = {"images": _write_run(folder / "images", "images", "classification", blob,
                                 prep.labels, prep.feature_params)}

    frames = cars.frames_to_inputs(datasets.load("cars").split("train")[0][::8])
    inputs = keras.Input((cars.FRAME, cars.FRAME, 1))
    pooled = keras.layers.AveragePooling2D(cars.FRAME // cars.CELLS)(inputs)
    outputs = keras.layers.Conv2D(len(cars.CLASSES), 1, activation="softmax")(pooled)
    model = keras.Model(inputs, outputs, name="bright_blobs")
    gain, level = 20.0, 0.5  # P(car) = sigmoid(2 * gain * (cell brightness - level))
    model.layers[-1].set_weights([np.array([-gain, gain], np.float32).reshape(1, 1, 1, 2),
                                  np.array([gain * level, -gain * level], np.float32)])
    blob = quantize.convert(model, "int8", representative=frames)
    params = {"input": "camera", "frame": cars.FRAME, "channels": 1, "scale": 1 / 255,
              "cells": cars.CELLS, "peak_threshold": cars.PEAK_THRESHOLD}
    runs["cars"] = _write_run(folder / "cars", "cars", "counting", blob, list(cars.CLASSES),
                              params)
    return runs
