"""Writing files so that an interruption never leaves half of one under the real name.

Each helper writes beside its target (same folder, so same file system) and swaps the result in
with one rename; a failure removes the partial copy and leaves the old target as it was.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from tinyml_edu.errors import OutDirError


@contextlib.contextmanager
def replacing(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write; it replaces ``path`` on success."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path | str, data: str | bytes) -> Path:
    """Write text (UTF-8) or bytes to ``path`` through a temporary file beside it."""
    with replacing(path) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding="utf-8")
    return Path(path)


@contextlib.contextmanager
def staged_dir(dest: Path | str) -> Iterator[Path]:
    """Yield an empty staging folder beside ``dest`` to fill; on success it replaces ``dest``
    (an older ``dest`` is removed first), on failure it is removed and ``dest`` stays."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        yield stage
        if dest.exists():
            shutil.rmtree(dest)
        stage.rename(dest)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def check_out_dir(out_dir: Path, is_ours: Callable[[Path], bool], ours: str,
                  replaced: str = "") -> None:
    """Refuse an --out that is a file, or a folder of someone else's files (``is_ours`` says
    which folders a command may overwrite; ``ours`` names them in the message)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OutDirError(f"{out_dir} is a file; give --out a folder name")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not is_ours(out_dir):
        raise OutDirError(f"{out_dir} already holds files that are not {ours}; to keep them "
                          f"safe, choose another --out folder{replaced}")
