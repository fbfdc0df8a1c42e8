"""The lesson notebooks: where they are, and whether each is a well-formed nbgrader source.

Layout (nbgrader's: one folder per assignment)::

    lessons/01-hello-tinyml/01-hello-tinyml.ipynb   # source: solutions and hidden tests
    lessons/01-hello-tinyml/<small files the lesson reads>

Conventions every lesson follows, and :func:`problems` checks:

- committed without outputs;
- the first cell is the lesson frame: Questions, Objectives, Time, Prerequisites, Hardware
  (always naming the virtual board as the alternative to a real one); the last says Key points;
- every nbgrader cell has a unique ``grade_id``; graded cells carry points;
- autograded answers sit between ``### BEGIN SOLUTION`` / ``### END SOLUTION``; at least one test
  cell has ``### BEGIN HIDDEN TESTS``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinyml_edu.errors import MissingFileError, UnknownNameError

LESSON_NAME = re.compile(r"^(\d\d)-[a-z0-9-]+$")
FRAME_HEADINGS = ("Questions", "Objectives", "Time", "Prerequisites", "Hardware")


SOURCES_ARE_THE_INSTRUCTORS = (
    "the lesson sources (solutions and hidden tests) are the instructor's and do not ship in the "
    "tinyml-edu package. Instructors: work in a clone of the tinyml-edu repository (its lessons/ "
    "and its course folder grading/), in a course folder made with `tinyml-edu course init DIR "
    "--source LESSONS`, or pass --course DIR. Students: open the released lessons your "
    "instructor handed out (the Binder link, the USB bundle's lessons/ folder, or the zips)")


class SourcesMissing(MissingFileError):
    """No lesson sources here: a student install, or an instructor outside the course."""


def repository_lessons() -> Path | None:
    """``lessons/`` of the source checkout this package runs from (an editable install or
    PYTHONPATH), if any. An installed wheel carries no lesson sources."""
    candidate = Path(__file__).resolve().parents[2] / "lessons"
    return candidate if candidate.is_dir() else None


def lessons_dir() -> Path:
    """The lesson sources: the source checkout's ``lessons/``, else the source folder of the
    course folder found from the current directory (see ``config.find_course_dir``)."""
    found = repository_lessons()
    if found is not None:
        return found
    from tinyml_edu.course import config

    course = config.find_course_dir()
    if course is not None:
        source = config.source_dir(course)
        if source.is_dir():
            return source
    raise SourcesMissing(SOURCES_ARE_THE_INSTRUCTORS)


@dataclass(frozen=True)
class Lesson:
    id: str  # nbgrader's assignment id, also the folder and notebook name
    folder: Path

    @property
    def notebook(self) -> Path:
        return self.folder / f"{self.id}.ipynb"

    @property
    def number(self) -> int:
        return int(self.id[:2])

    @property
    def title(self) -> str:
        nb = read_notebook(self.notebook)
        for cell in nb["cells"]:
            if cell["cell_type"] == "markdown":
                first = _source(cell).strip().splitlines()[0]
                return first.lstrip("# ").strip()
        return self.id


def list_lessons(root: Path | None = None) -> list[Lesson]:
    """Every lesson, in order."""
    root = root or lessons_dir()
    return [Lesson(p.name, p) for p in sorted(root.iterdir())
            if p.is_dir() and LESSON_NAME.match(p.name)]


def get_lesson(name: str, root: Path | None = None) -> Lesson:
    """A lesson by id (``01-hello-tinyml``) or number (``1``, ``01``)."""
    lessons = list_lessons(root)
    for lesson in lessons:
        if name == lesson.id or (name.isdigit() and int(name) == lesson.number):
            return lesson
    known = ", ".join(lesson.id for lesson in lessons)
    raise UnknownNameError(f"no lesson {name!r}; the lessons are: {known}")


def read_notebook(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def grade_cells(nb: dict[str, Any]) -> list[dict[str, Any]]:
    """The cells nbgrader tracks (answers, tests, written answers, read-only cells)."""
    return [c for c in nb["cells"] if c.get("metadata", {}).get("nbgrader")]


def points(nb: dict[str, Any]) -> tuple[float, float]:
    """(autograded points, manually graded points) of a source notebook."""
    auto = manual = 0.0
    for cell in grade_cells(nb):
        meta = cell["metadata"]["nbgrader"]
        if meta.get("grade"):
            if meta.get("solution") or meta.get("task"):
                manual += float(meta.get("points", 0))
            else:
                auto += float(meta.get("points", 0))
    return auto, manual


def problems(lesson: Lesson) -> list[str]:
    """Everything wrong with a lesson's source notebook (empty when it is well-formed)."""
    if not lesson.notebook.exists():
        return [f"{lesson.folder.name}: the notebook must be named {lesson.notebook.name}"]
    try:
        nb = read_notebook(lesson.notebook)
    except (OSError, json.JSONDecodeError) as err:
        return [f"{lesson.notebook.name}: not a readable notebook ({err})"]
    found: list[str] = []
    where = lesson.notebook.name
    cells = nb.get("cells", [])
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count")):
            found.append(f"{where} cell {i}: has outputs; clear them before committing")
    markdown = [c for c in cells if c["cell_type"] == "markdown"]
    if not markdown or not cells or cells[0]["cell_type"] != "markdown":
        found.append(f"{where}: the first cell must be the lesson frame (markdown)")
    else:
        frame = _source(cells[0])
        for heading in FRAME_HEADINGS:
            if heading not in frame:
                found.append(f"{where}: the lesson frame lacks '{heading}'")
        if "virtual board" not in frame.lower():
            found.append(f"{where}: the frame's Hardware must name the virtual board alternative")
        if "Key points" not in _source(markdown[-1]):
            found.append(f"{where}: the last markdown cell must list the Key points")
    ids: dict[str, int] = {}
    hidden = 0
    for i, cell in enumerate(cells):
        meta = cell.get("metadata", {}).get("nbgrader")
        if not meta:
            continue
        grade_id = meta.get("grade_id")
        if not grade_id:
            found.append(f"{where} cell {i}: nbgrader cell without a grade_id")
        elif grade_id in ids:
            found.append(f"{where} cells {ids[grade_id]} and {i}: duplicate grade_id {grade_id!r}")
        else:
            ids[grade_id] = i
        if meta.get("grade") and not float(meta.get("points", 0)) > 0:
            found.append(f"{where} cell {i} ({grade_id}): a graded cell needs points > 0")
        source = _source(cell)
        is_code = cell["cell_type"] == "code"
        if meta.get("solution") and is_code and "### BEGIN SOLUTION" not in source:
            found.append(f"{where} cell {i} ({grade_id}): answer cell without ### BEGIN SOLUTION")
        if meta.get("grade") and not meta.get("solution") and cell["cell_type"] == "code":
            hidden += "### BEGIN HIDDEN TESTS" in source
    if not ids:
        found.append(f"{where}: no nbgrader cells; is this a lesson?")
    elif points(nb)[0] > 0 and not hidden:
        found.append(f"{where}: no test cell has ### BEGIN HIDDEN TESTS")
    return found
