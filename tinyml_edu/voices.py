"""The class's own voices: keywords recorded on the students' laptops, pooled into one folder.

A student records a prompted word list in JupyterLab with the browser's microphone
(``tinyml_edu.voices_widget``; no board needed). Each clip reaches Python as a payload (the
samples as base64 PCM and the browser's sample rate) and is saved in the record-your-own layout
that ``datasets.load_folder`` and ``tinyml-edu run PROJECT --data`` read::

    FOLDER/<label>/<pseudonym>_<label>_<n>.wav    16 kHz mono int16
    FOLDER/<label>/<pseudonym>_<label>_<n>.json   {"rate": 16000, "group": "<pseudonym>",
                                                   "consent": true, ...}

The sidecar's ``group`` makes ``load_folder`` split by speaker, so the test split measures voices
the model never heard. Students are named by pseudonyms only (never their real names), and
``delete_speaker`` removes every recording of one pseudonym from a folder.

Pooling: each student packs their folder into a zip (``pack``), and the instructor merges the
zips into one folder (``pool``): member paths that could write outside it are refused, a
pseudonym that comes in two zips is reported, and nothing already there is overwritten.

The class model: a run folder keeps only ``.tflite`` files (no Keras model), so there is no
float model to fine-tune. ``train_class_model`` instead trains the kws project on the pooled
folder (``pipeline.run("kws", out, data=folder)``) and scores each held-out speaker with the
int8 model (``speaker_scores``); a base run, such as ``tinyml_edu/pretrained/kws`` (the
shipped synthetic voices only), is scored on the same speakers beside it.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import re
import stat
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from tinyml_edu import datasets
from tinyml_edu._fs import replacing, write_atomic
from tinyml_edu.errors import InputError, MissingFileError

RATE = 16000  # what the kws project and the board's microphone path use
KEEP_SECONDS = 1.0  # the kws project's window: the loudest second of each clip is kept
MIN_SECONDS = 0.25
MAX_SECONDS = 10.0  # a longer payload is a mistake (or not a prompt's recording)
BROWSER_RATES = (8000.0, 192000.0)  # what a browser's AudioContext can run at
FORMAT = "tinyml-edu voices 1"
SOURCE = "browser microphone (tinyml-edu voices)"
AUDIO_SUFFIXES = (".wav", ".flac")

# The kws project's classes with what to say for each: "silence" is a second of the room,
# "unknown" any word that is not a keyword.
KWS_PROMPTS: dict[str, str] = {
    "silence": "(stay quiet)",
    "unknown": "any other word (e.g. 'banana')",
    **{word: word for word in ("yes", "no", "up", "down", "left", "right", "on", "off", "stop",
                               "go")},
}

# ---------------------------------------------------------------------------------------------
# Names: pseudonyms and labels become file and folder names on every student's OS.

PSEUDONYM_CHARS = re.compile(r"(?:[^\W_]|-)+")  # letters and digits of any script, and '-'
PSEUDONYM_LENGTH = (2, 32)
LABEL_MAX = 40
# Not allowed in Windows file names, and '/' or '\' would make a label a path.
FORBIDDEN_IN_NAMES = set('<>:"/\\|?*')
WINDOWS_DEVICES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)),
                   *(f"lpt{i}" for i in range(1, 10))}


def _bad_chars(name: str) -> bool:
    """Whether a file name holds what Windows refuses, a path separator or a control
    character."""
    return any(c in FORBIDDEN_IN_NAMES or unicodedata.category(c).startswith("C") for c in name)


def validate_pseudonym(pseudonym: str) -> str:
    """The pseudonym as it is stored: NFC, lower case (so that 'Fox' and 'fox' are one speaker
    on every file system), 2-32 letters, digits or '-'. Raises ``InputError`` saying why not."""
    if not isinstance(pseudonym, str):
        raise InputError(f"a pseudonym is text, not {pseudonym!r}")
    name = unicodedata.normalize("NFC", pseudonym.strip()).lower()
    low, high = PSEUDONYM_LENGTH
    if not low <= len(name) <= high:
        raise InputError(f"pseudonym {pseudonym!r}: use {low} to {high} characters, e.g. "
                         "'blue-fox'")
    if not PSEUDONYM_CHARS.fullmatch(name) or name.startswith("-") or name.endswith("-"):
        raise InputError(f"pseudonym {pseudonym!r}: use only letters, digits and '-' (no "
                         "spaces, no '_'), e.g. 'blue-fox'. Not your real name: the "
                         "recordings are shared with the class")
    return name


def validate_label(label: str) -> str:
    """The label (a folder and part of a file name) as it is stored: NFC, stripped. Any
    language is fine; what a file system would refuse or read as a path is not."""
    if not isinstance(label, str):
        raise InputError(f"a label is text, not {label!r}")
    name = unicodedata.normalize("NFC", label.strip())
    problem = ""
    if not name:
        problem = "it is empty"
    elif len(name) > LABEL_MAX:
        problem = f"it is longer than {LABEL_MAX} characters"
    elif _bad_chars(name):
        problem = 'it holds one of < > : " / \\ | ? * or a control character'
    elif name.startswith(".") or name.endswith("."):
        problem = "it starts or ends with '.'"
    elif name.split(".")[0].lower() in WINDOWS_DEVICES:
        problem = "Windows reserves that name for a device"
    if problem:
        raise InputError(f"label {label!r} cannot be a folder name: {problem}; choose another "
                         "word for it")
    return name


def prompt_list(prompts: Iterable[str] | Mapping[str, str]) -> dict[str, str]:
    """``{label: what to show the student}`` from a list of labels (shown as they are) or a
    mapping; every label checked, no label twice."""
    if isinstance(prompts, str):
        raise InputError("give the prompts as a list of words, e.g. ['yes', 'no'], not one "
                         "string")
    pairs = list(prompts.items()) if isinstance(prompts, Mapping) else [(p, p) for p in prompts]
    checked: dict[str, str] = {}
    for label, text in pairs:
        name = validate_label(label)
        if name in checked:
            raise InputError(f"label {name!r} is in the prompt list twice")
        checked[name] = str(text).strip() or name
    if not checked:
        raise InputError("the prompt list is empty; give the words to record, e.g. "
                         "['yes', 'no']")
    return checked


# ---------------------------------------------------------------------------------------------
# Saving one clip


@dataclass(frozen=True)
class SavedClip:
    """One recording written by ``save_clip``."""

    path: Path  # the .wav; its sidecar is path.with_suffix(".json")
    pseudonym: str
    label: str
    seconds: float  # as saved (after trimming)
    peak_dbfs: float  # the loudest sample re full scale; below -40 the microphone was muted
    recorded_rate: float


def as_int16(audio: np.ndarray) -> np.ndarray:
    """Mono samples as int16: integers pass as they are, floats in [-1, 1] are scaled."""
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise InputError(f"expected mono samples (one dimension), got shape {audio.shape}")
    if np.issubdtype(audio.dtype, np.integer):
        return np.clip(audio, -32768, 32767).astype(np.int16)
    if not np.all(np.isfinite(audio)):
        raise InputError("the recording holds NaN or infinite samples")
    return np.clip(np.round(audio * 32767.0), -32768, 32767).astype(np.int16)


def loudest_part(audio: np.ndarray, samples: int) -> np.ndarray:
    """The ``samples`` long part of ``audio`` with the word in its middle: centred on the
    energy's centre of mass over the windows within 2 % of the most energy (a short word fits
    in many), as far as the recording reaches. A student speaks somewhere in the prompt's
    1.5 s; the kws project reads one second."""
    if len(audio) <= samples:
        return audio
    power = audio.astype(np.float64) ** 2
    energy = np.concatenate([[0.0], np.cumsum(power)])
    sums = energy[samples:] - energy[:-samples]
    near = np.flatnonzero(sums >= 0.98 * sums.max())
    span = slice(int(near[0]), int(near[-1]) + samples)
    weight = power[span]
    centre = (span.start + float(np.arange(len(weight)) @ weight / weight.sum())
              if weight.sum() > 0 else len(audio) / 2)
    start = int(np.clip(round(centre - samples / 2), 0, len(audio) - samples))
    return audio[start:start + samples]


def _claim(label_dir: Path, pseudonym: str, label: str) -> tuple[Path, Path]:
    """The next free ``<pseudonym>_<label>_<n>``: its sidecar is created exclusively, so two
    recorders never share a name and no recording is overwritten."""
    n = 1
    while True:
        stem = f"{pseudonym}_{label}_{n}"
        audio, sidecar = label_dir / f"{stem}.wav", label_dir / f"{stem}.json"
        if not audio.exists():
            try:
                with open(sidecar, "x", encoding="utf-8"):
                    return audio, sidecar
            except FileExistsError:
                pass
        n += 1


def save_clip(folder: Path | str, pseudonym: str, label: str, audio: np.ndarray, rate: float,
              consent: bool, keep_seconds: float | None = KEEP_SECONDS,
              extra: Mapping[str, Any] | None = None) -> SavedClip:
    """Save one recording at 16 kHz int16 as ``FOLDER/<label>/<pseudonym>_<label>_<n>.wav``
    with its sidecar. ``audio``: mono, int16 or float in [-1, 1], at ``rate`` Hz (resampled).
    ``keep_seconds``: keep only the loudest part this long (None: keep it all)."""
    if consent is not True:
        raise InputError("the speaker has not agreed to share this recording; nothing is saved "
                         "without their consent")
    pseudonym, label = validate_pseudonym(pseudonym), validate_label(label)
    try:
        rate = float(rate)
    except (TypeError, ValueError) as err:
        raise InputError(f"sample rate {rate!r} is not a number") from err
    if not BROWSER_RATES[0] <= rate <= BROWSER_RATES[1]:
        raise InputError(f"sample rate {rate:g} Hz is outside {BROWSER_RATES[0]:g}-"
                         f"{BROWSER_RATES[1]:g} Hz; is it the rate the samples were recorded at?")
    samples = as_int16(audio)
    seconds = len(samples) / rate
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:
        raise InputError(f"the recording is {seconds:.2f} s long; a prompt's recording is "
                         f"{MIN_SECONDS:g} to {MAX_SECONDS:g} s")
    from tinyml_edu.predict import resample

    if rate != RATE:
        samples = resample(samples, rate, RATE)
    if keep_seconds is not None:
        samples = loudest_part(samples, int(round(keep_seconds * RATE)))
    peak = int(np.abs(samples.astype(np.int32)).max()) if len(samples) else 0
    peak_dbfs = 20 * np.log10(max(peak, 1) / 32768)

    import soundfile

    label_dir = Path(folder) / label
    label_dir.mkdir(parents=True, exist_ok=True)
    wav, sidecar = _claim(label_dir, pseudonym, label)
    try:
        with replacing(wav) as tmp:
            soundfile.write(tmp, samples, RATE, subtype="PCM_16", format="WAV")
        meta = {"format": FORMAT, "rate": RATE, "group": pseudonym, "consent": True,
                "label": label, "recorded_rate": rate, "recorded_seconds": round(seconds, 3),
                "source": SOURCE, "recorded": datetime.now().astimezone().date().isoformat(),
                **dict(extra or {})}
        write_atomic(sidecar, json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
    except BaseException:
        wav.unlink(missing_ok=True)
        sidecar.unlink(missing_ok=True)
        raise
    return SavedClip(wav, pseudonym, label, len(samples) / RATE, round(float(peak_dbfs), 1),
                     rate)


PAYLOAD_FORMATS = {"int16": "<i2", "float32": "<f4"}  # little endian: what browsers write


def decode_samples(data: str, sample_format: str) -> np.ndarray:
    """Base64 PCM (``int16`` or ``float32``, little endian) -> samples."""
    if sample_format not in PAYLOAD_FORMATS:
        raise InputError(f"sample format {sample_format!r}: use one of "
                         f"{', '.join(PAYLOAD_FORMATS)}")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, TypeError, ValueError) as err:
        raise InputError(f"the samples are not valid base64 ({err})") from err
    dtype = np.dtype(PAYLOAD_FORMATS[sample_format])
    if len(raw) % dtype.itemsize:
        raise InputError(f"{len(raw)} bytes are not whole {sample_format} samples")
    return np.frombuffer(raw, dtype=dtype)


def save_payload(folder: Path | str, payload: Mapping[str, Any] | str,
                 keep_seconds: float | None = KEEP_SECONDS) -> SavedClip:
    """Save a clip as the recorder widget sends it: ``{"pseudonym", "label", "rate", "format":
    "int16"|"float32", "data": base64 samples, "consent": true, "prompt"?}`` (or its JSON)."""
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except ValueError as err:
            raise InputError(f"the recording's payload is not JSON ({err})") from err
    if not isinstance(payload, Mapping):
        raise InputError("the recording's payload is not a JSON object")
    missing = [k for k in ("pseudonym", "label", "rate", "data") if k not in payload]
    if missing:
        raise InputError(f"the recording's payload lacks {', '.join(missing)}")
    samples = decode_samples(payload["data"], payload.get("format", "int16"))
    extra = {"prompt": str(payload["prompt"])} if payload.get("prompt") else {}
    return save_clip(folder, payload["pseudonym"], payload["label"], samples, payload["rate"],
                     consent=payload.get("consent") is True, keep_seconds=keep_seconds,
                     extra=extra)


# ---------------------------------------------------------------------------------------------
# Who is in a folder; deleting a speaker


def _recordings(folder: Path) -> Iterable[Path]:
    """Every audio recording in ``folder/<label>/``."""
    for label_dir in sorted(p for p in folder.iterdir()
                            if p.is_dir() and not p.name.startswith(".")):
        yield from sorted(p for p in label_dir.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)


def _speaker_of(sidecar: Mapping[str, Any]) -> str | None:
    group = sidecar.get("group")
    if isinstance(group, str) and group.strip():
        return unicodedata.normalize("NFC", group.strip()).lower()
    return None


def speakers(folder: Path | str) -> dict[str, int]:
    """``{pseudonym: recordings}`` of a voices folder (by the sidecars' ``group``)."""
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    counts: dict[str, int] = {}
    for path in _recordings(folder):
        who = _speaker_of(datasets.read_sidecar(path))
        if who is not None:
            counts[who] = counts.get(who, 0) + 1
    return dict(sorted(counts.items()))


def delete_speaker(folder: Path | str, pseudonym: str) -> list[Path]:
    """Delete every recording of ``pseudonym`` (and its sidecar) from a voices folder; return
    the files deleted. A recording is theirs when its sidecar names them, or, without a
    sidecar group, when its file name starts with ``<pseudonym>_``. Label folders left empty
    are removed. Models trained on the recordings still have to be trained again."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingFileError(f"{folder} is not a folder of recordings")
    who = validate_pseudonym(pseudonym)
    deleted: list[Path] = []
    for path in list(_recordings(folder)):
        sidecar = datasets.read_sidecar(path)
        owner = _speaker_of(sidecar)
        if owner == who or (owner is None and path.name.lower().startswith(f"{who}_")):
            for part in (path, path.with_suffix(".json")):
                if part.exists():
                    part.unlink()
                    deleted.append(part)
    for label_dir in {p.parent for p in deleted}:
        if not any(label_dir.iterdir()):
            label_dir.rmdir()
    return sorted(deleted)


# ---------------------------------------------------------------------------------------------
# Pooling: a zip per student, merged into the class's folder


@dataclass(frozen=True)
class PackSummary:
    path: Path
    recordings: int
    speakers: tuple[str, ...]
    skipped: tuple[str, ...]  # recordings left out, with why


def pack(folder: Path | str, out: Path | str, pseudonym: str | None = None) -> PackSummary:
    """Zip a voices folder (or only ``pseudonym``'s recordings) as ``<label>/<file>`` members
    for the instructor's ``pool``. Only recordings whose sidecar records consent and a speaker
    go in."""
    folder, out = Path(folder), Path(out)
    if not folder.is_dir():
        raise MissingFileError(f"{folder} is not a folder of recordings")
    if out.suffix.lower() != ".zip":
        raise InputError(f"{out}: name the pack NAME.zip")
    only = validate_pseudonym(pseudonym) if pseudonym is not None else None
    chosen: list[Path] = []
    skipped: list[str] = []
    who: set[str] = set()
    for path in _recordings(folder):
        sidecar = datasets.read_sidecar(path)
        owner = _speaker_of(sidecar)
        if only is not None and owner != only:
            continue
        if owner is None or sidecar.get("consent") is not True:
            skipped.append(f"{path}: its sidecar records no speaker or no consent")
            continue
        chosen.append(path)
        who.add(owner)
    if not chosen:
        whose = f" of {only!r}" if only else ""
        raise InputError(f"{folder} has no recordings{whose} with a consent sidecar to pack; "
                         "record some first (tinyml_edu.voices_widget.recorder)")
    out.parent.mkdir(parents=True, exist_ok=True)
    with replacing(out) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in chosen:
            for part in (path, path.with_suffix(".json")):
                zf.write(part, f"{path.parent.name}/{part.name}")
    return PackSummary(out, len(chosen), tuple(sorted(who)), tuple(skipped))


MAX_MEMBER_BYTES = 5 << 20  # 10 s at 192 kHz is 3.7 MB: anything bigger is no recording
IGNORED_MEMBERS = ("__MACOSX", ".DS_Store", "Thumbs.db", "desktop.ini")


@dataclass
class PoolSummary:
    """What ``pool`` did, zip by zip."""

    out_dir: Path
    added: dict[str, int] = field(default_factory=dict)  # pseudonym -> recordings added
    refused: dict[str, str] = field(default_factory=dict)  # zip -> why nothing was taken
    duplicates: dict[str, list[str]] = field(default_factory=dict)  # pseudonym -> its sources
    skipped: list[str] = field(default_factory=list)  # single recordings left out, with why

    @property
    def ok(self) -> bool:
        return not (self.refused or self.duplicates or self.skipped)

    def format(self) -> str:
        total = sum(self.added.values())
        lines = [f"{total} recording(s) of {len(self.added)} speaker(s) added to {self.out_dir}"]
        lines += [f"  {who}: {n}" for who, n in self.added.items()]
        for name, why in self.refused.items():
            lines.append(f"refused {name}: {why}")
        for who, sources in self.duplicates.items():
            lines.append(f"pseudonym {who!r} comes from {' and '.join(sources)}: only the first "
                         "was pooled. If they are two students, ask one to record under "
                         "another pseudonym; if one student sent two packs, delete the speaker "
                         "(tinyml-edu voices delete) and pool the newer pack")
        lines += [f"skipped {s}" for s in self.skipped]
        return "\n".join(lines)


class _Refused(Exception):
    """A zip that is not pooled at all; the message says why."""


def _member_parts(info: zipfile.ZipInfo) -> tuple[str, ...] | None:
    """The member's path parts; None for ignorable clutter (folders, OS metadata). Raises
    ``_Refused`` for a path that could point outside the pool folder, or a link."""
    name = info.filename
    if "\\" in name or name.startswith("/") or re.match(r"[A-Za-z]:", name):
        raise _Refused(f"member {name!r} has an absolute or Windows path")
    parts = tuple(name.split("/"))
    if any(p in ("", ".", "..") for p in parts[:-1]) or parts[-1] in (".", ".."):
        raise _Refused(f"member {name!r} has an empty, '.' or '..' path part")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise _Refused(f"member {name!r} is a symbolic link")
    if any(_bad_chars(p) for p in parts):
        raise _Refused(f"member {name!r} has a character file systems refuse in a name")
    if info.is_dir() or any(p in IGNORED_MEMBERS or p.startswith(".") for p in parts):
        return None  # folders, hidden files (.ipynb_checkpoints, macOS's ._ files)
    if info.file_size > MAX_MEMBER_BYTES:
        raise _Refused(f"member {name!r} is {info.file_size} bytes, too big for a recording")
    return tuple(unicodedata.normalize("NFC", p) for p in parts)


def _read_pack(zf: zipfile.ZipFile, others: list[str]
               ) -> dict[tuple[str, str], dict[str, bytes]]:
    """``{(label, stem): {suffix: bytes}}`` of a pack; members at ``<label>/<file>``, or all
    under one top folder (a folder zipped by the OS). Other files go to ``others``."""
    members = [(info, parts) for info in zf.infolist()
               if (parts := _member_parts(info)) is not None]
    if members and all(len(p) == 3 for _, p in members) and len({p[0] for _, p in members}) == 1:
        members = [(info, parts[1:]) for info, parts in members]
    found: dict[tuple[str, str], dict[str, bytes]] = {}
    for info, parts in members:
        if len(parts) != 2:
            raise _Refused(f"member {info.filename!r} is not <label>/<file> (pack the folder "
                           "with `tinyml-edu voices pack`)")
        label, name = parts
        try:
            validate_label(label)
        except InputError as err:
            raise _Refused(str(err)) from err
        stem, suffix = os.path.splitext(name)
        if suffix.lower() not in (*AUDIO_SUFFIXES, ".json"):
            others.append(info.filename)
            continue
        found.setdefault((label, stem), {})[suffix.lower()] = zf.read(info)
    return found


def _check_recording(label: str, stem: str, files: dict[str, bytes]) -> tuple[str, str, bytes]:
    """``(pseudonym, suffix, audio)`` of one packed recording, or ``InputError`` saying why it
    is left out."""
    import soundfile

    audio_suffix = next((s for s in AUDIO_SUFFIXES if s in files), None)
    if audio_suffix is None:
        raise InputError(f"{label}/{stem}.json has no recording beside it")
    if ".json" not in files:
        raise InputError(f"{label}/{stem}{audio_suffix} has no sidecar (speaker, consent)")
    try:
        sidecar = json.loads(files[".json"].decode("utf-8"))
    except ValueError as err:
        raise InputError(f"{label}/{stem}.json is not JSON ({err})") from err
    if not isinstance(sidecar, dict) or sidecar.get("consent") is not True:
        raise InputError(f"{label}/{stem}: the sidecar records no consent")
    who = validate_pseudonym(str(sidecar.get("group", "")))
    if not stem.lower().startswith(f"{who}_"):
        raise InputError(f"{label}/{stem}: the file name does not start with its speaker "
                         f"{who!r}")
    try:
        info = soundfile.info(io.BytesIO(files[audio_suffix]))
    except RuntimeError as err:  # soundfile's errors derive from it
        raise InputError(f"{label}/{stem}{audio_suffix} is not readable audio ({err})") from err
    if info.samplerate != RATE or info.channels != 1:
        raise InputError(f"{label}/{stem}{audio_suffix} is {info.samplerate} Hz, "
                         f"{info.channels} channel(s); the pool holds 16 kHz mono")
    return who, audio_suffix, files[audio_suffix]


def pool(zips: Iterable[Path | str], out_dir: Path | str) -> PoolSummary:
    """Merge students' packs into one voices folder (created if needed; an existing one is
    added to). A zip with a member path that could write outside ``out_dir`` (absolute,
    ``..``, a link) is refused whole. A pseudonym already in ``out_dir`` or in an earlier zip is
    reported and not pooled again, and no existing file is ever overwritten."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir} is a file; pool into a folder")
    summary = PoolSummary(out_dir)
    source_of = {who: f"{out_dir} (already pooled)" for who in speakers(out_dir)}
    for zip_path in map(Path, zips):
        others: list[str] = []
        try:
            with zipfile.ZipFile(zip_path) as zf:
                packed = _read_pack(zf, others)
        except (zipfile.BadZipFile, OSError) as err:
            summary.refused[zip_path.name] = f"not a readable zip ({err})"
            continue
        except _Refused as err:
            summary.refused[zip_path.name] = f"{err}; nothing of it was pooled"
            continue
        summary.skipped += [f"{zip_path.name}: {name} is neither a recording nor a sidecar"
                            for name in others]
        accepted: list[tuple[str, str, str, str, bytes]] = []
        for (label, stem), files in sorted(packed.items()):
            try:
                who, suffix, audio = _check_recording(label, stem, files)
            except InputError as err:
                summary.skipped.append(f"{zip_path.name}: {err}")
                continue
            accepted.append((who, label, stem, suffix, audio))
        for who in sorted({a[0] for a in accepted}):
            if who in source_of:
                summary.duplicates.setdefault(who, [source_of[who]]).append(zip_path.name)
        for who, label, stem, suffix, audio in accepted:
            if who in summary.duplicates:
                continue
            if _add_recording(out_dir / label, stem, suffix, audio, packed[label, stem][".json"]):
                summary.added[who] = summary.added.get(who, 0) + 1
            else:
                summary.skipped.append(f"{zip_path.name}: {label}/{stem}{suffix} is already in "
                                       f"{out_dir}; kept the one there")
        for who, *_ in accepted:
            source_of.setdefault(who, zip_path.name)
    summary.added = dict(sorted(summary.added.items()))
    return summary


def _add_recording(label_dir: Path, stem: str, suffix: str, audio: bytes,
                   sidecar: bytes) -> bool:
    """Write a recording and its sidecar unless either name is taken (then nothing)."""
    label_dir.mkdir(parents=True, exist_ok=True)
    target, meta = label_dir / f"{stem}{suffix}", label_dir / f"{stem}.json"
    if any((label_dir / f"{stem}{s}").exists() for s in AUDIO_SUFFIXES):
        return False
    try:
        with open(meta, "xb") as f:  # exclusive: a name taken meanwhile stays untouched
            f.write(sidecar)
    except FileExistsError:
        return False
    try:
        with open(target, "xb") as f:
            f.write(audio)
    except BaseException:
        meta.unlink(missing_ok=True)
        raise
    return True


# ---------------------------------------------------------------------------------------------
# The class model: trained on the pooled voices, scored per held-out speaker


@dataclass(frozen=True)
class SpeakerScore:
    speaker: str
    split: str
    clips: int
    correct: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.clips if self.clips else 0.0


def speaker_scores(run_dir: Path | str, folder: Path | str,
                   splits: tuple[str, ...] = ("test",)) -> list[SpeakerScore]:
    """The int8 accuracy of a run's model on each speaker of ``folder``'s ``splits``, with the
    speaker-disjoint splits ``tinyml-edu run PROJECT --data FOLDER`` trains on."""
    from tinyml_edu import pipeline, quantize
    from tinyml_edu.projects import get_project
    from tinyml_edu.run_report import RunReport

    report, model_path = RunReport.load_finished(run_dir)
    project = get_project(report.project or "")
    if report.task != "classification" or project.features is None:
        raise InputError(f"{run_dir} is a {report.project} run; scoring speakers needs a "
                         "keyword run (tinyml-edu run kws)")
    ds = pipeline.load_data(project.name, folder)
    if list(ds.info.classes) != report.labels:
        raise InputError(f"{run_dir} has the classes {report.labels}, {folder} is read as "
                         f"{list(ds.info.classes)}; score a run of the same project")
    model = model_path.read_bytes()
    scores = []
    for split in splits:
        x, y = ds.split(split)
        groups = ds.groups(split)
        if groups is None or not len(y):
            continue
        predicted = quantize.predict(model, project.features(x, report.params)).argmax(axis=-1)
        for who in sorted(set(groups.tolist())):
            mine = groups == who
            scores.append(SpeakerScore(str(who), split, int(mine.sum()),
                                       int((predicted[mine] == y[mine]).sum())))
    return scores


SPEAKERS_FILE = "speakers.json"  # in the class model's run folder
HOW_TRAINED = ("trained from scratch on the pooled class voices with `tinyml-edu run kws --data "
               "FOLDER`: a run folder keeps only .tflite models, so there is no float Keras "
               "model to fine-tune")


@dataclass(frozen=True)
class ClassModelReport:
    run_dir: Path
    folder: Path
    held_out: list[SpeakerScore]  # the class model on its test speakers
    base_run: Path | None = None
    base: list[SpeakerScore] = field(default_factory=list)  # the base run, same speakers
    how: str = HOW_TRAINED

    def to_dict(self) -> dict[str, Any]:
        def rows(scores: list[SpeakerScore]) -> list[dict[str, Any]]:
            return [{"speaker": s.speaker, "split": s.split, "clips": s.clips,
                     "correct": s.correct, "int8_accuracy": round(s.accuracy, 4)}
                    for s in scores]

        return {"folder": str(self.folder), "how": self.how, "held_out": rows(self.held_out),
                "base_run": str(self.base_run) if self.base_run else None,
                "base": rows(self.base)}

    def format(self) -> str:
        base = {s.speaker: s for s in self.base}
        head = f"{'speaker':<20} {'clips':>5} {'class model':>12}"
        lines = [head + (f" {'base run':>9}" if self.base else "")]
        for s in self.held_out:
            line = f"{s.speaker:<20} {s.clips:>5} {s.accuracy:>12.1%}"
            if s.speaker in base:
                line += f" {base[s.speaker].accuracy:>9.1%}"
            lines.append(line)
        lines.append(f"{'all':<20} {sum(s.clips for s in self.held_out):>5} "
                     f"{_overall(self.held_out):>12.1%}"
                     + (f" {_overall(self.base):>9.1%}" if self.base else ""))
        return "\n".join(lines + [f"({self.how})"])


def _overall(scores: list[SpeakerScore]) -> float:
    clips = sum(s.clips for s in scores)
    return sum(s.correct for s in scores) / clips if clips else 0.0


REQUIRED_KWS_LABELS = ("silence", "unknown")  # the kws augmentation mixes these into the rest


def train_class_model(folder: Path | str, out_dir: Path | str, seed: int = 0,
                      base_run: Path | str | None = None, progress: bool = True,
                      log: Callable[[str], None] = print) -> ClassModelReport:
    """Train the kws project on a pooled voices folder and score its int8 model on each
    held-out (test) speaker, and the ``base_run``'s model on the same speakers; the scores go
    to ``out_dir/speakers.json`` too. A class of 30 with three takes of the 12 words (1,080
    clips) took 190 s on 2 cores, 95 s of it training."""
    from tinyml_edu import pipeline

    folder = Path(folder)
    if not folder.is_dir():
        raise MissingFileError(f"{folder} is not a folder of recordings")
    present = {p.name for p in folder.iterdir() if p.is_dir()}
    missing = [label for label in REQUIRED_KWS_LABELS if label not in present]
    if missing:
        raise InputError(f"{folder} has no {' or '.join(missing)} recordings; the kws project "
                         "mixes them into the keywords when it trains. Record them too (the "
                         "prompt list voices.KWS_PROMPTS has them)")
    pipeline.run("kws", out_dir, seed=seed, progress=progress, log=log, data=folder)
    held_out = speaker_scores(out_dir, folder)
    base = speaker_scores(base_run, folder) if base_run is not None else []
    held = {s.speaker for s in held_out}
    report = ClassModelReport(Path(out_dir), folder, held_out,
                              Path(base_run) if base_run is not None else None,
                              [s for s in base if s.speaker in held])
    write_atomic(Path(out_dir) / SPEAKERS_FILE, json.dumps(report.to_dict(), indent=1) + "\n")
    return report
