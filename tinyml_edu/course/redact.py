"""Keep hidden tests out of everything students get back.

nbgrader's feedback HTML prints each test cell's full source, hidden part included, and IPython's
tracebacks quote the lines around a failing assertion (``### BEGIN HIDDEN TESTS`` and the hidden
line after it). Students should see which check failed and its message (``tinyml_edu.checks``
writes friendly ones), never the hidden code. Here:

- :func:`hide_source` replaces each hidden region of a cell with one placeholder line;
- :func:`redact_outputs` cuts the traceback of an error to ``ename: evalue`` in every test cell,
  and in any other cell whose traceback quotes a hidden line; an assertion without a message
  says whether a visible or a hidden check failed;
- :class:`HideHiddenTests` does both in ``generate_feedback`` (the course config adds it after
  nbgrader's ``GetGrades``, so the scores come from the gradebook untouched).

The gradebook and the instructor's autograded notebook keep the full test source.
"""

from __future__ import annotations

import re
from typing import Any

from nbgrader.preprocessors import NbGraderPreprocessor

BEGIN, END = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
PLACEHOLDER = "# (hidden tests: not shown)"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CELL_LINE = re.compile(r"(?:Cell In ?\[\d*\]|<ipython-input-[^>]*>), line (\d+)")
_MIN_QUOTE = 6  # shorter hidden lines (`pass`, `)`) say nothing and match everywhere


def _text(source: Any) -> str:
    return "".join(source) if isinstance(source, list) else str(source or "")


def hidden_line_numbers(source: str) -> set[int]:
    """1-based numbers of the lines inside hidden regions, delimiters included."""
    hidden, inside = set(), False
    for number, line in enumerate(source.split("\n"), start=1):
        if BEGIN in line:
            inside = True
        if inside:
            hidden.add(number)
        if END in line:
            inside = False
    return hidden


def hidden_lines(source: str) -> set[str]:
    """The stripped text of every hidden line worth looking for in a traceback."""
    lines = source.split("\n")
    return {lines[n - 1].strip() for n in hidden_line_numbers(source)
            if len(lines[n - 1].strip()) >= _MIN_QUOTE}


def hide_source(source: str) -> tuple[str, bool]:
    """``source`` with each hidden region replaced by one placeholder line (same indent)."""
    out, inside, hid = [], False, False
    for line in source.split("\n"):
        if BEGIN in line:
            inside = hid = True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(indent + PLACEHOLDER)
        elif END in line and inside:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out), hid


def _failing_line(traceback: list[str]) -> int | None:
    """The line of the cell itself where the error was raised (its frame comes first)."""
    match = _CELL_LINE.search(_ANSI.sub("", "\n".join(traceback)))
    return int(match.group(1)) if match else None


def short_error(output: dict[str, Any], source: str) -> dict[str, Any]:
    """An error output without source lines: ``ename: evalue``, and for a bare ``assert``
    whether the failing check was visible (its line number) or hidden."""
    ename, evalue = str(output.get("ename", "Error")), str(output.get("evalue", ""))
    if not evalue.strip():
        line = _failing_line(list(output.get("traceback") or []))
        if line is not None and line in hidden_line_numbers(source):
            evalue = "a hidden test failed"
        elif line is not None:
            evalue = f"the check on line {line} of this cell failed"
    short = dict(output)
    short.update(evalue=evalue, traceback=[f"{ename}: {evalue}" if evalue else ename])
    return short


def _quotes_hidden(output: dict[str, Any], secrets: set[str]) -> bool:
    text = _ANSI.sub("", "\n".join(output.get("traceback") or []))
    return BEGIN in text or END in text or any(s in text for s in secrets)


def _is_test(cell: Any) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return bool(meta.get("grade")) and not meta.get("solution")


def redact_outputs(cells: list[Any]) -> int:
    """Cut tracebacks that could show hidden tests, in place; how many were cut."""
    secrets: set[str] = set()
    for cell in cells:
        if cell.get("cell_type") == "code":
            secrets |= hidden_lines(_text(cell.get("source")))
    cut = 0
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        outputs = cell.get("outputs") or []
        for i, out in enumerate(outputs):
            if out.get("output_type") != "error":
                continue
            if _is_test(cell) or _quotes_hidden(out, secrets):
                short = short_error(out, _text(cell.get("source")))
                if short != out:
                    outputs[i] = type(out)(short) if isinstance(out, dict) else short
                    cut += 1
    return cut


class HideHiddenTests(NbGraderPreprocessor):
    """Feedback without hidden tests: placeholders for the hidden regions, short tracebacks."""

    def preprocess(self, nb: Any, resources: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        redact_outputs(nb.cells)  # first: it needs the hidden lines to recognise quotes
        for cell in nb.cells:
            cell.source, _ = hide_source(_text(cell.source))
        return nb, resources
