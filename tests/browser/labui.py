"""What a person does in JupyterLab, as Playwright steps: open a notebook, type answers, run all
cells, move a widget, press nbgrader's Validate, and screenshots of each step.

Selectors are JupyterLab 4's and nbgrader 0.9's own class names (``.jp-CodeCell``,
``.validate-button``, ``#validation-message``); when an upgrade renames one, the test that uses
it fails and says which step broke.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")  # Debian's: Playwright downloads no browser
# The flags this machine's closed network needs (no background connections, no sandbox as root).
# tests/test_hub_live.py launches its Chromium with them too.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
SCREENSHOTS = REPO / "artifacts" / "screenshots"
SAVED: list[Path] = []  # every screenshot of this session, listed at the end of the run

LESSON = "01-hello-tinyml"
# The board lessons, in order of preference: the first that exists is the student's board lesson.
BOARD_LESSONS = ("02-capturing-sensor-data", "07-deployment")
STUDENT = "ada"  # the student whose submission of LESSON is autograded

TIMEOUT_MS = 60_000  # one UI step (2 shared cores: JupyterLab, a kernel and Chromium)
RUN_ALL_TIMEOUT_S = 420.0  # lesson 01 trains a model: about a minute alone on 2 cores
VALIDATE_TIMEOUT_S = 420.0  # Validate runs the whole notebook again in a fresh kernel
CODE_STUB = "raise NotImplementedError()"
TEXT_STUB = "YOUR ANSWER HERE"
_MARKER = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$")


def shot(page: Any, name: str) -> Path:
    """Save what the browser shows now as ``artifacts/screenshots/<name>.png``."""
    if not SAVED:  # only this run's screenshots: stale ones from an earlier run mislead
        for old in SCREENSHOTS.glob("*.png"):
            old.unlink()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    SAVED.append(path)
    print(f"screenshot: {path}")
    return path


def show(locator: Any) -> None:
    """Scroll ``locator`` into view and let the browser paint it (JupyterLab skips painting
    cells outside the viewport), so the next screenshot shows it."""
    locator.scroll_into_view_if_needed()
    locator.page.wait_for_timeout(300)
    locator.scroll_into_view_if_needed()
    locator.evaluate("el => new Promise(r => requestAnimationFrame(() => "
                     "requestAnimationFrame(r)))")
    locator.page.wait_for_timeout(500)


def solutions(source_nb: dict[str, Any]) -> dict[int, tuple[str, str]]:
    """``{cell index: (cell type, what a student who got it right would have in the cell)}``
    for every answer cell of an nbgrader source notebook: the source without the solution
    markers. nbgrader keeps the cell order when it releases a notebook, so the index is the
    released cell's too."""
    answers = {}
    for i, cell in enumerate(source_nb["cells"]):
        if not cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
            continue
        text = "".join(cell["source"])
        lines = [line for line in text.splitlines() if not _MARKER.match(line)]
        answers[i] = (cell["cell_type"], "\n".join(lines))
    return answers


def open_notebook(page: Any, lab: Any, path: str) -> Any:
    """Open ``path`` (relative to the server's root) in JupyterLab; the notebook panel."""
    page.goto(lab.url(f"/lab/tree/{path}?reset"))  # reset: no tabs left open by other tests
    panel = page.locator(".jp-NotebookPanel:visible")
    panel.locator(".jp-Cell").first.wait_for(timeout=120_000)
    # Kernel ready: the status bar names it and says Idle.
    page.locator(".jp-StatusBar-TextItem", has_text="Idle").first.wait_for(timeout=120_000)
    return panel


def _editor_text(cell: Any) -> str:
    return "\n".join(cell.locator(".cm-content .cm-line").all_text_contents())


def fill_answers(page: Any, panel: Any, answers: dict[int, tuple[str, str]],
                 typed: int | None = None) -> None:
    """Replace each released answer cell (still holding nbgrader's stub) with its answer.

    The answer cell ``typed`` is typed key by key, as a student does; the others are inserted
    as one text input (a paste), which CodeMirror does not re-indent."""
    cells = panel.locator(".jp-Notebook .jp-Cell")
    # JupyterLab adds a long notebook's cells to the page over a moment after it opens: wait
    # until the last answer cell exists rather than count a half-built page.
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while (n_cells := cells.count()) <= max(answers) and time.monotonic() < deadline:
        page.wait_for_timeout(250)
    for index, (cell_type, text) in answers.items():
        assert index < n_cells, f"the released notebook has {n_cells} cells; answer {index}?"
        cell = cells.nth(index)
        cell.scroll_into_view_if_needed()
        released = cell.text_content() or ""
        stub = CODE_STUB if cell_type == "code" else TEXT_STUB
        assert stub in released, (
            f"cell {index} of the released notebook should be an answer cell holding "
            f"{stub!r}; it holds {released[:200]!r}")
        if cell_type == "markdown":
            cell.dblclick()  # a rendered Markdown cell opens its editor on a double click
        editor = cell.locator(".cm-content").first
        editor.click()
        page.keyboard.press("Control+a")
        if index == typed:
            page.keyboard.type(text, delay=5)
        else:
            page.keyboard.insert_text(text)
        page.keyboard.press("Escape")
        got = _editor_text(cell)
        if index == typed:  # auto-indent or auto-closed brackets would change typed text
            assert got.strip() == text.strip(), f"typed {text!r}, the cell holds {got!r}"


def run_all(page: Any, panel: Any, timeout_s: float = RUN_ALL_TIMEOUT_S) -> None:
    """Run → Run All Cells from the menu bar, and wait until every code cell has run.

    Fails with the error output when a cell raised (JupyterLab then stops running cells)."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    prompts = panel.locator(".jp-CodeCell .jp-InputPrompt")
    start = time.monotonic()
    quiet = 0
    texts: list[str] = []
    while time.monotonic() - start < timeout_s:
        time.sleep(2)
        texts = [t.strip() for t in prompts.all_text_contents()]
        if any("*" in t for t in texts):
            quiet = 0
            continue
        if all(re.fullmatch(r"\[\d+\]:", t) for t in texts):
            return
        quiet += 1  # nothing running or queued, yet some cell never ran: a cell raised
        if quiet >= 5:
            break
    errors = [t[-1500:] for t in panel.locator(".jp-OutputArea-output").all_text_contents()
              if "Error" in t or "Traceback" in t]
    not_run = [i for i, t in enumerate(texts) if not re.fullmatch(r"\[\d+\]:", t)]
    raise AssertionError(
        f"Run All Cells did not finish within {timeout_s:.0f} s: code cells {not_run} did not "
        f"run (prompts {texts}).\nError outputs:\n" + "\n---\n".join(errors))


def plot_images(panel: Any) -> list[dict[str, Any]]:
    """Every image in the cell outputs, with its decoded size (0 when it failed to load)."""
    return panel.locator(".jp-OutputArea-output img").evaluate_all(
        "imgs => imgs.map(i => ({w: i.naturalWidth, h: i.naturalHeight, "
        "type: (i.src || '').slice(0, 22)}))")


def validate(page: Any, timeout_s: float = VALIDATE_TIMEOUT_S) -> tuple[str, str]:
    """Press nbgrader's Validate button; ``(verdict class, dialog text)`` of its result.

    The verdict class is ``validation-success`` when every visible test passes."""
    button = page.locator(".jp-NotebookPanel:visible .validate-button")
    assert button.count() == 1 and button.is_visible(), (
        "nbgrader's Validate button is missing from the notebook toolbar: is the "
        "@jupyter/nbgrader JupyterLab extension installed and enabled?")
    button.click()
    message = page.locator("#validation-message")
    message.wait_for(timeout=timeout_s * 1000)
    return message.get_attribute("class") or "", message.inner_text()


def close_dialog(page: Any) -> None:
    page.locator(".jp-Dialog .jp-mod-accept").first.click()
    page.locator(".jp-Dialog").wait_for(state="detached")
