"""An instructor's path in a real browser: JupyterLab's Nbgrader menu → Formgrader lists the
course's lessons, generates (releases) the student version of one, and shows a graded
submission with its score.

These tests fail when the Formgrader is missing from the Nbgrader menu, does not list every
lesson in lessons/, cannot generate a lesson, or does not show the autograded score.
"""

from __future__ import annotations

import re

import labui
import pytest
from labui import LESSON

pytestmark = pytest.mark.slow


def _open_formgrader(page, lab):
    page.goto(lab.url("/lab?reset"))
    menu = page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Nbgrader$"))
    try:
        menu.wait_for(timeout=120_000)
    except Exception as exc:
        raise AssertionError("JupyterLab has no Nbgrader menu: is the @jupyter/nbgrader "
                             "extension installed and enabled?") from exc
    menu.click()
    item = page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Formgrader$"))
    assert item.count() == 1, (
        "the Nbgrader menu has no Formgrader item: "
        f"{page.locator('.lm-Menu-itemLabel').all_text_contents()}")
    item.click()
    iframe = page.locator(".jp-MainAreaWidget:visible iframe")
    iframe.wait_for()
    assert iframe.get_attribute("src").endswith("/formgrader"), iframe.get_attribute("src")
    return page.frame_locator(".jp-MainAreaWidget:visible iframe")


def test_formgrader_lists_releases_and_shows_a_grade(page, lab, course):
    from playwright.sync_api import expect

    formgrader = _open_formgrader(page, lab)
    names = formgrader.locator("#main-table td.name")
    # The table fills once the Formgrader has read the course folder (seconds on 2 cores).
    expect(names.first).to_be_visible(timeout=120_000)
    listed = names.evaluate_all("tds => tds.map(td => td.dataset.order)")
    missing = sorted(set(course.lessons) - set(listed))
    labui.shot(page, "instructor-01-formgrader-lessons")
    assert not missing, f"the Formgrader does not list {missing}; it lists {listed}"

    # Generate the student version of lesson 01 (the mortarboard button of its row).
    released = course.root / "release" / LESSON / f"{LESSON}.ipynb"
    before = released.stat().st_mtime_ns
    row = formgrader.locator("#main-table tr", has=formgrader.locator(
        f'td.name[data-order="{LESSON}"]'))
    row.locator("td.assign a").click()
    modal = formgrader.locator("#success-modal, #error-modal").first
    expect(modal).to_be_visible(timeout=300_000)
    labui.shot(page, "instructor-02-formgrader-generated")
    assert modal.get_attribute("id") == "success-modal", modal.inner_text()
    expect(modal).to_contain_text(f"Successfully created the student version of '{LESSON}'")
    assert released.stat().st_mtime_ns > before, "the release notebook was not rewritten"
    modal.locator("button.close").first.click()
    expect(modal).to_be_hidden()

    # The graded submission: the lesson's submissions page shows its autograded score.
    row.locator("td.num-submissions a").click()
    student = formgrader.locator("#main-table tr", has=formgrader.locator(
        f'td.student-id[data-order="{course.student}"]'))
    expect(student).to_be_visible(timeout=120_000)
    score = f"{course.score:g} / {course.max_score:g}"
    assert course.score > 0, "the autograded solution earned no points"
    expect(student.locator("td.score")).to_have_text(score)
    expect(student.locator("td.status")).not_to_contain_text("needs autograding")
    labui.shot(page, "instructor-03-formgrader-graded-submission")
