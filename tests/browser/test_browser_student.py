"""A student's path through JupyterLab in a real browser: open a released lesson, type the
answers, Run → Run All Cells, see the plots and widgets, and press nbgrader's Validate.

These tests fail when a plot or a widget does not render, when a widget does not respond, when
Validate is missing from the toolbar, or when Validate reports anything but success for the
right answers.
"""

from __future__ import annotations

import json
import re

import labui
import pytest
from labui import LESSON

pytestmark = pytest.mark.slow


def _first(answers: dict[int, tuple[str, str]], kind: str) -> int:
    return min(i for i, (cell_type, _) in answers.items() if cell_type == kind)


def _validate_succeeds(page, name: str) -> None:
    verdict, text = labui.validate(page)
    labui.shot(page, name)
    assert "validation-success" in verdict, (
        f"Validate did not report success for the right answers ({verdict}):\n{text}")
    labui.close_dialog(page)


def test_lesson_01_plots_widget_and_validate(page, lab, course):
    from playwright.sync_api import expect

    panel = labui.open_notebook(page, lab, course.student_copy(LESSON))
    labui.shot(page, "student-01-lesson-01-opened")

    answers = labui.solutions(course.source_notebooks[LESSON])
    typed = _first(answers, "code")
    labui.fill_answers(page, panel, answers, typed=typed)
    labui.show(panel.locator(".jp-Notebook .jp-Cell").nth(typed))
    labui.shot(page, "student-02-lesson-01-answer-typed")

    labui.run_all(page, panel)

    # The plots: the data and the training curves, decoded images in the cell outputs.
    images = labui.plot_images(panel)
    assert len(images) >= 2, f"expected the data and loss plots; the outputs hold {images}"
    assert all(i["w"] > 0 and i["h"] > 0 for i in images), f"an image did not load: {images}"
    labui.show(panel.locator(".jp-OutputArea-output img").first)
    labui.shot(page, "student-03-lesson-01-plot")

    # The widget: interact's slider renders, and moving it reprints the comparison.
    slider = panel.locator(".jp-OutputArea-output .widget-slider")
    try:
        slider.first.wait_for(timeout=labui.TIMEOUT_MS)
    except Exception as exc:
        text = " | ".join(panel.locator(".jp-OutputArea-output").all_text_contents())
        raise AssertionError("the ipywidgets slider did not render (is the "
                             f"@jupyter-widgets/jupyterlab-manager extension there?): {text[-800:]}"
                             ) from exc
    printed = panel.locator(".jp-OutputArea-output .widget-output", has_text="sin(")
    expect(printed).to_have_count(1)
    before = printed.inner_text()
    slider.first.scroll_into_view_if_needed()
    slider.first.locator(".noUi-handle").focus()
    for _ in range(4):
        page.keyboard.press("ArrowRight")  # step 0.05: x goes from 1.00 to 1.20
    expect(printed).not_to_have_text(before, timeout=labui.TIMEOUT_MS)
    expect(printed).to_contain_text("sin(1.20)", timeout=labui.TIMEOUT_MS)
    labui.show(slider.first)
    labui.shot(page, "student-04-lesson-01-slider-moved")

    _validate_succeeds(page, "student-05-lesson-01-validated")


def test_board_lesson_with_the_virtual_board(page, lab, course):
    from playwright.sync_api import expect

    lesson = course.board_lesson
    assert lesson, "lessons/ holds no board lesson (02 or 07)"
    assert not course.released[lesson], f"nbgrader could not release {lesson}:\n" \
                                        f"{course.released[lesson]}"
    panel = labui.open_notebook(page, lab, course.student_copy(lesson))
    labui.fill_answers(page, panel, labui.solutions(course.source_notebooks[lesson]))
    labui.run_all(page, panel)
    images = labui.plot_images(panel)
    assert images and all(i["w"] > 0 for i in images), f"no plot rendered: {images}"
    labui.show(panel.locator(".jp-OutputArea-output img").first)
    labui.shot(page, f"student-06-{lesson}-ran")

    folder = course.root / "students" / lesson
    if lesson.startswith("02"):
        # The recordings the virtual board streamed, each with its sidecar.
        recordings = sorted(folder.rglob("*.csv"))
        sidecars = [json.loads(p.with_suffix(".json").read_text())
                    for p in recordings if p.with_suffix(".json").exists()]
        assert sidecars, f"the virtual board recorded nothing under {folder}"
        assert any("virtual" in json.dumps(s).lower() for s in sidecars), sidecars[0]
        # The labelling station: press Record, a new recording arrives and is plotted.
        button = panel.locator(".widget-button", has_text=re.compile("Record"))
        expect(button).to_have_count(1)
        button.scroll_into_view_if_needed()
        button.click()
        station = panel.locator(".jp-OutputArea-output .widget-output img")
        expect(station.first).to_be_visible(timeout=labui.TIMEOUT_MS)
        labui.show(station.first)
        labui.shot(page, f"student-07-{lesson}-record-button")
        assert len(list(folder.rglob("*.csv"))) == len(recordings) + 1
    else:
        # 07: the deployed model's predictions, printed from the virtual board.
        text = " ".join(panel.locator(".jp-OutputArea-output").all_text_contents())
        assert re.search(r"\bW\b|\bO\b|\bL\b|none", text), text[-1000:]

    _validate_succeeds(page, f"student-08-{lesson}-validated")


def test_a_french_release_speaks_french_in_its_kernel(page, lab, course):
    """A student opens lesson 01 from `release-fr/`: the text is French, and the checks and
    the plot labels answer in French, because Jupyter tells the kernel the notebook's path."""
    import shutil

    from playwright.sync_api import expect

    from tinyml_edu import i18n
    from tinyml_edu.course import lessons, translate

    folder = course.root / "students" / "release-fr" / LESSON
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(course.root / "release" / LESSON, folder)
    translate.translate_folder(folder, lessons.get_lesson(LESSON), "fr")
    path = folder / f"{LESSON}.ipynb"
    nb = json.loads(path.read_text(encoding="utf-8"))
    english_title = course.source_notebooks[LESSON]["cells"][0]["source"]
    english_title = "".join(english_title).splitlines()[0].lstrip("# ").strip()
    probe = ('from tinyml_edu import checks\nfrom tinyml_edu.i18n import tr\n'
             'print(tr("training loss"))\nchecks.check_answered(None, "n_train")')
    nb["cells"].insert(0, {"cell_type": "code", "id": "probe", "metadata": {},
                           "execution_count": None, "outputs": [], "source": probe})
    path.write_text(json.dumps(nb), encoding="utf-8")

    panel = labui.open_notebook(page, lab, f"students/release-fr/{LESSON}/{LESSON}.ipynb")
    title = panel.locator(".jp-MarkdownCell h1").first
    expect(title).not_to_have_text(re.compile(re.escape(english_title)))
    probe_cell = panel.locator(".jp-Cell").first
    probe_cell.click()
    page.keyboard.press("Shift+Enter")
    output = probe_cell.locator(".jp-OutputArea-output")
    expect(output.last).to_contain_text(i18n._("has no answer yet", "fr"),
                                        timeout=labui.TIMEOUT_MS)
    expect(output.first).to_contain_text(i18n.catalogue("fr")["training loss"])
    labui.show(output.last)
    labui.shot(page, "student-09-lesson-01-in-french")
