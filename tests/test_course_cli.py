"""`tinyml-edu course list|init|check`: the thin shell over tinyml_edu.course."""

import subprocess
import sys

from tinyml_edu.course import config, lessons


def tinyml(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "tinyml_edu", *args], capture_output=True,
                          text=True, cwd=cwd, check=False)


def test_course_list_names_every_lesson():
    result = tinyml("course", "list")
    assert result.returncode == 0, result.stderr
    for lesson in lessons.list_lessons():
        assert lesson.id in result.stdout


def test_course_check_unknown_lesson_says_which_exist():
    result = tinyml("course", "check", "99")
    assert result.returncode == 2
    assert "no lesson '99'" in result.stderr and "01-hello-tinyml" in result.stderr


def test_course_init_writes_a_config_nbgrader_reads(tmp_path):
    course = tmp_path / "my-course"
    result = tinyml("course", "init", str(course))
    assert result.returncode == 0, result.stderr
    c = config.load_config(course)
    assert c.CourseDirectory.root == str(course.resolve())
    assert c.Execute.timeout == c.ExecutePreprocessor.timeout == config.CELL_TIMEOUT_S
    assert c.OverwriteCells.add_missing_cells is True
    assert (course / c.CourseDirectory.source_directory).resolve() == lessons.lessons_dir()
    # An instructor's edits survive a second init.
    (course / "nbgrader_config.py").write_text(
        (course / "nbgrader_config.py").read_text() + "c.Execute.timeout = 900\n")
    assert tinyml("course", "init", str(course)).returncode == 0
    assert config.load_config(course).Execute.timeout == 900


def test_gradebook_url_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(config.GRADEBOOK_ENV, "postgresql://grader@db/tinyml")
    assert config.load_config(tmp_path).CourseDirectory.db_url == "postgresql://grader@db/tinyml"
    monkeypatch.delenv(config.GRADEBOOK_ENV)
    assert config.load_config(tmp_path).CourseDirectory.db_url.startswith("sqlite:///")


def test_repository_grading_folder_sources_the_lessons():
    c = config.load_config(config.default_course_dir())
    root = config.default_course_dir()
    assert (root / c.CourseDirectory.source_directory).resolve() == lessons.lessons_dir()
