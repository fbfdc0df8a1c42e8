"""Capture: record labelled sensor data from a board (or the virtual board) over USB serial,
and watch a deployed model's predictions live.

For notebooks and for ``tinyml-edu capture`` / ``monitor``::

    from tinyml_edu import capture
    result = capture.capture("/dev/ttyACM0", "imu", "W", seconds=10, out_dir="data/wand")
    result = capture.capture("virtual", "imu", "W", seconds=10, out_dir="data/wand", speed=10)
    for event in capture.monitor("virtual", seconds=5): ...

Camera frames (``--sensor camera``, ``capture_frames``) are pictures, one file each: every frame
is saved as ``out_dir/<label>/<stem>.png`` with its own ``<stem>.json`` the moment it arrives
(without a label: ``out_dir/frame_<time>_<n>.png``, for labelling later).

Files written, one recording per call (never overwriting): ``out_dir/<label>/<stem>.csv`` (IMU:
a header row of the column names, then one row per sample, in the header's units) or
``<stem>.wav`` (audio: mono 16-bit PCM at the board's rate), and ``<stem>.json`` beside it
with what a later reader needs to trust the file (rate, units, lost frames, interruptions).
``<stem>`` is ``<label>_<YYYYmmdd-HHMMSS>_<n>``. Samples are written and flushed as they
arrive, so a pulled cable or Ctrl-C keeps everything received up to then. Read a recording
back, sidecar included, with ``datasets.load_recording``.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from tinyml_edu import protocol
from tinyml_edu._fs import write_atomic
from tinyml_edu.errors import TinyMLEduError
from tinyml_edu.i18n import _

VIRTUAL = "virtual"
HEADER_TIMEOUT_S = 4.0
STALL_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 0.05
LABEL_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
SENSORS = ("imu", "audio", "camera")
SKETCHES = {"imu": "firmware/capture_imu",
            "audio": "firmware/capture_audio_nano or firmware/capture_audio_xiao",
            "camera": "firmware/capture_camera_nano or firmware/capture_camera_xiao"}


class CaptureError(TinyMLEduError):
    """Something the user must fix (port, permissions, sketch, cable); says what to do."""


class Disconnected(CaptureError):
    """The board went away (cable pulled, board reset into the bootloader)."""


@dataclass
class CaptureResult:
    path: Path  # the .csv or .wav
    sidecar: Path  # the .json beside it
    samples: int
    lost_frames: int
    corrupted: int
    interrupted: bool
    reason: str = ""  # why it was interrupted
    sensor: str = ""
    rate: float = 0.0
    note: str = ""  # virtual board: when it could not play the label's data

    @property
    def seconds(self) -> float:
        return self.samples / self.rate if self.rate else 0.0


# ---------------------------------------------------------------------------------------------
# Ports


def list_ports() -> list[str]:
    """Serial ports of this computer (the virtual board is always available as ``virtual``)."""
    from serial.tools import list_ports as lp

    return sorted(p.device for p in lp.comports())


def _ports_text() -> str:
    try:
        ports = list_ports()
    except Exception:  # listing is only a hint; never hide the real error behind it
        ports = []
    return ", ".join(ports) if ports else _("none found")


def explain_open_error(port: str, err: BaseException, platform: str | None = None) -> CaptureError:
    """Turn what opening a port raised into a CaptureError that says what to do."""
    platform = platform or sys.platform
    code = getattr(err, "errno", None)
    text = str(err)
    if code is None:  # pyserial sometimes keeps the OSError only in the message
        match = re.search(r"\[Errno (\d+)\]", text)
        code = int(match.group(1)) if match else None
    low = text.lower()
    if platform == "win32" and (code == errno.EACCES or "access is denied" in low):
        return CaptureError(_("{port} is busy: another program has it open. Close the Arduino "
                              "IDE's Serial Monitor / Serial Plotter (or any other terminal on "
                              "it) and try again").format(port=port))
    if code == errno.ENOENT or "filenotfounderror" in low or "cannot find the file" in low:
        return CaptureError(_("port {port} not found. Ports on this computer: {ports}. Check "
                              "the USB cable (a data cable, not charge-only) and press reset; or "
                              "use the virtual board: --port virtual").format(
                                  port=port, ports=_ports_text()))
    if code in (errno.EACCES, errno.EPERM) or "permission denied" in low:
        return CaptureError(_("permission denied on {port}. On Linux add yourself to the "
                              "port's group: `sudo usermod -aG dialout $USER`, then log out and "
                              "in again (or run from a shell that has the group: `newgrp "
                              "dialout`)").format(port=port))
    if (code in (errno.EBUSY, errno.EAGAIN) or "exclusively lock" in low
            or "resource busy" in low):
        return CaptureError(_("{port} is busy: another program has it open. Close the Arduino "
                              "IDE's Serial Monitor / Serial Plotter (or another capture) and "
                              "try again").format(port=port))
    if code == errno.ENOTTY:
        return CaptureError(_("{port} is not a serial port. Ports on this computer: {ports}; "
                              "or use --port virtual").format(port=port, ports=_ports_text()))
    return CaptureError(_("cannot open {port}: {error}. Ports on this computer: {ports}").format(
        port=port, error=text, ports=_ports_text()))


@contextlib.contextmanager
def open_port(port: str, baud: int = protocol.BAUD_RATE, timeout: float = READ_TIMEOUT_S,
              **virtual_kwargs: Any) -> Iterator[Any]:
    """Open a board's port as a pyserial ``Serial``; ``"virtual"`` starts a VirtualBoard
    (``virtual_kwargs``: sensor, source, speed, flash_dir, ...) and opens its pty."""
    import serial

    board = None
    if port == VIRTUAL:
        from tinyml_edu.virtual_board import VirtualBoard, VirtualBoardError

        try:
            board = VirtualBoard(**virtual_kwargs)
            device = board.start()
        except VirtualBoardError as err:
            raise CaptureError(f"virtual board: {err}") from err
    else:
        if virtual_kwargs:
            raise CaptureError(f"{', '.join(sorted(virtual_kwargs))} only apply to the virtual "
                               "board (--port virtual)")
        device = port
    try:
        kwargs: dict[str, Any] = {"exclusive": True} if sys.platform != "win32" else {}
        try:
            ser = serial.Serial(device, baud, timeout=timeout, write_timeout=2, **kwargs)
        except (serial.SerialException, OSError) as err:
            raise explain_open_error(port, err) from err
        ser.virtual_board = board  # capture reads its stream_note
        try:
            yield ser
        finally:
            with contextlib.suppress(Exception):
                ser.close()
    finally:
        if board is not None:
            board.stop()


@contextlib.contextmanager
def _connection(port: Any, baud: int, **virtual_kwargs: Any) -> Iterator[Any]:
    """A port name (opened and closed here) or an already open Serial (left open)."""
    if isinstance(port, str | Path):
        with open_port(str(port), baud, **virtual_kwargs) as ser:
            yield ser
    else:
        if virtual_kwargs:
            raise CaptureError("virtual board options need port='virtual'")
        yield port


def _read(ser: Any) -> bytes:
    """Whatever bytes are there (waiting up to the port's timeout); Disconnected on EOF."""
    import serial

    try:
        return ser.read(max(1, ser.in_waiting))
    except (serial.SerialException, OSError) as err:
        raise Disconnected(f"board disconnected ({err})") from err


def _send(ser: Any, command: str) -> None:
    import serial

    try:
        ser.write(command.encode("ascii") + b"\n")
        ser.flush()
    except (serial.SerialException, OSError) as err:
        raise Disconnected(f"board disconnected ({err})") from err


# ---------------------------------------------------------------------------------------------
# Capture


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


def _claim_stem(folder: Path, label: str, suffix: str,
                speaker: str | None = None) -> tuple[Path, Path]:
    """A new ``[<speaker>_]<label>_<time>_<n>`` in ``folder``: the sidecar is created
    exclusively, so two captures never share a name and nothing is ever overwritten."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    n = 1
    while True:
        stem = f"{speaker + '_' if speaker else ''}{label}_{stamp}_{n}"
        data, sidecar = folder / f"{stem}{suffix}", folder / f"{stem}.json"
        if not data.exists():
            try:
                with open(sidecar, "x", encoding="utf-8"):
                    pass
                return data, sidecar
            except FileExistsError:
                pass
        n += 1


class _CsvWriter:
    def __init__(self, path: Path, columns: tuple[str, ...]) -> None:
        self.file = open(path, "x", newline="", encoding="utf-8")  # noqa: SIM115
        self.writer = csv.writer(self.file, lineterminator="\n")
        self.writer.writerow(columns)
        self.file.flush()

    def write(self, values: tuple[float, ...]) -> int:
        self.writer.writerow([repr(v) for v in values])
        return 1

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()


class _WavWriter:
    def __init__(self, path: Path, rate: float) -> None:
        import soundfile

        self.file = soundfile.SoundFile(path, "w", samplerate=int(round(rate)), channels=1,
                                        subtype="PCM_16", format="WAV")

    def write(self, samples: np.ndarray) -> int:
        self.file.write(np.asarray(samples, np.int16))
        return len(samples)

    def flush(self) -> None:
        self.file.flush()  # also rewrites the WAV header's sizes

    def close(self) -> None:
        self.file.close()


class _Progress:
    def __init__(self, label: str, target: int, rate: float, enabled: bool) -> None:
        self.label, self.target, self.rate, self.enabled = label, target, rate, enabled
        self.last = 0.0

    def show(self, samples: int, lost: int, final: bool = False) -> None:
        if not self.enabled or (not final and time.monotonic() - self.last < 0.25):
            return
        self.last = time.monotonic()
        sys.stderr.write(f"\r{self.label}: {samples / self.rate:6.2f} / "
                         f"{self.target / self.rate:.2f} s  ({samples} samples, {lost} lost)  ")
        if final:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _wait_for_header(ser: Any, parser: protocol.StreamParser, timeout: float,
                     sensor: str = "imu") -> protocol.Header:
    """Send START (again every second) until the header comes; explain a silent or noisy line."""
    deadline = time.monotonic() + timeout
    next_start = 0.0
    received = corrupted = valid = 0
    said: list[str] = []
    while time.monotonic() < deadline:
        if time.monotonic() >= next_start:
            _send(ser, "START")
            next_start = time.monotonic() + 1.0
        data = _read(ser)
        received += len(data)
        for event in parser.feed(data):
            if isinstance(event, protocol.Header):
                return event
            if isinstance(event, protocol.Corrupted):
                corrupted += 1
                continue
            valid += 1
            if isinstance(event, protocol.BoardError | protocol.Comment):
                said.append(format_event(event) or "")
    sketch = SKETCHES.get(sensor, SKETCHES["imu"])
    if corrupted > valid or (received and not valid):
        raise CaptureError(_("the board sends garbage: wrong baud rate or not running a "
                             "tinyml-edu capture sketch ({sketch}). Upload the capture sketch "
                             "(and check the baud rate is {baud})").format(
                                 sketch=sketch, baud=protocol.BAUD_RATE))
    if valid:
        raise CaptureError(_("the board answered but sent no header: is the capture sketch "
                             "({sketch}) uploaded? The board said: {said}").format(
            sketch=sketch, said=" | ".join(said[-3:]) or _("nothing readable")))
    raise CaptureError(_("no data: is the capture sketch uploaded? press reset (or unplug and "
                         "plug the board in again), then retry"))


def _write_sidecar(path: Path, info: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(info, indent=2) + "\n")


def capture(port: Any, sensor: str, label: str, seconds: float, out_dir: Path | str,
            progress: bool = True, baud: int = protocol.BAUD_RATE,
            header_timeout: float = HEADER_TIMEOUT_S, stall_timeout: float = STALL_TIMEOUT_S,
            speaker: str | None = None, **virtual_kwargs: Any
            ) -> CaptureResult | FrameCaptureResult:
    """Record ``seconds`` of ``sensor`` data labelled ``label`` into ``out_dir/<label>/``.

    ``port``: a device (``/dev/ttyACM0``, ``COM3``), ``"virtual"`` (then ``virtual_kwargs`` go
    to ``VirtualBoard``: source, speed, flash_dir, ...) or an open pyserial ``Serial``.
    ``speaker``: the pseudonym of who recorded it (the sidecar's ``group``, as the voices
    recorder writes it), so ``load_folder`` keeps each speaker in one split and ``tinyml-edu
    voices`` pools and deletes board recordings like browser ones.
    Returns a CaptureResult; ``interrupted`` is True (with ``reason``) when the board went away
    or Ctrl-C stopped it: everything complete up to then is saved and described in the sidecar.
    Raises CaptureError when nothing could be recorded (port, permissions, wrong sketch).
    ``sensor="camera"``: ``capture_frames`` for ``seconds`` (``speaker`` is the group)."""
    from tinyml_edu import __version__

    if sensor == "camera":
        return capture_frames(port, label, out_dir, seconds=seconds, progress=progress,
                              baud=baud, header_timeout=header_timeout,
                              stall_timeout=stall_timeout, group=speaker, **virtual_kwargs)
    if sensor not in SENSORS:
        raise CaptureError(f"unknown sensor {sensor!r}; use imu, audio or camera")
    if not LABEL_PATTERN.fullmatch(label):
        raise CaptureError(_("label {label} must be letters, digits, '_', '-' or '.' (it names "
                             "a folder and appears in prediction lines)").format(label=repr(label)))
    if not seconds > 0:
        raise CaptureError(f"seconds must be > 0, got {seconds}")
    if speaker is not None:
        from tinyml_edu.voices import validate_pseudonym

        speaker = validate_pseudonym(speaker)
    if port == VIRTUAL:  # the virtual board plays the label's recordings when it has them
        virtual_kwargs.setdefault("sensor", sensor)
        virtual_kwargs.setdefault("label", label)
    folder = Path(out_dir) / label
    port_name = port if isinstance(port, str) else getattr(port, "port", str(port))

    with _connection(port, baud, **virtual_kwargs) as ser:
        parser = protocol.StreamParser()
        header = _wait_for_header(ser, parser, header_timeout, sensor)
        if header.sensor != sensor:
            _stop_quietly(ser)
            raise CaptureError(_("the board streams {streamed} data, not {sensor}: upload the "
                                 "{sensor} capture sketch or use --sensor {streamed}").format(
                                     streamed=header.sensor, sensor=sensor))
        if header.rate <= 0:
            _stop_quietly(ser)
            raise CaptureError(f"the board's header gives a rate of {header.rate:g} Hz")
        folder.mkdir(parents=True, exist_ok=True)
        suffix = ".csv" if sensor == "imu" else ".wav"
        data_path, sidecar = _claim_stem(folder, label, suffix, speaker)
        target = int(round(seconds * header.rate))
        board = getattr(ser, "virtual_board", None)
        note = board.stream_note if board is not None else ""
        info: dict[str, Any] = {
            "format": "tinyml-edu capture 1", "file": data_path.name, "label": label,
            "sensor": sensor, "board": header.board, "rate": header.rate,
            "columns": list(header.columns), "units": list(header.units),
            "started": _now(), "ended": None, "requested_seconds": seconds, "samples": 0,
            "lost_frames": 0, "corrupted": 0, "interrupted": True,
            "reason": "capture in progress (or the program was killed)", "port": port_name,
            "tinyml_edu": __version__,
        }
        if speaker:
            info["group"] = speaker
        if board is not None:
            info["virtual_source"] = board.stream_description
            if note:
                info["note"] = note
        _write_sidecar(sidecar, info)
        writer: _CsvWriter | _WavWriter = (_CsvWriter(data_path, header.columns)
                                           if sensor == "imu" else _WavWriter(data_path,
                                                                              header.rate))
        state = {"samples": 0, "lost_frames": 0, "lost_samples": 0, "corrupted": 0}
        show = _Progress(label, target, header.rate, progress)
        interrupted, reason = False, ""
        ctrl_c = {"stop": False}
        try:
            with _ctrl_c_sets(ctrl_c):
                _record(ser, parser, header, writer, state, target, stall_timeout, show, ctrl_c)
        except Disconnected:
            interrupted, reason = True, f"board disconnected after {state['samples']} samples"
        except KeyboardInterrupt:
            interrupted, reason = True, f"stopped with Ctrl-C after {state['samples']} samples"
        except _Stalled as err:
            interrupted, reason = True, str(err)
        finally:
            writer.close()
            show.show(state["samples"], state["lost_frames"], final=True)
            info.update(ended=_now(), samples=state["samples"],
                        lost_frames=state["lost_frames"], corrupted=state["corrupted"],
                        interrupted=interrupted, reason=reason)
            _write_sidecar(sidecar, info)
        if not interrupted:
            _stop_quietly(ser)
    return CaptureResult(data_path, sidecar, state["samples"], state["lost_frames"],
                         state["corrupted"], interrupted, reason, sensor, header.rate, note)


class _Stalled(Exception):
    pass


@contextlib.contextmanager
def _ctrl_c_sets(flag: dict[str, bool]) -> Iterator[None]:
    """In the main thread, Ctrl-C only sets ``flag["stop"]``: the loop then ends between two
    samples, so the file and the sample count always agree. Elsewhere Ctrl-C is untouched."""
    previous = None
    if threading.current_thread() is threading.main_thread():
        def handler(signum: int, frame: Any) -> None:
            flag["stop"] = True

        with contextlib.suppress(ValueError):
            previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _stop_quietly(ser: Any) -> None:
    with contextlib.suppress(CaptureError):
        _send(ser, "STOP")


def _record(ser: Any, parser: protocol.StreamParser, header: protocol.Header,
            writer: _CsvWriter | _WavWriter, state: dict[str, int], target: int,
            stall_timeout: float, show: _Progress, ctrl_c: dict[str, bool]) -> None:
    """Write samples until ``target`` samples (received + lost) are accounted for."""
    expected: int | None = None  # the next seq; None until the first frame
    last_data = time.monotonic()
    want = protocol.ImuSample if header.sensor == "imu" else protocol.AudioFrame
    while state["samples"] + state["lost_samples"] < target:
        if ctrl_c["stop"]:
            raise KeyboardInterrupt
        events = list(parser.feed(_read(ser)))
        got_data = False
        for event in events:
            if isinstance(event, protocol.Corrupted):
                state["corrupted"] += 1
                continue
            if isinstance(event, protocol.Header):
                if (event.sensor, event.rate, event.columns) != (
                        header.sensor, header.rate, header.columns):
                    raise _Stalled("the board restarted with different settings "
                                   f"({event.sensor} at {event.rate:g} Hz)")
                expected = None  # a reset board counts from 0 again
                continue
            if not isinstance(event, want):
                continue
            got_data = True
            if isinstance(event, protocol.ImuSample) and len(event.values) != len(
                    header.columns):
                state["corrupted"] += 1  # a valid checksum over the wrong number of values
                continue
            size = 1 if isinstance(event, protocol.ImuSample) else len(event.samples)
            if expected is not None:
                gap = (event.seq - expected) % 65536
                state["lost_frames"] += gap
                state["lost_samples"] += gap * size
            expected = (event.seq + 1) % 65536
            room = target - state["samples"] - state["lost_samples"]
            if room <= 0:
                break
            if isinstance(event, protocol.ImuSample):
                state["samples"] += writer.write(event.values)
            else:
                state["samples"] += writer.write(event.samples[:room])
            if state["samples"] + state["lost_samples"] >= target:
                break
        writer.flush()
        show.show(state["samples"], state["lost_frames"])
        now = time.monotonic()
        if got_data:
            last_data = now
        elif now - last_data > stall_timeout:
            raise _Stalled(f"the board stopped sending data for {stall_timeout:g} s after "
                           f"{state['samples']} samples")


# ---------------------------------------------------------------------------------------------
# Camera frames: one PNG and one JSON sidecar per frame, saved as it arrives


@dataclass
class FrameCaptureResult:
    folder: Path  # where the frames went
    files: list[Path]  # the PNGs, in the order they arrived (each with its .json)
    lost_frames: int  # gaps in the board's frame numbers (damaged frames included)
    bad_frames: int  # frames that arrived damaged (checksum) and were skipped
    corrupted: int  # other damaged or unreadable lines
    interrupted: bool
    reason: str = ""
    board: str = ""
    note: str = ""  # virtual board: when it could not show the label's pictures
    sensor: str = "camera"

    @property
    def frames(self) -> int:
        return len(self.files)


FRAME_STEM = "frame"  # the stem's first word for frames captured without a label


def _png(image: np.ndarray) -> bytes:
    import io

    from PIL import Image  # Pillow comes with matplotlib; only camera capture needs it

    buffer = io.BytesIO()
    # Light compression: a 2-core laptop keeps up with the stream; files grow a little.
    Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _claim_frame(folder: Path, prefix: str, n: int) -> tuple[Path, Path, int]:
    """``<prefix>_<n>`` from ``n`` on, its sidecar created exclusively (never overwriting)."""
    while True:
        stem = f"{prefix}_{n:04d}"
        png, sidecar = folder / f"{stem}.png", folder / f"{stem}.json"
        if not png.exists():
            try:
                with open(sidecar, "x", encoding="utf-8"):
                    return png, sidecar, n
            except FileExistsError:
                pass
        n += 1


def capture_frames(port: Any, label: str | None, out_dir: Path | str, frames: int | None = None,
                   seconds: float | None = None, progress: bool = True,
                   baud: int = protocol.BAUD_RATE, header_timeout: float = HEADER_TIMEOUT_S,
                   stall_timeout: float = STALL_TIMEOUT_S, group: str | None = None,
                   on_message: Callable[[str], Any] | None = None,
                   **virtual_kwargs: Any) -> FrameCaptureResult:
    """Save camera frames as PNGs in ``out_dir/<label>/`` (no label: in ``out_dir``), each with
    a JSON sidecar, until ``frames`` are saved or ``seconds`` have passed (give one or both).

    Each frame is written (PNG, then its sidecar, each through a temporary file) as soon as it
    arrives, so a pulled cable, Ctrl-C or a crash loses no frame already saved. A frame that
    arrives damaged (checksum) is skipped, counted in ``bad_frames`` and reported through
    ``on_message`` (default: stderr when ``progress``). ``group``: who or which scene (the
    sidecar's ``group``): ``load_folder``-style loaders keep a group in one split.
    ``port`` and ``virtual_kwargs`` as for ``capture``; the virtual camera shows the label's
    pictures when its source has that label."""
    from tinyml_edu import __version__

    if label is not None and not LABEL_PATTERN.fullmatch(label):
        raise CaptureError(_("label {label} must be letters, digits, '_', '-' or '.' (it names "
                             "a folder and appears in prediction lines)").format(label=repr(label)))
    if frames is None and seconds is None:
        raise CaptureError("say how many frames (--frames N) or for how long (--seconds S)")
    if frames is not None and (isinstance(frames, bool) or int(frames) != frames or frames < 1):
        raise CaptureError(f"frames must be a whole number >= 1, got {frames}")
    if seconds is not None and not seconds > 0:
        raise CaptureError(f"seconds must be > 0, got {seconds}")
    if group is not None:
        from tinyml_edu.voices import validate_pseudonym

        group = validate_pseudonym(group)
    if on_message is None:
        def on_message(text: str) -> None:
            if progress:
                sys.stderr.write(f"\n{text}\n")
                sys.stderr.flush()
    if port == VIRTUAL:
        virtual_kwargs.setdefault("sensor", "camera")
        if label is not None:
            virtual_kwargs.setdefault("label", label)
    folder = Path(out_dir) / label if label else Path(out_dir)
    port_name = port if isinstance(port, str) else getattr(port, "port", str(port))

    with _connection(port, baud, **virtual_kwargs) as ser:
        parser = protocol.StreamParser()
        header = _wait_for_header(ser, parser, header_timeout, "camera")
        if header.sensor != "camera":
            _stop_quietly(ser)
            raise CaptureError(_("the board streams {streamed} data, not {sensor}: upload the "
                                 "{sensor} capture sketch or use --sensor {streamed}").format(
                                     streamed=header.sensor, sensor="camera"))
        folder.mkdir(parents=True, exist_ok=True)
        board = getattr(ser, "virtual_board", None)
        note = board.stream_note if board is not None else ""
        prefix = (f"{group + '_' if group else ''}{label or FRAME_STEM}_"
                  f"{datetime.now().strftime('%Y%m%d-%H%M%S')}")
        common: dict[str, Any] = {"format": "tinyml-edu capture 1", "sensor": "camera",
                                  "board": header.board, "rate": header.rate,
                                  "session": prefix, "port": port_name,
                                  "tinyml_edu": __version__}
        if label:
            common["label"] = label
        if group:
            common["group"] = group
        if board is not None:
            common["virtual_source"] = board.stream_description
            if note:
                common["note"] = note
        result = FrameCaptureResult(folder, [], 0, 0, 0, False, "", header.board, note)
        show = _FrameProgress(label or FRAME_STEM, frames, progress)
        ctrl_c = {"stop": False}
        try:
            with _ctrl_c_sets(ctrl_c):
                _record_frames(ser, parser, result, common, prefix, frames, seconds,
                               stall_timeout, show, ctrl_c, on_message)
        except Disconnected:
            result.interrupted = True
            result.reason = f"board disconnected after {result.frames} frames"
        except KeyboardInterrupt:
            result.interrupted = True
            result.reason = f"stopped with Ctrl-C after {result.frames} frames"
        except _Stalled as err:
            result.interrupted, result.reason = True, str(err)
        finally:
            show.show(result, final=True)
        if not result.interrupted:
            _stop_quietly(ser)
    return result


class _FrameProgress:
    def __init__(self, label: str, target: int | None, enabled: bool) -> None:
        self.label, self.target, self.enabled = label, target, enabled
        self.last = 0.0

    def show(self, result: FrameCaptureResult, final: bool = False) -> None:
        if not self.enabled or (not final and time.monotonic() - self.last < 0.25):
            return
        self.last = time.monotonic()
        of = f" / {self.target}" if self.target else ""
        sys.stderr.write(f"\r{self.label}: {result.frames}{of} frames saved "
                         f"({result.lost_frames} lost, {result.bad_frames} damaged)  ")
        if final:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _record_frames(ser: Any, parser: protocol.StreamParser, result: FrameCaptureResult,
                   common: dict[str, Any], prefix: str, frames: int | None,
                   seconds: float | None, stall_timeout: float, show: _FrameProgress,
                   ctrl_c: dict[str, bool], on_message: Callable[[str], Any]) -> None:
    expected: int | None = None  # the next seq; None until the first frame
    deadline = None if seconds is None else time.monotonic() + seconds
    last_frame = time.monotonic()
    n = 1
    while (frames is None or result.frames < frames) and (
            deadline is None or time.monotonic() < deadline):
        if ctrl_c["stop"]:
            raise KeyboardInterrupt
        for event in parser.feed(_read(ser)):
            if isinstance(event, protocol.Corrupted):
                if event.reason == protocol.CAMERA_CHECKSUM:
                    result.bad_frames += 1
                    on_message(f"frame skipped: it arrived damaged (checksum mismatch), "
                               f"{result.bad_frames} so far. The frames before and after it "
                               "are kept; many damaged frames mean a loose cable or a bad hub")
                else:
                    result.corrupted += 1
                continue
            if isinstance(event, protocol.Header):
                expected = None  # a reset board counts from 0 again
                continue
            if not isinstance(event, protocol.CameraFrame):
                continue
            gap = 0 if expected is None else (event.seq - expected) % 65536
            expected = (event.seq + 1) % 65536
            result.lost_frames += gap
            png, sidecar, n = _claim_frame(result.folder, prefix, n)
            write_atomic(png, _png(event.image()))
            _write_sidecar(sidecar, {
                "file": png.name, **common, "timestamp": _now(), "sequence": event.seq,
                "pixel_format": event.pixel_format, "width": event.width,
                "height": event.height, "frame": len(result.files), "lost_before": gap})
            result.files.append(png)
            last_frame = time.monotonic()
            n += 1
            if frames is not None and result.frames >= frames:
                break
        show.show(result)
        if time.monotonic() - last_frame > stall_timeout:
            raise _Stalled(f"the board stopped sending frames for {stall_timeout:g} s after "
                           f"{result.frames} frames")


# ---------------------------------------------------------------------------------------------
# Monitor


def format_event(event: protocol.Event) -> str | None:
    """How ``tinyml-edu monitor`` prints an event (None: not shown)."""
    if isinstance(event, protocol.Prediction):
        return f"{event.label:<14} {event.score:5.3f}  {event.ms:8.2f} ms"
    if isinstance(event, protocol.KeywordDetection):
        return f"heard {event.label!r} ({event.score:.3f}) at {event.time_ms / 1000:.2f} s"
    if isinstance(event, protocol.Centroids):
        where = " ".join(f"({r},{c})" for r, c in event.points) or "-"
        return f"  at (row,col) {where}"
    if isinstance(event, protocol.Comment):
        return f"# {event.text}"
    if isinstance(event, protocol.BoardError):
        return f"E {event.text}"
    if isinstance(event, protocol.Header):
        if event.sensor == "none":  # the sine demo: no sensor, no sample rate
            return f"# board {event.board}: no sensor (sine demo), input {','.join(event.columns)}"
        return (f"# board {event.board}: {event.sensor} at {event.rate:g} Hz, "
                f"{','.join(event.columns)}")
    if isinstance(event, protocol.Corrupted):
        if event.reason == protocol.PLAIN_TEXT:  # e.g. TFLM's own messages: worth reading
            return f"(plain text) {event.text}"
        return f"# (corrupted line skipped: {event.reason})"
    return None


def monitor(port: Any, seconds: float | None = None,
            on_event: Callable[[protocol.Event], Any] | None = None,
            baud: int = protocol.BAUD_RATE, **virtual_kwargs: Any) -> Iterator[protocol.Event]:
    """Yield a board's predictions, comments, errors and headers (not raw data) as they come,
    for ``seconds`` (None: until the caller stops iterating or Ctrl-C). Sends ``HELLO`` and
    ``INFER ON`` first. ``on_event`` is called with each event too (e.g. ``print``).
    Raises Disconnected if the board goes away."""
    with _connection(port, baud, **virtual_kwargs) as ser:
        parser = protocol.StreamParser()
        _send(ser, "HELLO")
        _send(ser, "INFER ON")
        deadline = None if seconds is None else time.monotonic() + seconds
        while deadline is None or time.monotonic() < deadline:
            for event in parser.feed(_read(ser)):
                if isinstance(event, protocol.ImuSample | protocol.AudioFrame
                              | protocol.CameraFrame):
                    continue
                if on_event is not None:
                    on_event(event)
                yield event


def predictions(port: Any, n: int, timeout: float = 10.0, **virtual_kwargs: Any
                ) -> list[protocol.Prediction]:
    """The first ``n`` predictions the board prints (within ``timeout`` seconds)."""
    found: list[protocol.Prediction] = []
    said: list[str] = []
    events = monitor(port, seconds=timeout, **virtual_kwargs)
    try:
        for event in events:
            if isinstance(event, protocol.Prediction):
                found.append(event)
                if len(found) >= n:
                    return found
            elif isinstance(event, protocol.BoardError | protocol.Comment) or (
                    isinstance(event, protocol.Corrupted) and event.reason == protocol.PLAIN_TEXT):
                said.append(format_event(event) or "")
    finally:
        events.close()
    hint = f" The board said: {' | '.join(said[-4:])}" if said else ""
    raise CaptureError(f"only {len(found)} of {n} predictions in {timeout:g} s: is a model "
                       f"deployed and inference on?{hint}")
