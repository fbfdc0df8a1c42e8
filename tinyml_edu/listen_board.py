"""`tinyml-edu listen RUN --port PORT|virtual`: the keywords a board hears, from its K lines.

A deployed keyword model listens all the time: every ``hop_ms`` it runs on the last second of
audio and its posterior smoother (``tinyml_edu_listen.c``, the C copy of
``listen.PosteriorSmoother``) prints a ``K`` line for each keyword it detects
(docs/serial-protocol.md). This collects them as ``listen.Detection`` (time = the board's
``time_ms`` / 1000), the JSON of the host's ``tinyml-edu listen RUN RECORDING``.

``--port virtual --source RECORDING``: the virtual board is reset and hears the recording once,
from its first sample, counting time in samples as the sketch does, so its detections are the
host's on the same file (the test checks that they are equal).

Kept apart from ``listen`` so that the host's listening never imports the serial stack.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tinyml_edu import capture, protocol
from tinyml_edu.errors import InputError, MissingFileError
from tinyml_edu.listen import Detection, Listener

QUIET_READS = 4  # empty reads (of capture.READ_TIMEOUT_S) after the source ended: all is read


@dataclass
class BoardListening:
    detections: list[Detection]
    seconds: float  # how long the host listened (wall clock)
    source_ended: bool = False  # the virtual board's recording was heard to its end
    notes: list[str] = field(default_factory=list)  # what the board said: errors, comments


def listen_to_board(run_dir: Path | str, port: str, seconds: float | None = None,
                    source: Path | str | None = None, speed: float | None = None,
                    baud: int = protocol.BAUD_RATE,
                    on_detection: Callable[[Detection], object] | None = None,
                    flash_dir: Path | None = None) -> BoardListening:
    """The keywords a board with the run's model reports in ``seconds`` (the virtual board with
    a ``source`` recording: until it has played it, unless ``seconds`` is shorter)."""
    listener = Listener.from_run(run_dir)  # an audio keyword run, or a clear error
    if seconds is not None and seconds <= 0:
        raise InputError(f"seconds must be positive, got {seconds:g}")
    options: dict[str, object] = {}
    if port == capture.VIRTUAL:
        _check_virtual_flash(listener, flash_dir)
        options.update(sensor="audio", **({"flash_dir": flash_dir} if flash_dir else {}))
        if source is not None:
            options["source"] = str(_check_recording(source, listener.rate))
        elif seconds is None:
            raise InputError("give --seconds (the virtual board's data set plays on a loop) or "
                             "--source RECORDING (heard once)")
        if speed is not None:
            options["speed"] = speed
    else:
        if source is not None or speed is not None:
            raise InputError("--source and --speed only apply to --port virtual")
        if seconds is None:
            raise InputError("give --seconds: how long to listen to the board")

    found: list[Detection] = []
    notes: list[str] = []
    started = time.monotonic()
    ended = False
    with capture.open_port(port, baud, **options) as ser:
        board = getattr(ser, "virtual_board", None)
        if board is not None:
            board.reset()  # the recording from its first sample, time from 0
        capture._send(ser, "INFER ON")
        parser = protocol.StreamParser()
        deadline = None if seconds is None else started + seconds
        quiet = 0
        while deadline is None or time.monotonic() < deadline:
            # Asked before reading: once it is over, a read that brings nothing means that
            # nothing is left on the line.
            over = board is not None and board.source_ended
            data = capture._read(ser)
            for event in parser.feed(data):
                if isinstance(event, protocol.KeywordDetection):
                    detection = Detection(event.time_ms / 1000.0, event.label, event.score)
                    found.append(detection)
                    if on_detection is not None:
                        on_detection(detection)
                elif isinstance(event, protocol.BoardError):
                    if board is not None:  # the virtual board will not get any further
                        raise InputError(f"the virtual board says: {event.text}")
                    notes.append(f"E {event.text}")
            quiet = quiet + 1 if over and not data else 0
            if quiet >= QUIET_READS:
                ended = True
                break
    return BoardListening(found, time.monotonic() - started, ended, notes)


def _check_virtual_flash(listener: Listener, flash_dir: Path | None) -> None:
    """The virtual board must run this run's model, deployed with its listen settings."""
    from tinyml_edu import virtual_board

    flashed = virtual_board.read_flash(flash_dir)
    deploy_hint = "tinyml-edu deploy RUN_DIR --port virtual"
    if flashed is None:
        raise InputError(f"no model is flashed on the virtual board: deploy the run first "
                         f"({deploy_hint})")
    model, meta = flashed
    if model != listener.model:
        raise InputError(f"the virtual board runs another model ({meta.get('project')}, flashed "
                         f"{meta.get('flashed', '?')}): deploy this run first ({deploy_hint})")
    if not meta.get("listen"):
        raise InputError("the virtual board's model was deployed without listen settings (by "
                         f"an older tinyml-edu?): deploy it again ({deploy_hint})")


def _check_recording(source: Path | str, rate: int) -> Path:
    """A recording the virtual board can play to the model as it is."""
    import soundfile

    path = Path(source)
    if not path.is_file():
        raise MissingFileError(f"{path} not found; give a WAV or FLAC recording")
    if path.suffix.lower() not in (".wav", ".flac"):
        raise InputError(f"{path}: the virtual board plays .wav or .flac recordings")
    file_rate = soundfile.info(str(path)).samplerate
    if file_rate != rate:
        raise InputError(f"{path} is {file_rate} Hz but the model listens at {rate} Hz: the "
                         "virtual board plays it as it is; resample it first (the host's "
                         "`tinyml-edu listen RUN RECORDING` does that for you)")
    return path
