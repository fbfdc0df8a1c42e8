"""Stage 8, deploy: a complete Arduino sketch folder for a board, and getting it onto the board.

``build_sketch`` fills ``firmware/inference_template`` with the model's facts: an op resolver
that registers exactly the model's ops (each unused kernel costs flash), the arena measured with
TFLM plus a margin, the labels and feature parameters (from the run's ``report.json`` when the
model sits in a run folder). The protocol library's sources go into the sketch's ``src/`` folder,
included with quotes: the folder compiles on its own, and an installed ``tinyml_edu_protocol``
library is neither needed nor compiled twice. A ``README.md`` in the folder says which core and
libraries to install (the versions the sketches are compiled against) and how to upload.

A camera model (``images``, ``cars``) gets the sketch's camera branch: the Tiny ML Kit's OV7675
on a Nano 33 BLE Sense, 160 x 120 grayscale frames (the buffer the fit table counts), each cut
and scaled to the model's frame as ``camera_input`` does on the host, bit for bit (the
``CAMERA_*`` settings of ``model_settings.h``).

Then, depending on what is there: ``arm-none-eabi-gcc`` measures the flash the model data takes
on the board's CPU; ``arduino-cli`` compiles and uploads; the virtual board takes the model
directly. Whatever is missing is explained, never fatal.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinyml_edu import camera_input, export, profile
from tinyml_edu._fs import staged_dir
from tinyml_edu.boards import Board, get_board
from tinyml_edu.errors import TinyMLEduError
from tinyml_edu.features import sensor_of
from tinyml_edu.projects import PROJECTS
from tinyml_edu.run_report import INT8_MODEL_FILE, RunReport

PLACEHOLDERS = ("{{PROJECT}}", "{{BOARD_ID}}", "{{SENSOR}}", "{{OP_COUNT}}",
                "{{OP_RESOLVER_ADDS}}")
TEMPLATE_NAME = "inference_template"
PROTOCOL_LIBRARY = "tinyml_edu_protocol"

# The CPU flags of each board family for arm-none-eabi-gcc (None: not an Arm CPU). The Nano's
# core (arduino:mbed_nano 4.6.0, variants/ARDUINO_NANO33BLE/cxxflags.txt) builds with the
# softfp float ABI: objects built "hard" could not even be linked with it.
ARM_FLAGS = {
    "Arm Cortex-M4F": ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=softfp", "-mfpu=fpv4-sp-d16"],
    "dual-core Arm Cortex-M0+": ["-mcpu=cortex-m0plus", "-mthumb"],
}
CORE_CXX_FLAGS = ["-Os", "-std=gnu++14", "-fno-rtti", "-fno-exceptions"]

# The compile-only kit of the Nano's real core and libraries (see firmware/README.md): where
# tinyml-edu finds it, and the file of C++ flags its variant builds with.
KIT_ENV_VAR = "TINYML_EDU_ARDUINO_KIT"
KIT_CXXFLAGS = Path("core/variants/ARDUINO_NANO33BLE/cxxflags.txt")

# What the sketches are built against (the kit's versions; arduino-cli `name@version`).
NANO_CORE = "arduino:mbed_nano@4.6.0"
TFLM_LIBRARY = {"arduino:mbed_nano": "Chirale_TensorFlowLite@2.0.0",
                "esp32:esp32": "TensorFlowLite_ESP32", "rp2040:rp2040": "Chirale_TensorFlowLite"}
IMU_LIBRARY = "Arduino_BMI270_BMM150@1.2.3"
# The camera of the Tiny ML Kit: Arduino_OV767X from its repository (the Library Manager's 0.0.2
# cannot be told the camera is an OV7675), the commit the kit compiles against.
CAMERA_LIBRARY = "Arduino_OV767X"
CAMERA_LIBRARY_GIT = ("https://github.com/arduino-libraries/Arduino_OV767X.git"
                      "#e5dd28f208a30f1684c36ee5ba28b2a9fea281b8")
# The Arduino IDE's names: Boards Manager entry and Tools > Board item, per core.
IDE_NAMES = {"arduino:mbed_nano": ("Arduino Mbed OS Nano Boards", "Arduino Nano 33 BLE"),
             "esp32:esp32": ("esp32 by Espressif Systems, 3.x", "XIAO_ESP32S3"),
             "rp2040:rp2040": ("Raspberry Pi Pico/RP2040", "Raspberry Pi Pico")}

ARDUINO_CLI_HELP = (
    "arduino-cli is not on PATH, so nothing was compiled or uploaded. Install it from "
    "https://arduino.github.io/arduino-cli/ (one executable; on Windows put it next to this "
    "course), then run:\n"
    "  arduino-cli core install {core}\n"
    "  arduino-cli compile --fqbn {fqbn} {sketch}\n"
    "  arduino-cli upload -p {port} --fqbn {fqbn} {sketch}\n"
    "Or open {ino} in the Arduino IDE, choose the board and press Upload.")


class DeployError(TinyMLEduError):
    """Something the user must fix before a sketch can be built or uploaded."""


@dataclass
class DeployResult:
    sketch_dir: Path
    ops: list[str]
    arena_bytes: int  # what the sketch reserves (measured arena + margin)
    arena_source: str
    model_flash_bytes: int | None = None  # model data compiled for the board's CPU
    flash_note: str = ""
    uploaded: bool = False
    messages: list[str] = field(default_factory=list)
    frame_buffer_bytes: int = 0  # a camera sketch's camera frame (counted in the fit table)


def firmware_dir() -> Path:
    """``firmware/`` of a source checkout, or the copy packed inside an installed wheel."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "_firmware", package.parent / "firmware"):
        if (candidate / TEMPLATE_NAME).is_dir():
            return candidate
    raise DeployError("the firmware folder (inference_template) is missing from this install; "
                      "reinstall tinyml-edu or run from a full copy of the course")


def resolver_method(op_name: str) -> str:
    """TFLite op name -> ``MicroMutableOpResolver`` method: FULLY_CONNECTED -> AddFullyConnected,
    DEPTHWISE_CONV_2D -> AddDepthwiseConv2D."""
    if not re.fullmatch(r"[A-Z0-9_]+", op_name):
        raise DeployError(f"op {op_name!r} is not a TFLite builtin op; TFLM cannot run it")
    return "Add" + "".join(part if part[:1].isdigit() else part.capitalize()
                           for part in op_name.split("_"))


def build_sketch(model_path: Path | str, board_id: str, out_dir: Path | str,
                 labels: list[str] | None = None, project: str | None = None,
                 kit: Path | str | None = None,
                 listen_params: Any = None) -> DeployResult:
    """Write a complete sketch folder ``out_dir/<name>/<name>.ino`` for ``board_id``.
    ``model_path``: a .tflite file, or a run folder (its int8 model). ``kit``: the compile-only
    Arduino kit, whose flags the flash measurement then uses.
    ``listen_params``: a ``listen.ListenParams`` for a keyword model, instead of the defaults
    (how often the board runs the model and how it smooths the scores)."""
    model_path, out_dir = Path(model_path), Path(out_dir)
    if model_path.is_dir():  # a run folder: the model that predict and the boards run
        model_path = model_path / INT8_MODEL_FILE
    if not model_path.is_file():
        raise DeployError(f"{model_path} not found; give the .tflite file of a run, e.g. "
                          "runs/sine/model_int8.tflite")
    model = model_path.read_bytes()
    board = get_board(board_id)
    report = RunReport.beside(model_path)
    labels = labels if labels is not None else report.labels
    project = project or report.project or model_path.stem
    feature_params = report.params
    known = PROJECTS.get(project)
    sensor = known.sensor if known and known.sensor != "none" else sensor_of(feature_params)
    stream = _stream_window(known, feature_params, sensor) if known else {}

    try:
        ops = sorted({op.name for op in profile.op_list(model)})
    except ValueError as err:
        raise DeployError(f"{model_path} is not a valid .tflite model: {err}") from err
    sketch_sensor = sketch_sensor_of(sensor, feature_params, _input_count(model))
    notes = []
    if sketch_sensor == "camera" and board.arduino_core != "arduino:mbed_nano":
        sketch_sensor = "other"
        notes.append(f"the camera branch of the sketch is for the Nano 33 BLE Sense with the "
                     f"Tiny ML Kit's camera, not {board.name} yet")
    elif sensor == "camera" and sketch_sensor != "camera":
        notes.append("the sketch cannot compute this camera model's input: "
                     f"{camera_input.sketch_problem(feature_params)}")
    camera = camera_input.sketch_settings(feature_params) if sketch_sensor == "camera" else None
    listening = (export.listen_settings(labels, feature_params, report.task or "classification")
                 if sketch_sensor == "audio" else None)
    if listen_params is not None:
        if listening is None:
            raise DeployError("listen settings are for audio classification models with "
                              "keyword classes; leave them out for this model")
        listening = listen_params.to_dict()
    if listening and stream.get("rate"):  # the sketch runs the model every LISTEN_HOP_MS
        stream["stride"] = int(stream["rate"]) * int(listening["hop_ms"]) // 1000
    try:
        prof = profile.profile(model, boards={board.id: board}, search_smallest=False)
    except RuntimeError as err:  # e.g. TFLM cannot run it (an untrained network's softmax)
        raise DeployError(f"{model_path}: {err}") from err
    arena = int(prof.arena_bytes * (1 + profile.ARENA_MARGIN))

    name = re.sub(r"\W", "_", f"{project}_{board.id}")
    sketch = out_dir / name
    if sketch.exists() and not (sketch / "deploy.json").is_file():
        raise DeployError(f"{sketch} exists and was not made by tinyml-edu deploy; choose "
                          "another --out so nothing there is overwritten")
    template = (firmware_dir() / TEMPLATE_NAME / f"{TEMPLATE_NAME}.ino").read_text()
    adds = "\n".join(f"  op_resolver.{resolver_method(op)}();" for op in ops)
    filled = (template.replace("{{PROJECT}}", project).replace("{{BOARD_ID}}", board.id)
              .replace("{{SENSOR}}", sketch_sensor).replace("{{OP_COUNT}}", str(len(ops)))
              .replace("{{OP_RESOLVER_ADDS}}", adds))
    left = [p for p in PLACEHOLDERS if p in filled]
    if left:
        raise DeployError(f"template placeholders left unfilled: {left}")

    # Build in a temporary folder and swap it in, so a failure leaves the old sketch intact.
    with staged_dir(sketch) as staging:
        (staging / f"{name}.ino").write_text(filled, encoding="utf-8")
        interp_in = _input_quantization(model)
        export.write_sketch_sources(staging, model, labels, arena, feature_params, *interp_in,
                                    listen=listening, camera=camera)
        library_src = firmware_dir() / "libraries" / PROTOCOL_LIBRARY / "src"
        shutil.copytree(library_src, staging / "src")
        (staging / "README.md").write_text(sketch_readme(name, board, sketch_sensor),
                                           encoding="utf-8")
        (staging / "deploy.json").write_text(json.dumps({
            "project": project, "board": board.id, "fqbn": board.fqbn, "sensor": sensor,
            "sketch_sensor": sketch_sensor,
            "labels": labels, "ops": ops, "arena_bytes": arena,
            "arena_source": prof.arena_source, "model_bytes": len(model),
            "feature_params": feature_params, "model": str(model_path), **stream,
            **({"listen": listening} if listening else {}),
            **({"camera": camera} if camera else {}),
        }, indent=2) + "\n", encoding="utf-8")

    result = DeployResult(sketch, ops, arena, prof.arena_source, messages=notes)
    if camera:
        result.frame_buffer_bytes = int(camera["frame_buffer_bytes"])
    if sketch_sensor == "other":
        result.messages.append(
            f"the sketch does not compute {project}'s features on the board yet: it loads the "
            "model and reports that; the virtual board runs it (--port virtual)")
    result.model_flash_bytes, result.flash_note = measure_model_flash(sketch, board, kit)
    return result


def sketch_readme(name: str, board: Board, sensor: str) -> str:
    """The README.md of a deployed sketch folder: what to install, and how to upload."""
    core = NANO_CORE if board.arduino_core == "arduino:mbed_nano" else board.arduino_core
    libraries = [TFLM_LIBRARY.get(board.arduino_core, TFLM_LIBRARY["arduino:mbed_nano"])]
    if sensor == "imu":
        libraries.append(IMU_LIBRARY)
    ide_libraries = ", ".join(f"`{lib.split('@')[0]}`" + (f" {lib.split('@')[1]}" if "@" in lib
                                                           else "") for lib in libraries)
    imu_note = (" (used on Rev2; a Rev1's IMU is read directly, so `Arduino_LSM9DS1` is not "
                "needed)" if sensor == "imu" else "")
    lib_lines = "\n".join(f"arduino-cli lib install {lib}" for lib in libraries)
    if sensor == "camera":
        url, commit = CAMERA_LIBRARY_GIT.split("#")
        ide_libraries += (f", and `{CAMERA_LIBRARY}` from its repository ({url}, commit "
                          f"{commit[:7]}; IDE: download it as a ZIP, then Sketch > Include "
                          "Library > Add .ZIP Library): the Library Manager's 0.0.2 cannot be "
                          "told the kit's camera is an OV7675")
        lib_lines += ("\narduino-cli config set library.enable_unsafe_install true"
                      f"\narduino-cli lib install --git-url {CAMERA_LIBRARY_GIT}")
    ide_core, ide_board = IDE_NAMES.get(board.arduino_core, (board.arduino_core, board.name))
    if board.arduino_core == "arduino:mbed_nano":
        ide_core += " " + NANO_CORE.split("@")[1]
    if board.arduino_core == "arduino:mbed_nano":
        versions = ("These are the versions tinyml-edu's tests compile the sketches against; "
                    "newer ones usually work too.\n")
    else:
        versions = ("This board's build has not been compiled in tinyml-edu's tests (only the "
                    "Nano 33 BLE's is).\n")
    core_shown = f"`{core}`"
    if board.arduino_core == "esp32:esp32":
        core_shown += " (version 3.x)"
        versions += ("\nThe ESP32 core needs Espressif's board index first: `arduino-cli config "
                     "add board_manager.additional_urls https://espressif.github.io/arduino-esp32/"
                     "package_esp32_index.json` (IDE: File > Preferences > Additional boards "
                     "manager URLs).\n")
    return f"""# {name}

Made by `tinyml-edu deploy` for **{board.name}** (`{board.fqbn}`); sensor: {sensor}.
The folder is complete: `{name}.ino`, the model (`model_data.cpp`, `model_data.h`), its
settings (`model_settings.h`) and the tinyml-edu protocol library in `src/`, which the sketch
includes with quotes: the `tinyml_edu_protocol` library need not be installed (an installed
copy is not used).

## What to install (once per computer)

- board core: {core_shown}
- libraries: {ide_libraries}{imu_note}

{versions}
## Arduino IDE (2.x or 1.8)

1. Tools > Board > Boards Manager: install "{ide_core}".
2. Tools > Manage Libraries: install each library above, at that version.
3. File > Open: `{name}/{name}.ino` (keep every file of the folder together).
4. Tools > Board: "{ide_board}"; Tools > Port: the board's port.
5. Upload (the arrow). Then Tools > Serial Monitor at 115200 baud, or
   `tinyml-edu monitor --port PORT`.

## arduino-cli

In the folder that holds `{name}/`:

```sh
arduino-cli core update-index
arduino-cli core install {core}
{lib_lines}
arduino-cli compile --fqbn {board.fqbn} {name}
arduino-cli upload -p PORT --fqbn {board.fqbn} {name}
```

PORT is e.g. `/dev/ttyACM0` (Linux), `/dev/cu.usbmodem...` (macOS) or `COM3` (Windows);
`arduino-cli board list` shows it. A Nano that does not show up: press reset twice quickly.
Close the Serial Monitor (and `tinyml-edu monitor`) before uploading.
"""


def find_kit(kit: Path | str | None = None) -> Path | None:
    """The compile-only Arduino kit: ``kit`` if given, else ``$TINYML_EDU_ARDUINO_KIT``; None
    when neither names a folder with the kit's ``compile.sh``."""
    candidate = kit or os.environ.get(KIT_ENV_VAR)
    if not candidate:
        return None
    folder = Path(candidate)
    return folder if (folder / "compile.sh").is_file() else None


def kit_cpu_flags(kit: Path | None) -> list[str]:
    """The Nano's CPU flags as the core builds them: read from the kit's cxxflags.txt when the
    kit is there, else the documented constant (the same values)."""
    flags_file = kit / KIT_CXXFLAGS if kit else None
    if flags_file is None or not flags_file.is_file():
        return ARM_FLAGS["Arm Cortex-M4F"]
    words = flags_file.read_text(encoding="utf-8").split()
    return [w for w in words
            if w.startswith(("-mcpu=", "-mfloat-abi=", "-mfpu=")) or w == "-mthumb"]


def _stream_window(project, feature_params: dict[str, Any], sensor: str) -> dict[str, Any]:
    """How much raw sensor data one inference reads, and how often: the data set's window, a
    new inference every quarter second of audio or every ``stride`` IMU samples."""
    from tinyml_edu import datasets

    ds_info = datasets.info(project.dataset)
    if not ds_info.sample_rate or not ds_info.input_shape:
        return {}
    window, rate = int(ds_info.input_shape[0]), float(ds_info.sample_rate)
    default_stride = int(rate / 4) if sensor == "audio" else max(1, window // 2)
    return {"window": window, "stride": int(feature_params.get("stride") or default_stride),
            "rate": rate}


def sketch_sensor_of(sensor: str, feature_params: dict[str, Any], input_count: int) -> str:
    """The template's data path: ``imu``, ``audio`` and ``camera`` when the sketch computes
    the model's input (IMU windows; log-mel or MFCC; a camera frame cut and scaled to the
    model's), ``none`` for a one-input model (the sine demo), ``other`` for features the board
    does not compute yet (hand-made feature vectors)."""
    if sensor == "camera" and camera_input.sketch_problem(feature_params) is None:
        frame = int(feature_params["frame"])
        return "camera" if input_count == frame * frame else "other"
    if sensor == "imu" and "channels" in feature_params:
        return "imu"
    if sensor == "audio" and "kind" in feature_params:
        return "audio"
    if sensor == "none" and input_count == 1:
        return "none"
    return "other"


def _input_count(model: bytes) -> int:
    from tinyml_edu.quantize import interpreter

    return int(np.prod(interpreter(model).get_input_details()[0]["shape"][1:]))


def _input_quantization(model: bytes) -> tuple[float | None, int | None]:
    from tinyml_edu.quantize import interpreter

    scale, zero_point = interpreter(model).get_input_details()[0]["quantization"]
    return (float(scale), int(zero_point)) if scale else (None, None)


def measure_model_flash(sketch: Path, board: Board,
                        kit: Path | str | None = None) -> tuple[int | None, str]:
    """Compile ``model_data.cpp`` for the board's CPU, with the core's flags, and read its size
    (text + data)."""
    flags = ARM_FLAGS.get(board.cpu)
    if flags is None:
        return None, f"{board.cpu} is not an Arm CPU: flash not measured with arm-none-eabi-gcc"
    if board.arduino_core == "arduino:mbed_nano":
        flags = kit_cpu_flags(find_kit(kit))
    gxx, size = shutil.which("arm-none-eabi-g++"), shutil.which("arm-none-eabi-size")
    if not gxx or not size:
        return None, ("arm-none-eabi-gcc not found: flash not measured (Debian/Ubuntu: "
                      "apt install gcc-arm-none-eabi)")
    with tempfile.TemporaryDirectory() as tmp:
        obj = Path(tmp) / "model_data.o"
        subprocess.run([gxx, *flags, *CORE_CXX_FLAGS, "-c", str(sketch / export.MODEL_SOURCE),
                        "-o", str(obj)], check=True, capture_output=True, text=True)
        out = subprocess.run([size, str(obj)], check=True, capture_output=True, text=True).stdout
    text, data = (int(v) for v in out.splitlines()[1].split()[:2])
    return text + data, f"model data compiled with {Path(gxx).name} {' '.join(flags)}"


def flash_virtual(sketch: Path, flash_dir: Path | None = None, bug: str | None = None) -> Path:
    """Put a built sketch's model on the virtual board (its "flash" persists on disk, so a
    later `tinyml-edu monitor --port virtual` boots with it); ``bug``: a firmware bug of
    ``virtual_board.BUGS`` to flash with it, for a debugging drill."""
    from tinyml_edu import virtual_board

    meta = json.loads((sketch / "deploy.json").read_text(encoding="utf-8"))
    model = export.read_c_array((sketch / export.MODEL_SOURCE).read_text(encoding="utf-8"))
    return virtual_board.flash(model, meta, flash_dir, bug=bug)


def upload(sketch: Path, board_id: str, port: str | None) -> list[str]:
    """Compile and upload with arduino-cli; without it, explain what to install and run."""
    board = get_board(board_id)
    if not board.fqbn:
        raise DeployError(f"board {board_id!r} has no arduino-cli FQBN; for the virtual board "
                          "use --port virtual")
    cli = shutil.which("arduino-cli")
    port_text = port or "PORT"
    if not cli:
        raise DeployError(ARDUINO_CLI_HELP.format(
            core=board.arduino_core, fqbn=board.fqbn, sketch=sketch, port=port_text,
            ino=sketch / f"{sketch.name}.ino"))
    if not port:
        raise DeployError("--upload needs --port (see `tinyml-edu doctor` for the ports here)")
    commands = [[cli, "compile", "--fqbn", board.fqbn, str(sketch)],
                [cli, "upload", "-p", port, "--fqbn", board.fqbn, str(sketch)]]
    log = []
    for command in commands:
        done = subprocess.run(command, capture_output=True, text=True)
        log.append(" ".join(command) + "\n" + done.stdout + done.stderr)
        if done.returncode != 0:
            hint = (f"is the core installed? arduino-cli core install {board.arduino_core}"
                    if command[1] == "compile" else
                    "is the board on that port? press reset twice for the bootloader")
            raise DeployError(f"`{' '.join(command[:2])}` failed ({hint}):\n"
                              + (done.stderr or done.stdout)[-2000:])
    return log
