"""Writing an audio data set as one FLAC file per clip plus an ``index.csv`` (wingbeats,
elephant_rumbles): small to ship, playable in any audio tool, and lossless for int16."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np


def write_flac_clips(folder: Path, clips: Iterable[tuple[Path, np.ndarray, Sequence[str]]],
                     columns: Sequence[str], sample_rate: int) -> list[Path]:
    """Write each ``(relative path, int16 samples, index fields)`` as 16-bit FLAC under
    ``folder``, and ``index.csv`` with the header ``file, *columns``; return every written path.

    FLAC files under ``folder/clips`` that this call did not write (left from an earlier,
    larger generation) are removed: they would be confusing and fail ``data verify``."""
    import soundfile  # only needed to write the shipped files

    folder = Path(folder)
    written: list[Path] = []
    rows = []
    for rel, samples, fields in clips:
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(path, samples, sample_rate, subtype="PCM_16", format="FLAC")
        written.append(path)
        rows.append([Path(rel).as_posix(), *fields])
    keep = set(written)
    for old in (folder / "clips").rglob("*.flac"):
        if old not in keep:
            old.unlink()
    index = folder / "index.csv"
    with open(index, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["file", *columns])
        writer.writerows(rows)
    written.append(index)
    return written
