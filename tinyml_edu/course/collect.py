"""``tinyml-edu course collect``: hand-ins from an LMS zip, a folder or a USB stick, matched to the
class list, into nbgrader's ``submitted/<student>/<lesson>/<lesson>.ipynb``.

The class list is ``students.csv`` in the course folder (UTF-8, a header row)::

    id,first_name,last_name,email,lms_id
    jdoe,Jane,Doe,jane.doe@example.org,12345

``id`` (nbgrader's student id: letters, digits, ``-``, ``_``, ``.``) is required; the rest is
optional. ``lms_id`` is the number Moodle or Canvas puts in its download file names.

Names understood (each file or folder path is searched for a student and a lesson):

- Moodle: ``Jane Doe_12345_assignsubmission_file_01-hello-tinyml.ipynb`` (or that as a folder);
- Canvas: ``doejane_12345_67890_01-hello-tinyml.ipynb``, ``doejane_LATE_12345_67890_...``;
- a folder of returned notebooks or a USB stick: ``Jane Doe/01-hello-tinyml.ipynb``,
  ``jdoe_01-hello-tinyml.ipynb``, ``01-hello-tinyml - jane doe.ipynb``.

A name that matches no one exactly is matched to the closest class-list name when it is clearly
closest (accents, case, order, a typo); the rest are reported, never guessed. Nothing already
collected is lost: a different earlier hand-in is moved to ``submitted/<student>/.replaced/``.
"""

from __future__ import annotations

import csv
import difflib
import re
import shutil
import tempfile
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from tinyml_edu.errors import InputError, MissingFileError

STUDENTS_CSV = "students.csv"
# What `tinyml-edu course collect --help` shows: the hand-in shapes it reads and the class list.
HELP = """\
SOURCE is one of:
  a Moodle zip      "Download all submissions": files or folders named like
                    Jane Doe_12345_assignsubmission_file_01-hello-tinyml.ipynb
  a Canvas zip      "Download submissions": doejane_12345_67890_01-hello-tinyml.ipynb
                    (late ones: doejane_LATE_12345_67890_...)
  a folder          e.g. the notebooks students handed back: Jane Doe/01-hello-tinyml.ipynb,
                    jdoe_01-hello-tinyml.ipynb or 01-hello-tinyml - jane doe.ipynb
  a USB stick       its folder (/media/STICK, E:\\): the same names as a folder

The class list COURSE/students.csv is needed (grading/students.csv in the repository; copy
grading/students.example.csv): UTF-8 CSV, header 'id,first_name,last_name,email,lms_id', one
student per row; only id is required, lms_id is the number Moodle or Canvas puts in file names.
Names are matched by LMS number, exact name, or a clearly closest spelling; the rest are
listed (exit code 1), never guessed. An earlier, different hand-in is kept in .replaced/."""
STUDENT_ID = re.compile(r"^[A-Za-z0-9._-]+$")
FUZZY_MIN = 0.75  # similarity a fuzzy match needs ...
FUZZY_MARGIN = 0.08  # ... and how far ahead of the next candidate it must be
LMS_MARKERS = re.compile(r"_assignsubmission_\w*|_onlinetext_|\bLATE\b", re.IGNORECASE)


@dataclass(frozen=True)
class Student:
    id: str
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    lms_id: str = ""

    def names(self) -> list[str]:
        """Normalized spellings an LMS might use for this student."""
        first, last = _norm(self.first_name), _norm(self.last_name)
        found = {_norm(self.id), first + last, last + first}
        if self.email:
            found.add(_norm(self.email.split("@")[0]))
        return [n for n in found if n]


@dataclass
class Collected:
    source: str  # the path inside the zip or folder
    student: str
    lesson: str
    how: str  # "exact", "lms id", "fuzzy (0.86)"
    status: str  # "new", "unchanged", "replaced"


@dataclass
class CollectReport:
    collected: list[Collected] = field(default_factory=list)
    unmatched: list[tuple[str, str]] = field(default_factory=list)  # (source, why)

    def format(self) -> str:
        lines = [f"{c.student:20} {c.lesson:28} {c.status:9} {c.how:14} {c.source}"
                 for c in self.collected]
        lines += [f"NOT COLLECTED {src}: {why}" for src, why in self.unmatched]
        lines.append(f"{len(self.collected)} collected, {len(self.unmatched)} not matched"
                     + ("; add them to students.csv (or rename the files) and collect again"
                        if self.unmatched else ""))
        return "\n".join(lines)


def _norm(text: str) -> str:
    """Lower case ASCII letters and digits only: 'Zoë  O'Brien' -> 'zoeobrien'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", ascii_text.lower())


def load_students(path: Path) -> list[Student]:
    """The class list; a clear error for a missing file or a bad row."""
    if not path.exists():
        raise MissingFileError(
            f"no class list at {path}: write it as CSV with a header 'id,first_name,last_name,"
            "email,lms_id' (only id is required), one student per row; "
            "grading/students.example.csv is an example to copy")
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    students = []
    for n, row in enumerate(rows, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
        if not STUDENT_ID.match(row.get("id", "")):
            raise InputError(f"{path} line {n}: id {row.get('id')!r} must be letters, digits, "
                             "'-', '_' or '.' (it becomes a folder name)")
        students.append(Student(row["id"], row.get("first_name", ""), row.get("last_name", ""),
                                row.get("email", ""), row.get("lms_id", "")))
    return students


def match_student(text: str, students: list[Student]) -> tuple[Student | None, str]:
    """The student a file name (lesson id already removed) refers to, and how it was matched."""
    numbers = set(re.findall(r"\d{3,}", text))
    for s in students:
        if s.lms_id and s.lms_id in numbers:
            return s, "lms id"
    cleaned = LMS_MARKERS.sub(" ", text)
    words = [w for w in re.split(r"[\s_/\\\-.,()]+", cleaned) if w and not w.isdigit()]
    key = _norm("".join(words))
    if not key:
        return None, "no name in it"
    for s in students:
        if key in s.names():
            return s, "exact"
    scored = sorted(((max(difflib.SequenceMatcher(None, key, n).ratio() for n in s.names()), s)
                     for s in students), key=lambda x: -x[0])
    if scored and scored[0][0] >= FUZZY_MIN and (
            len(scored) == 1 or scored[0][0] - scored[1][0] >= FUZZY_MARGIN):
        return scored[0][1], f"fuzzy ({scored[0][0]:.2f})"
    best = f"; closest: {scored[0][1].id} ({scored[0][0]:.2f})" if scored else ""
    return None, f"no student matches {' '.join(words)!r}{best}"


def _find_lesson(text: str, lesson_ids: list[str]) -> str | None:
    low = text.lower()
    hits = [lid for lid in lesson_ids if lid.lower() in low]
    if len(hits) == 1:
        return hits[0]
    numbers = {m for m in re.findall(r"(?<!\d)(\d\d)-", low)}
    by_number = [lid for lid in lesson_ids if lid[:2] in numbers]
    return by_number[0] if len(by_number) == 1 else None


def _entries(source: Path, scratch: Path) -> Iterator[tuple[str, Path, datetime]]:
    """(path inside the source, a readable local file, its time) for every notebook."""
    if source.is_file() and zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as zf:
            for info in zf.infolist():
                name = info.filename
                if info.is_dir() or not name.lower().endswith(".ipynb") or \
                        "__MACOSX" in name or ".ipynb_checkpoints" in name:
                    continue
                local = scratch / f"{len(list(scratch.iterdir()))}.ipynb"
                local.write_bytes(zf.read(info))
                when = datetime(*info.date_time, tzinfo=timezone.utc)
                yield name, local, when
    elif source.is_dir():
        for path in sorted(source.rglob("*.ipynb")):
            if ".ipynb_checkpoints" in path.parts or not path.is_file():
                continue
            when = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)
            yield path.relative_to(source).as_posix(), path, when
    else:
        raise MissingFileError(f"{source} is neither a zip file nor a folder")


def collect(course: Path | str, source: Path | str, lesson: str | None = None,
            students_csv: Path | str | None = None) -> CollectReport:
    """Copy every hand-in in ``source`` to ``submitted/``; ``lesson`` when the names say none."""
    from nbgrader.api import Gradebook
    from nbgrader.coursedir import CourseDirectory

    from tinyml_edu.course import config, lessons
    from tinyml_edu.course.release import source_dir

    course = Path(course).resolve()
    coursedir = CourseDirectory(config=config.load_config(course))
    students = load_students(Path(students_csv) if students_csv else course / STUDENTS_CSV)
    lesson_ids = [le.id for le in lessons.list_lessons(source_dir(course))]
    if lesson is not None:
        lesson = lessons.get_lesson(lesson, source_dir(course)).id
    report = CollectReport()
    picked: dict[tuple[str, str], tuple[str, Path, datetime, str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, local, when in _entries(Path(source), Path(tmp)):
            found = _find_lesson(name, lesson_ids) or lesson
            if found is None:
                report.unmatched.append((name, "which lesson? none named in it; pass --lesson"))
                continue
            text = re.sub(re.escape(found), " ", name, flags=re.IGNORECASE)
            text = re.sub(r"\.ipynb$", "", text, flags=re.IGNORECASE)
            student, how = match_student(text, students)
            if student is None:
                report.unmatched.append((name, how))
                continue
            key = (student.id, found)
            if key in picked and picked[key][2] >= when:
                report.unmatched.append((name, f"older than another hand-in of {student.id}"))
                continue
            if key in picked:
                report.unmatched.append((picked[key][0], f"older than {name}"))
            picked[key] = (name, local, when, how)
        for (sid, lid), (name, local, when, how) in sorted(picked.items()):
            status = _store(Path(coursedir.root) / coursedir.submitted_directory, sid, lid,
                            local, when)
            report.collected.append(Collected(name, sid, lid, how, status))
    with Gradebook(coursedir.db_url, coursedir.course_id) as gb:  # names for export and reports
        for s in students:
            gb.update_or_create_student(s.id, first_name=s.first_name or None,
                                        last_name=s.last_name or None, email=s.email or None)
    return report


def _store(submitted: Path, student: str, lesson: str, local: Path, when: datetime) -> str:
    folder = submitted / student / lesson
    dest = folder / f"{lesson}.ipynb"
    data = local.read_bytes()
    status = "new"
    if dest.exists():
        if dest.read_bytes() == data:
            return "unchanged"
        # Never overwrite a hand-in: the earlier one moves aside, whole folder and timestamp.
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        aside = submitted / student / ".replaced" / f"{lesson}-{stamp}"
        aside.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(folder), str(aside))
        status = "replaced"
    folder.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)
    # nbgrader reads the hand-in time from timestamp.txt (late penalties).
    (folder / "timestamp.txt").write_text(when.strftime("%Y-%m-%d %H:%M:%S.%f %Z"))
    return status
