"""A graded notebook sees nothing of the course: copies of the lesson sources are planted where
they could be (package data, the course folder, a sibling checkout, the home folder, another
student's hand-in), and a hand-in searches the whole file system it can see for them.

The planted copies are the fixture quiz's source with a token in its hidden tests; the search
also looks for the real lessons' hidden test lines (the repository's own lessons/ is a copy too),
for gradebooks, and for the token in file names. A control file in the lesson folder (copied into
the submission's working copy, where the hand-in may read it) proves the search finds what is
visible. Everything is planted readable by anyone (in folders anyone may enter, but for the home
folder's copy), so only the sandbox keeps it out of reach.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import nbgrader
import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "grading" / "lessons"
LESSON = "90-tiny-quiz"
CONTROL = "planted-control.txt"

# Runs in the graded kernel (ROOTS = ["/"]) and here (ROOTS = the planted folders). Every string
# it looks for is given reversed, so the hand-in, a copy of which is in its own working folder,
# does not find itself.
SEARCH = r'''
import json, os
wanted = [w[::-1] for w in WANTED]
def strings(value):
    if isinstance(value, str):
        yield value
    for item in (value.values() if isinstance(value, dict) else
                 value if isinstance(value, list) else ()):
        yield from strings(item)
hits, seen = set(), 0
for root in ROOTS:
    for top, dirs, files in os.walk(root):
        if top == "/":
            dirs[:] = [d for d in dirs if d not in ("proc", "sys", "dev")]
        for name in dirs + files:
            if wanted[0] in name or name == "gradebook.db":
                hits.add(os.path.join(top, name))
        for name in files:
            seen += 1
            if not name.endswith((".ipynb", ".txt")):
                continue
            try:
                with open(os.path.join(top, name), encoding="utf-8", errors="replace") as f:
                    text = f.read()
            except OSError:
                continue
            if name.endswith(".ipynb"):  # JSON escapes the quotes a hidden line may hold
                try:
                    text += "\n" + "\n".join(strings(json.loads(text)))
                except ValueError:
                    pass
            if any(w in text for w in wanted):
                hits.add(os.path.join(top, name))
print("SEARCH " + json.dumps({"hits": sorted(hits), "files": seen, "cwd": os.getcwd()}))
'''


def _search_code(token: str, secrets: list[str], roots: list[str]) -> str:
    wanted = [w[::-1] for w in [token, *secrets]]
    return f"WANTED = {wanted!r}\nROOTS = {roots!r}\n{SEARCH}"


def _readable_by_all(top: Path) -> None:
    """Let anyone read everything in ``top`` (``nobody`` too, which a root grader becomes)."""
    for folder, _dirs, files in os.walk(top):
        os.chmod(folder, 0o755)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o644)


def _plant_sources(dest: Path, token: str) -> Path:
    """A copy of the quiz's source folder whose hidden tests carry ``token``."""
    shutil.copytree(FIXTURE / LESSON, dest / LESSON)
    notebook = dest / LESSON / f"{LESSON}.ipynb"
    text = notebook.read_text()
    marker = "### BEGIN HIDDEN TESTS\\n"
    assert marker in text
    notebook.write_text(text.replace(marker, f"{marker}\", \"# {token}\\n", 1))
    json.loads(notebook.read_text())  # still a notebook
    return notebook


def _run_output(notebook: Path) -> dict:
    nb = json.loads(notebook.read_text())
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            text = "".join(out.get("text", ""))
            for line in text.splitlines():
                if line.startswith("SEARCH "):
                    return json.loads(line[len("SEARCH "):])
    raise AssertionError(f"the search printed nothing; outputs: {nb['cells'][1].get('outputs')}")


@pytest.mark.slow
def test_a_hand_in_searching_the_whole_file_system_finds_no_source(tmp_path: Path) -> None:
    from tinyml_edu.course import autograde, config, leaks, release, sandbox

    server = sandbox.ForkServer(tmp_path / "probe.log")
    mode = server.isolation.mode
    server.close()
    if mode != "full":
        pytest.skip(f"this system allows only '{mode}' isolation")
    token = f"planted-{uuid.uuid4().hex}"
    secrets = leaks.secrets()[:40]  # the real lessons' hidden test lines
    assert secrets
    package_lessons = Path(sandbox.__file__).resolve().parents[1] / "_lessons"
    home_copy = Path.home() / f".tinyml-edu-{token}"
    class_dir = Path(tempfile.mkdtemp(prefix="tinyml-edu-class-"))
    sibling = Path(tempfile.mkdtemp(prefix="tinyml-edu-checkout-"))
    made_package_lessons = not package_lessons.exists()
    try:
        # The course, as the repository lays it out: grading/ with ../lessons as its source.
        course, source = class_dir / "grading", class_dir / "lessons"
        _plant_sources(source, token)
        (source / LESSON / CONTROL).write_text(f"visible on purpose: {token}\n")
        config.init_course(course, source)
        release.release(course, [LESSON], log=lambda _m: None)
        planted = [
            source / LESSON / f"{LESSON}.ipynb",
            _plant_sources(course / "source-backup", token),  # the course root
            _plant_sources(package_lessons, token),  # package data, as older wheels had
            _plant_sources(sibling / "tinyml-edu" / "lessons", token),  # a sibling checkout
            _plant_sources(home_copy / "lessons", token),  # the home folder
        ]
        solution = json.loads((FIXTURE / LESSON / f"{LESSON}.ipynb").read_text())
        snoop = json.loads(json.dumps(solution))
        answer = snoop["cells"][1]
        assert answer["metadata"]["nbgrader"]["grade_id"] == "ans_add"
        answer["source"] = _search_code(token, secrets, ["/"]) + "\n" + "".join(answer["source"])
        other = json.loads(json.dumps(solution))
        other["cells"][1]["source"] = f"# {token}: another student's hand-in\n" + "".join(
            other["cells"][1]["source"])
        for student, nb in (("snoop", snoop), ("other", other)):
            folder = course / "submitted" / student / LESSON
            folder.mkdir(parents=True)
            (folder / f"{LESSON}.ipynb").write_text(json.dumps(nb))
        planted.append(course / "submitted" / "other" / LESSON / f"{LESSON}.ipynb")
        for top in (class_dir, sibling, package_lessons, home_copy):
            _readable_by_all(top)

        # Outside the sandbox the same search finds every copy, the real lessons and the
        # gradebook: what the sandbox must keep out of reach is really there.
        roots = [str(class_dir), str(sibling), str(package_lessons), str(home_copy),
                 str(ROOT / "lessons")]
        found: dict = {}
        exec(_search_code(token, secrets, roots), {"print": lambda s: found.update(
            json.loads(s[len("SEARCH "):]))})
        for path in planted:
            assert str(path) in found["hits"], f"the search misses {path} even unsandboxed"
        assert any(h.startswith(str(ROOT / "lessons")) for h in found["hits"])
        assert str(course / "gradebook.db") in found["hits"]

        results = autograde.autograde(course, LESSON, workers=1, timeout=600, cell_timeout=300,
                                      progress=False, log=lambda _m: None)
        by_student = {r.student: r for r in results}
        seen = _run_output(course / "autograded" / "snoop" / LESSON / f"{LESSON}.ipynb")
        # nbgrader's own test files (one is a gradebook.db) are not this course's.
        nbgrader_tests = os.path.dirname(nbgrader.__file__) + "/tests/"
        seen["hits"] = [h for h in seen["hits"] if not h.startswith(nbgrader_tests)]
        assert seen["hits"] == [f"{seen['cwd']}/{CONTROL}"], "\n".join(seen["hits"])
        assert seen["files"] > 1000, "the search saw almost nothing: did it run at all?"
        assert by_student["snoop"].score == by_student["other"].score > 0
    finally:
        for top in (class_dir, sibling, home_copy):
            shutil.rmtree(top, ignore_errors=True)
        if made_package_lessons:
            shutil.rmtree(package_lessons, ignore_errors=True)
