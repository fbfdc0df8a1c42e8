"""Does a student-facing artifact give away answers? Scan it for what only sources hold.

A lesson's *source* notebook holds the solutions (between ``### BEGIN SOLUTION`` and
``### END SOLUTION``) and the hidden tests (between ``### BEGIN HIDDEN TESTS`` and
``### END HIDDEN TESTS``); nbgrader's released version holds neither. What students get (the
tinyml-edu wheel, the USB bundle, the Binder image) must hold neither either: :func:`scan` looks
through folders, wheels and zips, inside them too, for the markers and for the text of every hidden
test line of the sources (:func:`secrets`).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinyml_edu.course import lessons

BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
# A marker is a line of its own (as nbgrader reads it); code that merely names one, such as
# this module or lessons.problems, is not a leak.
MARKER_LINE = re.compile(rb"^[ \t]*### BEGIN (SOLUTION|HIDDEN TESTS)[ \t]*\r?$", re.M)
MIN_SECRET_CHARS = 15  # shorter hidden lines (`assert ok`, `pass`) say nothing on their own
ARCHIVES = (".whl", ".zip")


@dataclass(frozen=True)
class Leak:
    where: str  # the file, with ``!`` between an archive and a member inside it
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


def _code_lines(cell: dict[str, Any]) -> list[str]:
    source = cell.get("source", "")
    return ("".join(source) if isinstance(source, list) else source).splitlines()


def _split_hidden(nb: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(hidden test lines, every other code line) of a source notebook, stripped."""
    hidden: set[str] = set()
    visible: set[str] = set()
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        inside = False
        for line in _code_lines(cell):
            text = line.strip()
            if text.startswith(BEGIN_HIDDEN):
                inside = True
            elif text.startswith(END_HIDDEN):
                inside = False
            elif text:
                (hidden if inside else visible).add(text)
    return hidden, visible


def _library_code() -> str:
    """The tinyml-edu library's own code, which every student has anyway."""
    package = Path(__file__).resolve().parents[1]
    return "\n".join(py.read_text(encoding="utf-8") for py in sorted(package.rglob("*.py")))


def secrets(source_root: Path | str | None = None) -> list[str]:
    """The hidden test lines of every lesson under ``source_root`` (default: the lesson
    sources) worth looking for: at least ``MIN_SECRET_CHARS`` long, and found neither in the
    visible code of a lesson nor in the library's own code (as a substring: the scan searches
    substrings, and a hidden check may repeat part of a visible one, such as its hint)."""
    hidden: set[str] = set()
    visible: set[str] = set()
    root = Path(source_root) if source_root is not None else None
    for lesson in lessons.list_lessons(root):
        h, v = _split_hidden(lessons.read_notebook(lesson.notebook))
        hidden |= h
        visible |= v
    known = "\n".join(sorted(visible)) + "\n" + _library_code()
    return sorted(t for t in hidden if len(t) >= MIN_SECRET_CHARS and t not in known)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _texts(name: str, data: bytes) -> list[bytes]:
    """The bytes to search: the file as it is and, for JSON (notebooks), its strings decoded,
    since JSON escapes quotes and newlines that the hidden lines contain."""
    texts = [data]
    if name.endswith((".ipynb", ".json")):
        try:
            decoded = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            return texts
        texts.append("\n".join(_strings(decoded)).encode("utf-8"))
    return texts


def _scan_bytes(where: str, data: bytes, wanted: list[bytes]) -> Iterator[Leak]:
    """At most one marker and one hidden line per file: enough to name the file."""
    texts = _texts(where, data)
    marker = next((m for text in texts for m in MARKER_LINE.finditer(text)), None)
    if marker is not None:
        yield Leak(where, f"nbgrader marker {marker.group(0).strip().decode()!r}")
    secret = next((s for s in wanted for text in texts if s in text), None)
    if secret is not None:
        yield Leak(where, f"hidden test line {secret.decode()!r}")


def _scan_archive(where: str, data: bytes, wanted: list[bytes]) -> Iterator[Leak]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        yield from _scan_bytes(where, data, wanted)
        return
    with archive:
        for info in archive.infolist():
            if not info.is_dir():
                yield from _scan_member(f"{where}!{info.filename}", archive.read(info), wanted)


def _scan_member(where: str, data: bytes, wanted: list[bytes]) -> Iterator[Leak]:
    if where.lower().endswith(ARCHIVES):
        yield from _scan_archive(where, data, wanted)
    else:
        yield from _scan_bytes(where, data, wanted)


def scan(path: Path | str, hidden_lines: list[str], skip: tuple[str, ...] = ()) -> list[Leak]:
    """Every marker and hidden test line in ``path`` (a folder, a wheel, a zip or any file),
    looking inside wheels and zips. Files whose relative path starts with one of ``skip`` are
    left out (e.g. third-party wheels that cannot hold this course's sources)."""
    path = Path(path)
    wanted = [line.encode("utf-8") for line in hidden_lines]
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    found: list[Leak] = []
    for file in files:
        rel = file.name if file == path else file.relative_to(path).as_posix()
        if skip and rel.startswith(skip):
            continue
        found += _scan_member(str(file), file.read_bytes(), wanted)
    return found
