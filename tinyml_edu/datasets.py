"""Stage 1, datasets: a checksum-verified registry of the data sets that ship with tinyml-edu.

Every shipped data set lives in ``datasets/<name>/`` beside a datasheet, and is listed in
``datasets/manifest.json`` with each file's sha256, size, license and provenance. ``load`` checks
the checksums before it returns arrays, so a half-copied USB stick gives a clear error instead of
a model trained on garbage. Each data set is made by a seeded generator in
``tinyml_edu.generators.<name>``, so an instructor can regenerate or enlarge it offline.

Two storage formats, both loaded into the same arrays ``x_train, y_train, x_val, y_val, x_test,
y_test`` (and optionally ``group_<split>``, e.g. the speaker of each clip):

- ``<name>.npz``: the arrays themselves (sensor windows, tables);
- ``index.csv`` + ``clips.zip``: one row per clip with the columns ``file,label,split,group``
  (and more per data set); ``file`` names a 16-bit FLAC clip inside the uncompressed zip, which
  is read in place and decoded to int16 at load time. A few big files instead of thousands of
  small ones: a USB stick stores every file in whole clusters of 32-128 KB, so 5,000 clips of
  12 KB took 13 times their size (``benchmarks/bench_footprint.py``). ``clip`` reads one clip.

Image data sets (``images``, ``cars``) are ``.npz`` too: ``x_<split>`` holds uint8 frames of
shape ``(n, 96, 96, 1)``. The counting set ``cars`` adds ``centroids_<split>``, the (row, column)
centre of every car, from which ``centroid_grid`` makes the coarse grid a FOMO model learns.

The manifest also records ``arrays_sha256``, a digest of the decoded arrays
(``arrays_digest``): the storage may change, the arrays a lesson sees may not.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import os
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from tinyml_edu._fs import replacing, write_atomic
from tinyml_edu.errors import TinyMLEduError, UnknownNameError

SPLITS = ("train", "val", "test")
MANIFEST_NAME = "manifest.json"
CLIP_INDEX = "index.csv"
CLIP_ARCHIVE = "clips.zip"  # beside index.csv; its members are the index's ``file`` column
DATA_ENV_VAR = "TINYML_EDU_DATA"


class DatasetError(TinyMLEduError):
    """A data set is unknown, missing or corrupted; the message says how to fix it."""


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative to the data directory, with forward slashes
    sha256: str
    bytes: int
    license: str
    provenance: str


@dataclass(frozen=True)
class DatasetInfo:
    """What the manifest says about one data set."""

    name: str
    task: str  # "regression", "classification", "anomaly" or "counting"
    description: str
    classes: tuple[str, ...]
    sample_rate: float | None
    input_shape: tuple[int, ...]
    splits: dict[str, int]
    files: tuple[FileEntry, ...]
    datasheet: str
    license: str
    seed: int
    extra: dict[str, Any] = field(default_factory=dict)
    arrays_sha256: str = ""  # arrays_digest of what load() returns ("" if not recorded)


@dataclass
class Dataset:
    """Arrays of one data set, split into train/val/test, with the manifest's metadata."""

    info: DatasetInfo
    arrays: dict[str, np.ndarray]

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in SPLITS:
            raise UnknownNameError(f"unknown split {name!r}; use one of {', '.join(SPLITS)}")
        return self.arrays[f"x_{name}"], self.arrays[f"y_{name}"]

    def groups(self, name: str) -> np.ndarray | None:
        return self.arrays.get(f"group_{name}")

    def centroids(self, name: str) -> np.ndarray:
        """Object centres of a counting data set: float32 ``(n, max_objects, 2)`` as (row,
        column) in pixels, padded with NaN."""
        if name not in SPLITS:
            raise UnknownNameError(f"unknown split {name!r}; use one of {', '.join(SPLITS)}")
        if f"centroids_{name}" not in self.arrays:
            raise DatasetError(f"data set {self.info.name!r} has no object centres; only "
                               "counting data sets (task 'counting', e.g. cars) have them")
        return self.arrays[f"centroids_{name}"]


def centroid_grid(centroids: np.ndarray, size: int = 96, cells: int = 12) -> np.ndarray:
    """How many object centres fall in each cell of a ``cells x cells`` grid over a
    ``size x size`` frame: int64 ``(n, cells, cells)``. ``(grid > 0)`` is the target of a
    FOMO-style model (one output cell per ``size // cells`` pixels, 8 for 96 / 12).

    ``centroids`` is ``(n, k, 2)`` (row, column) in pixels; NaN rows are padding."""
    centroids = np.asarray(centroids, np.float64)
    if centroids.ndim != 3 or centroids.shape[2] != 2:
        raise ValueError(f"centroids must have shape (frames, objects, 2), not "
                         f"{centroids.shape}")
    if size % cells:
        raise ValueError(f"a {size}-pixel frame does not split into {cells} equal cells; "
                         "choose cells that divide size")
    grid = np.zeros((centroids.shape[0], cells, cells), np.int64)
    frame, obj = np.nonzero(~np.isnan(centroids[..., 0]))
    rows = np.clip((centroids[frame, obj, 0] * cells / size).astype(int), 0, cells - 1)
    cols = np.clip((centroids[frame, obj, 1] * cells / size).astype(int), 0, cells - 1)
    np.add.at(grid, (frame, rows, cols), 1)
    return grid


@dataclass(frozen=True)
class Problem:
    """One file that failed verification."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


# ---------------------------------------------------------------------------------------------
# Where the data lives


def data_dir() -> Path:
    """The folder holding ``manifest.json``.

    Order: ``$TINYML_EDU_DATA``; the copy packed inside an installed wheel; ``datasets/`` of a
    source checkout (an editable install or a USB stick with the repository on it).
    """
    env = os.environ.get(DATA_ENV_VAR)
    if env:
        return Path(env)
    package = Path(__file__).resolve().parent
    for candidate in (package / "_data", package.parent / "datasets"):
        if (candidate / MANIFEST_NAME).exists():
            return candidate
    return package.parent / "datasets"


def _read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST_NAME
    if not path.exists():
        return {"format": 1, "datasets": {}}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DatasetError(
            f"{path} is not valid JSON ({err}). Restore it from the repository or the classroom "
            "bundle (`git checkout -- datasets/manifest.json`)."
        ) from err


def _info_from_json(name: str, entry: dict[str, Any]) -> DatasetInfo:
    return DatasetInfo(
        name=name,
        task=entry["task"],
        description=entry["description"],
        classes=tuple(entry.get("classes", ())),
        sample_rate=entry.get("sample_rate"),
        input_shape=tuple(entry.get("input_shape", ())),
        splits=dict(entry.get("splits", {})),
        files=tuple(FileEntry(**f) for f in entry["files"]),
        datasheet=entry.get("datasheet", ""),
        license=entry.get("license", ""),
        seed=int(entry.get("seed", 0)),
        extra=dict(entry.get("extra", {})),
        arrays_sha256=entry.get("arrays_sha256", ""),
    )


def registry(root: Path | str | None = None) -> dict[str, DatasetInfo]:
    """All registered data sets, by name."""
    manifest = _read_manifest(Path(root) if root is not None else data_dir())
    return {name: _info_from_json(name, e) for name, e in sorted(manifest["datasets"].items())}


def info(name: str, root: Path | str | None = None) -> DatasetInfo:
    known = registry(root)
    if name not in known:
        available = ", ".join(known) or "none (is the datasets folder there?)"
        raise DatasetError(f"unknown data set {name!r}; available: {available}")
    return known[name]


# ---------------------------------------------------------------------------------------------
# Checking and loading


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _restore_hint(name: str, rel_path: str) -> str:
    return (
        f"Restore it: in a git clone run `git checkout -- datasets/{rel_path}`; from a classroom "
        "bundle copy the file again; or rebuild the data set with "
        f"`tinyml-edu data generate {name}`."
    )


def verify(name: str | None = None, root: Path | str | None = None) -> list[Problem]:
    """Check size and sha256 of every file of one data set (or of all); return what is wrong."""
    root = Path(root) if root is not None else data_dir()
    infos = [info(name, root)] if name else list(registry(root).values())
    problems = []
    for ds in infos:
        for entry in ds.files:
            path = root / entry.path
            if not path.exists():
                problems.append(Problem(path, "missing. " + _restore_hint(ds.name, entry.path)))
            elif path.stat().st_size != entry.bytes:
                reason = f"corrupted: {path.stat().st_size} bytes, expected {entry.bytes}. "
                problems.append(Problem(path, reason + _restore_hint(ds.name, entry.path)))
            elif sha256_of(path) != entry.sha256:
                reason = "corrupted: its sha256 does not match the manifest" + (
                    _damaged_member(path) if path.suffix == ".zip" else "") + ". "
                problems.append(Problem(path, reason + _restore_hint(ds.name, entry.path)))
    return problems


def _damaged_member(archive: Path) -> str:
    """Which clip of a damaged archive is broken, by the CRC-32 zip keeps for each member."""
    try:
        with zipfile.ZipFile(archive) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        return f" (it is no longer a readable zip: {err})"
    return f" (damaged clip: {bad})" if bad else " (every clip passes its CRC check)"


def load(name: str, root: Path | str | None = None) -> Dataset:
    """Verify and load a shipped data set: arrays per split plus its metadata."""
    root = Path(root) if root is not None else data_dir()
    ds_info = info(name, root)
    problems = verify(name, root)
    if problems:
        raise DatasetError(f"data set {name!r} cannot be loaded: " + "; ".join(map(str, problems)))
    arrays: dict[str, np.ndarray] = {}
    for entry in ds_info.files:
        if entry.path.endswith(".npz"):
            with np.load(root / entry.path, allow_pickle=False) as npz:
                arrays.update({key: npz[key] for key in npz.files})
        elif entry.path.endswith(CLIP_INDEX):
            arrays.update(read_clip_index(root / entry.path, ds_info.classes))
    return Dataset(ds_info, arrays)


def read_clip_index(index_path: Path, classes: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Decode the clips listed in an ``index.csv`` into int16 arrays per split.

    The clips are read from ``clips.zip`` beside the index or, without one, from loose files
    (an unpacked archive). Clips of one split must share a length (the generator makes them
    so)."""
    import csv

    rows: dict[str, list[dict[str, str]]] = {s: [] for s in SPLITS}
    with open(index_path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            rows[row["split"]].append(row)
    label_index = {label: i for i, label in enumerate(classes)}
    arrays: dict[str, np.ndarray] = {}
    with _ClipSource(index_path.parent) as source:
        for split, split_rows in rows.items():
            clips = [source.read(r["file"])[0] for r in split_rows]
            arrays[f"x_{split}"] = np.stack(clips) if clips else np.zeros((0, 0), np.int16)
            arrays[f"y_{split}"] = np.array([label_index[r["label"]] for r in split_rows],
                                            np.int64)
            arrays[f"group_{split}"] = np.array([r["group"] for r in split_rows])
    return arrays


class _ClipSource:
    """The clips of one data set folder: members of its ``clips.zip``, else loose files."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        archive = self.folder / CLIP_ARCHIVE
        self.zip = zipfile.ZipFile(archive) if archive.is_file() else None

    def __enter__(self) -> _ClipSource:
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.zip is not None:
            self.zip.close()

    def read(self, member: str) -> tuple[np.ndarray, int]:
        """One clip as int16 samples and its sample rate."""
        import soundfile  # only audio data sets need it

        if self.zip is None:
            return soundfile.read(self.folder / member, dtype="int16")
        try:
            blob = self.zip.read(member)  # also checks the member's CRC-32
        except KeyError as err:
            raise DatasetError(f"{self.folder / CLIP_ARCHIVE} has no clip {member!r}; is "
                               f"{CLIP_INDEX} from another version of the data set?") from err
        return soundfile.read(io.BytesIO(blob), dtype="int16")


def clip(name: str, member: str, root: Path | str | None = None) -> tuple[np.ndarray, int]:
    """One clip of a shipped audio data set: ``(int16 samples, sample rate)``.

    ``member`` is the clip's ``file`` in the data set's ``index.csv``, e.g.
    ``clip("kws", "clips/test/yes/espeak_en-us_f1_0.flac")``. The clip is read from the archive
    in place; nothing is unpacked."""
    root = Path(root) if root is not None else data_dir()
    info(name, root)  # a clear error for an unknown data set
    folder = root / name
    if not (folder / CLIP_INDEX).is_file():
        raise DatasetError(f"data set {name!r} has no clips (no {name}/{CLIP_INDEX})")
    with _ClipSource(folder) as source:
        return source.read(member)


def arrays_digest(arrays: dict[str, np.ndarray]) -> str:
    """sha256 over every array's name, dtype, shape and bytes: equal digests, equal arrays."""
    digest = hashlib.sha256()
    for key in sorted(arrays):
        array = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# Writing (used by the generators)


def _fixed_member(name: str, compress_type: int) -> zipfile.ZipInfo:
    """A zip member header that is the same on every machine: fixed timestamp, and "made on
    Unix" even on Windows (zipfile would write the OS it runs on)."""
    member = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    member.compress_type = compress_type
    member.create_system = 3
    return member


def save_npz_deterministic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like ``np.savez_compressed`` but byte-for-byte reproducible (fixed zip timestamps), so a
    regenerated data set has the same checksum as the shipped one."""
    with replacing(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key in sorted(arrays):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            zf.writestr(_fixed_member(f"{key}.npy", zipfile.ZIP_DEFLATED), buffer.getvalue())


def write_clip_archive(path: Path, members: Iterable[tuple[str, bytes]]) -> None:
    """Write ``(name, bytes)`` members, in order, into an uncompressed zip that is the same
    byte for byte on every machine. Uncompressed: FLAC is compressed already, and a stored
    member is read with one seek."""
    with replacing(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, blob in members:
            zf.writestr(_fixed_member(name, zipfile.ZIP_STORED), blob)


GENERATOR_CONSTANTS = ("TASK", "DESCRIPTION", "CLASSES", "SAMPLE_RATE", "LICENSE",
                       "DEFAULT_SEED")


def generator_module(name: str) -> ModuleType:
    """The generator of ``name``, checked against the contract in ``tinyml_edu.generators``."""
    try:
        module = importlib.import_module(f"tinyml_edu.generators.{name}")
    except ModuleNotFoundError as err:
        raise DatasetError(f"no generator for data set {name!r} (tinyml_edu/generators/)") from err
    missing = [c for c in GENERATOR_CONSTANTS if not hasattr(module, c)]
    if not (callable(getattr(module, "write_files", None))
            or callable(getattr(module, "generate", None))):
        missing.append("write_files() or generate()")
    if missing:
        raise DatasetError(f"tinyml_edu/generators/{name}.py lacks {', '.join(missing)}: see "
                           "the contract in tinyml_edu/generators/__init__.py")
    return module


def writes_clips(module: ModuleType) -> bool:
    """True for a clip data set (index.csv + clips.zip), False for one ``.npz`` of arrays."""
    return callable(getattr(module, "write_files", None))


def generate(name: str, seed: int | None = None, scale: float = 1.0,
             root: Path | str | None = None) -> DatasetInfo:
    """Run the generator of ``name`` and (re)write its files and manifest entry.

    ``scale`` multiplies the number of examples (e.g. 0.1 for a quick test, 4 for a bigger set).
    Shipped data was made with ``scale=1`` and the seed recorded in the manifest.
    """
    root = Path(root) if root is not None else data_dir()
    module = generator_module(name)
    seed = module.DEFAULT_SEED if seed is None else seed
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    provenance = f"generated by tinyml_edu.generators.{name} (seed {seed}, scale {scale})"

    if writes_clips(module):
        # Clip data sets write their own files (index.csv + clips.zip) and we read them back.
        written = sorted(module.write_files(folder, seed=seed, scale=scale))
        arrays = read_clip_index(folder / CLIP_INDEX, tuple(module.CLASSES))
    else:
        arrays = module.generate(seed=seed, scale=scale)
        written = [folder / f"{name}.npz"]
        save_npz_deterministic(written[0], arrays)
    missing = [f"{a}_{s}" for s in SPLITS for a in ("x", "y") if f"{a}_{s}" not in arrays]
    if missing:
        raise DatasetError(f"generator {name!r} did not return {', '.join(missing)}")

    files = [{
        "path": path.relative_to(root).as_posix(),
        "sha256": sha256_of(path),
        "bytes": path.stat().st_size,
        "license": module.LICENSE,
        "provenance": provenance,
    } for path in written]
    entry = {
        "task": module.TASK,
        "description": module.DESCRIPTION,
        "classes": list(module.CLASSES),
        "sample_rate": module.SAMPLE_RATE,
        "input_shape": list(arrays["x_train"].shape[1:]),
        "splits": {s: int(len(arrays[f"y_{s}"])) for s in SPLITS},
        "files": files,
        "datasheet": f"{name}/DATASHEET.md",
        "license": module.LICENSE,
        "seed": seed,
        "extra": dict(getattr(module, "EXTRA", {})),
        "arrays_sha256": arrays_digest(arrays),
    }
    manifest = _read_manifest(root)
    manifest["datasets"][name] = entry
    write_atomic(root / MANIFEST_NAME, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return _info_from_json(name, entry)


# ---------------------------------------------------------------------------------------------
# Record-your-own: a folder per label of CSV (IMU) or WAV/FLAC (audio) recordings


USER_FORMATS = (".csv", ".wav", ".flac")


@dataclass(frozen=True)
class Recording:
    """One recording as ``tinyml-edu capture`` writes it, and what its JSON sidecar says."""

    data: np.ndarray  # CSV: float32 (samples, columns); WAV/FLAC: int16 mono (samples,)
    rate: float | None  # audio: the file's own rate; CSV: the sidecar's ``rate``, if it has one
    columns: tuple[str, ...]  # CSV: the header row's names; audio: ("audio",)
    sidecar: dict[str, Any]  # the ``.json`` beside the file; {} when missing or unreadable


def read_sidecar(path: Path) -> dict[str, Any]:
    """The JSON sidecar beside a recording (``<name>.json``), or {} when there is none or it
    is broken: a broken sidecar does not make the recording unusable."""
    sidecar = Path(path).with_suffix(".json")
    if not sidecar.is_file():
        return {}
    try:
        found = json.loads(sidecar.read_text(encoding="utf-8"))
    except ValueError:  # not JSON, or not UTF-8
        return {}
    return found if isinstance(found, dict) else {}


def _sidecar_rate(sidecar: dict[str, Any]) -> float | None:
    try:
        return float(sidecar.get("rate") or 0) or None
    except (TypeError, ValueError):
        return None


def load_recording(path: Path | str) -> Recording:
    """One recording (.csv, .wav or .flac) and its sidecar: the one reader of the files
    ``tinyml-edu capture`` writes (``read_recording`` is its short form)."""
    path = Path(path)
    sidecar = read_sidecar(path)
    if path.suffix.lower() != ".csv":
        import soundfile  # only audio folders need it

        audio, file_rate = soundfile.read(path, dtype="int16", always_2d=True)
        return Recording(audio[:, 0], float(file_rate), ("audio",), sidecar)
    with open(path, encoding="utf-8-sig") as f:  # -sig: a spreadsheet's byte-order mark
        columns = tuple(name.strip() for name in f.readline().strip().split(","))
    try:
        data = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float32, ndmin=2)
    except ValueError as err:
        raise DatasetError(f"{path}: expected one header row, then numbers ({err})") from err
    if data.size == 0:
        data = data.reshape(0, len(columns))
    if data.shape[1] != len(columns):
        raise DatasetError(f"{path}: the header names {len(columns)} columns but the rows have "
                           f"{data.shape[1]} values; make them match")
    return Recording(data, _sidecar_rate(sidecar), columns, sidecar)


def read_recording(path: Path) -> tuple[np.ndarray, float | None]:
    """One recording -> (samples, sample rate if the file or its sidecar says): CSV as float32
    (samples, columns), WAV/FLAC as int16 mono. ``load_recording`` also gives the CSV's column
    names and the whole sidecar."""
    recording = load_recording(path)
    return recording.data, recording.rate


def cut_windows(recording: np.ndarray, window: int, stride: int) -> list[np.ndarray]:
    """Windows of ``window`` samples every ``stride`` (a short audio clip is centred in one)."""
    if len(recording) < window:
        # Short audio clips (a single word) are padded with silence; IMU needs whole windows.
        if recording.ndim == 1 and len(recording) >= window // 2:
            pad = window - len(recording)
            return [np.pad(recording, (pad // 2, pad - pad // 2))]
        return []
    return [recording[s:s + window] for s in range(0, len(recording) - window + 1, stride)]


GROUP_KEYS = ("group", "speaker")  # sidecar keys naming who (or what) made a recording
GROUP_SHARES = (("test", 0.2), ("val", 0.2))  # of the groups; train gets the rest


def _sidecar_split(path: Path, sidecar: dict[str, Any]) -> str | None:
    """The split a sidecar asks for (what ``tinyml-edu data import`` writes), if any."""
    value = sidecar.get("split")
    if value is None:
        return None
    if value not in SPLITS:
        raise DatasetError(f"{path.with_suffix('.json')}: \"split\" is {value!r}; use one of "
                           f"{', '.join(SPLITS)}, or remove it to let the loader choose")
    return value


def _sidecar_group(sidecar: dict[str, Any]) -> str | None:
    """The speaker (or other group) a sidecar names under ``group`` or ``speaker``, if any."""
    for key in GROUP_KEYS:
        value = sidecar.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()
    return None


def split_groups(groups: Iterable[str]) -> dict[str, str]:
    """Whole groups (speakers) to splits, about 60/20/20 and at least one group per split.

    Groups are ranked by the sha256 of their name, not alphabetically, so the order in which
    people happened to be named does not decide who is tested; the same names always give the
    same splits. Needs at least 3 groups."""
    ranked = sorted(set(groups), key=lambda g: hashlib.sha256(g.encode()).hexdigest())
    if len(ranked) < 3:
        raise DatasetError(f"{len(ranked)} group(s) {ranked}: splitting by group needs at least "
                           "3, one each for train, val and test")
    assigned: dict[str, str] = {}
    for split, share in GROUP_SHARES:
        for group in ranked[len(assigned):len(assigned) + max(1, round(share * len(ranked)))]:
            assigned[group] = split
    return assigned | {g: "train" for g in ranked[len(assigned):]}


@dataclass(frozen=True)
class _FolderRecording:
    path: Path
    label: int
    data: np.ndarray
    split: str | None  # from the sidecar
    group: str | None  # from the sidecar


def _read_label_folders(label_dirs: list[Path], classes: tuple[str, ...],
                        sample_rate: float | None, channels: int | None
                        ) -> list[_FolderRecording]:
    found = []
    for label_dir in label_dirs:
        files = sorted(p for p in label_dir.iterdir() if p.suffix.lower() in USER_FORMATS)
        if len(files) < 3:
            raise DatasetError(f"{label_dir} has {len(files)} recording(s); record at least 3 "
                               "per label (they are split into train, val and test)")
        for path in files:
            rec = load_recording(path)
            if sample_rate and rec.rate and abs(rec.rate - sample_rate) > 0.05 * sample_rate:
                raise DatasetError(f"{path} was recorded at {rec.rate:g} Hz but this project "
                                   f"needs {sample_rate:g} Hz; record again at that rate")
            if channels and rec.data.ndim == 2 and rec.data.shape[1] != channels:
                raise DatasetError(f"{path} has {rec.data.shape[1]} columns, expected {channels}")
            found.append(_FolderRecording(path, classes.index(label_dir.name), rec.data,
                                          _sidecar_split(path, rec.sidecar),
                                          _sidecar_group(rec.sidecar)))
    return found


def _choose_splits(folder: Path, found: list[_FolderRecording]) -> list[str]:
    """The split of each recording: its sidecar's ``split``; else its group's (the split the
    group's other recordings name, or ``split_groups``); else by its index in its label folder."""
    named: dict[str, set[str]] = {}
    for rec in found:
        if rec.group is not None and rec.split is not None:
            named.setdefault(rec.group, set()).add(rec.split)
    of_group = {g: next(iter(splits)) for g, splits in named.items() if len(splits) == 1}
    unplaced = sorted({r.group for r in found if r.group is not None and r.split is None}
                      - set(of_group))
    if unplaced:
        if len(unplaced) < 3:
            raise DatasetError(
                f"{folder}: the sidecars name {len(unplaced)} speaker(s)/group(s) "
                f"({', '.join(unplaced)}), and whole speakers go to one split each, so at least "
                "3 are needed (train, val, test). Record with more speakers; or write "
                '"split": "train", "val" or "test" into the sidecars; or delete their "group" '
                'and "speaker" keys to split by recording instead')
        of_group |= split_groups(unplaced)
    splits, index_in_label = [], dict.fromkeys({r.label for r in found}, 0)
    for rec in found:
        if rec.split is not None:
            splits.append(rec.split)
        elif rec.group is not None:
            splits.append(of_group[rec.group])
        else:
            # Of every 5 recordings, the 2nd goes to test and the 3rd to val: 60/20/20, and
            # three recordings already fill every split.
            i = index_in_label[rec.label]
            index_in_label[rec.label] += 1
            splits.append("test" if i % 5 == 1 else "val" if i % 5 == 2 else "train")
    return splits


def load_folder(folder: Path | str, window: int, stride: int | None = None,
                sample_rate: float | None = None, classes: tuple[str, ...] | None = None,
                channels: int | None = None) -> Dataset:
    """Load a folder of your own recordings as a data set (``tinyml-edu capture`` writes it).

    Layout: ``folder/<label>/<name>.csv`` (IMU: one header row of column names, then one sample
    per row) or ``folder/<label>/<name>.wav`` / ``.flac`` (audio, mono), each optionally with a
    ``<name>.json`` sidecar giving ``rate``. Recordings are cut into windows of ``window``
    samples every ``stride``; train/val/test are split *by recording* (never windows of one
    recording in two splits), so each label needs at least three recordings.

    Sidecars may say more about the split:

    - ``"split": "train"|"val"|"test"`` puts the recording there (``tinyml-edu data import``
      writes it);
    - ``"group"`` (or ``"speaker"``) names who made it: recordings are then split by group, so
      no speaker is in two splits and the test split measures voices the model never heard
      (``split_groups``; needs at least 3 groups). ``group_<split>`` then holds the group,
      else the recording's file name.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder} is not a folder; expected one sub-folder per label")
    stride = stride or window
    label_dirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if classes is None:
        classes = tuple(p.name for p in label_dirs)
    unknown = [p.name for p in label_dirs if p.name not in classes]
    if unknown:
        raise DatasetError(f"{folder}: label folder(s) {unknown} are not classes of this "
                           f"project ({', '.join(classes)}); rename or remove them")
    if not label_dirs:
        raise DatasetError(f"{folder} has no label folders (e.g. {folder}/yes/, {folder}/no/)")
    found = _read_label_folders(label_dirs, tuple(classes), sample_rate, channels)
    parts: dict[str, list[tuple[np.ndarray, int, str]]] = {s: [] for s in SPLITS}
    for rec, split in zip(found, _choose_splits(folder, found), strict=True):
        parts[split] += [(w, rec.label, rec.group or rec.path.name)
                         for w in cut_windows(rec.data, window, stride)]
    trained = {y for _, y, _ in parts["train"]}
    untrained = sorted({classes[r.label] for r in found if r.label not in trained})
    if untrained:
        raise DatasetError(f"{folder}: no train windows of {window} samples for "
                           f"{', '.join(untrained)}; record longer, or (when sidecars name "
                           "speakers or splits) have some of them recorded for train")
    arrays: dict[str, np.ndarray] = {}
    for split, items in parts.items():
        if not items:
            raise DatasetError(f"{folder}: no {split} windows of {window} samples; record longer")
        arrays[f"x_{split}"] = np.stack([w for w, _, _ in items])
        arrays[f"y_{split}"] = np.array([y for _, y, _ in items], dtype=np.int64)
        arrays[f"group_{split}"] = np.array([g for _, _, g in items])
    sizes = {s: len(arrays[f"y_{s}"]) for s in SPLITS}
    ds_info = DatasetInfo(
        name=folder.name, task="classification", description=f"recordings in {folder}",
        classes=tuple(classes), sample_rate=sample_rate, input_shape=arrays["x_train"].shape[1:],
        splits=sizes, files=(), datasheet="", license="", seed=0)
    return Dataset(ds_info, arrays)
