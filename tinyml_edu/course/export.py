"""``tinyml-edu course export`` and ``report``: the gradebook as a CSV for a spreadsheet or an LMS,
and which questions the class found hardest.

CSV: one row per student on the class list or in the gradebook; columns ``student_id``,
``first_name``, ``last_name``, ``email``, then per lesson ``<lesson>`` (its score, blank when
not handed in) and ``<lesson>:<question>`` (each graded cell's score: a grader's manual score
where one was given, else the autograder's).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinyml_edu.course import config


def _gradebook(course: Path | str) -> Any:
    from nbgrader.api import Gradebook
    from nbgrader.coursedir import CourseDirectory

    coursedir = CourseDirectory(config=config.load_config(Path(course).resolve()))
    return Gradebook(coursedir.db_url, coursedir.course_id)


def _questions(assignment: Any) -> list[tuple[str, str, float]]:
    """(notebook, grade id, max points) of every graded cell, in notebook order."""
    return [(nb.name, cell.name, float(cell.max_score))
            for nb in sorted(assignment.notebooks, key=lambda n: n.name)
            for cell in nb.grade_cells]


def table(course: Path | str) -> tuple[list[str], list[dict[str, Any]]]:
    """(columns, rows) of the export."""
    from nbgrader.api import MissingEntry

    with _gradebook(course) as gb:
        assignments = sorted(gb.assignments, key=lambda a: a.name)
        columns = ["student_id", "first_name", "last_name", "email"]
        for a in assignments:
            columns.append(a.name)
            columns += [f"{a.name}:{q}" for _, q, _ in _questions(a)]
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
                row[a.name] = round(float(sub.score), 3)
                for nb in sub.notebooks:
                    for grade in nb.grades:
                        if grade.score is not None:
                            row[f"{a.name}:{grade.name}"] = round(float(grade.score), 3)
            rows.append(row)
    return columns, rows


def export_csv(course: Path | str, out: Path | str) -> Path:
    columns, rows = table(course)
    out = Path(out)
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
    scores: list[float]  # one per submission

    @property
    def mean_fraction(self) -> float:
        if not self.scores or not self.max_score:
            return float("nan")
        return sum(self.scores) / len(self.scores) / self.max_score

    @property
    def full_marks(self) -> int:
        return sum(s >= self.max_score for s in self.scores)


def question_stats(course: Path | str, lesson: str) -> list[QuestionStats]:
    """Every graded question of ``lesson`` with the class's scores, hardest first."""
    from nbgrader.api import MissingEntry

    with _gradebook(course) as gb:
        try:
            assignment = gb.find_assignment(lesson)
        except MissingEntry:
            raise ValueError(f"{lesson} is not in the gradebook; release and autograde it "
                             "first") from None
        stats = {q: QuestionStats(q, m, []) for _, q, m in _questions(assignment)}
        for sub in assignment.submissions:
            for nb in sub.notebooks:
                for grade in nb.grades:
                    if grade.score is not None and grade.name in stats:
                        stats[grade.name].scores.append(float(grade.score))
    graded = [s for s in stats.values() if s.scores]
    return sorted(graded, key=lambda s: s.mean_fraction)


def report(course: Path | str, lesson: str, out: Path | str | None = None) -> tuple[Path, str]:
    """A PNG of each question's score distribution, and a text summary, hardest first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stats = question_stats(course, lesson)
    if not stats:
        raise ValueError(f"no graded submissions of {lesson}; run `tinyml-edu course autograde "
                         f"{lesson}` first")
    out = Path(out) if out else Path(course) / "reports" / f"{lesson}-questions.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    n = len(stats)
    fig, axes = plt.subplots(n, 1, figsize=(6, 1.1 + 1.0 * n), sharex=True, squeeze=False)
    for ax, s in zip(axes[:, 0], stats, strict=True):
        fractions = [x / s.max_score for x in s.scores] if s.max_score else s.scores
        ax.hist(fractions, bins=[i / 10 for i in range(11)], color="#4477aa")
        ax.set_ylabel(s.question, rotation=0, ha="right", va="center", fontsize=8)
        ax.set_yticks([])
        ax.text(1.0, 0.8, f"mean {s.mean_fraction:.0%}", transform=ax.transAxes, ha="right",
                fontsize=8)
    axes[-1, 0].set_xlabel("fraction of the question's points")
    fig.suptitle(f"{lesson}: score distribution per question (hardest first)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    lines = [f"{'question':24} {'points':>6} {'mean':>6} {'full marks':>11}"]
    for s in stats:
        lines.append(f"{s.question:24} {s.max_score:6g} {s.mean_fraction:6.0%} "
                     f"{s.full_marks:4d}/{len(s.scores)}")
    hardest = ", ".join(s.question for s in stats[:3])
    lines.append(f"hardest: {hardest}")
    return out, "\n".join(lines)
