"""Stage 6, profile: will the model fit the board, and how fast will it run?

- flash: the ``.tflite`` bytes (plus the runtime's own code, from the board catalog);
- RAM: the tensor arena TFLM really allocates, measured with the ``tflite-micro`` runtime (the
  same kernels as on the board), and the smallest arena that still allocates, found by search;
- ops and multiply-accumulates (MACs) per op, from the model's tensors;
- latency: measured on this computer for the virtual board, estimated for real boards from MACs,
  clock and an assumed cycles-per-MAC (stated in the result).

Where tflite-micro has no wheel (Windows, macOS) the arena is estimated from the tensor sizes
and labelled ``estimate``.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np

from tinyml_edu import runtime
from tinyml_edu.boards import BOARDS, Board
from tinyml_edu.quantize import interpreter
from tinyml_edu.runtime import tflm_available as tflm_available  # tests stub it: keep the name

ARENA_MARGIN = 0.10  # headroom on top of the measured arena for a sketch to reserve


@dataclass
class OpInfo:
    name: str
    macs: int


@dataclass
class BoardFit:
    fits: bool
    flash_bytes: int  # what this model needs in flash: model + runtime
    ram_bytes: int  # what it needs in RAM: arena with margin + runtime
    latency_ms: float
    latency_source: str  # "measured (TFLM on this computer)" or "estimate: ..."
    flash_free_bytes: int
    ram_free_bytes: int


@dataclass
class Profile:
    model_bytes: int
    arena_bytes: int
    arena_source: str  # "tflm" or "estimate"
    min_arena_bytes: int | None
    ops: list[OpInfo]
    macs: int
    host_latency_ms: float | None
    boards: dict[str, BoardFit] = field(default_factory=dict)

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for op in self.ops:
            counts[op.name] = counts.get(op.name, 0) + 1
        return counts

    def to_dict(self) -> dict:
        d = asdict(self)
        d["op_counts"] = self.op_counts()
        return d


# ---------------------------------------------------------------------------------------------
# TFLM measurements


def tflm_arena_bytes(model_bytes: bytes, arena_size: int = runtime.TFLM_START_ARENA,
                     max_arena_size: int = runtime.TFLM_MAX_ARENA) -> int:
    """The arena TFLM allocates for this model ("Arena allocation total" of its recorder).

    Starts with ``arena_size`` and doubles it while allocation fails; a model TFLM cannot run
    at all (an unsupported op, say) raises RuntimeError with TFLM's own explanation."""
    return runtime.TFLMInterpreter(model_bytes, arena_size, max_arena_size).arena_used


def tflm_arena_parts(model_bytes: bytes) -> dict[str, int]:
    """The arena TFLM allocates, in parts: ``total`` (as ``tflm_arena_bytes``), ``head`` (the
    activations, planned so that tensors not alive at the same time share memory) and ``tail``
    (what lives as long as the interpreter: tensor and op bookkeeping, quantization parameters,
    the kernels' own data), then each named part of the tail, in bytes."""
    return runtime.tflm_arena_parts(runtime.TFLMInterpreter(model_bytes).raw)


def _allocate_once(model_bytes: bytes, arena_size: int) -> None:
    """Allocate with exactly ``arena_size`` bytes; RuntimeError when it is not enough."""
    runtime.allocate_tflm(model_bytes, arena_size, max_arena_size=arena_size)


PROBE_TIMEOUT_S = 30.0


def _allocates(model_bytes: bytes, arena_size: int) -> bool:
    """Does TFLM allocate this model in ``arena_size`` bytes?

    Asked in a forked child where the OS allows it: for some too-small arenas the tflite-micro
    runtime crashes the process (a segmentation fault) instead of reporting the failure."""
    if not hasattr(os, "fork"):
        try:
            _allocate_once(model_bytes, arena_size)
        except RuntimeError:
            return False
        return True
    sys.stdout.flush()
    sys.stderr.flush()
    with warnings.catch_warnings():  # the child only runs TFLM: no lock of another thread
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # child: answer with the exit code, print nothing
        try:
            faulthandler.disable()  # an expected crash here is not a traceback worth showing
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            _allocate_once(model_bytes, arena_size)
            os._exit(0)
        except BaseException:
            os._exit(1)
    # A child that hangs (a lock some other thread held at fork time) must not hang the caller:
    # after PROBE_TIMEOUT_S it is killed and the arena counts as not enough.
    deadline = time.monotonic() + PROBE_TIMEOUT_S
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return False
        time.sleep(0.002)


def smallest_arena_bytes(model_bytes: bytes, upper: int, step: int = 16) -> int:
    """Binary search for the smallest ``arena_size`` TFLM accepts (to ``step`` bytes).

    It is larger than the allocation total because the Python runtime's recording allocator
    also lives in the arena; on a board, use the measured total plus a margin."""
    lo, hi = 0, upper
    while not _allocates(model_bytes, hi):
        lo, hi = hi, hi * 2
    while hi - lo > step:
        mid = (lo + hi) // 2
        if _allocates(model_bytes, mid):
            hi = mid
        else:
            lo = mid
    return hi


def tflm_latency_ms(model_bytes: bytes, arena_size: int, runs: int = 20) -> float:
    """Median time of one ``invoke`` with the TFLM reference kernels on this computer."""
    interp = runtime.TFLMInterpreter(model_bytes, arena_size)
    interp.set_input(np.zeros(interp.input.shape, dtype=interp.input.dtype))
    interp.invoke()  # warm up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        interp.invoke()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


# ---------------------------------------------------------------------------------------------
# Ops, MACs and the fallback arena estimate


def _op_macs(op: dict, shapes: dict[int, np.ndarray]) -> int:
    name = op["op_name"]
    inputs, outputs = op["inputs"], op["outputs"]
    out_shape = shapes[outputs[0]]
    if name == "FULLY_CONNECTED":
        weights = shapes[inputs[1]]  # (units, inputs)
        return int(np.prod(out_shape) * weights[-1])
    if name == "CONV_2D":
        filters = shapes[inputs[1]]  # (out_ch, kh, kw, in_ch)
        return int(np.prod(out_shape) * np.prod(filters[1:]))
    if name == "DEPTHWISE_CONV_2D":
        filters = shapes[inputs[1]]  # (1, kh, kw, out_ch)
        return int(np.prod(out_shape) * filters[1] * filters[2])
    return 0


def op_list(model_bytes: bytes) -> list[OpInfo]:
    interp = interpreter(model_bytes)
    shapes = {t["index"]: t["shape"] for t in interp.get_tensor_details()}
    return [OpInfo(op["op_name"], _op_macs(op, shapes)) for op in interp._get_ops_details()]


def estimate_arena_bytes(model_bytes: bytes) -> int:
    """A rough arena estimate without TFLM: the largest (inputs + output) activation footprint
    of any op, plus TFLM's per-tensor and per-op bookkeeping (~24 and ~64 bytes)."""
    interp = interpreter(model_bytes)
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    ops = interp._get_ops_details()
    activations = {int(i) for op in ops for i in op["outputs"]}
    activations |= {int(d["index"]) for d in interp.get_input_details()}

    def size(i: int) -> int:
        t = tensors[i]
        return int(np.prod(t["shape"])) * np.dtype(t["dtype"]).itemsize

    peak = max((sum(size(int(i)) for i in (*op["inputs"], *op["outputs"]) if int(i) in activations)
                for op in ops), default=0)
    return peak + 24 * len(tensors) + 64 * len(ops)


# ---------------------------------------------------------------------------------------------
# Putting it together


def fit_on_board(board: Board, model_bytes: int, arena_bytes: int, macs: int,
                 host_latency_ms: float | None, extra_ram_bytes: int = 0) -> BoardFit:
    """``extra_ram_bytes``: what the sketch holds besides the arena (a camera frame buffer)."""
    flash = model_bytes + board.runtime_flash_bytes
    ram = int(arena_bytes * (1 + ARENA_MARGIN)) + board.runtime_ram_bytes + extra_ram_bytes
    if board.id == "virtual" and host_latency_ms is not None:
        latency, source = host_latency_ms, "measured (TFLM reference kernels on this computer)"
    elif board.clock_hz:
        latency = macs * board.cycles_per_mac / board.clock_hz * 1000
        source = (f"estimate: {macs} MACs x {board.cycles_per_mac:g} cycles/MAC at "
                  f"{board.clock_hz / 1e6:g} MHz (optimised int8 kernels; op overhead ignored)")
    else:
        latency, source = float("nan"), "unknown (no TFLM on this computer)"
    return BoardFit(fits=flash <= board.flash_bytes and ram <= board.ram_bytes,
                    flash_bytes=flash, ram_bytes=ram, latency_ms=round(latency, 4),
                    latency_source=source, flash_free_bytes=board.flash_bytes - flash,
                    ram_free_bytes=board.ram_bytes - ram)


def profile(model_bytes: bytes, boards: dict[str, Board] | None = None,
            search_smallest: bool = True, extra_ram_bytes: int = 0) -> Profile:
    """Measure one ``.tflite`` model and judge it against each board; ``extra_ram_bytes``
    (e.g. a camera frame buffer) counts against each board's RAM too."""
    boards = BOARDS if boards is None else boards
    ops = op_list(model_bytes)
    macs = sum(op.macs for op in ops)
    if tflm_available():
        arena, source = tflm_arena_bytes(model_bytes), "tflm"
        smallest = smallest_arena_bytes(model_bytes, upper=2 * arena) if search_smallest else None
        host_ms = tflm_latency_ms(model_bytes, arena_size=2 * arena + 4096)
    else:
        arena, source, smallest, host_ms = estimate_arena_bytes(model_bytes), "estimate", None, None
    fits = {bid: fit_on_board(b, len(model_bytes), arena, macs, host_ms, extra_ram_bytes)
            for bid, b in boards.items()}
    return Profile(model_bytes=len(model_bytes), arena_bytes=arena, arena_source=source,
                   min_arena_bytes=smallest, ops=ops, macs=macs, host_latency_ms=host_ms,
                   boards=fits)
