"""The emulated board: the model's Cortex-M4 program on QEMU's ``mps2-an386``.

``CortexM4Board`` has the shape of a runtime backend: ``load(model_bytes)`` builds the program,
``invoke(inputs)`` runs a batch of int8 inputs through it and returns the int8 outputs, and
``stats`` says what the last run measured. An audio model loaded with ``audio_input=True``
takes raw int16 clips instead (``invoke_clips``): the sketch's front end computes and
quantizes each model input on the core, and the board returns those inputs with the outputs.
An IMU model loaded with ``imu_input=True`` likewise takes raw float32 IMU windows
(``invoke_windows``), scaled and quantized on the core by the sketch's IMU code.

Inputs and outputs cross through newlib's semihosting (files opened on the host); a small TCG
plugin counts the instructions each ``Invoke()`` executes, exactly, and the program checks the
count on loops of known length.

QEMU runs the instructions, not the timing of an nRF52840 (no flash wait states, no pipeline),
so latency is an estimate: instructions x an assumed cycles-per-instruction / 64 MHz.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinyml_edu.emulator import build
from tinyml_edu.errors import TinyMLEduError

QEMU = "qemu-system-arm"
MACHINE = "mps2-an386"
CLOCK_HZ = 64_000_000  # the Nano 33 BLE's nRF52840
CYCLES_PER_INSTRUCTION = 1.25
CPI_ASSUMPTION = (
    "1.25 cycles per instruction, assumed: a Cortex-M4 issues most instructions in one cycle; "
    "loads, taken branches and the nRF52840's flash wait states (cache on) add roughly a "
    "quarter on int8 kernel code. QEMU counts instructions, not cycles.")
LOOP_SHORT, LOOP_LONG = 1000, 3000  # harness.cpp's calibration loops (2 instructions each)
INSTALL_HINT = ("Debian/Ubuntu: sudo apt install qemu-system-arm gcc-arm-none-eabi "
                "libnewlib-arm-none-eabi gcc")


class EmulatorError(TinyMLEduError):
    """The emulated board could not run the model; the message says why and what to do."""


def missing_tools() -> list[str]:
    """What the emulated board needs and this computer lacks (tools, not the kit)."""
    missing = [tool for tool in (QEMU, "arm-none-eabi-gcc", "arm-none-eabi-g++")
               if not shutil.which(tool)]
    if not (shutil.which("cc") or shutil.which("gcc")):
        missing.append("gcc (for the QEMU plugin)")
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc:
        found = subprocess.run([gcc, "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=softfp",
                                "-mfpu=fpv4-sp-d16", "-print-file-name=librdimon.a"],
                               capture_output=True, text=True).stdout.strip()
        if not Path(found).is_absolute():  # gcc echoes the bare name when it has no such file
            missing.append("libnewlib-arm-none-eabi (librdimon.a, semihosting)")
    return missing


def available(kit: Path | str | None = None) -> tuple[bool, str]:
    """Can this computer run the emulated Cortex-M4? (ok, what is there or how to install)."""
    missing = missing_tools()
    if missing:
        return False, f"missing {', '.join(missing)}. {INSTALL_HINT}"
    try:
        found = build.find_kit(kit)
    except build.BuildError as err:
        return False, str(err)
    return True, f"{QEMU} {MACHINE} with the kit at {found}"


@dataclass
class RunStats:
    inputs: int
    instructions: list[int]  # per Invoke(), bracket cost removed
    calibration_ok: bool  # the known loops counted exactly
    arena_used_bytes: int  # what TFLM allocated on the 32-bit core
    build: dict[str, Any] = field(default_factory=dict)
    # per clip or window, the sketch's front end (features or scaling, quantization): only
    # when the program computes its inputs
    feature_instructions: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class CortexM4Board:
    """The Nano 33 BLE's Cortex-M4F, emulated: ``load`` a model, ``invoke`` inputs."""

    name = "cortex-m4"
    latency_source = "cortex-m4-emulated"

    def __init__(self, kit: Path | str | None = None, jobs: int = 2,
                 work_dir: Path | str | None = None, timeout_s: float = 900.0):
        missing = missing_tools()
        if missing:
            raise EmulatorError(f"the emulated Cortex-M4 needs {', '.join(missing)}. "
                                f"{INSTALL_HINT}")
        self.kit = build.find_kit(kit)
        self.jobs, self.timeout_s = jobs, timeout_s
        self.work_dir = Path(work_dir) if work_dir else Path(
            tempfile.mkdtemp(prefix="tinyml-edu-m4-"))
        self.program: build.BuildResult | None = None
        self.stats: RunStats | None = None
        self._plugin = build.plugin_path(self.kit)

    def load(self, model_bytes: bytes, export_dir: Path | str | None = None,
             audio_input: bool = False, imu_input: bool = False) -> build.BuildResult:
        """Build the program for ``model_bytes``. ``export_dir``: a run's ``export/`` folder to
        build from (its C array must hold these bytes); without it, the export is written here
        the way ``tinyml-edu run`` writes it (arena measured with TFLM plus the margin).
        ``audio_input``: the program computes the model input from raw clips with the sketch's
        front end (``invoke_clips``); the export must be an audio run's. ``imu_input``: it
        scales raw IMU windows with the sketch's code (``invoke_windows``); an IMU run's export."""
        from tinyml_edu import export, profile

        if export_dir is None:
            export_dir = self.work_dir / "export"
            try:
                measured = profile.tflm_arena_bytes(model_bytes)
            except RuntimeError as err:  # TFLM itself refuses the model (e.g. a hybrid one)
                raise EmulatorError(str(err)) from err
            arena = int(measured * (1 + profile.ARENA_MARGIN))
            scale, zero = _input_quantization(model_bytes)
            export.write_sketch_sources(export_dir, model_bytes, [], arena, None, scale, zero)
        export_dir = Path(export_dir)
        source = export_dir / export.MODEL_SOURCE
        array = export.read_c_array(source.read_text(encoding="utf-8"))
        if array != model_bytes:
            raise EmulatorError(f"{source} does not hold this model; "
                                "export it again (tinyml-edu run)")
        ops = sorted({op.name for op in profile.op_list(model_bytes)})
        try:
            self.program = build.build_program(export_dir, ops, self.work_dir / "build",
                                               self.kit, self.jobs, audio_input=audio_input,
                                               imu_input=imu_input)
        except build.BuildError as err:
            raise EmulatorError(str(err)) from err
        return self.program

    def invoke(self, inputs: np.ndarray) -> np.ndarray:
        """Run each row of ``inputs`` (int8, the model's input shape without the batch axis)
        through the program; return the int8 outputs, one row per input."""
        if self.program is None:
            raise EmulatorError("load a model before invoke")
        if self.program.computes_input:
            raise EmulatorError("this program computes its inputs from raw sensor data: use "
                                "invoke_clips or invoke_windows, or load the model without "
                                "audio_input / imu_input")
        inputs = np.ascontiguousarray(inputs, dtype=np.int8)
        in_bytes, outputs = self._run(inputs.tobytes(), len(inputs))
        if inputs.size != len(inputs) * in_bytes:
            raise EmulatorError(f"each input must have {in_bytes} int8 values, not "
                                f"{inputs.size // max(len(inputs), 1)}")
        return outputs

    def invoke_clips(self, clips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run raw int16 clips (one row each, ``FEATURE_CLIP_SAMPLES`` long) through the
        sketch's front end and the model on the core; return the int8 model inputs the core
        computed and its int8 outputs, one row per clip."""
        if self.program is None or not self.program.audio_input:
            raise EmulatorError("load an audio model with audio_input=True before invoke_clips")
        clips = np.asarray(clips)
        if clips.dtype != np.int16 or clips.ndim != 2:
            raise EmulatorError(f"clips must be a 2-D int16 array (clips, samples), got "
                                f"{clips.dtype} of shape {clips.shape}")
        return self._run_raw(np.ascontiguousarray(clips, "<i2").tobytes(), len(clips))

    def invoke_windows(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run raw IMU windows (windows, FEATURE_WINDOW, 6: ax, ay, az in g, gx, gy, gz in
        dps) through the sketch's IMU scaling and the model on the core; return the int8 model
        inputs the core computed and its int8 outputs, one row per window."""
        if self.program is None or not self.program.imu_input:
            raise EmulatorError("load an IMU model with imu_input=True before invoke_windows")
        windows = np.asarray(windows)
        if windows.ndim != 3 or windows.shape[-1] != 6 or not np.issubdtype(windows.dtype,
                                                                            np.floating):
            raise EmulatorError(f"windows must be a float array (windows, samples, 6), got "
                                f"{windows.dtype} of shape {windows.shape}")
        return self._run_raw(np.ascontiguousarray(windows, "<f4").tobytes(), len(windows))

    def _run_raw(self, payload: bytes, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Run raw sensor data; return the inputs the core computed and its outputs."""
        run_dir = self.work_dir / "build"
        (run_dir / "board_inputs.bin").unlink(missing_ok=True)
        in_bytes, outputs = self._run(payload, count)
        inputs = np.frombuffer((run_dir / "board_inputs.bin").read_bytes(), dtype=np.int8)
        return inputs.reshape(count, in_bytes), outputs

    def _run(self, payload: bytes, count: int) -> tuple[int, np.ndarray]:
        """Write the input file, run QEMU, check and parse what the program reported:
        (input tensor bytes, outputs one row per input)."""
        run_dir = self.work_dir / "build"
        (run_dir / "inputs.bin").write_bytes(payload)
        for name in ("outputs.bin", "counts.txt"):
            (run_dir / name).unlink(missing_ok=True)
        stdout = self._run_qemu(run_dir)
        facts = dict(re.findall(r"^TME (\w+) (.*)$", stdout, flags=re.M))
        if "ERROR" in facts or "DONE" not in facts:
            raise EmulatorError("the program on the emulated Cortex-M4 failed: "
                                + facts.get("ERROR", stdout[-1000:]))
        in_bytes, out_bytes = (int(v) for v in facts["TENSORS"].split())
        done = int(facts["DONE"])
        if done != count:
            raise EmulatorError(f"the program ran {done} of {count} inputs (each input must "
                                "be whole: clips of FEATURE_CLIP_SAMPLES samples, windows "
                                "of FEATURE_WINDOW readings, or "
                                f"{in_bytes} int8 values)")
        outputs = np.frombuffer((run_dir / "outputs.bin").read_bytes(), dtype=np.int8)
        counts = _read_counts(run_dir / "counts.txt")
        self.stats = _instruction_stats(counts, done, int(facts["ARENA"]), self.program)
        return in_bytes, outputs.reshape(done, out_bytes)

    def _run_qemu(self, run_dir: Path) -> str:
        command = [QEMU, "-M", MACHINE, "-nographic", "-monitor", "none", "-serial", "none",
                   "-semihosting-config", "enable=on,target=native",
                   "-kernel", str(self.program.elf),
                   "-plugin", f"{self._plugin},mark={self.program.mark_address:#x},"
                              f"out={run_dir / 'counts.txt'}"]
        try:
            done = subprocess.run(command, cwd=run_dir, capture_output=True, text=True,
                                  timeout=self.timeout_s)
        except subprocess.TimeoutExpired as err:
            raise EmulatorError(f"QEMU did not finish in {self.timeout_s:g} s") from err
        if done.returncode != 0:
            reason = ("the core faulted (hard fault or other trap)" if done.returncode == 99
                      else f"QEMU exited with status {done.returncode}")
            raise EmulatorError(f"{reason}:\n{(done.stdout + done.stderr)[-2000:]}")
        return done.stdout

    def latency_ms(self, instructions: float) -> float:
        return instructions * CYCLES_PER_INSTRUCTION / CLOCK_HZ * 1000


def _input_quantization(model_bytes: bytes) -> tuple[float | None, int | None]:
    from tinyml_edu.quantize import interpreter

    scale, zero_point = interpreter(model_bytes).get_input_details()[0]["quantization"]
    return (float(scale), int(zero_point)) if scale else (None, None)


def _read_counts(path: Path) -> list[int]:
    if not path.is_file():
        raise EmulatorError("the instruction-counting plugin wrote nothing; is this QEMU "
                            "built with plugin support (Debian's is)?")
    return [int(line) for line in path.read_text().split("\n") if line.strip().isdigit()]


def _instruction_stats(counts: list[int], inputs: int, arena: int,
                       program: build.BuildResult) -> RunStats:
    """Instructions per Invoke() from the plugin's counts at each ``tme_mark()``: pairs of
    marks bracket the empty call, the two loops, then each inference (with audio input, the
    front end's pair comes before each inference's, and with IMU input the scaling's)."""
    per_input = 2 if program.computes_input else 1
    expected = 2 * (3 + per_input * inputs)
    if len(counts) != expected:
        raise EmulatorError(f"expected {expected} instruction marks, got {len(counts)}")
    spans = [counts[i + 1] - counts[i] for i in range(0, len(counts), 2)]
    bracket, short, long = spans[:3]
    calibration_ok = long - short == 2 * (LOOP_LONG - LOOP_SHORT)
    build_facts = {"seconds": program.seconds, "objects_compiled": program.objects_compiled,
                   "objects_cached": program.objects_cached}
    measured = [s - bracket for s in spans[3:]]
    return RunStats(inputs=inputs, instructions=measured[per_input - 1::per_input],
                    calibration_ok=calibration_ok, arena_used_bytes=arena, build=build_facts,
                    feature_instructions=measured[0::2] if per_input == 2 else [])
