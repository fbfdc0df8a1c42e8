"""The nbgrader course folder: where it is, and the settings every grading command shares.

A course folder holds ``nbgrader_config.py``, the gradebook and nbgrader's step folders
(``release/``, ``submitted/``, ``autograded/``, ``feedback/``). Its *source* is the lessons folder,
so an instructor edits one copy of each lesson. ``grading/`` in the repository is such a folder.
The sources (solutions, hidden tests) stay with the instructor: the tinyml-edu wheel that students
install carries none, so every command finds them through the course folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tinyml_edu.errors import MissingFileError

COURSE_ID = "tinyml-edu"
# Generous: the slowest lesson trains for about a minute on a 2-core laptop (nbgrader's default is
# 30 s, too short for any training cell).
CELL_TIMEOUT_S = 600
GRADEBOOK_ENV = "TINYML_EDU_GRADEBOOK_URL"
COURSE_ENV = "TINYML_EDU_COURSE"  # the course folder, when commands run from elsewhere
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
TEXT_STUB = "YOUR ANSWER HERE"


def apply_defaults(c: Any, root: Path | str, source: Path | str | None = None) -> None:
    """Fill a traitlets ``Config`` with the course's nbgrader settings.

    ``nbgrader_config.py`` calls this, so nbgrader's own command line, the Formgrader and
    ``tinyml-edu course`` all see the same settings. ``source`` defaults to the source
    checkout's ``lessons/`` (an installed wheel has none: course folders name their source).
    The gradebook is SQLite in the course folder unless ``$TINYML_EDU_GRADEBOOK_URL`` names
    another database (e.g. ``postgresql+psycopg://grader@db/tinyml`` for several graders at once).
    """
    from tinyml_edu.course import lessons

    root = Path(root).resolve()
    if source is None:
        source = lessons.repository_lessons()
        if source is None:
            raise lessons.SourcesMissing(lessons.SOURCES_ARE_THE_INSTRUCTORS)
    source = Path(source).resolve()
    c.CourseDirectory.root = str(root)
    c.CourseDirectory.course_id = COURSE_ID
    # Relative when it can be (a course folder stays valid when the whole tree is moved or copied
    # to a USB stick); absolute across Windows drives, where no relative path exists.
    try:
        c.CourseDirectory.source_directory = os.path.relpath(source, root)
    except ValueError:
        c.CourseDirectory.source_directory = str(source)
    c.CourseDirectory.db_url = os.environ.get(GRADEBOOK_ENV) or f"sqlite:///{root / 'gradebook.db'}"
    # nbgrader's execute step reads both names (nbgrader#1463); set both or cells time out at 30 s.
    c.Execute.timeout = CELL_TIMEOUT_S
    c.ExecutePreprocessor.timeout = CELL_TIMEOUT_S
    c.ClearSolutions.code_stub = {"python": CODE_STUB}
    c.ClearSolutions.text_stub = TEXT_STUB
    # A student who deletes a graded cell loses that cell's points, not the whole notebook.
    c.OverwriteCells.add_missing_cells = True
    # Feedback shows which check failed and its message, never the hidden tests' code.
    c.GenerateFeedback.preprocessors = _feedback_preprocessors()
    # Lessons ship only notebooks and small files; never grade a checkpoint or a stray run folder.
    c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "runs", "*.tflite"]
    # TensorFlow's C++ start-up messages would fill every graded output; keep warnings and errors.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _feedback_preprocessors() -> list[Any]:
    """nbgrader's feedback steps with :class:`~tinyml_edu.course.redact.HideHiddenTests` after
    the scores are read."""
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import GetGrades

    from tinyml_edu.course.redact import HideHiddenTests

    return [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor]


def load_config(root: Path | str, source: Path | str | None = None) -> Any:
    """The course's settings as a traitlets ``Config``: the folder's ``nbgrader_config.py`` if it
    has one (an instructor's edits win), else the defaults."""
    import runpy

    from traitlets.config import Config

    root = Path(root).resolve()
    c = Config()
    config_file = root / "nbgrader_config.py"
    if config_file.exists() and source is None:
        runpy.run_path(str(config_file), init_globals={"get_config": lambda: c})
        c.CourseDirectory.root = str(root)
    else:
        apply_defaults(c, root, source)
    return c


CONFIG_TEMPLATE = '''\
"""nbgrader settings for the tinyml-edu course (read by nbgrader, the Formgrader and
`tinyml-edu course`). Change a setting by adding a line after apply_defaults."""

from pathlib import Path

from tinyml_edu.course.config import apply_defaults

c = get_config()  # noqa: F821 (nbgrader provides get_config)
apply_defaults(c, root=Path(__file__).resolve().parent, source={source!r})
'''


def init_course(root: Path | str, source: Path | str | None = None) -> Path:
    """Make ``root`` a course folder (its ``nbgrader_config.py``) whose source is ``source``
    (default: the lessons this installation finds); an existing config is kept."""
    from tinyml_edu.course import lessons

    root = Path(root)
    config_file = root / "nbgrader_config.py"
    if not config_file.exists():
        source = Path(source) if source is not None else lessons.lessons_dir()
        if not source.is_dir():
            raise MissingFileError(f"no lessons folder {source}; --source names the folder "
                                   "that holds the lesson sources (NN-name/NN-name.ipynb)")
        root.mkdir(parents=True, exist_ok=True)
        config_file.write_text(CONFIG_TEMPLATE.format(source=str(source.resolve())),
                               encoding="utf-8")
    return config_file


def _is_course(folder: Path) -> bool:
    return (folder / "nbgrader_config.py").is_file()


def find_course_dir() -> Path | None:
    """The course folder commands use when none is given, or None: the current folder when it
    has an ``nbgrader_config.py``; ``$TINYML_EDU_COURSE``; ``./grading/`` (the repository root);
    the ``grading/`` of the source checkout this package runs from."""
    here = Path.cwd()
    env = os.environ.get(COURSE_ENV)
    candidates = [here, Path(env)] if env else [here]
    candidates += [here / "grading", Path(__file__).resolve().parents[2] / "grading"]
    return next((c.resolve() for c in candidates if _is_course(c)), None)


def default_course_dir() -> Path:
    """:func:`find_course_dir`, or an error that says how to name one."""
    found = find_course_dir()
    if found is None:
        raise MissingFileError(
            "no course folder here: run from the repository root (its grading/ folder is the "
            "course) or from a folder with nbgrader_config.py, set $TINYML_EDU_COURSE or pass "
            "--course DIR; `tinyml-edu course init DIR` makes a new one")
    return found


def source_dir(course: Path | str) -> Path:
    """The folder holding the lesson sources of ``course`` (its nbgrader source_directory)."""
    root = Path(course).resolve()
    source = Path(load_config(root).CourseDirectory.source_directory)
    return (root / source).resolve()
