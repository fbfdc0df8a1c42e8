"""The emulated Cortex-M4 (QEMU mps2-an386): the model built for the Nano's core computes what
the host TFLM computes, bit for bit, and its instruction counter counts exactly.

Needs qemu-system-arm, gcc-arm-none-eabi, libnewlib-arm-none-eabi, a host gcc and the
arduino-nano33ble kit; without them the tests skip, unless TINYML_EDU_REQUIRE_KIT=1 (CI)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from tinyml_edu import emulator

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def board_ready() -> None:
    ok, message = emulator.available()
    if not ok:
        if os.environ.get("TINYML_EDU_REQUIRE_KIT") == "1":
            pytest.fail(f"TINYML_EDU_REQUIRE_KIT=1 but the emulated Cortex-M4 is missing: "
                        f"{message}")
        pytest.skip(f"emulated Cortex-M4 not available: {message}")


def _host(model: bytes, inputs: np.ndarray) -> np.ndarray:
    from tinyml_edu.emulator.verify import host_outputs

    return host_outputs(model, inputs)


def test_available_says_how_to_install_when_a_tool_is_missing(monkeypatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    ok, message = emulator.available()
    assert not ok
    assert "qemu-system-arm" in message and "apt install" in message


def test_missing_kit_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(emulator.BuildError, match="--kit"):
        emulator.find_kit(tmp_path)


def test_sine_run_is_bit_exact_with_counted_instructions(board_ready, tmp_path: Path) -> None:
    from tinyml_edu import pipeline
    from tinyml_edu.cli import main

    run_dir = tmp_path / "sine"
    pipeline.run("sine", run_dir, progress=False, log=lambda _: None)
    result = emulator.verify_run(run_dir, inputs=100)
    assert result["bit_exact"], result
    assert result["inputs"] == 100
    assert result["per_channel_fully_connected_ops"] == []  # sine quantizes dense per tensor
    # three dense layers of 288 MACs: a few thousand instructions, not zero, not millions
    assert 1000 < result["instructions_per_inference"] < 50_000
    assert result["latency_ms_at_64mhz"] == pytest.approx(
        result["instructions_per_inference"] * result["cycles_per_instruction"] / 64e6 * 1e3,
        rel=1e-3)
    assert result["features"]["source"] == "host"  # no audio: the host computes the inputs
    report = json.loads((run_dir / "report.json").read_text())
    assert report["cortex_m4"]["bit_exact"] is True
    assert report["boards"]["nano33ble_sense_rev2"]["latency_source"] == "cortex-m4-emulated"
    assert "cortex-m4-emulated" in (run_dir / "report.md").read_text()

    # the CLI, from the object cache now: --json has the promised keys; exit 0 when bit-exact
    import contextlib
    import io

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["verify", str(run_dir), "--on", "cortex-m4", "--json", "--inputs", "100",
                     "--no-report"])
    assert code == 0
    figures = json.loads(printed.getvalue())
    for key in ("bit_exact", "inputs", "instructions_per_inference", "latency_ms_at_64mhz",
                "cycles_per_instruction"):
        assert key in figures
    assert figures["objects_compiled"] == 0  # every library object came from the cache


@pytest.fixture(scope="module")
def conv_pool_int8() -> bytes:
    """A small untrained CNN with conv, depthwise conv, average pooling and a per-tensor dense
    layer, quantized to int8."""
    import keras

    from tinyml_edu import quantize, train

    train.set_seed(0)
    inputs = keras.Input((20, 12, 1))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.AveragePooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(5, activation="softmax")(x)
    rng = np.random.default_rng(0)
    return quantize.convert(keras.Model(inputs, outputs), "int8",
                            representative=rng.normal(size=(50, 20, 12, 1)),
                            per_channel_dense=False)


def test_conv_and_pooling_are_bit_exact_and_the_counter_is_exact(
        board_ready, conv_pool_int8: bytes, tmp_path: Path) -> None:
    from tinyml_edu import profile

    ops = {op.name for op in profile.op_list(conv_pool_int8)}
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "SOFTMAX"} <= ops
    board = emulator.CortexM4Board(work_dir=tmp_path)
    board.load(conv_pool_int8)
    rng = np.random.default_rng(1)
    inputs = rng.integers(-128, 128, size=(24, 20 * 12), dtype=np.int8)
    outputs = board.invoke(inputs)
    np.testing.assert_array_equal(outputs, _host(conv_pool_int8, inputs))
    assert len(np.unique(outputs, axis=0)) > 1  # the inputs really drive the outputs
    assert board.stats.calibration_ok  # two loops of known length differ by exactly 4000
    macs = sum(op.macs for op in profile.op_list(conv_pool_int8))
    assert min(board.stats.instructions) > macs / 4  # CMSIS-NN: at best ~2 MACs per SMLAD


def test_the_conftest_ds_cnn_differs_only_where_explained(board_ready, conv_int8: bytes,
                                                          tmp_path: Path) -> None:
    """conftest's DS-CNN quantizes its dense layer per channel: the difference is found and
    attributed to FULLY_CONNECTED's per-channel scales, or the model is bit-exact."""
    from tinyml_edu.emulator.projects import check_model

    rng = np.random.default_rng(2)
    inputs = rng.integers(-128, 128, size=(12, 49 * 40), dtype=np.int8)
    result = check_model(emulator.CortexM4Board(work_dir=tmp_path), conv_int8, inputs)
    if not result["bit_exact"]:
        assert result["explained"], result


def test_a_corrupted_model_array_is_refused(board_ready, sine_models: dict[str, bytes],
                                             tmp_path: Path) -> None:
    from tinyml_edu import export

    export.write_sketch_sources(tmp_path / "export", sine_models["float32"], [], 4096)
    board = emulator.CortexM4Board(work_dir=tmp_path)
    with pytest.raises(emulator.EmulatorError, match="does not hold this model"):
        board.load(sine_models["int8"], export_dir=tmp_path / "export")


@pytest.mark.parametrize("project", ["sine", "gestures", "wingbeats", "ecg", "water_quality",
                                     "kws", "elephant_rumbles"])
def test_every_project_model_is_bit_exact_or_its_difference_is_explained(
        board_ready, project: str, tmp_path: Path) -> None:
    """Each shipped project's network (untrained: same ops and shapes as a run exports) on the
    board against the host. A difference must start at an op whose difference is understood
    (verify.KNOWN_DIFFERENCES); anything else fails."""
    from tinyml_edu.emulator.projects import check_project

    result = check_project(project, tmp_path)
    assert result["calibration_ok"]
    assert result["instructions_per_inference"] > 0
    if not result["bit_exact"]:
        assert result["explained"], result


def test_per_tensor_dense_layers_make_the_board_bit_exact(board_ready, tmp_path: Path) -> None:
    """The explained FULLY_CONNECTED difference is the per-channel scales: the projects ship one
    scale per dense layer, and the same network with per-channel scales differs on the board."""
    from tinyml_edu.emulator.projects import check_project, project_model
    from tinyml_edu.emulator.verify import per_channel_fully_connected

    assert not per_channel_fully_connected(project_model("ecg").model)  # what the projects ship
    assert per_channel_fully_connected(project_model("ecg", per_channel_dense=True).model)
    per_channel = check_project("ecg", tmp_path / "a", per_channel_dense=True)
    assert not per_channel["bit_exact"]
    assert per_channel["first_differing_op"]["known_as"] == "FULLY_CONNECTED per-channel"
    shipped = check_project("ecg", tmp_path / "b")
    assert shipped["bit_exact"], shipped


def _lesson06_untrained() -> bytes:
    """Lesson 06's architecture with its first, untrained weights (no training: seconds)."""
    from tinyml_edu import models, quantize, train

    train.set_seed(1)
    model = models.cnn1d((128, 7), 4, filters=(8, 16), kernel_size=5)
    rng = np.random.default_rng(0)
    return quantize.convert(model, "int8", representative=rng.normal(size=(32, 128, 7)))


def test_the_shipped_lesson06_figure_is_this_architectures(board_ready, tmp_path: Path) -> None:
    """Lesson 06 shows students a count measured once: the same layers with other weights
    and inputs must count the same instructions (within 1 %), or the figure is stale."""
    from tinyml_edu import profile, quantize

    shipped = emulator.measured("lesson06")
    model = _lesson06_untrained()
    assert sum(op.macs for op in profile.op_list(model)) == shipped.macs
    board = emulator.CortexM4Board(work_dir=tmp_path)
    board.load(model)
    scale, zero = quantize.interpreter(model).get_input_details()[0]["quantization"]
    x = np.random.default_rng(2).normal(size=(5, 128, 7)).astype(np.float32)
    board.invoke(quantize.quantize_input(x, scale, zero).reshape(5, -1))
    assert abs(np.median(board.stats.instructions) - shipped.instructions) \
        < 0.01 * shipped.instructions
    assert 1 < shipped.latency_ms / (shipped.macs * 2 / 64e6 * 1000) < 20  # what lesson 06 says


def test_a_missing_measurement_names_the_ones_there_are(tmp_path: Path) -> None:
    with pytest.raises(emulator.EmulatorError, match="no shipped measurement named 'x'; "
                                                     "there are: lesson06"):
        emulator.measured("x")
    broken = tmp_path / "measured.json"
    broken.write_text("{")
    with pytest.raises(emulator.EmulatorError, match="reinstall tinyml-edu"):
        emulator.measured("lesson06", broken)


# ---------------------------------------------------------------------------------------------
# Audio runs: the sketch's front end (tinyml_edu_dsp.c) computes the model inputs on the core

AUDIO_CLIPS = 6  # each clip is a log-mel front end (~3 M instructions) and an inference on QEMU


def _audio_run(folder: Path, model: bytes, params: dict, labels: list[str]) -> Path:
    """A run folder as `tinyml-edu run` leaves it for the kws project: model, report.json
    with the feature parameters, and export/ (the sketch's model_settings.h)."""
    from tinyml_edu import export, profile, quantize

    folder.mkdir(parents=True)
    (folder / "model_int8.tflite").write_bytes(model)
    (folder / "report.json").write_text(json.dumps({
        "project": "kws", "dataset": "kws", "task": "classification", "classes": labels,
        "feature_params": params}))
    scale, zero_point = quantize.interpreter(model).get_input_details()[0]["quantization"]
    arena = int(profile.tflm_arena_bytes(model) * (1 + profile.ARENA_MARGIN))
    export.write_sketch_sources(folder / "export", model, labels, arena, params, float(scale),
                                int(zero_point))
    return folder


@pytest.fixture(scope="module")
def kws_run(board_ready, tmp_path_factory) -> Path:
    """The kws project's network (untrained, quantized on a few clips of each word) with the
    project's feature parameters: log-mel 49 x 40, clip_mean, input_scale 0.25."""
    from tinyml_edu.emulator.projects import project_model
    from tinyml_edu.projects import kws

    built = project_model("kws")
    labels = ["silence", "unknown", "yes", "no", "up", "down", "left", "right", "on", "off",
              "stop", "go"]
    return _audio_run(tmp_path_factory.mktemp("kws") / "run", built.model,
                      kws.feature_params(), labels)


def _assert_features_match_the_host(figures: dict, values_per_clip: int) -> None:
    f = figures["features"]
    assert f["source"] == "sketch-dsp-on-cortex-m4"
    assert f["clips"] == AUDIO_CLIPS and f["input_values"] == AUDIO_CLIPS * values_per_clip
    # float32 on the core against float64 in numpy: at most a rare value one step away
    assert f["max_lsb"] <= 1
    assert f["input_values_differing"] <= 0.001 * f["input_values"]
    assert f["top1_agreement_from_features"] >= (AUDIO_CLIPS - 1) / AUDIO_CLIPS
    assert 100_000 < f["instructions_per_clip"] < 20_000_000
    # the kernel path on the core's own inputs: bit-exact, or a difference already understood
    assert figures["bit_exact"] or figures["explained"], figures


def test_kws_inputs_computed_by_the_sketch_front_end_on_the_core_match_the_host(
        board_ready, kws_run: Path) -> None:
    import contextlib
    import io

    from tinyml_edu.cli import main

    figures = emulator.verify_run(kws_run, inputs=AUDIO_CLIPS)
    _assert_features_match_the_host(figures, 49 * 40)
    assert "front end" in figures["verified"]
    report = json.loads((kws_run / "report.json").read_text())
    assert report["cortex_m4"]["features"]["source"] == "sketch-dsp-on-cortex-m4"
    assert report["cortex_m4"]["features"]["clips"] == AUDIO_CLIPS

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        main(["verify", str(kws_run), "--inputs", "2", "--no-report", "--host-features"])
    assert "features: computed on the host (--host-features was given)" in printed.getvalue()


def test_a_board_log_floor_unlike_trainings_shows_as_differing_inputs(
        board_ready, kws_run: Path, tmp_path: Path) -> None:
    """The comparison can fail: the same run with the board's FEATURE_LOG_FLOOR raised from
    1e-6 to 1e-2 (the host keeps 1e-6) gives inputs that differ on quiet frames."""
    import shutil

    changed = tmp_path / "run"
    shutil.copytree(kws_run, changed)
    settings = changed / "export" / "model_settings.h"
    text = settings.read_text()
    assert "#define FEATURE_LOG_FLOOR 1e-06f" in text
    settings.write_text(text.replace("FEATURE_LOG_FLOOR 1e-06f", "FEATURE_LOG_FLOOR 0.01f"))
    f = emulator.verify_run(changed, inputs=AUDIO_CLIPS, update_report=False)["features"]
    assert f["input_values_differing"] > 0.05 * f["input_values"]
    assert f["max_lsb"] > 1


def test_mfcc_inputs_computed_on_the_core_match_the_host(board_ready, tmp_path: Path) -> None:
    """MFCC: the front end's DCT on the core, on a small dense model over 49 x 13 MFCCs."""
    import keras

    from tinyml_edu import datasets, quantize, train
    from tinyml_edu.projects import kws

    params = {**kws.feature_params(), "kind": "mfcc"}
    params["shape"] = [49, 13]
    clips, _ = datasets.load("kws").split("train")
    x = kws.model_inputs(clips[:40], params)
    train.set_seed(0)
    inputs = keras.Input((49, 13))
    outputs = keras.layers.Dense(12, activation="softmax")(keras.layers.Flatten()(inputs))
    model = quantize.convert(keras.Model(inputs, outputs), "int8", representative=x,
                             per_channel_dense=False)
    run = _audio_run(tmp_path / "run", model, params, [str(i) for i in range(12)])
    figures = emulator.verify_run(run, inputs=AUDIO_CLIPS, update_report=False)
    _assert_features_match_the_host(figures, 49 * 13)


# ---------------------------------------------------------------------------------------------
# IMU runs: the sketch's IMU scaling (tme_imu_input_sample) computes the model inputs on the core

IMU_WINDOWS = 8  # each window: 128 readings scaled (~60 k instructions) and an inference


@pytest.fixture(scope="module")
def gestures_run(board_ready, tmp_path_factory) -> Path:
    """The gestures project's network (untrained, quantized on a few windows of each letter)
    with the project's feature parameters (6 IMU channels at 4 g / 500 dps, plus amag), as
    `tinyml-edu run` leaves the folder: model, report.json and export/."""
    from tinyml_edu import datasets, export, profile, quantize
    from tinyml_edu.emulator.projects import project_model
    from tinyml_edu.projects import gestures

    built = project_model("gestures")
    labels = list(datasets.load("gestures").info.classes)
    folder = tmp_path_factory.mktemp("gestures") / "run"
    folder.mkdir()
    (folder / "model_int8.tflite").write_bytes(built.model)
    params = gestures.feature_params()
    (folder / "report.json").write_text(json.dumps({
        "project": "gestures", "dataset": "gestures", "task": "classification",
        "classes": labels, "feature_params": params}))
    scale, zero_point = quantize.interpreter(built.model).get_input_details()[0]["quantization"]
    arena = int(profile.tflm_arena_bytes(built.model) * (1 + profile.ARENA_MARGIN))
    export.write_sketch_sources(folder / "export", built.model, labels, arena, params,
                                float(scale), int(zero_point))
    return folder


def test_gestures_inputs_scaled_by_the_sketch_on_the_core_match_the_host(
        board_ready, gestures_run: Path) -> None:
    from tinyml_edu.emulator.verify import raw_test_windows
    from tinyml_edu.run_report import RunReport

    figures = emulator.verify_run(gestures_run, inputs=IMU_WINDOWS)
    f = figures["features"]
    assert f["source"] == "sketch-dsp-on-cortex-m4" and f["sensor"] == "imu"
    assert f["clips"] == IMU_WINDOWS and f["input_values"] == IMU_WINDOWS * 128 * 7
    # one division per scaled channel on both sides; only |a| (sqrtf) may land one step away
    assert f["max_lsb"] <= 1
    assert f["input_values_differing"] <= 0.001 * f["input_values"]
    assert f["top1_agreement_from_features"] >= (IMU_WINDOWS - 1) / IMU_WINDOWS
    assert 10_000 < f["instructions_per_clip"] < 1_000_000
    assert figures["bit_exact"] or figures["explained"], figures
    assert "IMU scaling" in figures["verified"]
    report = RunReport.load_finished(gestures_run)[0]
    assert report.extra["cortex_m4"]["features"]["sensor"] == "imu"
    # the windows are real recordings: the inputs span the int8 range, not a constant
    model = (gestures_run / "model_int8.tflite").read_bytes()
    _, host_inputs = raw_test_windows(gestures_run, report, model, IMU_WINDOWS)
    assert len(np.unique(host_inputs)) > 50


def test_a_board_gyro_full_scale_unlike_trainings_shows_as_differing_inputs(
        board_ready, gestures_run: Path, tmp_path: Path) -> None:
    """The comparison can fail: the board's FEATURE_GYRO_RANGE_DPS set to the IMU's 2000 dps
    full scale (training divided by 500) shrinks every gyroscope input four times."""
    import shutil

    changed = tmp_path / "run"
    shutil.copytree(gestures_run, changed)
    settings = changed / "export" / "model_settings.h"
    text = settings.read_text()
    assert "#define FEATURE_GYRO_RANGE_DPS 500.0f" in text
    settings.write_text(text.replace("FEATURE_GYRO_RANGE_DPS 500.0f",
                                     "FEATURE_GYRO_RANGE_DPS 2000.0f"))
    f = emulator.verify_run(changed, inputs=IMU_WINDOWS, update_report=False)["features"]
    assert f["input_values_differing"] > 0.2 * f["input_values"]  # 3 of 7 channels, mostly
    assert f["max_lsb"] > 10
