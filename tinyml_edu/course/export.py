"""``tinyml-edu course export`` and ``report``: the gradebook as a CSV for a spreadsheet or an LMS,
and which questions the class found hardest.

CSV: one row per student on the class list or in the gradebook; columns ``student_id``,
``first_name``, ``last_name``, ``email``, then per lesson

- ``<lesson>``: the points so far (blank when not handed in),
- ``<lesson>:max``: the lesson's maximum,
- ``<lesson>:auto``: the points of the autograded questions,
- ``<lesson>:manual``: the points of the written answers a grader scores by hand, or
  ``not graded yet`` while any of them is,
- ``<lesson>:<question>``: each graded cell's score (a grader's manual score where one was
  given, else the autograder's), or ``not graded yet`` for a written answer nobody graded.

The default file is ``COURSE/reports/grades.csv``: next to the other reports, outside what git
tracks (grades are personal data).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinyml_edu.course import config
from tinyml_edu.errors import InputError

NOT_GRADED = "not graded yet"
DEFAULT_CSV = Path("reports") / "grades.csv"  # inside the course folder


def _gradebook(course: Path | str) -> Any:
    from nbgrader.api import Gradebook
    from nbgrader.coursedir import CourseDirectory

    coursedir = CourseDirectory(config=config.load_config(Path(course).resolve()))
    return Gradebook(coursedir.db_url, coursedir.course_id)


@dataclass(frozen=True)
class Question:
    notebook: str
    name: str  # nbgrader's grade id
    max_score: float
    manual: bool  # a written answer (or code) a grader scores by hand, not the autograder


def _questions(assignment: Any) -> list[Question]:
    """Every graded cell, in notebook order. Manually graded: a Markdown answer, or a code
    answer that is also its own grade cell (nbgrader's "manually graded answer")."""
    questions = []
    for nb in sorted(assignment.notebooks, key=lambda n: n.name):
        answers = {cell.name for cell in nb.solution_cells}
        questions += [Question(nb.name, cell.name, float(cell.max_score),
                               cell.cell_type == "markdown" or cell.name in answers)
                      for cell in nb.grade_cells]
    return questions


def _graded(grade: Any) -> bool:
    """Has anyone, autograder or grader, scored this cell?"""
    return grade.manual_score is not None or grade.auto_score is not None


def _lesson_cells(assignment: Any, sub: Any, questions: list[Question]) -> dict[str, Any]:
    """A submission's columns: total, max, auto and manual points, and each question."""
    name = assignment.name
    manual = {q.name for q in questions if q.manual}
    cells: dict[str, Any] = {f"{name}:max": round(sum(q.max_score for q in questions), 3)}
    auto_points = manual_points = 0.0
    pending = 0
    for nb in sub.notebooks:
        for grade in nb.grades:
            if grade.name in manual and not _graded(grade):
                pending += 1
                cells[f"{name}:{grade.name}"] = NOT_GRADED
                continue
            score = float(grade.score or 0.0)
            cells[f"{name}:{grade.name}"] = round(score, 3)
            if grade.name in manual:
                manual_points += score
            else:
                auto_points += score
    cells[name] = round(auto_points + manual_points, 3)
    cells[f"{name}:auto"] = round(auto_points, 3)
    cells[f"{name}:manual"] = (NOT_GRADED if pending and not manual_points else
                               f"{manual_points:g} ({pending} {NOT_GRADED})" if pending else
                               round(manual_points, 3)) if manual else ""
    return cells


def table(course: Path | str) -> tuple[list[str], list[dict[str, Any]]]:
    """(columns, rows) of the export."""
    from nbgrader.api import MissingEntry

    with _gradebook(course) as gb:
        assignments = sorted(gb.assignments, key=lambda a: a.name)
        columns = ["student_id", "first_name", "last_name", "email"]
        questions = {a.name: _questions(a) for a in assignments}
        for a in assignments:
            columns += [a.name, f"{a.name}:max", f"{a.name}:auto", f"{a.name}:manual"]
            columns += [f"{a.name}:{q.name}" for q in questions[a.name]]
        rows = []
        for student in sorted(gb.students, key=lambda s: s.id):
            row: dict[str, Any] = {"student_id": student.id,
                                   "first_name": student.first_name or "",
                                   "last_name": student.last_name or "",
                                   "email": student.email or ""}
            for a in assignments:
                try:
                    sub = gb.find_submission(a.name, student.id)
                except MissingEntry:
                    continue
                row.update(_lesson_cells(a, sub, questions[a.name]))
            rows.append(row)
    return columns, rows


def export_csv(course: Path | str, out: Path | str | None = None) -> Path:
    """Write the CSV to ``out`` (default ``COURSE/reports/grades.csv``); return its path."""
    columns, rows = table(course)
    out = Path(out) if out else Path(course) / DEFAULT_CSV
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")  # a crash never leaves half a grade sheet
    with open(partial, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
    partial.replace(out)
    return out


@dataclass
class QuestionStats:
    question: str
    max_score: float
    scores: list[float]  # one per graded submission
    manual: bool = False  # graded by hand
    not_graded: int = 0  # submissions whose answer nobody has graded yet

    @property
    def mean_fraction(self) -> float:
        if not self.scores or not self.max_score:
            return float("nan")
        return sum(self.scores) / len(self.scores) / self.max_score

    @property
    def full_marks(self) -> int:
        return sum(s >= self.max_score for s in self.scores)


def question_stats(course: Path | str, lesson: str) -> list[QuestionStats]:
    """Every graded question of ``lesson`` with the class's scores, hardest first; written
    answers nobody has graded yet come last (an ungraded answer is not a 0 % answer)."""
    from nbgrader.api import MissingEntry

    with _gradebook(course) as gb:
        try:
            assignment = gb.find_assignment(lesson)
        except MissingEntry:
            raise InputError(f"{lesson} is not in the gradebook; release and autograde it "
                             "first") from None
        stats = {q.name: QuestionStats(q.name, q.max_score, [], q.manual)
                 for q in _questions(assignment)}
        for sub in assignment.submissions:
            for nb in sub.notebooks:
                for grade in nb.grades:
                    if grade.name not in stats:
                        continue
                    if stats[grade.name].manual and not _graded(grade):
                        stats[grade.name].not_graded += 1
                    elif grade.score is not None:
                        stats[grade.name].scores.append(float(grade.score))
    ranked = sorted((s for s in stats.values() if s.scores), key=lambda s: s.mean_fraction)
    return ranked + [s for s in stats.values() if not s.scores and s.not_graded]


def report(course: Path | str, lesson: str, out: Path | str | None = None) -> tuple[Path, str]:
    """A PNG of each question's score distribution, and a text summary, hardest first."""
    stats = question_stats(course, lesson)
    scored = [s for s in stats if s.scores]
    if not scored:
        raise InputError(f"no graded submissions of {lesson}; run `tinyml-edu course autograde "
                         f"{lesson}` first" + (" and grade the written answers in formgrader"
                                               if stats else ""))
    out = Path(out) if out else Path(course) / "reports" / f"{lesson}-questions.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    _plot_questions(scored, lesson, out)
    return out, _summary(stats)


def _plot_questions(stats: list[QuestionStats], lesson: str, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(stats)
    fig, axes = plt.subplots(n, 1, figsize=(6, 1.1 + 1.0 * n), sharex=True, squeeze=False)
    for ax, s in zip(axes[:, 0], stats, strict=True):
        fractions = [x / s.max_score for x in s.scores] if s.max_score else s.scores
        ax.hist(fractions, bins=[i / 10 for i in range(11)], color="#4477aa")
        label = f"{s.question}\n(manual)" if s.manual else s.question
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
        ax.set_yticks([])
        ax.text(1.0, 0.8, f"mean {s.mean_fraction:.0%}", transform=ax.transAxes, ha="right",
                fontsize=8)
    axes[-1, 0].set_xlabel("fraction of the question's points")
    fig.suptitle(f"{lesson}: score distribution per question (hardest first; written answers "
                 "not graded yet are left out)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def _summary(stats: list[QuestionStats]) -> str:
    lines = [f"{'question':24} {'graded':6} {'points':>6} {'mean':>6} {'full marks':>11}"]
    for s in stats:
        kind = "manual" if s.manual else "auto"
        if not s.scores:
            lines.append(f"{s.question:24} {kind:6} {s.max_score:6g} {NOT_GRADED} "
                         f"({s.not_graded} answer(s))")
            continue
        pending = f"  ({s.not_graded} {NOT_GRADED})" if s.not_graded else ""
        lines.append(f"{s.question:24} {kind:6} {s.max_score:6g} {s.mean_fraction:6.0%} "
                     f"{s.full_marks:4d}/{len(s.scores)}{pending}")
    scored = [s for s in stats if s.scores]
    auto = sum(s.max_score for s in stats if not s.manual)
    manual = sum(s.max_score for s in stats if s.manual)
    lines.append(f"points: {auto + manual:g} = {auto:g} auto + {manual:g} manual")
    lines.append(f"hardest: {', '.join(s.question for s in scored[:3])}")
    waiting = [s.question for s in stats if s.not_graded]
    if waiting:
        lines.append(f"{NOT_GRADED}: {', '.join(waiting)} (grade them in formgrader; they are "
                     "not ranked until then)")
    return "\n".join(lines)
