"""The virtual board's firmware state: what a reboot resets (``BootState``), the faults waiting
to fire (``Fault``), and how a flashed model is checked against the stream and fed windows."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinyml_edu import protocol
from tinyml_edu.virtual_board.model import ModelRunner
from tinyml_edu.virtual_board.streams import SensorStream

FIRMWARE_VERSION = "1.0"
FAULTS = ("corrupt", "garbage", "unplug")
MODES = (None, "garbage", "silent")


@dataclass
class Fault:
    """A fault injected with ``VirtualBoard.inject``: it fires once ``frames_left`` more data
    frames have gone out (counted down in place)."""

    kind: str
    frames_left: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULTS:
            raise ValueError(f"unknown fault {self.kind!r}; use one of {', '.join(FAULTS)}")
        self.frames_left = int(self.frames_left)


@dataclass
class Windows:
    """Cuts the stream into a model's windows: window ``k`` is stream samples
    ``[start + k * stride, start + k * stride + window)``, ``start`` the sample inference began."""

    window: int
    stride: int
    buffer: np.ndarray  # the stream samples not yet past, from sample ``buffer_start``
    buffer_start: int
    next_end: int = field(init=False)

    def __post_init__(self) -> None:
        self.next_end = self.buffer_start + self.window

    def add(self, chunk: np.ndarray) -> None:
        self.buffer = np.concatenate([self.buffer, chunk])

    def ready(self) -> np.ndarray | None:
        """The next complete window, or None until enough samples arrived."""
        if self.next_end > self.buffer_start + len(self.buffer):
            return None
        lo = self.next_end - self.window - self.buffer_start
        return self.buffer[lo:lo + self.window]

    def advance(self) -> None:
        self.next_end += self.stride

    def trim(self) -> None:
        """Forget the samples no future window reads."""
        keep_from = self.next_end - self.window
        if keep_from > self.buffer_start:
            self.buffer = self.buffer[keep_from - self.buffer_start:]
            self.buffer_start = keep_from


@dataclass
class BootState:
    """Everything a reboot resets (replaced whole by a new one on every boot)."""

    clock_start: float = field(default_factory=time.monotonic)
    clock_pos: int = 0  # stream samples the sensor clock has played since clock_start
    pos: int = 0  # stream samples produced since boot
    out: bytearray = field(default_factory=bytearray)  # bytes waiting for the host
    commands: bytearray = field(default_factory=bytearray)  # a command line still arriving
    streaming: bool = False
    data_seq: int = 0
    pred_seq: int = 0
    runner: ModelRunner | None = None
    infer_meta: dict[str, Any] = field(default_factory=dict)
    channel_index: list[int] | None = None  # the model's IMU channels among the stream's
    problem: str = ""  # why a flashed model does not run, repeated on HELLO
    windows: Windows | None = None  # not None while inference is on
    smoother: Any = None  # a keyword model's listen.PosteriorSmoother
    keyword_seq: int = 0
    ended: bool = False  # a recording played once is over

    @property
    def infer(self) -> bool:
        return self.windows is not None


def model_problem(meta: dict[str, Any], stream: SensorStream) -> str | None:
    """Why the flashed model cannot run on this stream, or None."""
    if meta.get("sensor") != stream.sensor:
        return (f"the model expects {meta.get('sensor')} input but this board streams "
                f"{stream.sensor}")
    if not meta.get("window") or not meta.get("stride"):
        return "deploy.json gives no window/stride (no feature_params): cannot run it"
    if meta.get("rate") and abs(float(meta["rate"]) - stream.rate) > 1e-6:
        return (f"the model expects {float(meta['rate']):g} Hz data but this board "
                f"streams {stream.rate:g} Hz")
    channels = (meta.get("feature_params") or {}).get("channels")
    if stream.sensor == "imu" and channels:
        missing = [c for c in channels if c not in stream.columns]
        if missing:
            return f"the model needs IMU channels {missing} the stream does not have"
    return None


def corrupt(frame: bytes) -> bytes:
    """The same frame with one byte changed, so its checksum no longer matches."""
    data = bytearray(frame)
    if data[:2] == protocol.SYNC:
        # The first sample (audio) or pixel (camera) byte: the frame keeps its length.
        data[10 if data[2] == protocol.CAMERA_FRAME else 7] ^= 0x01
    else:
        i = len(data) - 2  # last checksum digit, before the newline
        data[i] = ord("0") if data[i] != ord("0") else ord("1")
    return bytes(data)
