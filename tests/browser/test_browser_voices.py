"""The voices recorder in a real JupyterLab: Chromium's fake microphone (a beep) stands in for
the laptop's, and its fake permission prompt says yes. The recordings must arrive in the folder
as 16 kHz WAVs with their sidecars, through the browser's getUserMedia and Web Audio, the
hidden text boxes and the kernel.

A JupyterLab on an empty folder (no nbgrader course: nothing here needs one) and a Chromium
started with the fake media flags (conftest's ``empty_lab`` and ``fake_media_browser``).
"""

from __future__ import annotations

import json
import time

import labui
import nbformat
import numpy as np
import pytest

pytestmark = pytest.mark.slow

CELL = """from tinyml_edu.voices_widget import recorder
recorder("voices", {"yes": "yes", "sí": "sí (yes in Spanish)"}, repeats=1, seconds=1.0,
         keeper="the browser test")"""


@pytest.fixture()
def media_page(request: pytest.FixtureRequest, fake_media_browser, empty_lab):
    context = fake_media_browser.new_context(viewport={"width": 1400, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(labui.TIMEOUT_MS)
    try:
        yield tab
        if getattr(request.node, "browser_test_failed", False):  # what the page showed then
            labui.shot(tab, f"FAILED-{request.node.name}")
    finally:
        context.close()
        empty_lab.shutdown_kernels()


def test_recorder_saves_the_fake_microphone(media_page, empty_lab):
    from playwright.sync_api import expect

    page = media_page
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CELL)], metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(notebook, empty_lab.root / "record.ipynb")
    panel = labui.open_notebook(page, empty_lab, "record.ipynb")
    labui.run_all(page, panel)
    widget = panel.locator(".tinyml-voices")
    widget.wait_for()
    expect(widget.locator(".tv-notice")).to_contain_text("the browser test")

    # Without consent nothing is recorded, and a real name with a space is refused.
    widget.locator(".tv-pseudonym").fill("Ada Lovelace")
    widget.locator(".tv-start").click()
    expect(widget.locator(".tv-status")).to_contain_text("consent")
    widget.locator(".tv-consent").check()
    widget.locator(".tv-start").click()
    expect(widget.locator(".tv-status")).to_contain_text("only letters, digits and '-'")

    widget.locator(".tv-pseudonym").fill("Test-Fox")
    widget.locator(".tv-start").click()
    labui.show(widget)
    labui.shot(page, "voices-01-recording")
    expect(widget.locator(".tv-prompt")).to_have_text("Done: thank you!", timeout=90_000)
    expect(widget.locator(".tv-status")).to_contain_text("2 recording(s) saved as 'test-fox'")
    labui.shot(page, "voices-02-done")

    folder = empty_lab.root / "voices"
    deadline = time.monotonic() + 10
    while len(list(folder.rglob("*.wav"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    wavs = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.wav"))
    assert wavs == ["sí/test-fox_sí_1.wav", "yes/test-fox_yes_1.wav"], wavs

    from tinyml_edu import datasets

    for name in wavs:
        rec = datasets.load_recording(folder / name)
        assert rec.rate == 16000 and rec.data.dtype == np.int16 and len(rec.data) == 16000
        sidecar = json.loads((folder / name).with_suffix(".json").read_text(encoding="utf-8"))
        assert sidecar["group"] == "test-fox" and sidecar["consent"] is True
        assert sidecar["rate"] == 16000 and sidecar["recorded_rate"] >= 16000
        # The fake microphone beeps: sound arrived, not a buffer of zeros.
        assert np.abs(rec.data).max() > 1000, f"{name} is silent"
