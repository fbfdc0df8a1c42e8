"""One way to run a ``.tflite`` model, whatever runs it: a small interpreter interface in the
style of tflite-micro's Python API.

    interp = runtime.load(model_bytes, "tflm")       # or "litert"
    interp.set_input(interp.input.quantize(x))       # float -> the model's int8
    interp.invoke()
    y = interp.output.dequantize(interp.get_output())
    interp.arena_used                                # bytes of the tensor arena (TFLM only)

Backends:

- ``litert``: LiteRT (``ai_edge_litert``) with the plain built-in kernels; installs everywhere
  the course runs and computes the same int8 results as TFLM for the projects' networks. Not
  for every network: a 1 x 1 int8 convolution of a one-channel input into two channels came
  out one step (1/256 after a softmax) off TFLM's in about half of its values
  (tests/test_virtual_board.py; ``tinyml-edu predict --runtime tflm`` gives the board's).
- ``tflm``: tflite-micro, the runtime of the board (its reference kernels); a wheel exists for
  Linux x86-64 only. It needs a tensor arena: the one place that grows it until the model
  allocates is ``allocate_tflm``.

Another runtime (an emulated Cortex-M4, say) plugs in with ``register(Backend(...))``: anything
that satisfies the ``Interpreter`` protocol.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any, Protocol

import numpy as np

from tinyml_edu._fd import capture_fd2

TFLM_START_ARENA = 512 * 1024  # enough for every course model: usually one allocation
TFLM_MAX_ARENA = 16 * 1024 * 1024  # beyond any microcontroller: a model needing more is an error


def quantize_input(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Float -> int8 the way the board does it: round(x / scale) + zero_point, saturated.

    Halves round away from zero, like C's ``lroundf`` in the sketch and TFLite's own
    quantize kernel (``np.round`` would round them to even)."""
    v = np.asarray(x, np.float32) / np.float32(scale)
    q = np.sign(v) * np.floor(np.abs(v) + 0.5) + zero_point
    return np.clip(q, -128, 127).astype(np.int8)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """int8 -> float: (q - zero_point) * scale."""
    return (q.astype(np.float32) - zero_point) * scale


@dataclass(frozen=True)
class TensorInfo:
    """An input or output tensor: its shape, type and (for int8) quantization."""

    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float = 0.0  # 0: not quantized
    zero_point: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        object.__setattr__(self, "dtype", np.dtype(self.dtype))
        if self.dtype == np.int8 and not self.scale > 0:
            raise ValueError(f"an int8 tensor needs a quantization scale > 0, got {self.scale}: "
                             "convert the model with quantize.convert(..., mode='int8')")

    @property
    def quantized(self) -> bool:
        return self.dtype == np.int8

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Float values -> what this tensor holds (int8, or the float type unchanged)."""
        if self.quantized:
            return quantize_input(x, self.scale, self.zero_point)
        return np.asarray(x).astype(self.dtype)

    def dequantize(self, y: np.ndarray) -> np.ndarray:
        """What this tensor holds -> float values."""
        return dequantize(y, self.scale, self.zero_point) if self.quantized else y


class Interpreter(Protocol):
    """What every backend offers: one input and one output tensor, as the course's models."""

    backend: str  # "LiteRT", "TFLM", ...
    input: TensorInfo
    output: TensorInfo

    @property
    def arena_used(self) -> int | None:
        """Tensor-arena bytes the model uses; None where the runtime has no arena."""

    def set_input(self, x: np.ndarray) -> None:
        """``x`` already in the input's dtype and shape (see ``TensorInfo.quantize``)."""

    def invoke(self) -> None: ...

    def get_output(self) -> np.ndarray:
        """The raw output tensor (int8 for an int8 model, see ``TensorInfo.dequantize``)."""


# ---------------------------------------------------------------------------------------------
# LiteRT


def litert_interpreter(model_bytes: bytes) -> Any:
    """LiteRT's own interpreter for ``model_bytes``, allocated, with the plain built-in kernels.

    The default XNNPACK delegate is left out on purpose: it fuses ops (so profiles would list
    one DELEGATE op) and its rounding can differ from the kernels that run on the board."""
    try:
        from ai_edge_litert.interpreter import Interpreter as LiteRT
        from ai_edge_litert.interpreter import OpResolverType
    except ImportError as err:
        raise ImportError(f"running a .tflite model needs LiteRT ({err}): "
                          "pip install ai-edge-litert") from err
    interp = LiteRT(model_content=bytes(model_bytes),
                    experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interp.allocate_tensors()
    return interp


def _litert_tensor(details: dict[str, Any]) -> TensorInfo:
    scale, zero_point = details["quantization"]
    return TensorInfo(tuple(details["shape"]), details["dtype"], float(scale), int(zero_point))


class LiteRTInterpreter:
    backend = "LiteRT"
    arena_used = None  # LiteRT allocates tensors its own way: no arena to report

    def __init__(self, model_bytes: bytes) -> None:
        self.raw = litert_interpreter(model_bytes)
        inp, out = self.raw.get_input_details()[0], self.raw.get_output_details()[0]
        self._in_index, self._out_index = inp["index"], out["index"]
        self.input, self.output = _litert_tensor(inp), _litert_tensor(out)

    def set_input(self, x: np.ndarray) -> None:
        self.raw.set_tensor(self._in_index, x)

    def invoke(self) -> None:
        self.raw.invoke()

    def get_output(self) -> np.ndarray:
        return self.raw.get_tensor(self._out_index)


# ---------------------------------------------------------------------------------------------
# TFLM (tflite-micro)


def tflm_available() -> bool:
    """Is tflite-micro installed? (It has wheels for Linux x86-64 only.)"""
    try:
        from tflite_micro import runtime  # noqa: F401
    except ImportError:
        return False
    return True


def allocate_tflm(model_bytes: bytes, arena_size: int = TFLM_START_ARENA,
                  max_arena_size: int = TFLM_MAX_ARENA) -> tuple[Any, int]:
    """A tflite-micro interpreter for the model and the arena size it got: ``arena_size``,
    doubled until allocation succeeds (``max_arena_size == arena_size``: one attempt only).

    A model TFLM cannot run at all (an unsupported op, say), or one that needs more than
    ``max_arena_size``, raises RuntimeError with TFLM's own explanation."""
    from tflite_micro import runtime

    problem = tflm_abort_reason(bytes(model_bytes))
    if problem:
        raise RuntimeError("TFLM cannot run this model: " + problem)
    while True:
        with capture_fd2() as log:  # TFLM explains failures on the C stderr
            try:
                raw = runtime.Interpreter.from_bytes(bytes(model_bytes), arena_size=arena_size)
                return raw, arena_size
            except RuntimeError as err:
                failure = err
        if arena_size >= max_arena_size or "allocate" not in log[0]:
            reason = log[0].strip().splitlines()[-3:] or [str(failure)]
            raise RuntimeError("TFLM cannot run this model: " + " | ".join(reason)) from failure
        arena_size *= 2


# TFLM's int8 softmax turns beta * input_scale * 2**26 into a fixed-point multiplier that must
# be above 1 (PreprocessSoftmaxScaling, kScaledDiffIntegerBits = 5): below it, TFLM aborts the
# whole process instead of returning an error, so the check runs before TFLM sees the model.
_SOFTMAX_MIN_INPUT_SCALE = 2.0 ** -26


@lru_cache(maxsize=16)  # the smallest-arena search allocates the same model many times
def tflm_abort_reason(model_bytes: bytes) -> str | None:
    """Why tflite-micro would abort the process on this model (it checks some settings with a
    crash, not an error), or None. Read with LiteRT, which accepts the model and says why.

    Known case: an int8 softmax whose input scale is below 2**-26 (beta 1, as Keras writes it):
    the layer before it outputs almost nothing, as in an untrained or collapsed network."""
    interp = litert_interpreter(model_bytes)
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    for op in interp._get_ops_details():
        if op["op_name"] != "SOFTMAX":
            continue
        tensor = tensors[op["inputs"][0]]
        scale = float(tensor["quantization"][0])
        if tensor["dtype"] in (np.int8, np.int16) and 0 < scale < _SOFTMAX_MIN_INPUT_SCALE:
            return (f"the softmax's input scale is {scale:.3g}, below the 2**-26 that TFLM's "
                    "int8 softmax accepts (a board would stop at this model too): the layer "
                    "before the softmax outputs almost nothing, as in an untrained or collapsed "
                    "network. Train it (check for dead ReLUs and for a representative data set "
                    "that is real data), then convert it again")
    return None


def tflm_arena_used(raw: Any) -> int:
    """The arena bytes an allocated tflite-micro interpreter uses: the "Arena allocation total"
    its recording allocator prints (to C stderr, hence the file-descriptor capture).

    The same for any arena size that is a multiple of 16 (as the sketch's ``kTensorArenaSize``
    is); other sizes move it by a few bytes, because TFLM aligns the arena's end."""
    with capture_fd2() as out:
        raw.print_allocations()
    match = re.search(r"Arena allocation total (\d+) bytes", out[0])
    if not match:
        raise RuntimeError("tflite-micro printed no arena total; output was:\n" + out[0][-2000:])
    return int(match.group(1))


def tflm_arena_parts(raw: Any) -> dict[str, int]:
    """What fills the arena of an allocated tflite-micro interpreter, as its recording allocator
    prints it: ``total``, ``head`` (the activations, planned to share memory), ``tail`` (what
    lives as long as the interpreter), then each named part of the tail, in bytes."""
    with capture_fd2() as out:
        raw.print_allocations()
    parts = {name: int(n) for name, n in
             re.findall(r"Arena allocation (total|head|tail) (\d+) bytes", out[0])}
    if set(parts) != {"total", "head", "tail"}:
        raise RuntimeError("tflite-micro printed no arena head and tail; output was:\n"
                           + out[0][-2000:])
    parts.update((name, int(n)) for name, n in re.findall(r"'([^']+)' used (\d+) bytes", out[0]))
    return parts


def _tflm_tensor(details: dict[str, Any]) -> TensorInfo:
    q = details.get("quantization_parameters") or {}
    scales, zeros = q.get("scales"), q.get("zero_points")
    if scales is None or len(scales) == 0:
        return TensorInfo(tuple(details["shape"]), details["dtype"])
    return TensorInfo(tuple(details["shape"]), details["dtype"], float(scales[0]), int(zeros[0]))


class TFLMInterpreter:
    """tflite-micro with an arena of ``arena_size`` bytes (grown until the model allocates)."""

    backend = "TFLM"

    def __init__(self, model_bytes: bytes, arena_size: int | None = None,
                 max_arena_size: int = TFLM_MAX_ARENA) -> None:
        self.raw, self.arena_size = allocate_tflm(model_bytes, arena_size or TFLM_START_ARENA,
                                                  max_arena_size)
        self.input = _tflm_tensor(self.raw.get_input_details(0))
        self.output = _tflm_tensor(self.raw.get_output_details(0))

    @cached_property
    def arena_used(self) -> int:
        return tflm_arena_used(self.raw)

    def set_input(self, x: np.ndarray) -> None:
        self.raw.set_input(x, 0)

    def invoke(self) -> None:
        self.raw.invoke()

    def get_output(self) -> np.ndarray:
        return np.asarray(self.raw.get_output(0))


# ---------------------------------------------------------------------------------------------
# The registry


@dataclass(frozen=True)
class Backend:
    """A runtime that can run ``.tflite`` models.

    load(model_bytes, arena_size): arena_size is a hint for runtimes with an arena (None:
    their default) and ignored by the others."""

    name: str
    load: Callable[[bytes, int | None], Interpreter]
    available: Callable[[], bool] = field(default=lambda: True)

    def __post_init__(self) -> None:
        if not self.name or self.name != self.name.strip():
            raise ValueError(f"a backend needs a name without surrounding spaces, got "
                             f"{self.name!r}")


BACKENDS: dict[str, Backend] = {}


def register(backend: Backend) -> None:
    """Make ``backend`` loadable by its name (case-insensitive); a new one replaces an old one."""
    BACKENDS[backend.name.lower()] = backend


register(Backend("LiteRT", lambda model, arena_size=None: LiteRTInterpreter(model)))
register(Backend("TFLM", lambda model, arena_size=None: TFLMInterpreter(model, arena_size),
                 available=tflm_available))


def available_backends() -> list[str]:
    return [b.name for b in BACKENDS.values() if b.available()]


def board_backend() -> str:
    """The runtime closest to a board's on this computer: TFLM where it installs, else LiteRT
    (same int8 results; no arena figure, and timings that are not the board's)."""
    return "TFLM" if tflm_available() else "LiteRT"


def load(model_bytes: bytes, backend: str = "LiteRT", arena_size: int | None = None
         ) -> Interpreter:
    """An interpreter of ``backend`` (see ``available_backends()``) for ``model_bytes``."""
    chosen = BACKENDS.get(backend.lower())
    if chosen is None:
        names = ", ".join(b.name for b in BACKENDS.values())
        raise ValueError(f"unknown backend {backend!r}; use one of {names}")
    if not chosen.available():
        raise RuntimeError(f"the {chosen.name} backend is not installed on this computer; "
                           f"available: {', '.join(available_backends())}")
    return chosen.load(bytes(model_bytes), arena_size)


def predict(interp: Interpreter, x: np.ndarray) -> np.ndarray:
    """Float outputs for each row of ``x`` (float inputs, one row per invoke)."""
    results = []
    for row in np.asarray(x, np.float32):
        interp.set_input(interp.input.quantize(row[np.newaxis]))
        interp.invoke()
        results.append(interp.output.dequantize(interp.get_output()[0]))
    return np.asarray(results, np.float32)
