"""What the virtual board's sensor plays: recordings on a loop (or one recording, once), one
stream per sensor kind.

A sensor kind (``imu``, ``audio``, ``camera``, ``none`` for the sine demo) is registered in
``SENSOR_KINDS`` by name with what the board needs to know about it: how many samples one data
frame carries, how to encode that frame, how to load a stream, and the window a flashed model
of that sensor reads. The board itself knows no sensor by name, except the sine demo's texts.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, fields, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from tinyml_edu import protocol
from tinyml_edu.virtual_board.errors import VirtualBoardError

AUDIO_FRAME_SAMPLES = 512
AUDIO_STRIDE_S = 0.25  # an audio model runs on its clip-long window every 250 ms
# camera: the shipped image set once there is one; else the built-in test card (below).
DEFAULT_SOURCES = {"imu": ("gestures",), "audio": ("kws", "wingbeats"), "camera": ("images",)}
SINE_STEPS = 100  # the sketch's kInferencesPerCycle: x steps through 0..2*pi in 100 steps
SINE_PERIOD_S = 0.020  # the sketch's kPeriodMs: one inference every 20 ms


@dataclass
class SensorStream:
    """A recording played on a loop: IMU (n, channels) float, audio (n,) int16, or camera
    frames (n, height, width) grayscale or (n, height, width, 3) RGB, uint8."""

    sensor: str
    rate: float
    columns: tuple[str, ...]
    units: tuple[str, ...]
    data: np.ndarray
    description: str
    note: str = ""  # e.g. that the data has no class of the label asked for
    loop: bool = True  # False: one recording, played once (then the sensor stops)

    @property
    def kind(self) -> SensorKind:
        return sensor_kind(self.sensor)

    @property
    def chunk(self) -> int:
        """Samples per data frame."""
        return self.kind.chunk

    def take(self, start: int, n: int) -> np.ndarray:
        """Samples ``start .. start+n`` of the endless loop."""
        idx = (start + np.arange(n)) % len(self.data)
        return self.data[idx]


@dataclass(frozen=True)
class SensorKind:
    """What the board needs to know about one kind of sensor.

    chunk: samples per data frame. encode(seq, chunk): that data frame (None: the sensor has no
    data to stream, as the sine demo). noise_bytes: line noise worth one chunk at a wrong baud
    rate. load(source, label): the stream. window(feature_params): ``window``, ``stride``
    (in stream samples) and ``rate`` of a flashed model ({} when they do not say)."""

    name: str
    chunk: int
    load: Callable[[str | Path | None, str | None], SensorStream]
    window: Callable[[dict[str, Any]], dict[str, Any]]
    encode: Callable[[int, np.ndarray], bytes] | None = None
    noise_bytes: int = 8

    def __post_init__(self) -> None:
        if not self.name or not self.name.isidentifier():
            raise ValueError(f"a sensor name is one word (it goes in the header), got "
                             f"{self.name!r}")
        if self.chunk < 1:
            raise ValueError(f"chunk is samples per data frame, at least 1; got {self.chunk}")


SENSOR_KINDS: dict[str, SensorKind] = {}


def register_sensor(kind: SensorKind) -> None:
    """Make a sensor kind available to ``load_stream`` and ``VirtualBoard(sensor=...)``."""
    SENSOR_KINDS[kind.name] = kind


def sensor_kind(name: str) -> SensorKind:
    if name not in SENSOR_KINDS:
        raise VirtualBoardError(f"unknown sensor {name!r}; use {sensor_choices()}")
    return SENSOR_KINDS[name]


def sensor_choices() -> str:
    """The registered sensor names as a sentence: "imu, audio or none"."""
    names = list(SENSOR_KINDS)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def load_stream(sensor: str | None, source: str | Path | None,
                label: str | None = None) -> SensorStream:
    """The sensor data of a board: a shipped data set's test split or a recordings folder
    (``none``: the sine demo's sweep of x, which takes no source). A data set's name means the
    data set even where a folder has that name (``./NAME`` for the folder; see
    :func:`source_path`). ``label``: play only that class when the data has it (a "yes" capture
    hears "yes"); else all, and ``note`` says so. Without a sensor, the data says which (IMU
    or audio)."""
    if sensor is None:
        return _recorded_stream(None, source, label)
    return sensor_kind(sensor).load(source, label)


# ---------------------------------------------------------------------------------------------
# The sine demo


def sine_sweep() -> SensorStream:
    """The sine demo's "sensor": the x values the sketch feeds, one every 20 ms."""
    steps = np.arange(SINE_STEPS, dtype=np.float32)
    x = np.float32(6.2831853) * steps / np.float32(SINE_STEPS)  # in float32, as the sketch
    return SensorStream("none", 1 / SINE_PERIOD_S, ("x",), ("rad",), x.reshape(-1, 1),
                        f"the sine demo (x sweeps 0..2pi in {SINE_STEPS} steps, one every "
                        f"{SINE_PERIOD_S * 1000:g} ms)")


def _sine_stream(source: str | Path | None, label: str | None) -> SensorStream:
    if source is not None:
        raise VirtualBoardError(f"the sine demo (sensor none) reads no sensor, so there is "
                                f"nothing to play {source} into: leave out --source")
    return sine_sweep()


# ---------------------------------------------------------------------------------------------
# Recorded IMU and audio: a shipped data set or a folder of recordings


def source_path(source: str | Path | None, names: Collection[str]) -> tuple[Path | None, str]:
    """The file or folder ``source`` means (None: it means a name, or nothing there), and a
    note for the student. A name in ``names`` (a shipped data set, the test card) is that
    source even when the current folder happens to hold a file or folder of the same name:
    ``--source cars`` must not play whatever ``cars/`` is lying around. For the folder, give a
    path: ``./cars``, anything with a separator, or a ``Path``."""
    if source is None:
        return None, ""
    path = Path(source)
    if isinstance(source, Path) or str(source) not in names:
        return (path if path.exists() else None), ""
    if not path.exists():
        return None, ""
    mine = "folder" if path.is_dir() else "file"
    return None, (f"{source} is a built-in source, so the virtual board plays it and not your "
                  f"{mine} ./{source}; to play your {mine}, give --source ./{source}")


def with_note(stream: SensorStream, note: str) -> SensorStream:
    """``stream`` with ``note`` added to the one it has."""
    if not note:
        return stream
    return replace(stream, note="; ".join(n for n in (stream.note, note) if n))


def _recorded_stream(sensor: str | None, source: str | Path | None,
                     label: str | None) -> SensorStream:
    from tinyml_edu import datasets

    known = datasets.registry()
    path, shadowed = source_path(source, known)
    if path is not None and path.is_dir():
        return _folder_stream(sensor, path, label)
    if path is not None and path.is_file():
        return _file_stream(sensor, path)
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
    return with_note(SensorStream(kind, rate, columns, units, data, desc, note), shadowed)


def _imu_units(columns: tuple[str, ...]) -> tuple[str, ...]:
    return tuple("g" if c[:1].lower() == "a" else "dps" if c[:1].lower() == "g" else "-"
                 for c in columns)


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
    from tinyml_edu import datasets

    recordings = [datasets.load_recording(path) for path in files]
    if kind == "imu":
        columns = recordings[0].columns
        for path, recording in zip(files, recordings, strict=True):
            if recording.columns != columns:
                raise VirtualBoardError(f"{path} has columns {recording.columns}, "
                                        f"others {columns}")
        # the last sidecar that gives a rate wins; 100 Hz (the IMU sketch's) without one
        rate = next((r.rate for r in reversed(recordings) if r.rate), 100.0)
        data = np.concatenate([r.data for r in recordings])
        units = _imu_units(columns)
    else:
        rates = {r.rate for r in recordings}
        if len(rates) > 1:
            raise VirtualBoardError(f"recordings in {folder} have different rates {sorted(rates)}")
        data, rate = np.concatenate([r.data for r in recordings]), float(rates.pop() or 0)
        columns, units = ("audio",), ("int16",)
    if len(data) == 0:
        raise VirtualBoardError(f"the recordings in {folder} are empty")
    desc = f"{folder} ({len(files)} files, {len(data)} samples at {rate:g} Hz)"
    return SensorStream(kind, rate, columns, units, data, desc, note)



def _file_stream(sensor: str | None, path: Path) -> SensorStream:
    """One recording (.wav/.flac audio, .csv IMU), played once from its first sample: what a
    board would hear if the recording were played to it after a reset."""
    suffix = path.suffix.lower()
    if suffix not in (".wav", ".flac", ".csv"):
        raise VirtualBoardError(f"{path}: the virtual board plays .wav or .flac (audio) and .csv "
                                "(IMU) recordings, a folder of them or a shipped data set")
    kind = "imu" if suffix == ".csv" else "audio"
    if sensor is not None and sensor != kind:
        raise VirtualBoardError(f"{path} is {kind} data, not {sensor}")
    from tinyml_edu import datasets

    recording = datasets.load_recording(path)
    if len(recording.data) == 0:
        raise VirtualBoardError(f"{path} is empty")
    if kind == "imu":
        rate, columns = recording.rate or 100.0, recording.columns
        units, data = _imu_units(columns), recording.data.astype(np.float32)
    else:
        rate, columns, units = float(recording.rate or 0), ("audio",), ("int16",)
        data = recording.data.astype(np.int16)
    desc = f"{path.name}, once ({len(data)} samples at {rate:g} Hz)"
    return SensorStream(kind, rate, columns, units, data, desc, loop=False)


# ---------------------------------------------------------------------------------------------
# The windows a flashed model reads, per sensor


def _imu_window(fp: dict[str, Any]) -> dict[str, Any]:
    if "window" not in fp:
        return {}
    return {"window": int(fp["window"]), "stride": int(fp.get("stride", fp["window"])),
            "rate": float(fp.get("sample_rate", 100))}


def _audio_window(fp: dict[str, Any]) -> dict[str, Any]:
    if "kind" not in fp:
        return {}
    from tinyml_edu.features import AudioFeatureParams

    # A project may add its own keys (e.g. kws's normalisation): keep the front end's.
    known = {f.name for f in fields(AudioFeatureParams)}
    params = AudioFeatureParams(**{k: v for k, v in fp.items() if k in known})
    return {"window": params.clip_samples,
            "stride": int(round(params.sample_rate * AUDIO_STRIDE_S)),
            "rate": float(params.sample_rate)}


def _encode_imu(seq: int, chunk: np.ndarray) -> bytes:
    return protocol.encode_imu_sample(seq, [float(v) for v in chunk[0]])


def _camera_stream(source: str | Path | None, label: str | None) -> SensorStream:
    from tinyml_edu.virtual_board.camera import camera_stream

    return camera_stream(source, label)


def _camera_window(fp: dict[str, Any]) -> dict[str, Any]:
    return {"window": 1, "stride": 1}  # a camera model looks at one frame at a time


def _encode_camera(seq: int, chunk: np.ndarray) -> bytes:
    return protocol.encode_camera_frame(seq, chunk[0])


register_sensor(SensorKind("imu", 1, partial(_recorded_stream, "imu"), _imu_window,
                           _encode_imu, noise_bytes=40))
register_sensor(SensorKind("audio", AUDIO_FRAME_SAMPLES, partial(_recorded_stream, "audio"),
                           _audio_window, protocol.encode_audio_frame,
                           noise_bytes=2 * AUDIO_FRAME_SAMPLES))
register_sensor(SensorKind("camera", 1, _camera_stream, _camera_window, _encode_camera,
                           noise_bytes=160 * 120 * 2))
# The sine demo: one x per inference, no data frames.
register_sensor(SensorKind("none", 1, _sine_stream, lambda fp: {"window": 1, "stride": 1}))
SENSORS = tuple(SENSOR_KINDS)  # the sensors built in
