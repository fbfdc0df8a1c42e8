"""Hidden tests out of what students get back, and nbgrader metadata an editor dropped: the
pure functions, without a kernel (``test_grading_autograde.py`` runs them in a graded class)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from tinyml_edu.course import autograde, redact

FIXTURE = Path(__file__).parent / "fixtures" / "grading" / "lessons" / "90-tiny-quiz"
TEST_CELL = ("assert add(1, 2) == 3\n"
             "### BEGIN HIDDEN TESTS\n"
             "assert add(-1, 1) == 0\n"
             "### END HIDDEN TESTS")
# What IPython 8 prints for the hidden assert failing on line 3 (colours kept).
IPYTHON_TB = ["\x1b[31m-----\x1b[39m",
              "\x1b[31mAssertionError\x1b[39m    Traceback (most recent call last)",
              "\x1b[36mCell\x1b[39m\x1b[36m \x1b[39m\x1b[32mIn[4]\x1b[39m\x1b[32m, line 3\x1b[39m\n"
              "\x1b[32m      1\x1b[39m assert add(1, 2) == 3\n"
              "\x1b[32m      2\x1b[39m ### BEGIN HIDDEN TESTS\n"
              "\x1b[32m----> 3\x1b[39m assert add(-1, 1) == 0\n",
              "\x1b[31mAssertionError\x1b[39m: "]


def _cell(source: str, outputs: list[dict], **nbgrader: object) -> dict:
    return {"cell_type": "code", "source": source, "outputs": outputs, "metadata": {
        "nbgrader": {"grade_id": "t", **nbgrader}} if nbgrader else {}}


def _error(evalue: str = "", tb: list[str] | None = None) -> dict:
    return {"output_type": "error", "ename": "AssertionError", "evalue": evalue,
            "traceback": tb if tb is not None else IPYTHON_TB}


def test_hide_source_keeps_visible_tests_and_indentation() -> None:
    source = "def check():\n    ok = 1\n    ### BEGIN HIDDEN TESTS\n    secret()\n" \
             "    ### END HIDDEN TESTS\n    return ok"
    hidden, hid = redact.hide_source(source)
    assert hid and "secret" not in hidden and "BEGIN" not in hidden
    assert hidden == f"def check():\n    ok = 1\n    {redact.PLACEHOLDER}\n    return ok"
    assert redact.hide_source("print(1)") == ("print(1)", False)


def test_a_failing_hidden_assert_says_so_without_its_code() -> None:
    cells = [_cell(TEST_CELL, [_error()], grade=True, solution=False, points=1)]
    assert redact.redact_outputs(cells) == 1
    out = cells[0]["outputs"][0]
    assert out["traceback"] == ["AssertionError: a hidden test failed"]
    assert "add(-1" not in json.dumps(out)


def test_a_failing_visible_assert_names_its_line_and_keeps_a_message() -> None:
    tb = [t.replace("line 3", "line 1") for t in IPYTHON_TB]
    cells = [_cell(TEST_CELL, [_error(tb=tb)], grade=True, solution=False),
             _cell(TEST_CELL, [_error("the model has 3 layers; expected 4")], grade=True)]
    redact.redact_outputs(cells)
    assert cells[0]["outputs"][0]["evalue"] == "the check on line 1 of this cell failed"
    assert cells[1]["outputs"][0]["traceback"] == [
        "AssertionError: the model has 3 layers; expected 4"]


def test_student_tracebacks_are_kept_unless_they_quote_a_hidden_line() -> None:
    own = _error("boom", ["Traceback", "----> 2 x = 1 / 0", "ZeroDivisionError"])
    quoting = _error("", ["Cell In[9], line 1", "----> 1 assert add(-1, 1) == 0"])
    cells = [_cell(TEST_CELL, [], grade=True, solution=False),
             _cell("x = 1 / 0", [copy.deepcopy(own)]), _cell("f()", [quoting])]
    assert redact.redact_outputs(cells) == 1
    assert cells[1]["outputs"][0] == own
    assert "add(-1" not in json.dumps(cells[2]["outputs"])


def _released() -> list[dict]:
    """The fixture lesson's cells as released: hidden tests and solutions stripped."""
    cells = json.loads((FIXTURE / f"{FIXTURE.name}.ipynb").read_text())["cells"]
    for cell in cells:
        cell["source"] = redact.hide_source("".join(cell["source"]))[0].replace(
            redact.PLACEHOLDER, "")
    return cells


def test_metadata_recovered_by_id_content_and_position() -> None:
    released = _released()
    known = {c["metadata"]["nbgrader"]["grade_id"] for c in released}
    handed_in = copy.deepcopy(released)
    for i, cell in enumerate(handed_in):
        cell["metadata"] = {}
        if i >= 5:
            cell["id"] = f"new-{i}"  # the second half lost its ids too
    handed_in[5]["source"] = "def mean(xs):\n    return sum(xs) / len(xs)\n"  # answered
    messages = autograde.recover_metadata(handed_in, released, known)
    assert [c["metadata"]["nbgrader"]["grade_id"] for c in handed_in] == [
        c["metadata"]["nbgrader"]["grade_id"] for c in released]
    assert "recovered 10 of 10" in messages[0]
    assert "ans_add (by cell id)" in messages[0] and "test_mean (by content)" in messages[0]
    assert "ans_mean (by position)" in messages[0]


def test_metadata_of_a_deleted_cell_is_not_invented() -> None:
    released = _released()
    known = {c["metadata"]["nbgrader"]["grade_id"] for c in released}
    handed_in = [copy.deepcopy(c) for c in released
                 if c["metadata"]["nbgrader"]["grade_id"] != "ans_square"]
    for cell in handed_in:
        cell["metadata"], cell["id"] = {}, "x" + cell["id"]
    messages = autograde.recover_metadata(handed_in, released, known)
    assert "recovered 9 of 10" in messages[0]
    assert messages[1].endswith("ans_square")
    assert all(c["metadata"]["nbgrader"]["grade_id"] != "ans_square" for c in handed_in)


def test_nothing_to_recover_when_metadata_is_there() -> None:
    released = _released()
    known = {c["metadata"]["nbgrader"]["grade_id"] for c in released}
    assert autograde.recover_metadata(copy.deepcopy(released), released, known) == []
