"""The serial protocol between host and board (see docs/serial-protocol.md).

Encoding is used by the virtual board; parsing by capture and monitor. The parser takes raw
bytes in whatever pieces the serial port delivers and turns them into events; a corrupted line
or frame becomes a ``Corrupted`` event, never data.
"""

from __future__ import annotations

import binascii
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

VERSION = 1
SYNC = b"\xa5\x5a"
AUDIO_FRAME = 0x01
CAMERA_FRAME = 0x02
MAX_AUDIO_SAMPLES = 1024
# Camera frames: QVGA at most. A frame's pixels follow its 8-byte head (type to format).
MAX_CAMERA_WIDTH = 320
MAX_CAMERA_HEIGHT = 240
PIXEL_FORMATS = {"grayscale8": 0x01, "rgb565": 0x02}  # name -> the frame's format byte
BYTES_PER_PIXEL = {"grayscale8": 1, "rgb565": 2}
MAX_LINE = 512  # longer "lines" are garbage (wrong baud rate, binary noise)
BAUD_RATE = 115200


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: polynomial 0x1021, initial value 0xFFFF, no reflection.

    ``binascii.crc_hqx`` is this CRC (in C): a QVGA camera frame is 150 kB."""
    return binascii.crc_hqx(data, 0xFFFF)


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
class CameraFrame:
    """One camera image as the board sent it: ``pixels`` are the raw bytes, row by row from the
    top (grayscale8: one byte per pixel; rgb565: two, high byte first)."""

    seq: int
    width: int
    height: int
    pixel_format: str  # a key of PIXEL_FORMATS
    pixels: bytes = field(repr=False)

    def image(self) -> np.ndarray:
        """The picture as uint8: (height, width) for grayscale8, (height, width, 3) RGB for
        rgb565 (each channel widened to 8 bits, as ``rgb565_to_rgb``)."""
        if self.pixel_format == "grayscale8":
            return np.frombuffer(self.pixels, np.uint8).reshape(self.height, self.width).copy()
        return rgb565_to_rgb(self.pixels, self.width, self.height)


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
class Centroids:
    """A ``C`` line: where a counting model (FOMO, e.g. cars) found what it counted, after the
    ``P`` line of the same ``seq``: (row, column) of each grid cell's centre, in pixels of the
    model's frame."""

    seq: int
    points: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Comment:
    text: str


@dataclass(frozen=True)
class BoardError:
    text: str


PLAIN_TEXT = "plain text, not a protocol line"  # Corrupted.reason of e.g. TFLM's own messages
CAMERA_CHECKSUM = "camera frame checksum mismatch"  # Corrupted.reason of a damaged image


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


Event = (Header | ImuSample | AudioFrame | CameraFrame | Prediction | KeywordDetection
         | Centroids | Comment | BoardError | Corrupted)


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


def encode_centroids(seq: int, points: Sequence[tuple[int, int]]) -> bytes:
    body = " ".join(f"{int(r)},{int(c)}" for r, c in points)
    return _with_checksum(f"C {seq % 65536} {len(points)}" + (f" {body}" if body else ""))


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


def rgb_to_rgb565(image: np.ndarray) -> bytes:
    """(h, w, 3) uint8 RGB -> RGB565 bytes, high byte first (as the OV7675 and OV2640 send
    them): 5 bits red, 6 green, 5 blue, the low bits of each channel dropped."""
    rgb = np.asarray(image, np.uint16)
    value = ((rgb[..., 0] >> 3) << 11) | ((rgb[..., 1] >> 2) << 5) | (rgb[..., 2] >> 3)
    return value.astype(">u2").tobytes()


def rgb565_to_rgb(pixels: bytes, width: int, height: int) -> np.ndarray:
    """RGB565 bytes (high byte first) -> (height, width, 3) uint8. Each channel's top bits are
    repeated into its low bits, so 0 stays 0 and full scale becomes 255."""
    value = np.frombuffer(pixels, ">u2").reshape(height, width).astype(np.uint16)
    r, g, b = value >> 11, (value >> 5) & 0x3F, value & 0x1F
    rgb = np.stack([(r << 3) | (r >> 2), (g << 2) | (g >> 4), (b << 3) | (b >> 2)], axis=-1)
    return rgb.astype(np.uint8)


def camera_frame_size(width: int, height: int, pixel_format: str) -> int:
    """Bytes of a whole camera frame on the line: sync, head, pixels, CRC."""
    return 2 + 8 + width * height * BYTES_PER_PIXEL[pixel_format] + 2


def encode_camera_frame(seq: int, image: np.ndarray, pixel_format: str | None = None) -> bytes:
    """A binary camera frame of ``image``: (h, w) uint8 is sent as grayscale8, (h, w, 3) uint8
    RGB as rgb565 (or name ``pixel_format``: an RGB image sent as grayscale8 is averaged)."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"camera images are uint8, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"a camera image is (height, width) or (height, width, 3), got "
                         f"{image.shape}")
    pixel_format = pixel_format or ("grayscale8" if image.ndim == 2 else "rgb565")
    if pixel_format not in PIXEL_FORMATS:
        raise ValueError(f"unknown pixel format {pixel_format!r}; use "
                         f"{' or '.join(PIXEL_FORMATS)}")
    height, width = image.shape[:2]
    if not (1 <= width <= MAX_CAMERA_WIDTH and 1 <= height <= MAX_CAMERA_HEIGHT):
        raise ValueError(f"camera frames are at most {MAX_CAMERA_WIDTH}x{MAX_CAMERA_HEIGHT} "
                         f"(QVGA), got {width}x{height}")
    if pixel_format == "rgb565":
        rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
        pixels = rgb_to_rgb565(rgb)
    else:
        gray = image if image.ndim == 2 else np.round(image.mean(axis=2)).astype(np.uint8)
        pixels = gray.tobytes()
    body = struct.pack("<BHHHB", CAMERA_FRAME, seq % 65536, width, height,
                       PIXEL_FORMATS[pixel_format]) + pixels
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
            and not line.startswith((b"D ", b"P ", b"K ", b"C ", b"#TINYML-EDU")))


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
        if text.startswith("C "):
            _, seq, count, *pairs = text.split(" ")
            points = tuple((int(r), int(c)) for r, c in (pair.split(",") for pair in pairs))
            if len(points) != int(count):
                raise ValueError(f"{count} centroids announced, {len(points)} given")
            return Centroids(int(seq), points)
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
        if len(self._buffer) < 3:
            return None, 0
        if self._buffer[2] == CAMERA_FRAME:
            return self._camera_frame()
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

    def _camera_frame(self) -> tuple[Event | None, int]:
        if len(self._buffer) < 10:
            return None, 0
        _, seq, width, height, code = struct.unpack_from("<BHHHB", self._buffer, 2)
        names = {v: k for k, v in PIXEL_FORMATS.items()}
        if (code not in names or not 1 <= width <= MAX_CAMERA_WIDTH
                or not 1 <= height <= MAX_CAMERA_HEIGHT):
            # A head no camera sends: most likely a false sync; resynchronise after it.
            return Corrupted("bad camera frame header", bytes(self._buffer[:10])), 1
        pixel_format = names[code]
        total = camera_frame_size(width, height, pixel_format)
        if len(self._buffer) < total:
            return None, 0
        body = bytes(self._buffer[2:total - 2])
        (crc,) = struct.unpack_from("<H", self._buffer, total - 2)
        if crc16(body) != crc:
            return Corrupted(CAMERA_CHECKSUM, bytes(self._buffer[:total])), total
        return CameraFrame(seq, width, height, pixel_format, body[8:]), total
