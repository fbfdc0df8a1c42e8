"""The virtual board itself: a pseudo-terminal served by a thread that plays the firmware."""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tinyml_edu import protocol
from tinyml_edu.virtual_board import bugs
from tinyml_edu.virtual_board.errors import VirtualBoardError
from tinyml_edu.virtual_board.firmware import (
    FIRMWARE_VERSION,
    MODES,
    BootState,
    Fault,
    Windows,
    corrupt,
    model_problem,
)
from tinyml_edu.virtual_board.flash import default_flash_dir, erase, flash, read_flash, window_info
from tinyml_edu.virtual_board.line import NO_PTY_MESSAGE, PtyLine
from tinyml_edu.virtual_board.model import ArenaTooSmall, ModelRunner
from tinyml_edu.virtual_board.streams import (
    SENSOR_KINDS,
    SINE_STEPS,
    SensorStream,
    load_stream,
    sensor_choices,
)

OUTPUT_LIMIT = 64 * 1024  # bytes waiting for the host before the sensor clock pauses
MAX_CHUNKS_PER_TURN = 256  # keeps commands answered while catching up

class VirtualBoard:
    """A board on a pseudo-terminal: ``with VirtualBoard() as board: serial.Serial(board.port)``.

    sensor: ``imu``, ``audio``, ``camera`` or ``none`` (the sine demo), or any sensor registered in
    ``streams.SENSOR_KINDS``; default: the flashed model's sensor, else ``imu``.
    source: a shipped data set name (default ``gestures`` for IMU, ``kws`` or else ``wingbeats``
    for audio) or a folder of recordings (``<label>/*.csv`` or ``<label>/*.wav``; camera:
    pictures, ``<label>/*.png`` or ``.jpg``, or ``test-card``), played on a loop; or one
    recording file, played once from boot (``source_ended`` says when it is over).
    speed: how many times faster than real time the sensor plays (tests use 20-100).
    flash_dir: where flashed models live (default ``default_flash_dir()``).
    model_input: raw window -> float model input; default from the flashed ``feature_params``.
    mode: ``None`` (a working board), ``"garbage"`` (everything arrives as noise, as at a wrong
    baud rate; commands are not understood) or ``"silent"`` (no capture sketch: says nothing).
    label: play only this class of the source when it has it (``stream_note`` says when not).
    """

    def __init__(self, sensor: str | None = None, source: str | Path | None = None,
                 board_id: str = "virtual", speed: float = 1.0, flash_dir: Path | None = None,
                 seed: int = 0, model_input: Callable[[np.ndarray], np.ndarray] | None = None,
                 mode: str | None = None, label: str | None = None) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; use one of {MODES}")
        if sensor is not None and sensor not in SENSOR_KINDS:
            raise ValueError(f"unknown sensor {sensor!r}; use {sensor_choices()}")
        self.sensor_arg, self.source, self.board_id = sensor, source, board_id
        self.label = label
        self.speed, self.seed, self.mode = float(speed), seed, mode
        self.flash_dir = Path(flash_dir) if flash_dir is not None else default_flash_dir()
        self.model_input = model_input
        self.error: BaseException | None = None  # what killed the board thread, if anything
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._reboot_pending = False
        self._flush_on_reboot = False
        self._rebooted = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._line = PtyLine()
        self._base_stream: SensorStream | None = None  # what the sensor plays
        self._stream: SensorStream | None = None  # what the firmware reads: a bug may change it
        self._bug_streams: dict[str, tuple[SensorStream, str | None]] = {}
        self._boot = BootState()  # replaced whole on every boot
        self.unplugged = False

    # -- life cycle --------------------------------------------------------------------------

    @property
    def port(self) -> str | None:
        """The device path to open (``/dev/pts/N``), once started."""
        return self._line.port

    @property
    def _master(self) -> int | None:
        return self._line.master

    @property
    def _slave(self) -> int | None:
        return self._line.slave

    @property
    def stream_description(self) -> str:
        """What the sensor plays (once started)."""
        return self._stream.description if self._stream else ""

    @property
    def stream_note(self) -> str:
        """Why the sensor plays something else than asked (no such label), else ""."""
        return self._stream.note if self._stream else ""

    @property
    def sensor(self) -> str:
        return self._stream.sensor if self._stream else (self.sensor_arg or "imu")

    @property
    def source_ended(self) -> bool:
        """A recording played once (a file as ``source``) is over, and everything the board
        said about it is on the line for the host."""
        return self._boot.ended and not self._boot.out

    def start(self) -> str:
        """Open the pty, boot, serve it in a daemon thread; return the device path."""
        # Looked up on the package, where a test stands in for Windows by replacing it.
        from tinyml_edu import virtual_board as package

        if self._thread is not None:
            raise VirtualBoardError("this virtual board is already started")
        if not package.has_pty():
            raise VirtualBoardError(NO_PTY_MESSAGE)
        self._base_stream = self._stream = self._choose_stream()
        self._bug_streams.clear()
        port = self._line.open()
        self._reboot()
        self._thread = threading.Thread(target=self._serve, name=f"virtual-board {port}",
                                        daemon=True)
        self._thread.start()
        return port

    def _choose_stream(self) -> SensorStream:
        """The sensor and source asked for; else the flashed model's sensor and data set."""
        sensor = self.sensor_arg
        flashed = self._read_flash_safely()
        if sensor is None and flashed and flashed[1].get("sensor") in SENSOR_KINDS:
            sensor = flashed[1]["sensor"]
        source = self.source
        if (source is None and flashed and sensor == flashed[1].get("sensor")
                and sensor != "none"):
            from tinyml_edu import datasets

            project = str(flashed[1].get("dataset") or flashed[1].get("project") or "")
            if project in datasets.registry():
                source = project
        return load_stream(sensor, source, self.label)

    def stop(self) -> None:
        """Stop the board thread and close the pty (a host still reading sees a disconnect)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._line.close()

    def __enter__(self) -> VirtualBoard:
        if self._thread is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- flash -------------------------------------------------------------------------------

    def flash(self, model_bytes: bytes, meta: dict[str, Any], bug: str | None = None) -> Path:
        """Store the model in this board's flash folder and reboot with it (if running);
        ``bug``: a firmware bug of ``bugs.BUGS`` to flash with it."""
        folder = flash(model_bytes, meta, self.flash_dir, bug=bug)
        self._request_reboot()
        return folder

    def erase(self) -> None:
        erase(self.flash_dir)
        self._request_reboot()

    def reset(self) -> None:
        """Press the reset button: the board boots again (its stream restarts at the first
        sample) and what the host has not read yet is lost, as when a real board's USB port
        goes away. Returns once it has rebooted."""
        self._request_reboot(flush=True)

    def _request_reboot(self, flush: bool = False) -> None:
        """Reboot a running board and wait until it has (like an upload that ends with it)."""
        with self._lock:
            self._reboot_pending = True
            self._flush_on_reboot = self._flush_on_reboot or flush
            self._rebooted.clear()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            self._rebooted.wait(timeout=10)

    def _read_flash_safely(self) -> tuple[bytes, dict[str, Any]] | None:
        try:
            return read_flash(self.flash_dir)
        except (VirtualBoardError, OSError, ValueError):
            return None  # reported on boot as an E line

    # -- faults ------------------------------------------------------------------------------

    def inject(self, kind: str, after: int = 0) -> None:
        """Inject a fault after ``after`` more data frames (``D``, audio or ``P``):

        ``corrupt``: the next data frame goes out with a bad checksum (its seq is used up, so
        the host also sees one lost frame); ``garbage``: a line of random bytes (noise on the
        line); ``unplug``: the board vanishes, as if its USB cable were pulled."""
        fault = Fault(kind, after)
        with self._lock:
            self._faults.append(fault)

    # -- the firmware ------------------------------------------------------------------------

    def _reboot(self, flush: bool = False) -> None:
        """A fresh boot state, the flash loaded, the boot messages queued; ``flush``: drop what
        the host has not read (a reset)."""
        if flush:
            self._line.flush_unread()
        self._boot = BootState()
        try:
            flashed: tuple[bytes, dict[str, Any]] | None = read_flash(self.flash_dir)
        except (VirtualBoardError, OSError, ValueError) as err:
            flashed, self._boot.problem = None, f"flash unreadable: {err}"
        bug = flashed[1].get("bug") if flashed else None
        stream_problem = self._use_stream_of(bug)
        stream = self._stream
        assert stream is not None
        self._emit(protocol.encode_comment(
            f"tinyml-edu virtual board {FIRMWARE_VERSION} ({self.board_id}): {stream.sensor} "
            f"from {stream.description}, speed x{self.speed:g}"))
        self._load_model(flashed, stream_problem)
        self._announce()

    def _use_stream_of(self, bug: str | None) -> str | None:
        """Read the sensor as firmware with ``bug`` does; why the bug cannot apply, or None."""
        base = self._base_stream
        assert base is not None
        if bug is None or bug not in bugs.BUGS:
            self._stream = base
            return None if bug is None else (f"deploy.json names the unknown bug {bug!r}; the "
                                             f"virtual board knows: {bugs.bug_list()}")
        if bug not in self._bug_streams:  # resampling a long recording takes a moment
            self._bug_streams[bug] = bugs.bug_stream(base, bug)
        self._stream, problem = self._bug_streams[bug]
        return problem

    def _load_model(self, flashed: tuple[bytes, dict[str, Any]] | None,
                    stream_problem: str | None) -> None:
        stream, boot = self._stream, self._boot
        assert stream is not None and self._base_stream is not None
        if boot.problem:  # the flash could not be read
            self._emit(protocol.encode_error(boot.problem))
            return
        if flashed is None:
            self._emit(protocol.encode_comment(
                "no model flashed: capture only (deploy one with `tinyml-edu deploy ... "
                "--port virtual`)"))
            return
        model, meta = flashed
        bug = meta.get("bug")
        if meta.get("sensor") == "none":  # also a sine model flashed before the board ran it
            meta = {**window_info(meta), **meta}
        # The sensor as the model was trained on it: a sample_rate bug is not the model's fault,
        # and the sketch does not check the rate.
        problem = model_problem(meta, self._base_stream) or stream_problem
        if problem is None:
            try:
                boot.runner = ModelRunner(model, meta, self.model_input)
            except ArenaTooSmall as err:
                self._allocation_failed(bugs.tflm_allocation_output(model, err.reserved), meta,
                                        err.reserved)
                return
            except (VirtualBoardError, ValueError, RuntimeError) as err:
                problem = str(err)
        if problem is None and bug == "missing_op":  # the model itself loads: it is the sketch
            boot.runner = None
            self._allocation_failed(bugs.missing_op_output(model), meta)
            return
        if problem is None and bug == "arena_too_small":
            runner = boot.runner
            assert runner is not None
            needed = runner.arena_used or int(meta.get("arena_bytes") or 0)
            arena = bugs.too_small_arena(needed)
            boot.runner = None
            self._allocation_failed(bugs.tflm_allocation_output(model, arena), meta, arena)
            return
        if problem is None and bug == "wrong_input_scale":
            runner = boot.runner
            assert runner is not None
            runner.input_quantization = bugs.wrong_input_quantization(
                runner.interp.input.scale, runner.interp.input.zero_point)
        if problem is not None:
            boot.problem = "cannot run the flashed model: " + problem.replace("\n", " ")
            self._emit(protocol.encode_error(boot.problem))
            return
        runner = boot.runner
        assert runner is not None
        if meta.get("listen") and stream.sensor == "audio" and not runner.regression:
            meta = self._start_listening(meta, runner.labels)
        boot.infer_meta = meta
        channels = (meta.get("feature_params") or {}).get("channels")
        boot.channel_index = ([stream.columns.index(c) for c in channels]
                              if stream.sensor == "imu" and channels else None)
        self._emit(protocol.encode_comment(self._model_text()))
        if runner.backend != "TFLM":
            self._emit(protocol.encode_comment(
                f"inference with {runner.backend} on this computer, NOT TFLM (tflite-micro has "
                "no wheel for this OS): same int8 results, but timings are not the board's"))
        self._set_infer(True)

    def _allocation_failed(self, tflm_output: bytes, meta: dict[str, Any],
                           arena: int | None = None) -> None:
        """As the sketch when AllocateTensors() fails: TFLM's own lines (plain text, from its
        DebugLog), then the sketch's E line; no model runs."""
        if arena is None:  # what the sketch reserves: deploy's arena_bytes rounded up to 16
            arena = (int(meta.get("arena_bytes") or 0) + 15) // 16 * 16
        self._emit(tflm_output)
        self._boot.problem = bugs.ALLOCATE_FAILED.format(arena=arena)
        self._emit(protocol.encode_error(self._boot.problem))

    def _start_listening(self, meta: dict[str, Any], labels: list[str]) -> dict[str, Any]:
        """A keyword model: the sketch's posterior smoother (here the host's own), run every
        ``hop_ms`` of the deploy settings; returns ``meta`` with that stride."""
        from tinyml_edu.errors import InputError
        from tinyml_edu.listen import ListenParams, PosteriorSmoother

        stream = self._base_stream
        assert stream is not None
        try:
            params = ListenParams.from_dict(dict(meta["listen"]))
            self._boot.smoother = PosteriorSmoother(labels, params)
        except (InputError, TypeError) as err:
            self._emit(protocol.encode_error(f"the listen settings of deploy.json are not "
                                             f"usable ({err}): no K lines"))
            return meta
        # As the sketch's kHop: rate * LISTEN_HOP_MS / 1000 samples.
        return {**meta, "stride": int(stream.rate) * params.hop_ms // 1000}

    def _model_text(self) -> str:
        runner, meta = self._boot.runner, self._boot.infer_meta
        assert runner is not None
        # As the sketch's "model ready" line: the arena TFLM uses of the one the sketch reserves.
        runtime = (f"TFLM (tflite-micro) arena {runner.arena_used} of {runner.arena_reserved} "
                   "bytes used" if runner.backend == "TFLM" else runner.backend)
        if runner.regression:
            return (f"model {meta.get('project', 'model')}: sine demo, x sweeps 0..2pi in "
                    f"{SINE_STEPS} steps, P lines give y = model(x); {runtime}")
        listening = "; listening (K lines)" if self._boot.smoother is not None else ""
        if meta.get("sensor") == "camera":  # as the sketch's comment: the model's frame
            frame = (meta.get("feature_params") or {}).get("frame", "?")
            what = (f"counts {runner.labels[-1] if runner.labels else 'objects'} (P: the count, "
                    "C: where)" if runner.describe is not None
                    else f"labels {','.join(runner.labels) or '-'}")
            return (f"model {meta.get('project', 'model')}: {what}; model frame {frame}x{frame} "
                    f"from the centred square of each camera frame; {runtime}")
        return (f"model {meta.get('project', 'model')}: labels {','.join(runner.labels) or '-'}; "
                f"window {meta['window']}, stride {meta['stride']}{listening}; {runtime}")

    def _restart_clock(self) -> None:
        """The sensor's first sample is due one sample period from now."""
        self._boot.clock_start, self._boot.clock_pos = time.monotonic(), 0

    def _set_infer(self, on: bool) -> None:
        """Inference on (windows from the current sample) or off."""
        boot, stream = self._boot, self._stream
        assert stream is not None
        if on and not self._active():
            self._restart_clock()
        if on and boot.smoother is not None:
            boot.smoother.reset()  # as the sketch: a fresh start after a pause
        boot.windows = None
        if on and boot.runner is not None:
            boot.windows = Windows(int(boot.infer_meta["window"]), int(boot.infer_meta["stride"]),
                                   stream.take(0, 0), boot.pos)

    def _header(self) -> bytes:
        s = self._stream
        assert s is not None
        rate = 0 if s.sensor == "none" else s.rate  # the sine demo samples nothing: rate=0
        return protocol.encode_header(self.board_id, s.sensor, rate, s.columns, s.units)

    def _announce(self) -> None:
        """The header; the sine demo first says how to read its P lines, as the sketch does."""
        if self.sensor == "none":
            self._emit(protocol.encode_comment(
                "sine demo: P lines report label y and score = predicted sin(x)"))
        self._emit(self._header())

    def _emit(self, data: bytes) -> None:
        if self.mode is None:
            self._boot.out += data

    def _serve(self) -> None:
        try:
            while not self._stop.is_set():
                with self._lock:
                    reboot, self._reboot_pending = self._reboot_pending, False
                    flush, self._flush_on_reboot = self._flush_on_reboot, False
                if reboot:
                    self._reboot(flush)
                    self._rebooted.set()
                if self._apply_faults(data_frame=False) == "unplug":
                    return
                self._produce()
                if self.unplugged:
                    return
                self._write_out()
                timeout = self._next_due_in()
                master = self._master
                if master is None:
                    return
                wlist = [master] if self._boot.out else []
                readable, _, _ = select.select([master], wlist, [], timeout)
                if readable:
                    self._read_commands()
        except BaseException as err:  # keep it for the tests; a real board would just hang
            self.error = err
            try:
                if self._master is not None:
                    os.write(self._master, protocol.encode_error(f"virtual board crashed: {err}"))
            except OSError:
                pass

    # -- the sensor clock --------------------------------------------------------------------

    def _active(self) -> bool:
        boot = self._boot
        return self.mode == "garbage" or ((boot.streaming or boot.infer) and not boot.ended)

    def _due(self, s: SensorStream) -> float:
        """When the sensor's next chunk is due (monotonic seconds)."""
        boot = self._boot
        return boot.clock_start + (boot.clock_pos + s.chunk) / (s.rate * self.speed)

    def _next_due_in(self) -> float:
        if not self._active():
            return 0.05
        if len(self._boot.out) >= OUTPUT_LIMIT:
            return 0.01
        s = self._stream
        assert s is not None
        return min(0.05, max(0.0, self._due(s) - time.monotonic()))

    def _produce(self) -> None:
        s, boot = self._stream, self._boot
        assert s is not None
        now = time.monotonic()
        if not self._active():
            return
        turns = 0
        while turns < MAX_CHUNKS_PER_TURN and not self.unplugged:
            if len(boot.out) >= OUTPUT_LIMIT:
                # The host is not reading: wait for it (pause the clock) rather than drop.
                self._restart_clock()
                return
            if self._due(s) > now:
                return
            boot.clock_pos += s.chunk
            turns += 1
            if self.mode == "garbage":
                boot.out += self._garbage(max(8, s.kind.noise_bytes), newlines=True)
                continue
            n = s.chunk if s.loop else min(s.chunk, len(s.data) - boot.pos)
            chunk = s.take(boot.pos, n)
            boot.pos += n
            if boot.streaming:
                self._send_data(chunk)
            if boot.infer:
                self._run_inference(chunk)
            if not s.loop and boot.pos >= len(s.data):
                boot.ended = True
                self._emit(protocol.encode_comment(
                    f"end of {s.description}: the sensor is silent now (reset plays it again)"))
                return

    def _send_data(self, chunk: np.ndarray) -> None:
        s, boot = self._stream, self._boot
        assert s is not None and s.kind.encode is not None
        frame = s.kind.encode(boot.data_seq, chunk)
        boot.data_seq = (boot.data_seq + 1) % 65536
        self._send_frame(frame)

    def _send_frame(self, frame: bytes) -> None:
        fault = self._apply_faults(data_frame=True)
        if fault == "unplug":
            return
        if fault == "corrupt":
            frame = corrupt(frame)
        self._emit(frame)

    def _run_inference(self, chunk: np.ndarray) -> None:
        boot = self._boot
        runner, windows = boot.runner, boot.windows
        assert runner is not None and windows is not None
        windows.add(chunk)
        while not self.unplugged and (raw := windows.ready()) is not None:
            if boot.channel_index is not None:
                raw = raw[:, boot.channel_index]
            label, score, ms = runner(raw)
            self._send_frame(protocol.encode_prediction(boot.pred_seq, label, score, ms))
            if runner.centroids is not None:  # a counting model: where, as the sketch's C line
                self._emit(protocol.encode_centroids(boot.pred_seq, runner.centroids))
            boot.pred_seq = (boot.pred_seq + 1) % 65536
            if boot.smoother is not None:
                self._listen(windows.next_end, runner.scores)
            windows.advance()
        windows.trim()

    def _listen(self, end_sample: int, scores: np.ndarray) -> None:
        """The smoother after an inference on the samples before ``end_sample`` (counted from
        boot, as the sketch counts them from start-up); a detection is a K line."""
        boot, stream = self._boot, self._base_stream  # the sketch's clock: the model's rate
        assert boot.smoother is not None and stream is not None
        time_ms = end_sample * 1000 // int(stream.rate)
        heard = boot.smoother.update(time_ms, scores)
        if heard is not None:
            self._send_frame(protocol.encode_keyword(boot.keyword_seq, heard.label, heard.score,
                                                     time_ms))
            boot.keyword_seq = (boot.keyword_seq + 1) % 65536

    # -- faults ------------------------------------------------------------------------------

    def _apply_faults(self, data_frame: bool) -> str | None:
        """Count a data frame against waiting faults; return the fault that fires now."""
        with self._lock:
            if not self._faults:
                return None
            fired = None
            for fault in self._faults:
                if data_frame and fault.frames_left > 0:
                    fault.frames_left -= 1
                elif fault.frames_left <= 0 and fired is None:
                    if fault.kind == "corrupt" and not data_frame and self._active():
                        continue  # wait for the next data frame to corrupt
                    fired = fault
            if fired is None:
                return None
            self._faults.remove(fired)
        if fired.kind == "unplug":
            self.unplugged = True
            self._line.drain(self._boot.out, self._stop)
            self._line.close()
        elif fired.kind == "garbage":
            self._boot.out += self._garbage(64, newlines=False) + b"\n"
        elif fired.kind == "corrupt" and not data_frame:
            self._boot.out += corrupt(self._header())  # idle board: corrupt what it can
        return fired.kind

    def _garbage(self, n: int, newlines: bool) -> bytes:
        data = self._rng.integers(0, 256, n, dtype=np.uint8)
        if not newlines:  # one self-contained corrupted line
            data[(data == 0x0A) | (data == protocol.SYNC[0])] = 0x3F
        return data.tobytes()

    # -- the serial line ---------------------------------------------------------------------

    def _write_out(self) -> None:
        self._line.write(self._boot.out)

    def _read_commands(self) -> None:
        data, boot = self._line.read(), self._boot
        if not data or self.mode is not None:
            return  # at a wrong baud rate (or without the sketch) nothing is understood
        boot.commands += data
        while b"\n" in boot.commands:
            line, _, rest = bytes(boot.commands).partition(b"\n")
            boot.commands = bytearray(rest)
            self._command(line.strip().decode("ascii", "replace").upper())
        if len(boot.commands) > 256:
            boot.commands.clear()

    def _command(self, command: str) -> None:
        boot = self._boot
        if not command:
            return
        if command == "HELLO":
            self._announce()
            if boot.runner is not None:
                self._emit(protocol.encode_comment(
                    f"{self._model_text()}; inference {'on' if boot.infer else 'off'}"))
            elif boot.problem:
                self._emit(protocol.encode_error(boot.problem))
        elif command == "START":
            self._announce()
            if self._stream is not None and self._stream.kind.encode is None:
                self._emit(protocol.encode_comment(
                    "the sine demo has no sensor to stream; its P lines are its output"))
                return
            if not self._active():
                self._restart_clock()
            boot.streaming, boot.data_seq = True, 0
        elif command == "STOP":
            boot.streaming = False
            self._emit(protocol.encode_comment("stopped"))
        elif command in ("INFER ON", "INFER OFF"):
            if boot.runner is None:
                self._emit(protocol.encode_error(boot.problem or "no model flashed: deploy one "
                                                 "first"))
            else:
                if (command == "INFER ON") != boot.infer:  # already on: keep its windows
                    self._set_infer(command == "INFER ON")
                self._emit(protocol.encode_comment(f"inference {command.split()[1].lower()}"))
        else:
            self._emit(protocol.encode_error(f"unknown command {command[:40]!r}"))


def run_forever(**kwargs: Any) -> None:  # pragma: no cover - for manual use
    """``python -m tinyml_edu.virtual_board``: print the port and serve until Ctrl-C."""
    with VirtualBoard(**kwargs) as board:
        print(f"virtual board on {board.port} (Ctrl-C to stop)", flush=True)
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
