"""Import Google's Speech Commands v2 as a record-your-own folder for the kws project.

``tinyml-edu data import speech-commands DIR --out FOLDER`` reads the unpacked archive::

    DIR/<word>/<speaker>_nohash_<n>.wav   16 kHz mono int16, 1 s or a little shorter
    DIR/validation_list.txt               word/file.wav per line; so is testing_list.txt;
    DIR/testing_list.txt                  every clip in neither list is train
    DIR/_background_noise_/*.wav          a few long noise recordings

and writes ``FOLDER/<class>/<name>.flac`` with a ``<name>.json`` sidecar for each of the 12
classes of the kws data set (``datasets.info("kws").classes``), which ``tinyml-edu run kws --data
FOLDER`` trains on:

- the 10 keywords keep their clips; every other word becomes ``unknown``, subsampled (seeded) to
  ``unknown_share`` of each split, as Speech Commands' own training script and MLPerf Tiny do
  (else ``unknown`` would be most of the data);
- ``silence`` is 1 s chunks of the noise recordings at a random gain, ``silence_share`` of each
  split. Each noise file is cut into three disjoint time ranges (60/20/20 % of it) for train,
  val and test, so every kind of noise is in every split but no noise sample is in two;
- a clip shorter than 1 s is zero-padded, centred, to 16000 samples here rather than left to
  ``load_folder`` (which centres it the same way): ``load_folder`` drops clips under 0.5 s, and a
  folder of whole windows is what the project and ``predict`` see;
- FLAC, not WAV: lossless and about half the size (Speech Commands is 2 GB).

Each sidecar gives ``rate``, ``group`` (the speaker hash; ``noise_<split>_<file>`` for silence),
``split`` (from the lists; ``load_folder`` honours it) and ``source`` (the original path).
Speech Commands assigns splits by a hash of the speaker, so no speaker should be in two splits;
the import checks that and reports any speaker that is.

Nothing is downloaded: get ``speech_commands_v0.02.tar.gz`` yourself and unpack it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinyml_edu import datasets, features
from tinyml_edu._fs import check_out_dir, staged_dir, write_atomic
from tinyml_edu.errors import InputError, MissingFileError

SAMPLE_RATE = 16000
CLIP_SAMPLES = SAMPLE_RATE  # 1 s
NOISE_DIR = "_background_noise_"
VALIDATION_LIST = "validation_list.txt"
TESTING_LIST = "testing_list.txt"
SILENCE, UNKNOWN = "silence", "unknown"
NOISE_RANGES = (("train", 0.0, 0.6), ("val", 0.6, 0.8), ("test", 0.8, 1.0))  # of each file
SILENCE_GAIN_DB = (-30.0, 0.0)  # uniform in dB: quiet rooms to the recording's own level
MARKER = "speech_commands_import.json"  # in --out: this folder is ours to replace
FORMAT = "tinyml-edu speech-commands import 1"
LAYOUT = (f"DIR/<word>/<speaker>_nohash_<n>.wav, DIR/{VALIDATION_LIST}, DIR/{TESTING_LIST} and "
          f"DIR/{NOISE_DIR}/*.wav, as speech_commands_v0.02.tar.gz unpacks")


@dataclass(frozen=True)
class ImportSummary:
    """What ``import_speech_commands`` wrote."""

    out_dir: Path
    clips: dict[str, dict[str, int]]  # class -> split -> clips written
    speakers: dict[str, int]  # split -> speakers among the clips written
    shared_speakers: tuple[str, ...]  # speakers of the source in more than one split's list
    unknown_available: dict[str, int]  # split -> non-keyword clips there were to choose from
    listed_missing: int  # lines of the two lists naming a file that is not in DIR
    noise_files: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)

    def format(self) -> str:
        """A table of clips per class and split, then speakers per split."""
        splits = datasets.SPLITS
        width = max(map(len, self.clips))
        lines = [f"{'class':<{width}} " + " ".join(f"{s:>7}" for s in splits)]
        for label, per_split in self.clips.items():
            lines.append(f"{label:<{width}} " + " ".join(f"{per_split[s]:>7}" for s in splits))
        totals = [sum(c[s] for c in self.clips.values()) for s in splits]
        lines.append(f"{'total':<{width}} " + " ".join(f"{n:>7}" for n in totals))
        lines.append(f"{'speakers':<{width}} " + " ".join(f"{self.speakers[s]:>7}"
                                                          for s in splits))
        return "\n".join(lines)


@dataclass(frozen=True)
class _Clip:
    source: str  # word/file.wav, relative to DIR
    word: str
    speaker: str
    split: str


def speaker_of(file_name: str) -> str:
    """The speaker hash of a Speech Commands file name (``<speaker>_nohash_<n>.wav``); a name
    without ``_nohash_`` is its own speaker."""
    stem = Path(file_name).stem
    return stem.split("_nohash_", 1)[0]


def _read_list(path: Path) -> set[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return {line.strip().replace("\\", "/") for line in lines if line.strip()}


def _scan(source: Path, keywords: tuple[str, ...]) -> tuple[list[_Clip], int]:
    """Every word clip of ``source`` with its split from the lists; and how many listed files
    are missing."""
    if not source.exists():
        raise MissingFileError(f"{source} not found; give the folder Speech Commands v2 is "
                               f"unpacked in: {LAYOUT}")
    if not source.is_dir():
        raise InputError(f"{source} is a file; give the folder it was unpacked in: {LAYOUT}")
    missing = [n for n in (VALIDATION_LIST, TESTING_LIST) if not (source / n).is_file()]
    if missing:
        raise MissingFileError(f"{source} has no {' or '.join(missing)}, so it is not an "
                               f"unpacked Speech Commands v2; expected {LAYOUT}")
    validation, testing = _read_list(source / VALIDATION_LIST), _read_list(source / TESTING_LIST)
    words = sorted(p.name for p in source.iterdir()
                   if p.is_dir() and not p.name.startswith((".", "_")))
    if not set(words) & set(keywords):
        raise InputError(f"{source} has none of the keyword folders ({', '.join(keywords)}); "
                         f"expected {LAYOUT}")
    clips, found = [], set()
    for word in words:
        for path in sorted((source / word).glob("*.wav")):
            rel = f"{word}/{path.name}"
            found.add(rel)
            split = "test" if rel in testing else "val" if rel in validation else "train"
            clips.append(_Clip(rel, word, speaker_of(path.name), split))
    return clips, len((validation | testing) - found)


def _read_clip(path: Path) -> np.ndarray:
    """A clip as int16 mono, exactly 1 s (shorter ones zero-padded around the centre)."""
    import soundfile

    try:
        audio, rate = soundfile.read(path, dtype="int16", always_2d=True)
    except RuntimeError as err:  # soundfile's errors derive from it
        raise InputError(f"{path} is not a readable WAV file ({err}); re-extract it") from err
    if rate != SAMPLE_RATE:
        raise InputError(f"{path} is {rate} Hz; Speech Commands clips are {SAMPLE_RATE} Hz")
    return features.fit_clip(audio[:, 0], CLIP_SAMPLES)


def _noise_files(source: Path) -> list[Path]:
    noise_dir = source / NOISE_DIR
    files = sorted(noise_dir.glob("*.wav")) if noise_dir.is_dir() else []
    if not files:
        raise MissingFileError(f"{noise_dir} has no .wav files; the silence class is cut from "
                               f"them. Expected {LAYOUT}")
    return files


def _silence_clips(files: list[Path], counts: dict[str, int], seed: int
                   ) -> dict[str, list[tuple[np.ndarray, dict[str, Any]]]]:
    """``counts[split]`` chunks of 1 s per split from that split's time range of each noise file
    (files taken in turn), at a random gain; each with the sidecar entries that say where from."""
    import soundfile

    noise = []
    for path in files:
        audio, rate = soundfile.read(path, dtype="float64", always_2d=True)
        if rate != SAMPLE_RATE:
            raise InputError(f"{path} is {rate} Hz; Speech Commands noise is {SAMPLE_RATE} Hz")
        noise.append((path, audio[:, 0]))
    out: dict[str, list[tuple[np.ndarray, dict[str, Any]]]] = {}
    for k, (split, lo, hi) in enumerate(NOISE_RANGES):
        ranges = [(path, audio, int(lo * len(audio)), int(hi * len(audio)))
                  for path, audio in noise]
        ranges = [r for r in ranges if r[3] - r[2] >= CLIP_SAMPLES]
        if not ranges and counts[split]:
            raise InputError(f"the noise files in {files[0].parent} are too short: each is cut "
                             "60/20/20 into train, val and test, so at least one must be 5 s "
                             "long")
        rng = np.random.default_rng([seed, 1, k])
        out[split] = []
        for i in range(counts[split]):
            path, audio, start, end = ranges[i % len(ranges)]
            offset = int(rng.integers(start, end - CLIP_SAMPLES + 1))
            gain_db = float(rng.uniform(*SILENCE_GAIN_DB))
            chunk = audio[offset:offset + CLIP_SAMPLES] * 10 ** (gain_db / 20)
            samples = np.clip(np.round(chunk * 32768), -32768, 32767).astype(np.int16)
            out[split].append((samples, {
                "group": f"noise_{split}_{path.stem}", "source": f"{NOISE_DIR}/{path.name}",
                "start_sample": offset, "gain_db": round(gain_db, 2)}))
    return out


def _quotas(keyword_clips: int, unknown_share: float, silence_share: float) -> tuple[int, int]:
    """Clips of unknown and silence so that they are those shares of the split's total (at
    least one each when the split has keywords, so every class is in every split)."""
    if keyword_clips == 0:
        return 0, 0
    total = keyword_clips / (1 - unknown_share - silence_share)
    return (max(1, round(unknown_share * total)) if unknown_share else 0,
            max(1, round(silence_share * total)) if silence_share else 0)


def _is_our_import(folder: Path) -> bool:
    """True when every file in ``folder`` is one this importer wrote (its marker lists them):
    anything a person added there is kept safe."""
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        written = set(marker["files"]) | {MARKER}
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return marker.get("format") == FORMAT and all(
        p.relative_to(folder).as_posix() in written for p in folder.rglob("*") if p.is_file())


def import_speech_commands(source: Path | str, out_dir: Path | str, unknown_share: float = 0.1,
                           silence_share: float = 0.1, seed: int = 0,
                           log: Callable[[str], None] | None = None) -> ImportSummary:
    """Write Speech Commands v2 in ``source`` as a kws recordings folder ``out_dir``.

    ``unknown_share`` and ``silence_share``: the part of each split's clips that are non-keyword
    words and background noise (0.1 each, as MLPerf Tiny). ``seed`` picks the unknown clips and
    the noise chunks. An ``out_dir`` written by an earlier import is replaced; any other
    non-empty folder is refused. See the module's docstring for what is written."""
    import soundfile

    if not (0 <= unknown_share < 1 and 0 <= silence_share < 1
            and unknown_share + silence_share < 1):
        raise InputError(f"--unknown-share {unknown_share:g} and --silence-share "
                         f"{silence_share:g} must each be in [0, 1) and sum to less than 1")
    source, out_dir = Path(source), Path(out_dir)
    classes = datasets.info("kws").classes
    keywords = tuple(c for c in classes if c not in (SILENCE, UNKNOWN))
    check_out_dir(out_dir, _is_our_import, "a Speech Commands import",
                  " (an earlier import's folder is replaced)")
    clips, listed_missing = _scan(source, keywords)
    noise_files = _noise_files(source)

    splits_of: dict[str, set[str]] = {}
    for clip in clips:
        splits_of.setdefault(clip.speaker, set()).add(clip.split)
    shared = tuple(sorted(s for s, splits in splits_of.items() if len(splits) > 1))

    chosen: dict[str, list[tuple[str, _Clip]]] = {s: [] for s in datasets.SPLITS}
    unknown_available, silence_counts = {}, {}
    for k, split in enumerate(datasets.SPLITS):
        words = [c for c in clips if c.split == split and c.word in keywords]
        others = [c for c in clips if c.split == split and c.word not in keywords]
        n_unknown, silence_counts[split] = _quotas(len(words), unknown_share, silence_share)
        pick = np.random.default_rng([seed, 0, k]).permutation(len(others))[:n_unknown]
        chosen[split] = ([(c.word, c) for c in words]
                         + [(UNKNOWN, others[i]) for i in sorted(pick)])
        unknown_available[split] = len(others)
    if not chosen["train"]:
        raise InputError(f"{source} has no train clips of the keywords; expected {LAYOUT}")

    written: list[str] = []
    counts = {c: dict.fromkeys(datasets.SPLITS, 0) for c in classes}
    speakers: dict[str, set[str]] = {s: set() for s in datasets.SPLITS}

    def write(stage: Path, label: str, name: str, samples: np.ndarray, split: str,
              sidecar: dict[str, Any]) -> None:
        folder = stage / label
        folder.mkdir(exist_ok=True)
        soundfile.write(folder / f"{name}.flac", samples, SAMPLE_RATE, subtype="PCM_16")
        meta = {"format": FORMAT, "label": label, "rate": SAMPLE_RATE, "split": split, **sidecar}
        write_atomic(folder / f"{name}.json", json.dumps(meta, indent=1) + "\n")
        written.extend((f"{label}/{name}.flac", f"{label}/{name}.json"))
        counts[label][split] += 1

    with staged_dir(out_dir) as stage:
        for split in datasets.SPLITS:
            for label, clip in chosen[split]:
                samples = _read_clip(source / clip.source)
                name = Path(clip.source).stem if label == clip.word else (
                    f"{clip.word}_{Path(clip.source).stem}")
                write(stage, label, name, samples, split,
                      {"group": clip.speaker, "source": clip.source, "word": clip.word})
                speakers[split].add(clip.speaker)
            if log:
                log(f"{split}: {len(chosen[split])} word clips written")
        silence = _silence_clips(noise_files, silence_counts, seed)
        for split, chunks in silence.items():
            for i, (samples, sidecar) in enumerate(chunks):
                write(stage, SILENCE, f"{sidecar['group']}_{i:05d}", samples, split, sidecar)
        summary = ImportSummary(
            out_dir=out_dir, clips=counts, speakers={s: len(v) for s, v in speakers.items()},
            shared_speakers=shared, unknown_available=unknown_available,
            listed_missing=listed_missing, noise_files=tuple(p.name for p in noise_files),
            options={"source": str(source), "unknown_share": unknown_share,
                     "silence_share": silence_share, "seed": seed})
        marker = {"format": FORMAT, **summary.options, "clips": counts,
                  "speakers": summary.speakers, "shared_speakers": list(shared),
                  "files": written}
        write_atomic(stage / MARKER, json.dumps(marker, indent=1) + "\n")
    return summary
