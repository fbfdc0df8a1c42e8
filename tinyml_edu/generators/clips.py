"""Writing an audio data set as one FLAC file per clip plus an ``index.csv`` (kws, wingbeats,
elephant_rumbles): small to ship, playable in any audio tool, and lossless for int16."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

Samples = np.ndarray | Callable[[], np.ndarray]


def write_flac_clips(folder: Path, clips: Iterable[tuple[Path | str, Samples, Sequence[str]]],
                     columns: Sequence[str], sample_rate: int, *,
                     compression_level: float | None = None, workers: int = 1) -> list[Path]:
    """Write each ``(relative path, int16 samples, index fields)`` as 16-bit FLAC under
    ``folder``, and ``index.csv`` with the header ``file, *columns``; return every written path.

    ``samples`` may also be a function that makes them: with ``workers`` > 1 those calls run in
    that many threads (worth it when synthesis waits on external programs, as for kws).
    ``compression_level`` (0-1, libsndfile's scale) changes the file size, never the samples.

    FLAC files under ``folder/clips`` that this call did not write (left from an earlier,
    larger generation) are removed, and so are folders left empty: they would be confusing and
    fail ``data verify``."""
    import soundfile  # only needed to write the shipped files

    folder = Path(folder)

    def write(item: tuple[Path | str, Samples, Sequence[str]]) -> tuple[Path, list[str]]:
        rel, samples, fields = item
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        data = samples() if callable(samples) else samples
        soundfile.write(path, data, sample_rate, subtype="PCM_16", format="FLAC",
                        compression_level=compression_level)
        return path, [Path(rel).as_posix(), *fields]

    with ThreadPoolExecutor(max(1, workers)) as pool:
        done = list(pool.map(write, clips))  # map keeps the order of the index rows
    written = [path for path, _ in done]
    keep = set(written)
    clips_dir = folder / "clips"
    for old in clips_dir.rglob("*.flac"):
        if old not in keep:
            old.unlink()
    for d in sorted((p for p in clips_dir.rglob("*") if p.is_dir()), reverse=True):
        if not any(d.iterdir()):
            d.rmdir()
    index = folder / "index.csv"
    with open(index, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["file", *columns])
        writer.writerows(row for _, row in done)
    written.append(index)
    return written
