"""`course export` and `course report` with a written answer: an ungraded answer reads
"not graded yet", never 0, and totals say what is autograded and what is graded by hand."""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

import pytest

from tinyml_edu.course import config, export

FIXTURE = Path(__file__).parent / "fixtures" / "grading" / "lessons"
LESSON = "91-written"


@pytest.fixture(scope="module")
def _built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A gradebook with one autograded test (3 points) and one written answer (2 points):
    ann's answer graded (1.5), bob's not yet, cy's test failed. Built once (slow: nbgrader
    creates its schema), copied for each test."""
    from nbgrader.api import Gradebook

    root = tmp_path_factory.mktemp("built") / "course"
    config.init_course(root, FIXTURE)
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        gb.add_assignment(LESSON)
        gb.add_notebook(LESSON, LESSON)
        gb.add_grade_cell("test_fit", LESSON, LESSON, max_score=3, cell_type="code")
        gb.add_grade_cell("why_int8", LESSON, LESSON, max_score=2, cell_type="markdown")
        gb.add_solution_cell("why_int8", LESSON, LESSON)
        for student, auto, manual in (("ann", 3, 1.5), ("bob", 3, None), ("cy", 0, None)):
            gb.add_student(student)
            gb.add_submission(LESSON, student)
            gb.find_grade("test_fit", LESSON, LESSON, student).auto_score = auto
            gb.find_grade("why_int8", LESSON, LESSON, student).manual_score = manual
        gb.db.commit()
    return root


@pytest.fixture
def course(_built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(config.GRADEBOOK_ENV, raising=False)
    return Path(shutil.copytree(_built, tmp_path / "course"))


def test_export_marks_ungraded_answers_and_splits_the_totals(course: Path) -> None:
    out = export.export_csv(course)
    assert out == course / "reports" / "grades.csv"  # default: beside the other reports
    rows = {r["student_id"]: r for r in csv.DictReader(out.open())}
    ann, bob, cy = rows["ann"], rows["bob"], rows["cy"]
    assert ann[f"{LESSON}:max"] == "5.0"
    assert (ann[LESSON], ann[f"{LESSON}:auto"], ann[f"{LESSON}:manual"]) == ("4.5", "3.0", "1.5")
    assert bob[f"{LESSON}:why_int8"] == "not graded yet"  # not 0.0
    assert bob[f"{LESSON}:manual"] == "not graded yet"
    assert (bob[LESSON], bob[f"{LESSON}:auto"]) == ("3.0", "3.0")
    assert cy[f"{LESSON}:test_fit"] == "0.0"  # a failed test is a real 0


def test_report_does_not_rank_ungraded_answers_hardest(course: Path, tmp_path: Path) -> None:
    stats = export.question_stats(course, LESSON)
    assert [s.question for s in stats] == ["test_fit", "why_int8"]
    written = stats[1]
    assert written.manual and written.scores == [1.5] and written.not_graded == 2
    png, text = export.report(course, LESSON, tmp_path / "q.png")
    assert png.stat().st_size > 1000
    assert "hardest: test_fit, why_int8" in text
    assert "points: 5 = 3 auto + 2 manual" in text
    assert "(2 not graded yet)" in text and "0%" not in text.split("why_int8")[1].split("\n")[0]


def test_only_ungraded_written_answers_are_listed_apart(course: Path, tmp_path: Path) -> None:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        gb.find_grade("why_int8", LESSON, LESSON, "ann").manual_score = None
        gb.db.commit()
    _, text = export.report(course, LESSON, tmp_path / "q.png")
    assert "hardest: test_fit\n" in text + "\n"
    assert "why_int8                 manual      2 not graded yet (3 answer(s))" in text


def test_grades_csv_in_the_repository_is_ignored() -> None:
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        pytest.skip("not a git checkout")
    for path in ("grades.csv", "grading/reports/grades.csv", "grading/grades-01.csv"):
        result = subprocess.run(["git", "-C", str(root), "check-ignore", "-q", path])
        assert result.returncode == 0, f"{path} would be committed"
