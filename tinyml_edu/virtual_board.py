"""A virtual board: the firmware's serial protocol on a pseudo-terminal, for classrooms with
fewer boards than students and for CI.

``VirtualBoard.start()`` opens a pty and returns its device path (``/dev/pts/7``), which pyserial,
``tinyml-edu capture`` and ``monitor`` open exactly like a real board's ``/dev/ttyACM0``. A
daemon thread plays the "sensor": the windows of a shipped data set's test split back to back
(or a folder of recordings), paced in real time divided by ``speed``, and answers the commands of
``docs/serial-protocol.md``.

Like a board's flash, ``flash()`` stores ``model.tflite`` + ``deploy.json`` in a folder that
outlives the process (``~/.tinyml-edu/virtual-board/`` or ``$TINYML_EDU_VIRTUAL_FLASH``); a board
started with a model there boots with it, inference on, and prints ``P`` lines computed by the
TFLM runtime (tflite-micro) on the streamed windows.

Window numbering, for anyone checking predictions: inference starts at boot, at stream sample
0; prediction ``k`` is computed on stream samples ``[k * stride, k * stride + window)`` (after
``INFER OFF`` + ``INFER ON`` the windows restart at the sample of that moment). The stream
restarts at its first sample on every boot (``start``, ``flash``, ``erase``).

A model deployed without a sensor (``sensor none``, the ``sine`` project) runs the sketch's
hello-world sine demo instead: x steps through 0..2π in 100 steps, one every 20 ms (divided by
``speed``), and prediction ``k`` is ``P k y <model(x)> <ms>`` for x = 2π (k mod 100) / 100.

The board never drops frames on its own: when the host does not read, it waits (the sensor
clock pauses). Faults are injected on purpose with ``inject``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import select
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from tinyml_edu import protocol
from tinyml_edu.errors import TinyMLEduError
from tinyml_edu.quantize import dequantize, quantize_input

FLASH_ENV_VAR = "TINYML_EDU_VIRTUAL_FLASH"
MODEL_FILE = "model.tflite"
META_FILE = "deploy.json"
FIRMWARE_VERSION = "1.0"
AUDIO_FRAME_SAMPLES = 512
AUDIO_STRIDE_S = 0.25  # an audio model runs on its clip-long window every 250 ms
DEFAULT_SOURCES = {"imu": ("gestures",), "audio": ("kws", "wingbeats")}
SENSORS = ("imu", "audio", "none")  # none: the sine demo, which reads no sensor
SINE_STEPS = 100  # the sketch's kInferencesPerCycle: x steps through 0..2*pi in 100 steps
SINE_PERIOD_S = 0.020  # the sketch's kPeriodMs: one inference every 20 ms
FAULTS = ("corrupt", "garbage", "unplug")
MODES = (None, "garbage", "silent")
OUTPUT_LIMIT = 64 * 1024  # bytes waiting for the host before the sensor clock pauses
MAX_CHUNKS_PER_TURN = 256  # keeps commands answered while catching up

NO_PTY_MESSAGE = ("the virtual board needs a pseudo-terminal, which Windows does not have: run "
                  "it on Linux or macOS, or inside WSL (Windows Subsystem for Linux)")


class VirtualBoardError(TinyMLEduError):
    """The virtual board cannot start or cannot take a model; the message says why."""


def has_pty() -> bool:
    """Pseudo-terminals exist on Linux and macOS (and in WSL), not on Windows."""
    return os.name != "nt" and hasattr(os, "openpty")


# ---------------------------------------------------------------------------------------------
# Flash storage (shared by every VirtualBoard and by `tinyml-edu deploy --port virtual`)


def default_flash_dir() -> Path:
    """``$TINYML_EDU_VIRTUAL_FLASH`` or ``~/.tinyml-edu/virtual-board``."""
    env = os.environ.get(FLASH_ENV_VAR)
    return Path(env) if env else Path.home() / ".tinyml-edu" / "virtual-board"


def sensor_of(feature_params: dict[str, Any]) -> str | None:
    if "kind" in feature_params:
        return "audio"
    if "channels" in feature_params:
        return "imu"
    return None


def _window_info(meta: dict[str, Any]) -> dict[str, Any]:
    """Window and stride in stream samples, from ``feature_params`` (unless given already)."""
    fp = meta.get("feature_params") or {}
    sensor = meta.get("sensor")
    info: dict[str, Any] = {}
    if sensor == "imu" and "window" in fp:
        info = {"window": int(fp["window"]), "stride": int(fp.get("stride", fp["window"])),
                "rate": float(fp.get("sample_rate", 100))}
    elif sensor == "audio" and "kind" in fp:
        from dataclasses import fields

        from tinyml_edu.features import AudioFeatureParams

        # A project may add its own keys (e.g. kws's normalisation): keep the front end's.
        known = {f.name for f in fields(AudioFeatureParams)}
        params = AudioFeatureParams(**{k: v for k, v in fp.items() if k in known})
        info = {"window": params.clip_samples,
                "stride": int(round(params.sample_rate * AUDIO_STRIDE_S)),
                "rate": float(params.sample_rate)}
    elif sensor == "none":
        info = {"window": 1, "stride": 1}  # the sine demo: one x per inference
    return {**info, **{k: meta[k] for k in ("window", "stride") if meta.get(k)}}


def flash(model_bytes: bytes, meta: dict[str, Any], flash_dir: Path | str | None = None) -> Path:
    """Store a model the way a board's flash would: ``model.tflite`` and ``deploy.json``.

    ``meta``: ``project``, ``labels``, ``sensor`` (derived from ``feature_params`` when left out),
    ``feature_params``, ``arena_bytes`` (measured with TFLM when left out); ``window`` and
    ``stride`` are derived. A running board must be rebooted to see it (``VirtualBoard.flash``
    does that). Returns the flash folder."""
    model_bytes = bytes(model_bytes)
    if len(model_bytes) < 8 or model_bytes[4:8] != b"TFL3":
        raise VirtualBoardError("not a .tflite model (no TFL3 identifier): flash the file that "
                                "`tinyml-edu run` wrote, e.g. runs/gestures/model_int8.tflite")
    folder = Path(flash_dir) if flash_dir is not None else default_flash_dir()
    meta = dict(meta)
    meta.setdefault("project", "model")
    meta["labels"] = [str(label) for label in meta.get("labels") or []]
    meta["feature_params"] = dict(meta.get("feature_params") or {})
    if not meta.get("sensor") or meta["sensor"] == "none":
        meta["sensor"] = sensor_of(meta["feature_params"]) or "none"
    if not meta.get("arena_bytes"):
        meta["arena_bytes"] = _measure_arena(model_bytes)
    meta.update(_window_info(meta))
    meta.update(model_bytes=len(model_bytes),
                model_sha256=hashlib.sha256(model_bytes).hexdigest(),
                flashed=datetime.now().astimezone().isoformat(timespec="seconds"))
    folder.mkdir(parents=True, exist_ok=True)
    _write_atomic(folder / MODEL_FILE, model_bytes)
    _write_atomic(folder / META_FILE, (json.dumps(meta, indent=2, default=str) + "\n").encode())
    return folder


def erase(flash_dir: Path | str | None = None) -> None:
    """Remove a flashed model (the board boots as a plain capture board)."""
    folder = Path(flash_dir) if flash_dir is not None else default_flash_dir()
    for name in (META_FILE, MODEL_FILE):
        (folder / name).unlink(missing_ok=True)


def read_flash(flash_dir: Path | str | None = None) -> tuple[bytes, dict[str, Any]] | None:
    """The flashed model and its metadata, or None when nothing is flashed."""
    folder = Path(flash_dir) if flash_dir is not None else default_flash_dir()
    meta_path, model_path = folder / META_FILE, folder / MODEL_FILE
    if not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if not model_path.is_file():
        raise VirtualBoardError(f"{meta_path} is there but {model_path} is missing: flash again")
    model = model_path.read_bytes()
    if meta.get("model_sha256") and hashlib.sha256(model).hexdigest() != meta["model_sha256"]:
        raise VirtualBoardError(f"{model_path} does not match {META_FILE} (half-written?): "
                                "flash again")
    return model, meta


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _measure_arena(model_bytes: bytes) -> int:
    from tinyml_edu import profile

    try:
        if profile.tflm_available():
            return profile.tflm_arena_bytes(model_bytes)
        return profile.estimate_arena_bytes(model_bytes)
    except (RuntimeError, ValueError) as err:
        raise VirtualBoardError(f"cannot measure the model's arena: {err}") from err


# ---------------------------------------------------------------------------------------------
# What the sensor plays


@dataclass
class SensorStream:
    """A recording played on a loop: IMU (n, channels) float or audio (n,) int16."""

    sensor: str
    rate: float
    columns: tuple[str, ...]
    units: tuple[str, ...]
    data: np.ndarray
    description: str
    note: str = ""  # e.g. that the data has no class of the label asked for

    @property
    def chunk(self) -> int:
        return AUDIO_FRAME_SAMPLES if self.sensor == "audio" else 1

    def take(self, start: int, n: int) -> np.ndarray:
        """Samples ``start .. start+n`` of the endless loop."""
        idx = (start + np.arange(n)) % len(self.data)
        return self.data[idx]


def _imu_units(columns: tuple[str, ...]) -> tuple[str, ...]:
    return tuple("g" if c[:1].lower() == "a" else "dps" if c[:1].lower() == "g" else "-"
                 for c in columns)


def sine_sweep() -> SensorStream:
    """The sine demo's "sensor": the x values the sketch feeds, one every 20 ms."""
    steps = np.arange(SINE_STEPS, dtype=np.float32)
    x = np.float32(6.2831853) * steps / np.float32(SINE_STEPS)  # in float32, as the sketch
    return SensorStream("none", 1 / SINE_PERIOD_S, ("x",), ("rad",), x.reshape(-1, 1),
                        f"the sine demo (x sweeps 0..2pi in {SINE_STEPS} steps, one every "
                        f"{SINE_PERIOD_S * 1000:g} ms)")


def load_stream(sensor: str | None, source: str | Path | None,
                label: str | None = None) -> SensorStream:
    """The sensor data of a board: a shipped data set's test split or a recordings folder
    (``none``: the sine demo's sweep of x, which takes no source). ``label``: play only that
    class when the data has it (a "yes" capture hears "yes"); else all, and ``note`` says so."""
    if sensor not in (None, *SENSORS):
        raise VirtualBoardError(f"unknown sensor {sensor!r}; use imu, audio or none")
    if sensor == "none":
        if source is not None:
            raise VirtualBoardError(f"the sine demo (sensor none) reads no sensor, so there is "
                                    f"nothing to play {source} into: leave out --source")
        return sine_sweep()
    if source is not None and Path(source).is_dir():
        return _folder_stream(sensor, Path(source), label)
    from tinyml_edu import datasets

    known = datasets.registry()
    if source is None:
        name = next((n for n in DEFAULT_SOURCES[sensor or "imu"] if n in known), None)
        if name is None:
            raise VirtualBoardError(f"no {sensor} data set is installed for the virtual board; "
                                    "give --source a folder of recordings")
    else:
        name = str(source)
        if name not in known:
            raise VirtualBoardError(
                f"unknown source {name!r}: give a shipped data set ({', '.join(known)}) or a "
                "folder with one sub-folder per label of .csv (IMU) or .wav (audio) recordings")
    ds = datasets.load(name)
    x, y = ds.split("test")
    x, note = _only_label(x, y, ds.info.classes, label, f"data set {name!r}")
    rate = float(ds.info.sample_rate or 0)
    if x.ndim == 3:
        kind = "imu"
        columns = tuple(ds.info.extra.get("channels") or [f"c{i}" for i in range(x.shape[2])])
        data = x.reshape(-1, x.shape[2]).astype(np.float32)
        units = _imu_units(columns)
    elif x.ndim == 2 and np.issubdtype(x.dtype, np.integer) and rate >= 1000:
        kind, columns, units = "audio", ("audio",), ("int16",)
        data = x.reshape(-1).astype(np.int16)
    else:
        raise VirtualBoardError(f"data set {name!r} is neither IMU windows nor audio clips")
    if sensor is not None and sensor != kind:
        raise VirtualBoardError(f"data set {name!r} is {kind} data, not {sensor}")
    which = f"label {label!r} of the " if label and not note else ""
    desc = f"{which}{name} test split ({len(x)} windows, {len(data)} samples at {rate:g} Hz)"
    return SensorStream(kind, rate, columns, units, data, desc, note)


def _only_label(x: np.ndarray, y: np.ndarray, classes: tuple[str, ...], label: str | None,
                what: str) -> tuple[np.ndarray, str]:
    """The windows of ``label`` when ``classes`` has it, else all with a note saying so."""
    if not label:
        return x, ""
    if label in classes and np.any(y == classes.index(label)):
        return x[y == classes.index(label)], ""
    return x, (f"{what} has no {label!r} recordings (it has {', '.join(classes) or 'none'}): "
               "the virtual board plays all of them")


def _folder_stream(sensor: str | None, folder: Path, label: str | None = None) -> SensorStream:
    note = ""
    pattern = "*"
    if label:
        labels = sorted(p.name for p in folder.iterdir() if p.is_dir())
        if label in labels:
            pattern = label
        else:
            note = (f"{folder} has no {label}/ folder (it has {', '.join(labels) or 'none'}): "
                    "the virtual board plays all of them")
    csvs = sorted(p for p in folder.glob(f"{pattern}/*.csv"))
    wavs = sorted(p for p in folder.glob(f"{pattern}/*")
                  if p.suffix.lower() in (".wav", ".flac"))
    kind = sensor or ("imu" if csvs else "audio")
    files = csvs if kind == "imu" else wavs
    if not files:
        ext = ".csv" if kind == "imu" else ".wav"
        raise VirtualBoardError(f"no {ext} recordings in {folder}/<label>/: record some with "
                                "`tinyml-edu capture` or use a shipped data set")
    if kind == "imu":
        columns: tuple[str, ...] | None = None
        parts, rate = [], 100.0
        for path in files:
            with open(path, encoding="utf-8") as f:
                header = tuple(h.strip() for h in f.readline().strip().split(","))
            if columns is None:
                columns = header
            elif header != columns:
                raise VirtualBoardError(f"{path} has columns {header}, others {columns}")
            values = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float32, ndmin=2)
            parts.append(values.reshape(-1, len(header)))
            sidecar = path.with_suffix(".json")
            if sidecar.is_file():
                rate = float(json.loads(sidecar.read_text(encoding="utf-8")).get("rate", rate))
        assert columns is not None
        data = np.concatenate(parts)
        units = _imu_units(columns)
    else:
        import soundfile

        clips, rates = [], set()
        for path in files:
            clip, file_rate = soundfile.read(path, dtype="int16", always_2d=True)
            clips.append(clip[:, 0])
            rates.add(file_rate)
        if len(rates) > 1:
            raise VirtualBoardError(f"recordings in {folder} have different rates {sorted(rates)}")
        data, rate = np.concatenate(clips), float(rates.pop())
        columns, units = ("audio",), ("int16",)
    if len(data) == 0:
        raise VirtualBoardError(f"the recordings in {folder} are empty")
    desc = f"{folder} ({len(files)} files, {len(data)} samples at {rate:g} Hz)"
    return SensorStream(kind, rate, columns, units, data, desc, note)


# ---------------------------------------------------------------------------------------------
# The flashed model


def default_model_input(meta: dict[str, Any]) -> Callable[[np.ndarray], np.ndarray]:
    """Raw window -> float model input: the project's own feature function when the model came
    from a known project, else the generic features named by ``feature_params``."""
    from tinyml_edu import features, projects

    if meta.get("sensor") == "none":
        return lambda window: np.asarray(window, np.float32).reshape(-1)  # the sine demo's x
    fp = meta.get("feature_params") or {}
    project = projects.PROJECTS.get(meta.get("project", ""))
    if project is not None and project.features is not None:
        return lambda window: project.features(window[np.newaxis], fp)[0]
    if "kind" in fp:
        audio_params = features.AudioFeatureParams.from_dict(fp)
        return lambda window: features.audio_features(window, audio_params)
    if "channels" in fp:
        imu_params = features.ImuFeatureParams.from_dict(fp)
        return lambda window: features.scale_imu(window, imu_params)
    raise VirtualBoardError("deploy.json has no feature_params, so the board does not know how "
                            "to turn sensor data into model input: deploy from a run folder, or "
                            "give VirtualBoard(model_input=...)")


class ModelRunner:
    """Runs a flashed model on raw windows: features, int8 quantization, TFLM, top label (or,
    for the sine demo, label ``y`` and the predicted value)."""

    def __init__(self, model_bytes: bytes, meta: dict[str, Any],
                 model_input: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        self.meta = meta
        self.labels = [str(label).replace(" ", "_") for label in meta.get("labels") or []]
        self.model_input = model_input or default_model_input(meta)
        self.regression = meta.get("sensor") == "none"  # the sine demo reports y = model(x)
        # What the sketch reserves: deploy's arena_bytes rounded up to 16 (kTensorArenaSize).
        self.arena_reserved = (int(meta.get("arena_bytes") or 0) + 15) // 16 * 16
        self.arena_used = 0  # what TFLM allocates in it; unknown with LiteRT
        try:
            from tflite_micro import runtime  # noqa: F401

            self.backend = "TFLM"
        except ImportError:
            self.backend = "LiteRT"
        if self.backend == "TFLM":
            self._interp, self.arena_used = self._tflm(model_bytes, self.arena_reserved)
            if self.arena_reserved and self.arena_used > self.arena_reserved:
                raise VirtualBoardError(  # the sketch's AllocateTensors() would fail
                    f"AllocateTensors() failed: the model needs {self.arena_used} arena bytes "
                    f"but the sketch reserves {self.arena_reserved} (arena_bytes in deploy.json)")
            inp, out = self._interp.get_input_details(0), self._interp.get_output_details(0)
            self.in_dtype, self.in_shape = np.dtype(inp["dtype"]), tuple(inp["shape"])
            self.in_q = self._qparams(inp["quantization_parameters"])
            self.out_dtype, self.out_q = (np.dtype(out["dtype"]),
                                          self._qparams(out["quantization_parameters"]))
            self.outputs = int(np.prod(out["shape"]))
        else:
            from tinyml_edu.quantize import interpreter

            self._interp = interpreter(model_bytes)
            inp = self._interp.get_input_details()[0]
            out = self._interp.get_output_details()[0]
            self._in_index, self._out_index = inp["index"], out["index"]
            self.in_dtype, self.in_shape = np.dtype(inp["dtype"]), tuple(inp["shape"])
            self.in_q, self.out_q = tuple(inp["quantization"]), tuple(out["quantization"])
            self.out_dtype, self.outputs = np.dtype(out["dtype"]), int(np.prod(out["shape"]))
        if self.in_dtype not in (np.int8, np.float32):
            raise VirtualBoardError(f"model input is {self.in_dtype}; the board feeds int8 or "
                                    "float32")
        if self.regression and int(np.prod(self.in_shape)) != 1:
            raise VirtualBoardError(f"the model takes {int(np.prod(self.in_shape))} input values "
                                    "but the sine demo (sensor none) feeds it one, x")
        if self.labels and not self.regression and len(self.labels) != self.outputs:
            raise VirtualBoardError(f"the model has {self.outputs} outputs but deploy.json "
                                    f"lists {len(self.labels)} labels")

    @staticmethod
    def _qparams(q: dict[str, Any]) -> tuple[float, int]:
        scales, zeros = q.get("scales"), q.get("zero_points")
        if scales is None or len(scales) == 0:
            return (0.0, 0)
        return (float(scales[0]), int(zeros[0]))

    @staticmethod
    def _tflm(model_bytes: bytes, reserved: int) -> tuple[Any, int]:
        """A TFLM interpreter and the arena bytes it uses (what a board reports as used).

        It gets a roomy arena, not the sketch's: for some too-small arenas tflite-micro crashes
        the process instead of failing. The size stays a multiple of 16, as the sketch's and the
        profiler's are, since the used total shifts by a few bytes with the end's alignment."""
        from tflite_micro import runtime

        from tinyml_edu import profile
        from tinyml_edu._fd import capture_fd2

        size = max(2 * reserved + 4096, 16 * 1024) // 16 * 16
        while True:
            with capture_fd2() as log:
                try:
                    interp = runtime.Interpreter.from_bytes(model_bytes, arena_size=size)
                    failure = None
                except RuntimeError as err:
                    failure = err
            if failure is None:
                return interp, profile.tflm_arena_used(interp)
            if size >= 16 * 1024 * 1024:
                detail = " | ".join(log[0].strip().splitlines()[-3:]) or str(failure)
                raise VirtualBoardError(f"TFLM cannot run this model: {detail}") from failure
            size *= 2

    def __call__(self, window: np.ndarray) -> tuple[str, float, float]:
        """(label, score, invoke milliseconds) for one raw window."""
        x = np.asarray(self.model_input(window), np.float32).reshape(self.in_shape)
        if self.in_dtype == np.int8:
            x = quantize_input(x, *self.in_q)
        if self.backend == "TFLM":
            self._interp.set_input(x, 0)
            start = time.perf_counter()
            self._interp.invoke()
            ms = (time.perf_counter() - start) * 1000
            y = np.asarray(self._interp.get_output(0)).reshape(-1)
        else:
            self._interp.set_tensor(self._in_index, x)
            start = time.perf_counter()
            self._interp.invoke()
            ms = (time.perf_counter() - start) * 1000
            y = np.asarray(self._interp.get_tensor(self._out_index)).reshape(-1)
        if self.regression:
            value = dequantize(y[:1], *self.out_q)[0] if self.out_dtype == np.int8 else y[0]
            return "y", float(value), ms
        top = int(np.argmax(y))
        score = float(dequantize(y, *self.out_q)[top]) if self.out_dtype == np.int8 else float(
            y[top])
        label = self.labels[top] if self.labels else str(top)
        return label, score, ms


# ---------------------------------------------------------------------------------------------
# The board


class VirtualBoard:
    """A board on a pseudo-terminal: ``with VirtualBoard() as board: serial.Serial(board.port)``.

    sensor: ``imu``, ``audio`` or ``none`` (the sine demo); default: the flashed model's sensor,
    else ``imu``.
    source: a shipped data set name (default ``gestures`` for IMU, ``kws`` or else ``wingbeats``
    for audio) or a folder of recordings (``<label>/*.csv`` or ``<label>/*.wav``).
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
        if sensor not in (None, *SENSORS):
            raise ValueError(f"unknown sensor {sensor!r}; use imu, audio or none")
        self.sensor_arg, self.source, self.board_id = sensor, source, board_id
        self.label = label
        self.speed, self.seed, self.mode = float(speed), seed, mode
        self.flash_dir = Path(flash_dir) if flash_dir is not None else default_flash_dir()
        self.model_input = model_input
        self.error: BaseException | None = None  # what killed the board thread, if anything
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self._faults: list[list[Any]] = []  # [kind, frames to wait]
        self._reboot_pending = False
        self._rebooted = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._master: int | None = None
        self._slave: int | None = None
        self._port: str | None = None
        self._stream: SensorStream | None = None
        self.unplugged = False

    # -- life cycle --------------------------------------------------------------------------

    @property
    def port(self) -> str | None:
        """The device path to open (``/dev/pts/N``), once started."""
        return self._port

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

    def start(self) -> str:
        """Open the pty, boot, serve it in a daemon thread; return the device path."""
        if self._thread is not None:
            raise VirtualBoardError("this virtual board is already started")
        if not has_pty():
            raise VirtualBoardError(NO_PTY_MESSAGE)
        import tty

        sensor = self.sensor_arg
        flashed = self._read_flash_safely()
        if sensor is None and flashed and flashed[1].get("sensor") in SENSORS:
            sensor = flashed[1]["sensor"]
        source = self.source
        if (source is None and flashed and sensor == flashed[1].get("sensor")
                and sensor != "none"):
            from tinyml_edu import datasets

            project = str(flashed[1].get("dataset") or flashed[1].get("project") or "")
            if project in datasets.registry():
                source = project
        self._stream = load_stream(sensor, source, self.label)

        master, slave = os.openpty()
        try:
            tty.setraw(slave)  # bytes pass unchanged: no echo, no CR/LF translation
            with contextlib.suppress(OSError, tty.error):
                tty.setraw(master)  # Linux shares the settings; some systems refuse this
            os.set_blocking(master, False)
            self._port = os.ttyname(slave)
        except BaseException:
            os.close(master)
            os.close(slave)
            raise
        self._master, self._slave = master, slave
        self._boot_state()
        self._thread = threading.Thread(target=self._serve, name=f"virtual-board {self._port}",
                                        daemon=True)
        self._thread.start()
        return self._port

    def stop(self) -> None:
        """Stop the board thread and close the pty (a host still reading sees a disconnect)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._close_fds()

    def __enter__(self) -> VirtualBoard:
        if self._thread is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _close_fds(self) -> None:
        with self._lock:
            for fd in (self._master, self._slave):
                if fd is not None:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            self._master = self._slave = None

    # -- flash -------------------------------------------------------------------------------

    def flash(self, model_bytes: bytes, meta: dict[str, Any]) -> Path:
        """Store the model in this board's flash folder and reboot with it (if running)."""
        folder = flash(model_bytes, meta, self.flash_dir)
        self._request_reboot()
        return folder

    def erase(self) -> None:
        erase(self.flash_dir)
        self._request_reboot()

    def _request_reboot(self) -> None:
        """Reboot a running board and wait until it has (like an upload that ends with it)."""
        with self._lock:
            self._reboot_pending = True
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
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; use one of {', '.join(FAULTS)}")
        with self._lock:
            self._faults.append([kind, int(after)])

    # -- the firmware ------------------------------------------------------------------------

    def _boot_state(self) -> None:
        """Reset everything a reboot resets, load the flash, queue the boot messages."""
        stream = self._stream
        assert stream is not None
        self._out = bytearray()
        self._commands = bytearray()
        self._streaming = False
        self._pos = 0  # stream samples produced since boot
        self._clock_start = time.monotonic()
        self._clock_pos = 0
        self._data_seq = 0
        self._pred_seq = 0
        self._runner: ModelRunner | None = None
        self._infer = False
        self._infer_meta: dict[str, Any] = {}
        self._problem = ""  # why a flashed model does not run, repeated on HELLO
        self._channel_index: list[int] | None = None
        self._emit(protocol.encode_comment(
            f"tinyml-edu virtual board {FIRMWARE_VERSION} ({self.board_id}): {stream.sensor} "
            f"from {stream.description}, speed x{self.speed:g}"))
        self._load_model()
        self._announce()

    def _load_model(self) -> None:
        stream = self._stream
        assert stream is not None
        try:
            flashed = read_flash(self.flash_dir)
        except (VirtualBoardError, OSError, ValueError) as err:
            self._problem = f"flash unreadable: {err}"
            self._emit(protocol.encode_error(self._problem))
            return
        if flashed is None:
            self._emit(protocol.encode_comment(
                "no model flashed: capture only (deploy one with `tinyml-edu deploy ... "
                "--port virtual`)"))
            return
        model, meta = flashed
        if meta.get("sensor") == "none":  # also a sine model flashed before the board ran it
            meta = {**_window_info(meta), **meta}
        problem = None
        if meta.get("sensor") != stream.sensor:
            problem = (f"the model expects {meta.get('sensor')} input but this board streams "
                       f"{stream.sensor}")
        elif not meta.get("window") or not meta.get("stride"):
            problem = "deploy.json gives no window/stride (no feature_params): cannot run it"
        elif meta.get("rate") and abs(float(meta["rate"]) - stream.rate) > 1e-6:
            problem = (f"the model expects {float(meta['rate']):g} Hz data but this board "
                       f"streams {stream.rate:g} Hz")
        else:
            channels = (meta.get("feature_params") or {}).get("channels")
            if stream.sensor == "imu" and channels:
                missing = [c for c in channels if c not in stream.columns]
                if missing:
                    problem = f"the model needs IMU channels {missing} the stream does not have"
        if problem is None:
            try:
                self._runner = ModelRunner(model, meta, self.model_input)
            except (VirtualBoardError, ValueError, RuntimeError) as err:
                problem = str(err)
        if problem is not None:
            self._problem = "cannot run the flashed model: " + problem.replace("\n", " ")
            self._emit(protocol.encode_error(self._problem))
            return
        runner = self._runner
        assert runner is not None
        self._infer_meta = meta
        channels = (meta.get("feature_params") or {}).get("channels")
        self._channel_index = ([stream.columns.index(c) for c in channels]
                               if stream.sensor == "imu" and channels else None)
        self._emit(protocol.encode_comment(self._model_text()))
        if runner.backend != "TFLM":
            self._emit(protocol.encode_comment(
                "inference with LiteRT on this computer, NOT TFLM (tflite-micro has no wheel "
                "for this OS): same int8 results, but timings are not the board's"))
        self._set_infer(True)

    def _model_text(self) -> str:
        runner, meta = self._runner, self._infer_meta
        assert runner is not None
        # As the sketch's "model ready" line: the arena TFLM uses of the one the sketch reserves.
        runtime = (f"TFLM (tflite-micro) arena {runner.arena_used} of {runner.arena_reserved} "
                   "bytes used" if runner.backend == "TFLM" else "LiteRT")
        if runner.regression:
            return (f"model {meta.get('project', 'model')}: sine demo, x sweeps 0..2pi in "
                    f"{SINE_STEPS} steps, P lines give y = model(x); {runtime}")
        return (f"model {meta.get('project', 'model')}: labels {','.join(runner.labels) or '-'}; "
                f"window {meta['window']}, stride {meta['stride']}; {runtime}")

    def _restart_clock(self) -> None:
        """The sensor's first sample is due one sample period from now."""
        self._clock_start, self._clock_pos = time.monotonic(), 0

    def _set_infer(self, on: bool) -> None:
        if on and not self._active():
            self._restart_clock()
        self._infer = on and self._runner is not None
        self._next_end = self._pos + int(self._infer_meta.get("window", 0))
        self._buffer = self._stream.take(0, 0) if self._stream else None
        self._buffer_start = self._pos

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
            self._out += data

    def _serve(self) -> None:
        try:
            while not self._stop.is_set():
                with self._lock:
                    reboot, self._reboot_pending = self._reboot_pending, False
                if reboot:
                    self._boot_state()
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
                wlist = [master] if self._out else []
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

    # sensor clock

    def _active(self) -> bool:
        return self.mode == "garbage" or self._streaming or self._infer

    def _next_due_in(self) -> float:
        if not self._active():
            return 0.05
        if len(self._out) >= OUTPUT_LIMIT:
            return 0.01
        s = self._stream
        assert s is not None
        due = self._clock_start + (self._clock_pos + s.chunk) / (s.rate * self.speed)
        return min(0.05, max(0.0, due - time.monotonic()))

    def _produce(self) -> None:
        s = self._stream
        assert s is not None
        now = time.monotonic()
        if not self._active():
            return
        turns = 0
        while turns < MAX_CHUNKS_PER_TURN and not self.unplugged:
            if len(self._out) >= OUTPUT_LIMIT:
                # The host is not reading: wait for it (pause the clock) rather than drop.
                self._restart_clock()
                return
            due = self._clock_start + (self._clock_pos + s.chunk) / (s.rate * self.speed)
            if due > now:
                return
            self._clock_pos += s.chunk
            turns += 1
            if self.mode == "garbage":
                self._out += self._garbage(max(8, int(s.chunk * 40 if s.sensor == "imu"
                                                      else s.chunk * 2)), newlines=True)
                continue
            chunk = s.take(self._pos, s.chunk)
            self._pos += s.chunk
            if self._streaming:
                self._send_data(chunk)
            if self._infer:
                self._run_inference(chunk)

    def _send_data(self, chunk: np.ndarray) -> None:
        s = self._stream
        assert s is not None
        if s.sensor == "imu":
            frame = protocol.encode_imu_sample(self._data_seq, [float(v) for v in chunk[0]])
        else:
            frame = protocol.encode_audio_frame(self._data_seq, chunk)
        self._data_seq = (self._data_seq + 1) % 65536
        self._send_frame(frame)

    def _send_frame(self, frame: bytes) -> None:
        fault = self._apply_faults(data_frame=True)
        if fault == "unplug":
            return
        if fault == "corrupt":
            frame = _corrupt(frame)
        self._emit(frame)

    def _run_inference(self, chunk: np.ndarray) -> None:
        runner = self._runner
        assert runner is not None and self._buffer is not None
        window = int(self._infer_meta["window"])
        stride = int(self._infer_meta["stride"])
        self._buffer = np.concatenate([self._buffer, chunk])
        end = self._buffer_start + len(self._buffer)
        while self._next_end <= end and not self.unplugged:
            lo = self._next_end - window - self._buffer_start
            raw = self._buffer[lo:lo + window]
            if self._channel_index is not None:
                raw = raw[:, self._channel_index]
            label, score, ms = runner(raw)
            self._send_frame(protocol.encode_prediction(self._pred_seq, label, score, ms))
            self._pred_seq = (self._pred_seq + 1) % 65536
            self._next_end += stride
        keep_from = self._next_end - window
        if keep_from > self._buffer_start:
            self._buffer = self._buffer[keep_from - self._buffer_start:]
            self._buffer_start = keep_from

    # faults

    def _apply_faults(self, data_frame: bool) -> str | None:
        """Count a data frame against waiting faults; return the fault that fires now."""
        with self._lock:
            if not self._faults:
                return None
            fired = None
            for fault in self._faults:
                if data_frame and fault[1] > 0:
                    fault[1] -= 1
                elif fault[1] <= 0 and fired is None:
                    if fault[0] == "corrupt" and not data_frame and self._active():
                        continue  # wait for the next data frame to corrupt
                    fired = fault
            if fired is None:
                return None
            self._faults.remove(fired)
        kind = fired[0]
        if kind == "unplug":
            self.unplugged = True
            self._drain()
            self._close_fds()
        elif kind == "garbage":
            self._out += self._garbage(64, newlines=False) + b"\n"
        elif kind == "corrupt" and not data_frame:
            self._out += _corrupt(self._header())  # idle board: corrupt what it can
        return kind

    def _garbage(self, n: int, newlines: bool) -> bytes:
        data = self._rng.integers(0, 256, n, dtype=np.uint8)
        if not newlines:  # one self-contained corrupted line
            data[(data == 0x0A) | (data == protocol.SYNC[0])] = 0x3F
        return data.tobytes()

    # the serial line

    def _write_out(self) -> None:
        with self._lock:
            master = self._master
            if master is None or not self._out:
                return
            try:
                written = os.write(master, self._out)
            except BlockingIOError:
                return
            except OSError:
                return  # nobody at the other end for now; keep it
            del self._out[:written]

    def _unread(self) -> int:
        """Bytes the host has not read yet (on its side of the pty)."""
        import fcntl
        import termios

        with self._lock:
            if self._slave is None:
                return 0
            try:
                raw = fcntl.ioctl(self._slave, termios.FIONREAD, b"\0\0\0\0")
            except OSError:
                return 0
        return int.from_bytes(raw, sys.byteorder, signed=True)

    def _drain(self, timeout: float = 2.0) -> None:
        """Let the host read what was sent before the cable is pulled, so a test knows exactly
        which frames arrived (a closing pty throws away what the host has not read)."""
        deadline = time.monotonic() + timeout
        quiet = 0  # the kernel moves written bytes to the host's queue a moment later
        while time.monotonic() < deadline and not self._stop.is_set():
            self._write_out()
            quiet = quiet + 1 if not self._out and self._unread() == 0 else 0
            if quiet >= 10:
                return
            time.sleep(0.01)

    def _read_commands(self) -> None:
        master = self._master
        if master is None:
            return
        try:
            data = os.read(master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        if self.mode is not None:
            return  # at a wrong baud rate (or without the sketch) nothing is understood
        self._commands += data
        while b"\n" in self._commands:
            line, _, rest = bytes(self._commands).partition(b"\n")
            self._commands = bytearray(rest)
            self._command(line.strip().decode("ascii", "replace").upper())
        if len(self._commands) > 256:
            self._commands.clear()

    def _command(self, command: str) -> None:
        if not command:
            return
        if command == "HELLO":
            self._announce()
            if self._runner is not None:
                self._emit(protocol.encode_comment(
                    f"{self._model_text()}; inference {'on' if self._infer else 'off'}"))
            elif self._problem:
                self._emit(protocol.encode_error(self._problem))
        elif command == "START":
            self._announce()
            if self.sensor == "none":
                self._emit(protocol.encode_comment(
                    "the sine demo has no sensor to stream; its P lines are its output"))
                return
            if not self._active():
                self._restart_clock()
            self._streaming, self._data_seq = True, 0
        elif command == "STOP":
            self._streaming = False
            self._emit(protocol.encode_comment("stopped"))
        elif command in ("INFER ON", "INFER OFF"):
            if self._runner is None:
                self._emit(protocol.encode_error(self._problem or "no model flashed: deploy one "
                                                 "first"))
            else:
                if (command == "INFER ON") != self._infer:  # already on: keep its windows
                    self._set_infer(command == "INFER ON")
                self._emit(protocol.encode_comment(f"inference {command.split()[1].lower()}"))
        else:
            self._emit(protocol.encode_error(f"unknown command {command[:40]!r}"))


def _corrupt(frame: bytes) -> bytes:
    """The same frame with one byte changed, so its checksum no longer matches."""
    data = bytearray(frame)
    if data[:2] == protocol.SYNC:
        data[7] ^= 0x01  # first sample byte of an audio frame
    else:
        i = len(data) - 2  # last checksum digit, before the newline
        data[i] = ord("0") if data[i] != ord("0") else ord("1")
    return bytes(data)


def run_forever(**kwargs: Any) -> None:  # pragma: no cover - for manual use
    """``python -m tinyml_edu.virtual_board``: print the port and serve until Ctrl-C."""
    with VirtualBoard(**kwargs) as board:
        print(f"virtual board on {board.port} (Ctrl-C to stop)", flush=True)
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":  # pragma: no cover
    run_forever(speed=float(sys.argv[1]) if len(sys.argv) > 1 else 1.0)
