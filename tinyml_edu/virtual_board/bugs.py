"""Board bugs: mistakes in the firmware that a lesson switches on, so the virtual board fails
the way a real board with that sketch fails (issue #20, debugging drills).

A bug belongs to the firmware, so it is flashed with the model: ``flash(model, meta,
bug="missing_op")`` (or ``VirtualBoard.flash(..., bug=...)``) stores it in ``deploy.json``; every
boot of that flash has it, and flashing again without it fixes it. ``BUGS`` names each one and
says what the board then prints or does.

The messages are the real ones. TFLM's own lines come from the TFLM library the Nano's sketch is
compiled with (Chirale_TensorFlowLite 2.0.0, the kit in firmware/README.md): its ``MicroPrintf``
goes to ``DebugLog``, which that library implements as ``Serial.print(s)`` followed by ``"\\r\\n"``,
so they arrive as plain text lines without the protocol's checksum, before the sketch's own
``E AllocateTensors() failed: ...`` line (``firmware/inference_template``).
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from functools import lru_cache
from typing import Any

import numpy as np

from tinyml_edu.virtual_board.errors import VirtualBoardError
from tinyml_edu.virtual_board.streams import SensorStream

BUGS: dict[str, str] = {
    "missing_op": (
        "the sketch's op resolver lacks one of the model's ops (the first in graph order that "
        "is not a reshape): TFLM prints \"Didn't find op for builtin opcode 'CONV_2D' version "
        "'3'. ...\" and \"Failed to get registration from op code CONV_2D\", AllocateTensors() "
        "fails, no P lines"),
    "arena_too_small": (
        "kTensorArenaSize is three quarters of what the model needs: TFLM prints why its "
        "allocation failed (e.g. \"Failed to resize buffer. Requested: 3936, available 3064, "
        "missing: 872\"), AllocateTensors() fails, no P lines"),
    "swapped_axes": (
        "the sketch reads the IMU's x and y axes swapped (ax with ay, gx with gy), in its D "
        "lines and in the model's input: the P lines look plausible but are often wrong"),
    "wrong_input_scale": (
        "the sketch quantizes the model's input with a uint8 zero point (the model's + 128) "
        "instead of the int8 one: the inputs saturate and the P lines are stuck on one class"),
    "sample_rate": (
        "the sensor runs at half the rate the model was trained on: the H header says so, the "
        "sketch cuts its windows from that data anyway, and the P lines get worse"),
}

# The sketch's line when AllocateTensors() fails (firmware/inference_template, setupModel()).
ALLOCATE_FAILED = ("AllocateTensors() failed: raise kTensorArenaSize in model_settings.h (now "
                   "{arena} bytes), or an op of the model is not registered")
# TFLM's lines for an op the resolver lacks, as format strings of its sources:
# tensorflow/lite/core/api/op_resolver.cpp and tensorflow/lite/micro/micro_interpreter.cpp.
DIDNT_FIND_OP = ("Didn't find op for builtin opcode '{op}' version '{version}'. An older version "
                 "of this builtin might be supported. Are you using an old TFLite binary with a "
                 "newer model?\n")
NO_REGISTRATION = "Failed to get registration from op code {op}\n "
DEBUG_LOG_END = "\r\n"  # what TFLM's Log() prints after every message
RESHAPES = frozenset({"RESHAPE", "EXPAND_DIMS", "SQUEEZE", "QUANTIZE", "DEQUANTIZE"})
ARENA_FRACTION = 0.75  # of the arena the model needs, for arena_too_small
UINT8_SHIFT = 128  # the uint8 zero point of a value is its int8 zero point + 128
RATE_DIVISOR = 2  # sample_rate: the sensor runs at rate / 2
SWAPS = (("ax", "ay"), ("gx", "gy"))  # the columns swapped_axes exchanges


def bug_list() -> str:
    return ", ".join(BUGS)


def check_bug(bug: str | None, meta: dict[str, Any], model_bytes: bytes) -> None:
    """Refuse a bug this board or this model cannot have, with a message that says why."""
    if bug is None:
        return
    if bug not in BUGS:
        raise VirtualBoardError(f"unknown bug {bug!r}; the virtual board knows: {bug_list()}")
    sensor = meta.get("sensor")
    if bug == "swapped_axes" and sensor != "imu":
        raise VirtualBoardError(f"swapped_axes is a bug of an IMU sketch, but this model reads "
                                f"{sensor}: use another bug")
    if bug == "sample_rate" and sensor in (None, "none"):
        raise VirtualBoardError("sample_rate needs a sensor, but this model reads none (the "
                                "sine demo): use another bug")
    if bug == "wrong_input_scale" and not _int8_input(model_bytes):
        raise VirtualBoardError("wrong_input_scale is a bug of the int8 quantizer, but this "
                                "model takes float input: flash an int8 model")


def _int8_input(model_bytes: bytes) -> bool:
    from tinyml_edu.quantize import interpreter

    return interpreter(model_bytes).get_input_details()[0]["dtype"] == np.int8


# ---------------------------------------------------------------------------------------------
# missing_op


def graph_ops(model_bytes: bytes) -> list[tuple[str, int]]:
    """(op name, op version) of every operator, in the order TFLM registers them."""
    from ai_edge_litert import schema_py_generated as schema

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    model = schema.Model.GetRootAsModel(bytes(model_bytes), 0)
    codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
    graph = model.Subgraphs(0)
    ops = []
    for i in range(graph.OperatorsLength()):
        code = codes[graph.Operators(i).OpcodeIndex()]
        # Codes below 127 may sit in the old field only (schema 3a).
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        ops.append((names.get(builtin, str(builtin)), int(code.Version())))
    return ops


def dropped_op(model_bytes: bytes) -> tuple[str, int]:
    """The op missing_op leaves out of the resolver: the first that is not a reshape."""
    ops = graph_ops(model_bytes)
    if not ops:
        raise VirtualBoardError("the model has no operators")
    return next((op for op in ops if op[0] not in RESHAPES), ops[0])


def missing_op_output(model_bytes: bytes) -> bytes:
    """What TFLM prints on the serial line when the resolver lacks ``dropped_op``."""
    op, version = dropped_op(model_bytes)
    return ((DIDNT_FIND_OP.format(op=op, version=version) + DEBUG_LOG_END
             + NO_REGISTRATION.format(op=op) + DEBUG_LOG_END).encode("ascii"))


# ---------------------------------------------------------------------------------------------
# arena_too_small


def too_small_arena(needed: int) -> int:
    """The arena arena_too_small reserves: a multiple of 16 below what the model needs."""
    return max(16, int(needed * ARENA_FRACTION) // 16 * 16)


# Runs in a child process: for some too-small arenas tflite-micro crashes its process.
_PROBE = """
import sys
from tflite_micro import runtime
try:
    runtime.Interpreter.from_bytes(sys.stdin.buffer.read(), arena_size=int(sys.argv[1]))
except RuntimeError:
    pass
"""


def tflm_allocation_output(model_bytes: bytes, arena: int) -> bytes:
    """What TFLM prints when it allocates the model in an arena of ``arena`` bytes that is too
    small, each message ended as its DebugLog does; empty without tflite-micro."""
    lines = _probe(int(arena), bytes(model_bytes))
    return "".join(line + DEBUG_LOG_END for line in lines).encode("ascii", "replace")


@lru_cache(maxsize=64)  # a bisection boots the same model and arena more than once
def _probe(arena: int, model_bytes: bytes) -> tuple[str, ...]:
    from tinyml_edu.runtime import tflm_available

    if not tflm_available():
        return ()
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE, str(arena)], input=model_bytes,
                              capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ()
    text = done.stderr.decode("ascii", "replace")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


# ---------------------------------------------------------------------------------------------
# wrong_input_scale


def wrong_input_quantization(scale: float, zero_point: int) -> tuple[float, int]:
    """The scale and zero point the buggy sketch quantizes with."""
    return scale, zero_point + UINT8_SHIFT


# ---------------------------------------------------------------------------------------------
# swapped_axes, sample_rate: what the sensor gives the sketch


def bug_stream(stream: SensorStream, bug: str | None) -> tuple[SensorStream, str | None]:
    """The stream the sketch reads with this bug, and why the bug cannot apply (else None)."""
    if bug == "swapped_axes":
        pairs = [(stream.columns.index(a), stream.columns.index(b)) for a, b in SWAPS
                 if a in stream.columns and b in stream.columns]
        if stream.sensor != "imu" or not pairs:
            return stream, (f"swapped_axes needs IMU x and y channels (ax, ay), but the sensor "
                            f"gives {','.join(stream.columns)}")
        order = list(range(len(stream.columns)))
        for a, b in pairs:
            order[a], order[b] = b, a
        return dataclasses.replace(stream, data=stream.data[:, order]), None
    if bug == "sample_rate":
        if stream.sensor == "none":
            return stream, "sample_rate needs a sensor, and the sine demo has none"
        # A sensor at rate / 2: the mean of each pair of samples (its own low-pass filter).
        n = len(stream.data) // RATE_DIVISOR * RATE_DIVISOR
        data = stream.data[:n].reshape(n // RATE_DIVISOR, RATE_DIVISOR, *stream.data.shape[1:])
        slow = data.astype(np.float32).mean(axis=1)
        if stream.data.dtype == np.int16:
            slow = np.round(slow).astype(np.int16)
        rate = stream.rate / RATE_DIVISOR
        return dataclasses.replace(stream, rate=rate, data=slow.astype(stream.data.dtype),
                                   description=f"{stream.description}, sensor at {rate:g} Hz"
                                   ), None
    return stream, None
