"""What the shipped data (and a built bundle) really take on a USB stick.

    python benchmarks/bench_footprint.py                    # datasets/ of this checkout
    python benchmarks/bench_footprint.py --bundle DIR       # also a built bundle folder

A file system stores every file in whole clusters, so a file takes ``ceil(size / cluster) *
cluster`` bytes: a 12 KB clip takes 32 KB on FAT32 (32 KB clusters) and 128 KB on exFAT with
128 KB clusters, the default for sticks of 64 GB and more. This prints, for each folder, the
number of files, their bytes and that rounded footprint at 4 KB (ext4, NTFS), 32 KB and 128 KB
clusters, then the targets of issue 15: ``datasets/`` at most 200 files and 70 MB at 128 KB
clusters, a whole Linux bundle at most 700 MB at 128 KB clusters. Exit code 1 if one is missed.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLUSTERS = (4096, 32 * 1024, 128 * 1024)
TARGET_CLUSTER = 128 * 1024
DATASETS_MAX_FILES = 200
DATASETS_MAX_BYTES = 70e6
BUNDLE_MAX_BYTES = 700e6


@dataclass(frozen=True)
class Footprint:
    files: int
    bytes: int
    on_disk: dict[int, int]  # cluster size -> bytes the files occupy


def rounded(size: int, cluster: int) -> int:
    """Bytes a file of ``size`` bytes occupies with ``cluster``-byte clusters (an empty file
    takes none on FAT and exFAT)."""
    return -(-size // cluster) * cluster


def footprint(folder: Path | str, clusters: tuple[int, ...] = CLUSTERS) -> Footprint:
    """Files, bytes and cluster-rounded size of every file under ``folder``."""
    sizes = [p.stat().st_size for p in Path(folder).rglob("*") if p.is_file()]
    return Footprint(len(sizes), sum(sizes),
                     {c: sum(rounded(s, c) for s in sizes) for c in clusters})


def format_row(label: str, fp: Footprint) -> str:
    cells = "".join(f"{fp.on_disk[c] / 1e6:12.1f}" for c in CLUSTERS)
    return f"{label:<28}{fp.files:>8}{fp.bytes / 1e6:10.1f}{cells}"


def header() -> str:
    cells = "".join(f"{f'{c // 1024} KB':>12}" for c in CLUSTERS)
    return f"{'folder':<28}{'files':>8}{'MB':>10}{cells}   (MB on disk per cluster size)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=str(ROOT / "datasets"),
                        help="the data folder (default: datasets/ of this checkout)")
    parser.add_argument("--bundle", help="a built bundle folder (tinyml-edu bundle build)")
    args = parser.parse_args(argv)
    data = footprint(args.datasets)
    print(header())
    print(format_row("datasets/", data))
    checks = [
        (f"datasets/: ≤ {DATASETS_MAX_FILES} files", data.files <= DATASETS_MAX_FILES),
        (f"datasets/: ≤ {DATASETS_MAX_BYTES / 1e6:.0f} MB at 128 KB clusters",
         data.on_disk[TARGET_CLUSTER] <= DATASETS_MAX_BYTES),
    ]
    if args.bundle:
        bundle = Path(args.bundle)
        whole = footprint(bundle)
        for part in sorted(p for p in bundle.iterdir() if p.is_dir()):
            print(format_row(f"  {part.name}/", footprint(part)))
        print(format_row("bundle (all)", whole))
        checks.append((f"bundle: ≤ {BUNDLE_MAX_BYTES / 1e6:.0f} MB at 128 KB clusters",
                       whole.on_disk[TARGET_CLUSTER] <= BUNDLE_MAX_BYTES))
    for what, ok in checks:
        print(f"target {what}: {'met' if ok else 'MISSED'}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
