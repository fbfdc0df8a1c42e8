"""Writing an audio data set as 16-bit FLAC clips in one uncompressed ``clips.zip`` plus an
``index.csv`` (kws, wingbeats, elephant_rumbles): small to ship, lossless for int16, and a few
files instead of thousands on a USB stick. Any file manager opens the zip to play a clip."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from tinyml_edu.datasets import CLIP_ARCHIVE, CLIP_INDEX, write_clip_archive

Samples = np.ndarray | Callable[[], np.ndarray]


def flac_bytes(samples: np.ndarray, sample_rate: int,
               compression_level: float | None = None) -> bytes:
    """``samples`` (int16) encoded as a 16-bit FLAC file, in memory."""
    import soundfile  # only needed to write the shipped files

    buffer = io.BytesIO()
    soundfile.write(buffer, samples, sample_rate, subtype="PCM_16", format="FLAC",
                    compression_level=compression_level)
    return buffer.getvalue()


def write_flac_clips(folder: Path, clips: Iterable[tuple[Path | str, Samples, Sequence[str]]],
                     columns: Sequence[str], sample_rate: int, *,
                     compression_level: float | None = None, workers: int = 1) -> list[Path]:
    """Write each ``(member path, int16 samples, index fields)`` as 16-bit FLAC into
    ``folder/clips.zip`` and ``index.csv`` with the header ``file, *columns`` (rows, and zip
    members, in the order given); return the two written paths.

    ``samples`` may also be a function that makes them: with ``workers`` > 1 those calls run in
    that many threads (worth it when synthesis waits on external programs, as for kws).
    ``compression_level`` (0-1, libsndfile's scale) changes the file size, never the samples.

    Loose clips under ``folder/clips`` (left by the older one-file-per-clip layout) are
    removed: they would be confusing, and ``load`` reads only the archive."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows: list[list[str]] = []

    def encode(item: tuple[Path | str, Samples, Sequence[str]]) -> tuple[str, bytes, list[str]]:
        rel, samples, fields = item
        data = samples() if callable(samples) else samples
        member = Path(rel).as_posix()
        return member, flac_bytes(data, sample_rate, compression_level), [member, *fields]

    def members(pool: ThreadPoolExecutor) -> Iterator[tuple[str, bytes]]:
        for member, blob, row in pool.map(encode, clips):  # map keeps the order of the plan
            rows.append(row)
            yield member, blob

    archive = folder / CLIP_ARCHIVE
    with ThreadPoolExecutor(max(1, workers)) as pool:
        write_clip_archive(archive, members(pool))
    _remove_loose_clips(folder / "clips")
    index = folder / CLIP_INDEX
    with open(index, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["file", *columns])
        writer.writerows(rows)
    return [archive, index]


def _remove_loose_clips(clips_dir: Path) -> None:
    """Delete FLAC files under ``clips_dir`` and the folders they leave empty (nothing else)."""
    if not clips_dir.is_dir():
        return
    for old in clips_dir.rglob("*.flac"):
        old.unlink()
    for d in sorted((p for p in clips_dir.rglob("*") if p.is_dir()), reverse=True):
        if not any(d.iterdir()):
            d.rmdir()
    if not any(clips_dir.iterdir()):
        clips_dir.rmdir()
