"""``tinyml-edu bundle copy``: copy a bundle so that a pulled stick or a full disk loses nothing.

Each file goes through ``NAME.part``: appended to in 1 MiB blocks, synced, checked against
``SHA256SUMS`` and only then renamed to ``NAME``. An interrupted copy keeps its ``.part`` files;
run the same command again and it skips the files already in place and checked, and continues
each partial file from where it stopped. ``SHA256SUMS`` is copied last, so a destination only
looks like a complete bundle once every file is there.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tinyml_edu.bundle.checksums import (
    BLOCK,
    MANIFEST,
    PART_SUFFIX,
    BundleError,
    read_manifest,
    sha256_file,
)


@dataclass
class CopyResult:
    copied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already in place and checked
    resumed: list[str] = field(default_factory=list)  # continued from an interrupted copy
    bytes_copied: int = 0


def _copy_one(src: Path, dest: Path, digest: str, on_bytes: Callable[[int], None]) -> bool:
    """Copy ``src`` to ``dest`` through ``dest.part``; True if it continued a partial file.

    If the finished file does not match, it is copied once more from scratch: the partial file
    of an earlier run may itself have been damaged.
    """
    part = dest.with_name(dest.name + PART_SUFFIX)
    dest.parent.mkdir(parents=True, exist_ok=True)
    size = src.stat().st_size
    resumed = part.is_file() and 0 < part.stat().st_size <= size
    for attempt in range(2):
        if attempt or (part.is_file() and part.stat().st_size > size):
            part.unlink(missing_ok=True)
        offset = part.stat().st_size if part.is_file() else 0
        with open(src, "rb") as fin, open(part, "ab") as fout:
            fin.seek(offset)
            while block := fin.read(BLOCK):
                fout.write(block)
                on_bytes(len(block))
            fout.flush()
            os.fsync(fout.fileno())  # on the stick, not in a cache, before it counts as copied
        if sha256_file(part) == digest:
            os.replace(part, dest)
            return resumed
    part.unlink(missing_ok=True)
    raise BundleError(f"{src} does not match {MANIFEST}, even copied a second time: the source "
                      "bundle is damaged. Run `tinyml-edu bundle verify` on it, then copy from "
                      "a good one or rebuild it")


def copy(src: Path | str, dest: Path | str, log: Callable[[str], None] | None = None,
         on_bytes: Callable[[int], None] | None = None) -> CopyResult:
    """Copy bundle ``src`` to ``dest``; after an interruption, run it again to finish.

    ``on_bytes(n)`` is called after each block written: progress for a caller, and the place a
    test raises from to simulate a pulled stick.
    """
    src, dest = Path(src), Path(dest)
    expected = read_manifest(src)
    if dest.resolve() == src.resolve() or src.resolve() in dest.resolve().parents:
        raise BundleError(f"cannot copy {src} into itself; choose a destination outside it")
    missing = [rel for rel in expected if not (src / rel).is_file()]
    if missing:
        raise BundleError(f"the source bundle lacks {len(missing)} file(s), e.g. {missing[0]}; "
                          "run `tinyml-edu bundle verify` on it, then copy from a good one")
    dest.mkdir(parents=True, exist_ok=True)
    (dest / MANIFEST).unlink(missing_ok=True)  # incomplete again until every file is checked
    result = CopyResult()

    def counted(n: int) -> None:
        result.bytes_copied += n
        if on_bytes:
            on_bytes(n)

    for i, (rel, digest) in enumerate(expected.items(), 1):
        target = dest / rel
        if (target.is_file() and target.stat().st_size == (src / rel).stat().st_size
                and sha256_file(target) == digest):
            result.skipped.append(rel)
            continue
        if _copy_one(src / rel, target, digest, counted):
            result.resumed.append(rel)
        result.copied.append(rel)
        if log:
            log(f"[{i}/{len(expected)}] {rel}")
    part = dest / (MANIFEST + PART_SUFFIX)
    shutil.copyfile(src / MANIFEST, part)
    os.replace(part, dest / MANIFEST)
    return result
