"""Every lesson is a well-formed nbgrader source, and `course check` grades each one right."""

import json
import shutil

import pytest

from tinyml_edu.course import check, lessons

LESSONS = lessons.list_lessons()


def test_there_are_lessons():
    assert LESSONS, "lessons/ holds no lesson folders"
    assert [lesson.number for lesson in LESSONS] == sorted({lesson.number for lesson in LESSONS})


@pytest.mark.parametrize("lesson", LESSONS, ids=[lesson.id for lesson in LESSONS])
def test_lesson_is_well_formed(lesson):
    assert lessons.problems(lesson) == []
    nb = lessons.read_notebook(lesson.notebook)
    auto, manual = lessons.points(nb)
    assert auto > 0


def _copy_lesson(tmp_path, mutate):
    lesson = LESSONS[0]
    dest = tmp_path / "lessons" / lesson.id
    shutil.copytree(lesson.folder, dest)
    nb = json.loads((dest / f"{lesson.id}.ipynb").read_text())
    mutate(nb)
    (dest / f"{lesson.id}.ipynb").write_text(json.dumps(nb))
    return lessons.list_lessons(tmp_path / "lessons")[0]


def _graded(nb):
    return [c for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade")]


def test_problems_finds_outputs(tmp_path):
    def add_output(nb):
        code = next(c for c in nb["cells"] if c["cell_type"] == "code")
        code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "hi"}]
    assert any("has outputs" in p for p in lessons.problems(_copy_lesson(tmp_path, add_output)))


def test_problems_finds_duplicate_ids_and_missing_points(tmp_path):
    def mangle(nb):
        first, second = _graded(nb)[:2]
        second["metadata"]["nbgrader"]["grade_id"] = first["metadata"]["nbgrader"]["grade_id"]
        first["metadata"]["nbgrader"]["points"] = 0
    found = lessons.problems(_copy_lesson(tmp_path, mangle))
    assert any("duplicate grade_id" in p for p in found)
    assert any("needs points" in p for p in found)


def test_problems_finds_missing_frame(tmp_path):
    def drop_frame(nb):
        nb["cells"][0]["source"] = "# A lesson"
    found = lessons.problems(_copy_lesson(tmp_path, drop_frame))
    assert any("Objectives" in p for p in found) and any("virtual board" in p for p in found)


def test_get_lesson_by_number_and_unknown():
    assert lessons.get_lesson(str(LESSONS[0].number)).id == LESSONS[0].id
    with pytest.raises(KeyError, match="the lessons are"):
        lessons.get_lesson("99-nothing")


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS, ids=[lesson.id for lesson in LESSONS])
def test_course_check_full_marks_and_zero_marks(lesson):
    """Real nbgrader: the solution earns every autograded point, a blank release earns none
    (both graded at once, as `course check --jobs 2` does)."""
    result = check.check_lesson(lesson, log=lambda _: None, jobs=2)
    assert result.problems == []
    assert result.solution_score == result.max_score > 0
    assert result.blank_score == 0
    print(f"{lesson.id}: {result.wall_s:.1f} s, {result.peak_rss_mb:.0f} MB")


@pytest.mark.slow
def test_course_check_catches_a_test_that_passes_blank(tmp_path):
    """A lesson whose hidden test passes without an answer must fail the check."""
    def loosen(nb):
        cell = _graded(nb)[0]
        cell["source"] = "pass\n### BEGIN HIDDEN TESTS\npass\n### END HIDDEN TESTS\n"
    result = check.check_lesson(_copy_lesson(tmp_path, loosen), log=lambda _: None)
    assert any("blank release earns" in p for p in result.problems)


@pytest.mark.slow
def test_course_check_grades_with_the_network_cut(tmp_path):
    """A lesson must work in a classroom without internet: `course check` grades offline."""
    if not check.offline_available():
        pytest.skip("this machine cannot cut the network (needs `unshare --net` and `ip`)")

    def needs_no_network(nb):
        cell = _graded(nb)[0]
        cell["source"] = (
            "import socket\ntry:\n    socket.create_connection(('pypi.org', 443), timeout=5)\n"
            "    reached = True\nexcept OSError:\n    reached = False\n"
            "assert not reached, 'the lesson reached the network while graded'\n"
            + "".join(cell["source"]))
    result = check.check_lesson(_copy_lesson(tmp_path, needs_no_network), log=lambda _: None)
    assert result.offline
    assert result.problems == []
    assert result.solution_score == result.max_score
