"""Real lesson-01 notebooks (TensorFlow training, int8, C array) through the same parallel,
sandboxed autograde path as the simulated class: the solution earns every autograded point, the
untouched release none, and a hand-in missing its last answer loses exactly that question."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from tinyml_edu.course import lessons

LESSON = "01-hello-tinyml"


@pytest.mark.slow
def test_real_lesson_autograded_in_sandboxes(tmp_path: Path) -> None:
    from tinyml_edu.course import autograde, config, release

    source = lessons.lessons_dir()
    course = tmp_path / "course"
    config.init_course(course, source)
    release.release(course, [LESSON], log=lambda _m: None)
    solution = json.loads((source / LESSON / f"{LESSON}.ipynb").read_text())
    blank = json.loads((course / "release" / LESSON / f"{LESSON}.ipynb").read_text())
    auto_points = lessons.points(solution)[0]

    def meta(cell: dict) -> dict:
        return cell["metadata"].get("nbgrader", {})

    answers = [i for i, c in enumerate(solution["cells"])
               if meta(c).get("solution") and c["cell_type"] == "code"]
    last = answers[-1]
    partial = copy.deepcopy(solution)
    partial["cells"][last] = blank["cells"][last]  # its stub: raise NotImplementedError
    test_after = next(c for c in solution["cells"][last + 1:]
                      if meta(c).get("grade") and not meta(c).get("solution"))
    expected = {"solution": auto_points, "blank": 0.0,
                "partial": auto_points - float(meta(test_after)["points"])}
    for student, nb in (("solution", solution), ("blank", blank), ("partial", partial)):
        folder = course / "submitted" / student / LESSON
        folder.mkdir(parents=True)
        (folder / f"{LESSON}.ipynb").write_text(json.dumps(nb))
    results = autograde.autograde(course, LESSON, workers=2, timeout=600, cell_timeout=300,
                                  progress=False, log=lambda _m: None)
    got = {r.student: r.score for r in results}
    assert got == expected, [(r.student, r.messages) for r in results]
