"""Deploy: a complete sketch folder from a run, flash measured for the board, arduino-cli used
when present and explained when absent."""

import json
import os
import re
import shutil
import stat
from pathlib import Path

import pytest

from tinyml_edu import deploy, export, profile
from tinyml_edu.boards import get_board


@pytest.fixture()
def sine_run(tmp_path, sine_models):
    run = tmp_path / "runs" / "sine"
    run.mkdir(parents=True)
    (run / "model_int8.tflite").write_bytes(sine_models["int8"])
    (run / "report.json").write_text(json.dumps({
        "project": "sine", "task": "regression", "classes": [], "feature_params": {}}))
    return run


def test_sketch_folder_is_complete_and_filled(sine_run, tmp_path, sine_models):
    result = deploy.build_sketch(sine_run / "model_int8.tflite", "nano33ble_sense_rev2",
                                 tmp_path / "sketches")
    sketch = result.sketch_dir
    assert sketch.name == "sine_nano33ble_sense_rev2"
    ino = (sketch / f"{sketch.name}.ino").read_text()
    assert "{{" not in ino
    assert "MicroMutableOpResolver<1>" in ino and "op_resolver.AddFullyConnected();" in ino
    assert '"sine"' in ino and "TINYML_EDU_SENSOR_none" in ino
    assert result.ops == ["FULLY_CONNECTED"]
    assert export.read_c_array((sketch / "model_data.cpp").read_text()) == sine_models["int8"]
    arena = profile.tflm_arena_bytes(sine_models["int8"]) if profile.tflm_available() else None
    settings = (sketch / "model_settings.h").read_text()
    if arena:
        assert f"kTensorArenaSize = {(int(arena * 1.1) + 15) // 16 * 16};" in settings
    # The protocol library once, in src/, included with quotes (tests/test_firmware.py
    # compiles deployed sketches against the real core).
    assert sorted(p.name for p in (sketch / "src").iterdir()) == sorted(
        p.name for p in (deploy.firmware_dir() / "libraries" / "tinyml_edu_protocol" / "src")
        .iterdir())
    assert not list(sketch.glob("tinyml_edu_*")) and not (sketch / "model_data.cc").exists()
    assert '#include "src/tinyml_edu_protocol.h"' in ino and "<tinyml_edu_" not in ino
    meta = json.loads((sketch / "deploy.json").read_text())
    assert meta["fqbn"] == "arduino:mbed_nano:nano33ble" and meta["ops"] == ["FULLY_CONNECTED"]
    assert meta["sketch_sensor"] == "none"


def test_the_sketch_folder_says_what_to_install_and_how_to_upload(sine_run, tmp_path):
    sketch = deploy.build_sketch(sine_run / "model_int8.tflite", "nano33ble_sense_rev2",
                                 tmp_path / "s").sketch_dir
    readme = (sketch / "README.md").read_text()
    name = sketch.name
    for step in ("arduino-cli core install arduino:mbed_nano@4.6.0",
                 "arduino-cli lib install Chirale_TensorFlowLite@2.0.0",
                 f"arduino-cli compile --fqbn arduino:mbed_nano:nano33ble {name}",
                 f"arduino-cli upload -p PORT --fqbn arduino:mbed_nano:nano33ble {name}",
                 "Boards Manager", "Manage Libraries", f"{name}/{name}.ino"):
        assert step in readme, step
    assert "BMI270" not in readme  # the sine demo needs no IMU library
    imu = deploy.sketch_readme("g", get_board("nano33ble_sense_rev1"), "imu")
    assert "arduino-cli lib install Arduino_BMI270_BMM150@1.2.3" in imu
    xiao = deploy.sketch_readme("k", get_board("xiao_esp32s3_sense"), "audio")
    assert "arduino-cli lib install TensorFlowLite_ESP32" in xiao
    assert "core install esp32:esp32" in xiao and "additional_urls" in xiao


@pytest.mark.parametrize(("sensor", "params", "inputs", "expected"), [
    ("imu", {"channels": ["ax"]}, 300, "imu"),
    ("audio", {"kind": "logmel"}, 1960, "audio"),
    ("none", {}, 1, "none"),
    ("audio", {"feature_mean": [0.0]}, 7, "other"),  # wingbeats: hand-made features
    ("none", {"feature_mean": [0.0]}, 12, "other"),  # ecg, water quality
])
def test_the_sketch_runs_only_features_it_can_compute(sensor, params, inputs, expected):
    assert deploy.sketch_sensor_of(sensor, params, inputs) == expected


def test_resolver_registers_exactly_the_ops_of_a_conv_model(tmp_path, conv_int8):
    model = tmp_path / "kws.tflite"
    model.write_bytes(conv_int8)
    result = deploy.build_sketch(model, "xiao_esp32s3_sense", tmp_path / "out", labels=list("abcd"))
    ino = (result.sketch_dir / f"{result.sketch_dir.name}.ino").read_text()
    adds = re.findall(r"op_resolver\.(Add\w+)\(\);", ino)
    assert sorted(adds) == sorted(deploy.resolver_method(op) for op in result.ops)
    assert {"AddConv2D", "AddDepthwiseConv2D", "AddFullyConnected"} <= set(adds)
    assert f"MicroMutableOpResolver<{len(result.ops)}>" in ino
    assert result.model_flash_bytes is None and "not an Arm CPU" in result.flash_note
    assert json.loads((result.sketch_dir / "deploy.json").read_text())["sketch_sensor"] == "other"
    assert result.messages and "does not compute" in result.messages[0]


@pytest.mark.skipif(not shutil.which("arm-none-eabi-g++"), reason="no arm-none-eabi-gcc")
def test_flash_of_the_model_is_measured_for_the_cortex_m4(sine_run, tmp_path, sine_models):
    result = deploy.build_sketch(sine_run / "model_int8.tflite", "nano33ble_sense_rev1",
                                 tmp_path / "s")
    assert len(sine_models["int8"]) <= result.model_flash_bytes < len(sine_models["int8"]) + 64
    assert "-mcpu=cortex-m4" in result.flash_note
    assert "-mfloat-abi=softfp" in result.flash_note  # the core's ABI, not "hard"


def test_the_flash_check_takes_the_cpu_flags_from_the_kit(tmp_path):
    fake_kit = tmp_path / "kit"
    (fake_kit / deploy.KIT_CXXFLAGS).parent.mkdir(parents=True)
    (fake_kit / deploy.KIT_CXXFLAGS).write_text("-c\n-Os\n-mcpu=cortex-m4\n-mfloat-abi=soft\n"
                                                "-mthumb\n")
    assert deploy.kit_cpu_flags(fake_kit) == ["-mcpu=cortex-m4", "-mfloat-abi=soft", "-mthumb"]
    assert deploy.kit_cpu_flags(None) == deploy.ARM_FLAGS["Arm Cortex-M4F"]
    real_kit = deploy.find_kit(Path(__file__).resolve().parents[2] / "shared" / "third_party"
                               / "arduino-nano33ble")
    if real_kit:  # the documented constant is what the core really uses
        assert sorted(deploy.kit_cpu_flags(real_kit)) == sorted(
            deploy.ARM_FLAGS["Arm Cortex-M4F"])


def test_a_foreign_folder_is_never_overwritten(sine_run, tmp_path):
    foreign = tmp_path / "s" / "sine_pico"
    foreign.mkdir(parents=True)
    (foreign / "my_sketch.ino").write_text("// mine")
    with pytest.raises(deploy.DeployError, match="choose another --out"):
        deploy.build_sketch(sine_run / "model_int8.tflite", "pico", tmp_path / "s")
    assert (foreign / "my_sketch.ino").read_text() == "// mine"


def test_not_a_model_gives_a_clear_error(tmp_path):
    bad = tmp_path / "model.tflite"
    bad.write_bytes(b"not a flatbuffer at all")
    with pytest.raises(deploy.DeployError, match="not a valid .tflite"):
        deploy.build_sketch(bad, "pico", tmp_path / "out")
    with pytest.raises(deploy.DeployError, match="not found"):
        deploy.build_sketch(tmp_path / "nope.tflite", "pico", tmp_path / "out")


def test_upload_without_arduino_cli_says_what_to_install_and_run(sine_run, tmp_path,
                                                                  monkeypatch):
    sketch = deploy.build_sketch(sine_run / "model_int8.tflite", "nano33ble_sense_rev2",
                                 tmp_path / "s").sketch_dir
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(deploy.DeployError) as err:
        deploy.upload(sketch, "nano33ble_sense_rev2", "/dev/ttyACM0")
    text = str(err.value)
    assert "arduino-cli core install arduino:mbed_nano" in text
    assert f"arduino-cli upload -p /dev/ttyACM0 --fqbn arduino:mbed_nano:nano33ble {sketch}" in text


def _fake_arduino_cli(folder, exit_code_for_compile=0):
    """An executable named arduino-cli that records its arguments (the real one cannot be
    installed here); our code must call it exactly as a user would."""
    folder.mkdir()
    script = folder / "arduino-cli"
    script.write_text("#!/bin/sh\n"
                      f'echo "$@" >> "{folder}/calls.txt"\n'
                      f'if [ "$1" = compile ]; then exit {exit_code_for_compile}; fi\n'
                      "exit 0\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return folder


def test_upload_compiles_then_uploads_with_arduino_cli(sine_run, tmp_path, monkeypatch):
    sketch = deploy.build_sketch(sine_run / "model_int8.tflite", "nano33ble_sense_rev2",
                                 tmp_path / "s").sketch_dir
    fake = _fake_arduino_cli(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    deploy.upload(sketch, "nano33ble_sense_rev2", "/dev/ttyACM0")
    calls = (fake / "calls.txt").read_text().splitlines()
    assert calls == [f"compile --fqbn arduino:mbed_nano:nano33ble {sketch}",
                     f"upload -p /dev/ttyACM0 --fqbn arduino:mbed_nano:nano33ble {sketch}"]


def test_a_failed_compile_is_reported_with_a_hint(sine_run, tmp_path, monkeypatch):
    sketch = deploy.build_sketch(sine_run / "model_int8.tflite", "pico", tmp_path / "s").sketch_dir
    fake = _fake_arduino_cli(tmp_path / "bin", exit_code_for_compile=1)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(deploy.DeployError, match="core install rp2040:rp2040"):
        deploy.upload(sketch, "pico", "/dev/ttyACM0")
    assert len((fake / "calls.txt").read_text().splitlines()) == 1  # no upload after a failure


def test_the_pinned_versions_are_the_kits_and_the_readme_says_them():
    """deploy's README lines, firmware/README.md and the compile kit name the same versions."""
    pins = [deploy.NANO_CORE, deploy.TFLM_LIBRARY["arduino:mbed_nano"], deploy.IMU_LIBRARY]
    readme = (deploy.firmware_dir() / "README.md").read_text()
    assert f"arduino-cli core install {pins[0]}" in readme
    for library in pins[1:]:
        assert f"arduino-cli lib install {library}" in readme
    kit = deploy.find_kit(os.environ.get(deploy.KIT_ENV_VAR)
                          or Path(__file__).resolve().parents[2] / "shared" / "third_party"
                          / "arduino-nano33ble")
    if kit is None:
        pytest.skip("the compile kit is not here to compare versions with")
    platform = (kit / "core" / "platform.txt").read_text()
    assert f"version={pins[0].split('@')[1]}" in platform.splitlines()
    for library in pins[1:]:
        name, version = library.split("@")
        properties = (kit / "libraries" / name / "library.properties").read_text()
        assert f"version={version}" in properties.splitlines(), library


# ---------------------------------------------------------------------------------------------
# Camera models: the sketch's camera branch


@pytest.mark.parametrize(("params", "inputs", "expected"), [
    ({"input": "camera", "frame": 96, "channels": 1, "scale": 1 / 255}, 9216, "camera"),
    ({"input": "camera", "frame": 96, "channels": 1, "scale": 1 / 127.5}, 9216, "other"),
    ({"input": "camera", "frame": 96, "channels": 3, "scale": 1 / 255}, 27648, "other"),
    ({"input": "camera", "frame": 96, "channels": 1, "scale": 1 / 255}, 100, "other"),
])
def test_the_sketch_feeds_camera_models_it_can(params, inputs, expected):
    assert deploy.sketch_sensor_of("camera", params, inputs) == expected


def test_a_camera_run_gets_the_camera_branch(camera_runs, tmp_path, capsys):
    """`tinyml-edu deploy RUN_DIR`: the run folder is enough; the sketch reads the kit's camera
    into the one frame buffer the fit table counts, and says what to install for it."""
    from tinyml_edu import camera_input, cli
    from tinyml_edu.projects import images

    assert cli.main(["deploy", str(camera_runs["images"]), "--board", "nano33ble_sense_rev2",
                     "--out", str(tmp_path / "s")]) == 0
    assert "camera frame buffer: 19,200 bytes" in capsys.readouterr().out
    sketch = tmp_path / "s" / "images_nano33ble_sense_rev2"
    ino = (sketch / f"{sketch.name}.ino").read_text()
    assert "#define TINYML_EDU_SENSOR_camera 1" in ino and "{{" not in ino
    settings = (sketch / "model_settings.h").read_text()
    for line in ("#define CAMERA_WIDTH 160", "#define CAMERA_HEIGHT 120",
                 "#define CAMERA_GRAYSCALE 1", "#define CAMERA_FRAME_BUFFER_BYTES 19200",
                 "#define CAMERA_COUNT_CELLS 0", "#define FEATURE_FRAME 96"):
        assert line in settings, line
    assert (sketch / "src" / "tinyml_edu_image.c").is_file()
    assert (sketch / "src" / "tinyml_edu_camera_input.h").is_file()
    meta = json.loads((sketch / "deploy.json").read_text())
    assert meta["sketch_sensor"] == "camera" and meta["sensor"] == "camera"
    assert meta["camera"]["frame_buffer_bytes"] == images.PROJECT.frame_buffer_bytes
    assert meta["camera"] == camera_input.sketch_settings(meta["feature_params"])
    readme = (sketch / "README.md").read_text()
    assert f"arduino-cli lib install --git-url {deploy.CAMERA_LIBRARY_GIT}" in readme
    assert "Arduino_OV767X" in readme and "Add .ZIP Library" in readme
    # The pin is the commit of the kit's library, which the firmware README names too.
    assert deploy.CAMERA_LIBRARY_GIT in (deploy.firmware_dir() / "README.md").read_text()


def test_a_counting_run_gets_its_grid_and_threshold(camera_runs, tmp_path):
    result = deploy.build_sketch(camera_runs["cars"], "nano33ble_sense_rev1", tmp_path / "s")
    settings = (result.sketch_dir / "model_settings.h").read_text()
    assert "#define CAMERA_COUNT_CELLS 12\n" in settings
    assert "#define CAMERA_PEAK_THRESHOLD 0.5\n" in settings  # a double, not 0.5f
    assert result.frame_buffer_bytes == 19200 and not result.messages


def test_a_camera_model_for_another_board_is_loaded_but_not_fed(camera_runs, tmp_path):
    result = deploy.build_sketch(camera_runs["images"] / "model_int8.tflite",
                                 "xiao_esp32s3_sense", tmp_path / "s")
    meta = json.loads((result.sketch_dir / "deploy.json").read_text())
    assert meta["sketch_sensor"] == "other" and meta["sensor"] == "camera"
    assert any("Nano 33 BLE Sense" in m for m in result.messages)
    assert "CAMERA_WIDTH" not in (result.sketch_dir / "model_settings.h").read_text()


def test_a_model_tflm_cannot_run_is_refused_with_the_reason(sine_run, tmp_path, monkeypatch):
    """As an untrained cars network: a clear error, not a traceback."""
    def refuse(*args, **kwargs):
        raise RuntimeError("TFLM cannot run this model: the softmax's input scale is 1e-08")

    monkeypatch.setattr(profile, "profile", refuse)
    with pytest.raises(deploy.DeployError, match="softmax's input scale"):
        deploy.build_sketch(sine_run, "nano33ble_sense_rev2", tmp_path / "s")
