"""The serial protocol between host and board (see docs/serial-protocol.md).

Encoding is used by the virtual board; parsing by capture and monitor. The parser takes raw
bytes in whatever pieces the serial port delivers and turns them into events; a corrupted line
or frame becomes a ``Corrupted`` event, never data.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

VERSION = 1
SYNC = b"\xa5\x5a"
AUDIO_FRAME = 0x01
MAX_AUDIO_SAMPLES = 1024
MAX_LINE = 512  # longer "lines" are garbage (wrong baud rate, binary noise)
BAUD_RATE = 115200


def _crc16_table() -> list[int]:
    table = []
    for high in range(256):
        crc = high << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return table


_CRC16_TABLE = _crc16_table()


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: polynomial 0x1021, initial value 0xFFFF, no reflection.

    Table-driven, one lookup per byte: audio streams 32 kB/s through it."""
    crc = 0xFFFF
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16_TABLE[(crc >> 8) ^ byte]
    return crc


def _with_checksum(body: str) -> bytes:
    raw = body.encode("ascii")
    return raw + f" *{crc16(raw):04X}\n".encode("ascii")


# ---------------------------------------------------------------------------------------------
# Events


@dataclass(frozen=True)
class Header:
    board: str
    sensor: str  # "imu" or "audio"
    rate: float
    columns: tuple[str, ...]
    units: tuple[str, ...]


@dataclass(frozen=True)
class ImuSample:
    seq: int
    values: tuple[float, ...]


@dataclass(frozen=True)
class AudioFrame:
    seq: int
    samples: np.ndarray  # int16


@dataclass(frozen=True)
class Prediction:
    seq: int
    label: str
    score: float
    ms: float


@dataclass(frozen=True)
class KeywordDetection:
    """A ``K`` line: the board's posterior smoother heard a keyword (see tinyml_edu.listen)."""

    seq: int
    label: str
    score: float  # the label's averaged score
    time_ms: int  # the deciding inference, in ms from the start of listening (in samples)


@dataclass(frozen=True)
class Comment:
    text: str


@dataclass(frozen=True)
class BoardError:
    text: str


PLAIN_TEXT = "plain text, not a protocol line"  # Corrupted.reason of e.g. TFLM's own messages


@dataclass(frozen=True)
class Corrupted:
    """A line or frame that failed its checksum or could not be parsed; or a line of plain
    text (``reason == PLAIN_TEXT``), such as TFLM's own messages, which carry no checksum."""

    reason: str
    raw: bytes = field(repr=False, default=b"")

    @property
    def text(self) -> str:
        """The line as text (worth showing when ``reason == PLAIN_TEXT``)."""
        return self.raw.decode("ascii", "replace").strip()


Event = (Header | ImuSample | AudioFrame | Prediction | KeywordDetection | Comment
         | BoardError | Corrupted)


# ---------------------------------------------------------------------------------------------
# Encoding


def encode_header(board: str, sensor: str, rate: float, columns: Sequence[str],
                  units: Sequence[str]) -> bytes:
    return _with_checksum(f"#TINYML-EDU {VERSION} board={board} sensor={sensor} rate={rate:g} "
                          f"columns={','.join(columns)} units={','.join(units)}")


def encode_imu_sample(seq: int, values: Sequence[float]) -> bytes:
    return _with_checksum(f"D {seq % 65536} " + ",".join(f"{v:.4f}" for v in values))


def encode_prediction(seq: int, label: str, score: float, ms: float) -> bytes:
    return _with_checksum(f"P {seq % 65536} {label} {score:.3f} {ms:.2f}")


def encode_keyword(seq: int, label: str, score: float, time_ms: int) -> bytes:
    return _with_checksum(f"K {seq % 65536} {label} {score:.4f} {int(time_ms)}")


def encode_comment(text: str) -> bytes:
    return f"# {text}\n".encode()


def encode_error(text: str) -> bytes:
    return f"E {text}\n".encode()


def encode_audio_frame(seq: int, samples: np.ndarray) -> bytes:
    samples = np.asarray(samples, dtype="<i2")
    if len(samples) > MAX_AUDIO_SAMPLES:
        raise ValueError(f"at most {MAX_AUDIO_SAMPLES} samples per frame")
    body = struct.pack("<BHH", AUDIO_FRAME, seq % 65536, len(samples)) + samples.tobytes()
    return SYNC + body + struct.pack("<H", crc16(body))


# ---------------------------------------------------------------------------------------------
# Parsing


def _check(line: bytes) -> str | None:
    """The line's text without its checksum, or None when the checksum is missing or wrong."""
    body, sep, tail = line.rpartition(b" *")
    if not sep or len(tail) != 4:
        return None
    try:
        expected = int(tail, 16)
    except ValueError:
        return None
    return body.decode("ascii", "replace") if crc16(body) == expected else None


def _plain_text(line: bytes) -> bool:
    """Printable ASCII that does not start like a data line: a library's message (the TFLM
    library prints its own with ``Serial.print``), not a data line with a bad checksum."""
    return (bool(line.strip()) and all(32 <= b < 127 or b == 9 for b in line)
            and not line.startswith((b"D ", b"P ", b"K ", b"#TINYML-EDU")))


def parse_line(line: bytes) -> Event:
    """One text line (without its newline) -> event."""
    line = line.rstrip(b"\r")
    if line.startswith(b"# ") or line == b"#":
        return Comment(line[2:].decode("utf-8", "replace"))
    if line.startswith(b"E "):
        return BoardError(line[2:].decode("utf-8", "replace"))
    text = _check(line)
    if text is None:
        return Corrupted(PLAIN_TEXT if _plain_text(line) else "bad or missing checksum", line)
    try:
        if text.startswith("D "):
            _, seq, values = text.split(" ", 2)
            return ImuSample(int(seq), tuple(float(v) for v in values.split(",")))
        if text.startswith("P "):
            _, seq, label, score, ms = text.split(" ")
            return Prediction(int(seq), label, float(score), float(ms))
        if text.startswith("K "):
            _, seq, label, score, time_ms = text.split(" ")
            return KeywordDetection(int(seq), label, float(score), int(time_ms))
        if text.startswith("#TINYML-EDU "):
            fields = dict(part.split("=", 1) for part in text.split(" ")[2:])
            return Header(fields["board"], fields["sensor"], float(fields["rate"]),
                          tuple(fields["columns"].split(",")), tuple(fields["units"].split(",")))
    except (ValueError, KeyError) as err:
        return Corrupted(f"unparsable line ({err})", line)
    return Corrupted("unknown line type", line)


class StreamParser:
    """Feed it bytes as they arrive; it yields complete events and keeps partial ones."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[Event]:
        self._buffer += data
        while self._buffer:
            if self._buffer[:1] == SYNC[:1]:
                if len(self._buffer) < 2:
                    return  # wait for the second sync byte
                if self._buffer[:2] == SYNC:
                    event, used = self._binary_frame()
                    if used == 0:
                        return  # frame incomplete
                    del self._buffer[:used]
                    yield event
                    continue
            newline = self._buffer.find(b"\n")
            if newline < 0:
                if len(self._buffer) > MAX_LINE:  # no newline in sight: garbage
                    raw = bytes(self._buffer)
                    self._buffer.clear()
                    yield Corrupted("no line end (wrong baud rate?)", raw)
                return
            line = bytes(self._buffer[:newline])
            del self._buffer[:newline + 1]
            if line.strip():
                yield parse_line(line)

    def _binary_frame(self) -> tuple[Event | None, int]:
        if len(self._buffer) < 7:
            return None, 0
        kind, seq, n = struct.unpack_from("<BHH", self._buffer, 2)
        if kind != AUDIO_FRAME or n > MAX_AUDIO_SAMPLES:
            # Not a real frame: drop the sync byte and resynchronise on what follows.
            return Corrupted("bad binary frame header", bytes(self._buffer[:7])), 1
        total = 2 + 5 + 2 * n + 2
        if len(self._buffer) < total:
            return None, 0
        body = bytes(self._buffer[2:total - 2])
        (crc,) = struct.unpack_from("<H", self._buffer, total - 2)
        if crc16(body) != crc:
            return Corrupted("audio frame checksum mismatch", bytes(self._buffer[:total])), total
        samples = np.frombuffer(body[5:], dtype="<i2").astype(np.int16)
        return AudioFrame(seq, samples), total
