"""``SHA256SUMS`` of a bundle: write it, read it, check every file against it.

Standard library only: the bundle carries a copy of this file as ``verify_bundle.py`` so a
stick can be checked (and the install scripts check it) before anything is installed.
Run it as ``python verify_bundle.py [BUNDLE_DIR]``.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

try:
    from tinyml_edu.errors import TinyMLEduError
except ImportError:  # the bundle's standalone copy, verify_bundle.py, runs before any install
    TinyMLEduError = Exception

MANIFEST = "SHA256SUMS"
PART_SUFFIX = ".part"  # a file being copied; never listed, never installed
BLOCK = 1 << 20  # 1 MiB: large enough for USB throughput, small enough to resume cheaply


class BundleError(TinyMLEduError):
    """A bundle could not be built, verified or copied; the message says what to do."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


def bundle_files(root: Path) -> list[str]:
    """Every file under ``root`` as a POSIX path relative to it, except the manifest itself and
    the partial files of an interrupted copy."""
    root = Path(root)
    return [path.relative_to(root).as_posix() for path in sorted(root.rglob("*"))
            if path.is_file() and path.name != MANIFEST and not path.name.endswith(PART_SUFFIX)]


def write_manifest(root: Path) -> Path:
    """Write ``SHA256SUMS`` for every file under ``root``, in ``sha256sum -c`` format."""
    root = Path(root)
    lines = [f"{sha256_file(root / rel)}  {rel}\n" for rel in bundle_files(root)]
    part = root / (MANIFEST + PART_SUFFIX)
    with open(part, "w", encoding="utf-8", newline="\n") as f:
        f.writelines(lines)
    os.replace(part, root / MANIFEST)  # a bundle has a manifest only once it is complete
    return root / MANIFEST


def read_manifest(root: Path) -> dict[str, str]:
    """``{relative path: sha256}`` from a bundle's ``SHA256SUMS``."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise BundleError(f"{path} is missing, so {root} is not a complete bundle: copy it again "
                          "from a good copy (or rebuild it with `tinyml-edu bundle build`)")
    entries = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        digest, sep, rel = line.partition("  ")
        rel = rel.lstrip("*")
        # A path leaving the bundle would let a damaged manifest point anywhere on the disk.
        if (not sep or len(digest) != 64 or not rel or rel.startswith(("/", "\\"))
                or ".." in rel.replace("\\", "/").split("/")):
            raise BundleError(f"{path} line {n} is damaged ({line[:60]!r}); copy the bundle "
                              "again from a good copy")
        entries[rel] = digest
    return entries


@dataclass
class VerifyResult:
    checked: int = 0
    missing: list[str] = field(default_factory=list)
    corrupted: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)  # not in the manifest: reported, not an error

    @property
    def ok(self) -> bool:
        return not self.missing and not self.corrupted


def verify(root: Path | str, progress: Callable[[int, int], None] | None = None) -> VerifyResult:
    """Check every file listed in ``SHA256SUMS``: which are missing, which differ."""
    root = Path(root)
    expected = read_manifest(root)
    result = VerifyResult()
    for rel, digest in expected.items():
        path = root / rel
        if not path.is_file():
            result.missing.append(rel)
        elif sha256_file(path) != digest:
            result.corrupted.append(rel)
        result.checked += 1
        if progress:
            progress(result.checked, len(expected))
    result.extra = [rel for rel in bundle_files(root) if rel not in expected]
    return result


def report(result: VerifyResult, root: Path | str) -> list[str]:
    """The lines to show for a verify result: every bad file by name, then the verdict."""
    lines = [f"missing:   {rel}" for rel in result.missing]
    lines += [f"corrupted: {rel}" for rel in result.corrupted]
    lines += [f"note: {rel} is not part of the bundle" for rel in result.extra]
    if result.ok:
        lines.append(f"all {result.checked} files of {root} match {MANIFEST}")
    else:
        lines.append(f"{len(result.missing)} missing and {len(result.corrupted)} corrupted "
                     f"file(s) of {result.checked}: copy the bundle again from a good copy "
                     "(`tinyml-edu bundle copy GOOD_COPY THIS_FOLDER` replaces only those)")
    return lines


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    root = Path(argv[0]) if argv else Path(__file__).resolve().parent
    try:
        result = verify(root)
    except BundleError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for line in report(result, root):
        print(line, file=sys.stdout if result.ok else sys.stderr)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
