"""A simulated class autograded in parallel: perfect, blank, partial, mangled and hostile hand-ins.

The lesson is ``tests/fixtures/grading/lessons/90-tiny-quiz``: a real nbgrader source notebook
(answers, tests with hidden parts, a data file) in plain Python, so a class of 24 grades in well
under a minute on 2 cores; a real lesson spends ~15 s per notebook in TensorFlow, which tests
the lesson, not the grader. Real lesson-01 notebooks go through the same path in
``test_grading_lesson01.py``.

Each expected score is computed from the source notebook's points and what the hand-in breaks.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import pytest

FIXTURE = Path(__file__).parent / "fixtures" / "grading" / "lessons"
LESSON = "90-tiny-quiz"
CELL_TIMEOUT = 8
TIMEOUT = 60
MEMORY_MB = 1536
STUCK_S = 2  # well under CELL_TIMEOUT: a stuck kernel must not look like a timeout


def _tree_hash(root: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not rel.startswith(skip):
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _cells(nb: dict) -> dict[str, dict]:
    return {c["metadata"]["nbgrader"]["grade_id"]: c for c in nb["cells"]
            if "nbgrader" in c["metadata"]}


def _prepend(nb: dict, grade_id: str, code: str) -> dict:
    """A copy of ``nb`` whose answer cell ``grade_id`` runs ``code`` before the answer."""
    nb = copy.deepcopy(nb)
    cell = _cells(nb)[grade_id]
    cell["source"] = code + "\n" + "".join(cell["source"])
    return nb


def _set_answer(nb: dict, grade_id: str, code: str) -> dict:
    nb = copy.deepcopy(nb)
    _cells(nb)[grade_id]["source"] = code
    return nb


def _append(nb: dict, grade_id: str, code: str) -> dict:
    nb = copy.deepcopy(nb)
    cell = _cells(nb)[grade_id]
    cell["source"] = "".join(cell["source"]) + "\n" + code
    return nb


def _insert_after(nb: dict, grade_id: str, code: str) -> dict:
    """A copy of ``nb`` with a new, ungraded code cell running ``code`` after ``grade_id``."""
    nb = copy.deepcopy(nb)
    i = next(k for k, c in enumerate(nb["cells"])
             if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id)
    nb["cells"].insert(i + 1, {"cell_type": "code", "execution_count": None, "id": "extra",
                               "metadata": {}, "outputs": [], "source": code})
    return nb


def _stripped(nb: dict, keep_ids: bool) -> dict:
    """What VS Code, Colab or an LMS round trip may hand back: no cell metadata (and new ids)."""
    nb = copy.deepcopy(nb)
    for i, c in enumerate(nb["cells"]):
        c["metadata"] = {}
        if not keep_ids:
            c["id"] = f"colab-{i}"
    return nb


# A cell that makes the kernel swallow its own execute_reply: the kernel goes idle and never
# answers, as a kernel that lost a message does (issue 23). Once, or every time.
SWALLOW_REPLY = """import os
if {always} or not os.path.exists('swallowed-once'):
    open('swallowed-once', 'w').close()
    kernel = get_ipython().kernel
    send = kernel.session.send
    def drop_reply(stream, msg_type, *args, **kwargs):
        if msg_type == 'execute_reply':
            kernel.session.send = send
            return {{'content': {{'status': 'ok'}}, 'header': {{}}}}
        return send(stream, msg_type, *args, **kwargs)
    kernel.session.send = drop_reply
"""
# Right for visible inputs, wrong for the hidden one (add(-1, 1) == 0).
WRONG_FOR_NEGATIVES = "def add(a, b):\n    return abs(a) + b\n"


def _build_class(root: Path, course: Path) -> dict[str, tuple[object, float | None]]:
    """Write every hand-in; {student: (what is in the folder, expected score or None when it
    depends on the sandbox)}."""
    solution = json.loads((FIXTURE / LESSON / f"{LESSON}.ipynb").read_text())
    blank = json.loads((course / "release" / LESSON / f"{LESSON}.ipynb").read_text())
    pts = {gid: float(c["metadata"]["nbgrader"].get("points", 0))
           for gid, c in _cells(solution).items()}
    total = sum(pts[q] for q in pts if q.startswith("test_"))
    tests = {"add": "test_add", "square": "test_square", "mean": "test_mean",
             "words": "test_words"}

    def with_answers(*names: str) -> dict:
        nb = copy.deepcopy(blank)
        for name in names:
            _cells(nb)[f"ans_{name}"]["source"] = _cells(solution)[f"ans_{name}"]["source"]
        return nb

    def minus(*names: str) -> float:
        return total - sum(pts[tests[n]] for n in names)

    gradebook = str(course / "gradebook.db")
    hidden_source = str(FIXTURE.resolve())
    sneaky = (
        "import os, socket\n"
        "peeked = []\n"
        f"for p in [{gradebook!r}, {hidden_source!r} + '/{LESSON}/{LESSON}.ipynb',\n"
        f"          {str(course / 'submitted')!r},\n"
        f"          {str(Path(__file__).resolve().parents[1] / '.git')!r}]:\n"
        "    try:\n"
        "        seen = os.listdir(p) if os.path.isdir(p) else open(p, 'rb').read(1)\n"
        "        seen and peeked.append(p)\n"
        "    except OSError:\n"
        "        pass\n"
        "try:\n"
        "    socket.create_connection(('1.1.1.1', 53), timeout=2).close(); peeked.append('net')\n"
        "except OSError:\n"
        "    pass\n"
        "for p in [" + repr(str(course / 'pwned.txt')) + ", " + repr(hidden_source + '/pwned')
        + ", " + repr(str(Path(__file__).resolve().parents[1] / 'tinyml_edu' / 'pwned.py'))
        + "]:\n"
        "    try:\n"
        "        open(p, 'w').write('x'); peeked.append('wrote ' + p)\n"
        "    except OSError:\n"
        "        pass\n"
        "assert not peeked, peeked\n"
        # /tmp is the worker's own, private one: writing there must not reach the host's.
        "open('/tmp/pwned-by-student', 'w').write('x')\n")

    answered = with_answers(*tests)  # the release, every answer right
    old = copy.deepcopy(solution)  # saved by an older Jupyter: nbformat 4.0, no cell ids
    old["nbformat_minor"] = 0
    for c in old["cells"]:
        c.pop("id", None)
    new_ids = copy.deepcopy(solution)
    for i, c in enumerate(new_ids["cells"]):
        c["id"] = f"renamed-{i}"
    other_jupyter = copy.deepcopy(solution)
    other_jupyter["metadata"].update({"vscode": {"interpreter": {"hash": "abc"}},
                                      "jupytext": {"formats": "ipynb,py"}})
    other_jupyter["nbformat_minor"] = 5
    dup = copy.deepcopy(solution)
    i = next(k for k, c in enumerate(dup["cells"])
             if c["metadata"].get("nbgrader", {}).get("grade_id") == "ans_add")
    dup["cells"][i:i + 2] = dup["cells"][i:i + 2] * 2  # answer and test, twice
    deleted = copy.deepcopy(solution)
    deleted["cells"] = [c for c in deleted["cells"]
                        if c["metadata"].get("nbgrader", {}).get("grade_id") != "ans_mean"]

    class_ = {
        "perfect": (solution, total),
        "blank": (blank, 0.0),
        "partial_add_square": (with_answers("add", "square"), minus("mean", "words")),
        "partial_words": (with_answers("words"), minus("add", "square", "mean")),
        "deleted_cell": (deleted, minus("mean")),
        "duplicated_cells": (dup, total),
        "changed_cell_ids": (new_ids, total),
        "old_nbformat": (old, total),
        "other_jupyter": (other_jupyter, total),
        "renamed_file": ({"name": f"{LESSON} (1).ipynb", "nb": solution}, total),
        "extra_files": ({"extra": True, "nb": solution}, total),
        "empty_file": (b"", 0.0),
        "corrupt_json": (json.dumps(solution).encode()[:700], 0.0),
        "not_a_notebook": (b'{"hello": "world"}', 0.0),
        # The loop times out; its kernel is replaced, so `add` (defined before) is gone too.
        "infinite_loop": (_prepend(solution, "ans_square", "while True:\n    pass"),
                          minus("square")),
        "memory_hog": (_prepend(solution, "ans_mean",
                                "hog = [bytearray(10**9) for _ in range(100)]"), minus("mean")),
        "sys_exit": (_prepend(solution, "ans_add", "import sys\nsys.exit(3)"), minus("add")),
        "os_exit": (_prepend(solution, "ans_square", "import os\nos._exit(1)"),
                    minus("square")),
        "kill_self": (_prepend(solution, "ans_mean", "import os, signal\n"
                               "os.kill(os.getpid(), signal.SIGKILL)"), minus("mean")),
        "prints_megabytes": (_append(solution, "ans_words",
                                     "print('x' * 5_000_000)\nfor i in range(20000): print(i)"),
                             total),
        "fork_bomb_ish": (_append(solution, "ans_words",
                                  "import subprocess\nsubprocess.Popen(['sleep', '600'])"),
                          total),
        # Later cells keep the state of the cells before a runaway or fatal cell (issue 17.4).
        "runaway_extra_cell": (_insert_after(solution, "ans_add", "while True:\n    pass"),
                               total),
        "os_exit_extra_cell": (_insert_after(solution, "ans_square",
                                             "import os\nos._exit(1)"), total),
        # Metadata dropped by an editor is recovered from the released notebook (17.5).
        "stripped_metadata": (_stripped(answered, keep_ids=True), total),
        "stripped_metadata_new_ids": (_stripped(answered, keep_ids=False), total),
        "stripped_partial": (_stripped(with_answers("add", "words"), keep_ids=False),
                             minus("square", "mean")),
        # A failing hidden test must not show in what the student gets back (17.3).
        "hidden_test_fails": (_set_answer(solution, "ans_add", WRONG_FOR_NEGATIVES),
                              minus("add")),
        # A kernel that stops answering is caught in seconds, restarted, retried (23.2).
        "stuck_once": (_insert_after(solution, "ans_add", SWALLOW_REPLY.format(always=False)),
                       total),
        "stuck_always": (_insert_after(solution, "ans_add", SWALLOW_REPLY.format(always=True)),
                         total),
        "frozen_kernel": (_insert_after(solution, "ans_square", "import os, signal\n"
                                        "os.kill(os.getpid(), signal.SIGSTOP)"), total),
        # Reads the gradebook, hidden tests, other students; the network; writes outside.
        "snoops": (_prepend(solution, "ans_add", sneaky), None),
        "kills_grader": (_append(solution, "ans_words",
                                 "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)"),
                         None),
    }
    for student, (content, _) in class_.items():
        folder = root / student / LESSON
        folder.mkdir(parents=True)
        name = f"{LESSON}.ipynb"
        if isinstance(content, dict) and "nb" in content:
            if content.get("extra"):
                (folder / "notes.txt").write_text("my notes")
                (folder / "scratch.ipynb").write_text(json.dumps(blank))
            name = content.get("name", name)
            content = content["nb"]
        data = content if isinstance(content, bytes) else json.dumps(content).encode()
        (folder / name).write_bytes(data)
    return class_


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from tinyml_edu.course import autograde, config, release, sandbox

    course = tmp_path_factory.mktemp("course")
    config.init_course(course, FIXTURE)
    release.release(course, [LESSON], log=lambda _m: None)
    class_ = _build_class(course / "submitted", course)
    protected = {"submitted": (course / "submitted", ()),
                 "source": (FIXTURE, ()),
                 "package": (Path(sandbox.__file__).resolve().parents[1], ("__pycache__",))}
    before = {k: _tree_hash(p, skip) for k, (p, skip) in protected.items()}
    start = time.perf_counter()
    logged: list[str] = []
    results = autograde.autograde(course, LESSON, workers=2, timeout=TIMEOUT,
                                  cell_timeout=CELL_TIMEOUT, memory_mb=MEMORY_MB,
                                  progress=False, log=logged.append, stuck_after_s=STUCK_S)
    wall = time.perf_counter() - start
    after = {k: _tree_hash(p, skip) for k, (p, skip) in protected.items()}
    return {"course": course, "class": class_, "results": {r.student: r for r in results},
            "before": before, "after": after, "wall": wall, "logged": logged}


def test_every_score_is_what_it_should_be(graded: dict) -> None:
    results = graded["results"]
    assert set(results) == set(graded["class"])
    wrong = {s: (results[s].score, want, results[s].messages)
             for s, (_, want) in graded["class"].items()
             if want is not None and results[s].score != want}
    assert not wrong


def test_every_failure_is_explained(graded: dict) -> None:
    results = graded["results"]
    for student in ("empty_file", "corrupt_json", "not_a_notebook", "infinite_loop",
                    "os_exit", "kill_self", "renamed_file", "memory_hog"):
        assert results[student].messages, student
    assert any("JSON" in m for m in results["corrupt_json"].messages)
    assert any("empty" in m for m in results["empty_file"].messages)
    assert any("renamed" in m for m in results["renamed_file"].messages)
    assert any("time limit" in m for m in results["infinite_loop"].messages)
    assert any("kernel died" in m for m in results["os_exit"].messages)
    assert not results["perfect"].messages


def _autograded(graded: dict, student: str) -> dict:
    path = graded["course"] / "autograded" / student / LESSON / f"{LESSON}.ipynb"
    return json.loads(path.read_text())


def test_a_fatal_cell_costs_only_what_depends_on_it(graded: dict) -> None:
    results = graded["results"]
    for student, code in (("runaway_extra_cell", "while True"),
                          ("os_exit_extra_cell", "os._exit")):
        assert results[student].score == graded["class"]["perfect"][1], results[student].messages
        assert any("re-ran" in m for m in results[student].messages), student
        extra = next(c for c in _autograded(graded, student)["cells"]
                     if code in "".join(c["source"]))
        said = json.dumps(extra["outputs"])  # the student is told, in the feedback too
        assert "restarted the kernel and re-ran the cells above" in said, said


def test_stripped_metadata_is_recovered_and_logged(graded: dict) -> None:
    results = graded["results"]
    for student in ("stripped_metadata", "stripped_metadata_new_ids", "stripped_partial"):
        assert any("recovered" in m for m in results[student].messages), student
    by_id = next(m for m in results["stripped_metadata"].messages if "recovered" in m)
    assert "test_add (by cell id)" in by_id
    by_content = next(m for m in results["stripped_metadata_new_ids"].messages
                      if "recovered" in m)
    assert "test_add (by content)" in by_content and "ans_add (by position)" in by_content
    log = (graded["course"] / "logs" / f"autograde-{LESSON}.log").read_text()
    assert "stripped_metadata_new_ids" in log and "recovered" in log
    # The hand-in itself is not changed (test_autograded_notebooks_written_... checks hashes).


def test_stuck_kernel_is_retried_then_reported_by_name(graded: dict) -> None:
    results = graded["results"]
    once, always = results["stuck_once"], results["stuck_always"]
    assert any("ran the cell again" in m for m in once.messages), once.messages
    assert not any("STUCK KERNEL" in m for m in once.messages)
    assert any("STUCK KERNEL" in m for m in always.messages), always.messages
    assert any(line.startswith("stuck_always: STUCK KERNEL") for line in graded["logged"])
    # Stopped before its iopub thread sent `busy` (or after: then the heartbeat tells).
    frozen = results["frozen_kernel"].messages
    assert any("STUCK KERNEL" in m for m in frozen), frozen
    # Detected in seconds: two stuck runs, not two cell timeouts.
    stuck_cells = [m for m in always.messages if "time limit" in m]
    assert not stuck_cells
    assert always.wall_s < 4 * CELL_TIMEOUT


def test_every_submission_is_in_the_instructor_log(graded: dict) -> None:
    log = (graded["course"] / "logs" / f"autograde-{LESSON}.log").read_text()
    for student in graded["class"]:
        assert f"\n{student} " in log, student


def _visible_text(page: str) -> str:
    """What a browser shows of a page: tags (syntax highlighting splits code) removed."""
    import html
    import re

    return html.unescape(re.sub(r"<[^>]+>", "", page))


HIDDEN = ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "add(-1, 1)")


def test_hidden_tests_stay_out_of_autograded_outputs(graded: dict) -> None:
    nb = _autograded(graded, "hidden_test_fails")
    test = _cells(nb)["test_add"]
    outputs = json.dumps(test["outputs"])
    assert "AssertionError" in outputs and "a hidden test failed" in outputs
    for secret in HIDDEN:
        assert secret not in outputs
    for student in graded["class"]:  # no traceback anywhere quotes a hidden line
        for cell in _autograded(graded, student)["cells"]:
            text = json.dumps(cell.get("outputs", []))
            assert not any(s in text for s in HIDDEN), (student, text[:300])


def test_gradebook_has_one_row_per_submission(graded: dict) -> None:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{graded['course'] / 'gradebook.db'}") as gb:
        subs = gb.find_assignment(LESSON).submissions
        assert sorted(s.student.id for s in subs) == sorted(graded["class"])
        for sub in subs:
            assert sub.code_score == graded["results"][sub.student.id].score


def test_autograded_notebooks_written_and_hand_ins_untouched(graded: dict) -> None:
    course = graded["course"]
    for student in graded["class"]:
        assert (course / "autograded" / student / LESSON / f"{LESSON}.ipynb").exists()
    assert (course / "autograded" / "extra_files" / LESSON / "notes.txt").exists()
    assert graded["before"] == graded["after"]  # submitted/, lessons and the package
    assert not (course / "pwned.txt").exists()


def test_sandbox_keeps_students_out(graded: dict) -> None:
    from tinyml_edu.course.sandbox import ForkServer

    server = ForkServer(graded["course"] / "probe.log")
    mode = server.isolation.mode
    server.close()
    if mode != "full":
        pytest.skip(f"this system allows only '{mode}' isolation")
    results, class_ = graded["results"], graded["class"]
    assert results["snoops"].score == class_["perfect"][1], results["snoops"].messages
    assert results["kills_grader"].score == class_["perfect"][1]
    assert not Path("/tmp/pwned-by-student").exists()
    # What a student starts dies with its PID namespace.
    assert not [p for p in os.popen("ps -eo args").read().splitlines() if p == "sleep 600"]


def test_run_finishes_within_its_timeouts(graded: dict) -> None:
    # 32 notebooks, 2 workers; only the two loops wait for their cell limit. Both workers
    # stay busy: the run takes about half the notebooks' summed time, plus start-up.
    walls = [r.wall_s for r in graded["results"].values()]
    assert all(w < TIMEOUT for w in walls)
    assert graded["wall"] < sum(walls) / 2 + 30


def test_export_and_report(graded: dict, tmp_path: Path) -> None:
    import csv

    from tinyml_edu.course import export

    out = export.export_csv(graded["course"], tmp_path / "grades.csv")
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == len(graded["class"])
    by_id = {r["student_id"]: r for r in rows}
    assert float(by_id["perfect"][LESSON]) == graded["class"]["perfect"][1]
    assert float(by_id["partial_words"][f"{LESSON}:test_words"]) == 4.0
    assert float(by_id["partial_words"][f"{LESSON}:test_add"]) == 0.0
    png, text = export.report(graded["course"], LESSON, tmp_path / "q.png")
    assert png.stat().st_size > 1000 and "hardest" in text
    stats = export.question_stats(graded["course"], LESSON)
    assert [s.mean_fraction for s in stats] == sorted(s.mean_fraction for s in stats)


def test_feedback(graded: dict) -> None:
    import zipfile

    from tinyml_edu.course import release

    bundle = release.feedback(graded["course"], LESSON, log=lambda _m: None)
    zipped = zipfile.ZipFile(bundle)
    assert f"perfect/{LESSON}.html" in zipped.namelist()
    pages = {n: _visible_text(zipped.read(n).decode()) for n in zipped.namelist()
             if n.endswith(".html")}
    assert len(pages) == len(graded["class"])
    for name, page in pages.items():
        assert not any(s in page for s in HIDDEN), name
        assert "hidden tests: not shown" in page, name
    page = pages[f"hidden_test_fails/{LESSON}.html"]
    assert "a hidden test failed" in page and "assert add(1, 2) == 3" in page


def test_autograde_without_release_says_what_to_do(tmp_path: Path) -> None:
    from tinyml_edu.course import autograde, config

    config.init_course(tmp_path, FIXTURE)
    (tmp_path / "submitted" / "a" / LESSON).mkdir(parents=True)
    with pytest.raises(ValueError, match="course release"):
        autograde.autograde(tmp_path, LESSON, progress=False, log=lambda _m: None)
    shutil.rmtree(tmp_path / "submitted")
    with pytest.raises(ValueError, match="collect"):
        autograde.autograde(tmp_path, LESSON, progress=False, log=lambda _m: None)


def test_cli_over_the_graded_class(graded: dict, tmp_path: Path,
                                   capsys: pytest.CaptureFixture) -> None:
    from tinyml_edu.cli import main

    course = ["course", "--course", str(graded["course"])]
    assert main([*course, "autograde", "90", "perfect", "--timeout", "60", "--json"]) == 0
    said = capsys.readouterr()
    out = json.loads(said.out)  # only the JSON: the sandbox note goes to stderr
    assert "sandbox" in said.err.lower()
    assert out[0]["student"] == "perfect" and out[0]["score"] == graded["class"]["perfect"][1]
    assert main([*course, "export", "--csv", str(tmp_path / "g.csv")]) == 0
    assert main([*course, "report", LESSON, "--out", str(tmp_path / "r.png")]) == 0
    assert "hardest" in capsys.readouterr().out
