"""Translations: the catalogues are complete for the core lessons, a missing, stale or broken
translation is caught, a translated release differs from the English only in its text, and a
hand-in in another language grades the same, with feedback in its language."""

from __future__ import annotations

import copy
import json
import re
import zipfile
from pathlib import Path

import pytest

from tinyml_edu import checks, i18n
from tinyml_edu.course import lessons, translate

LANGS = tuple(i18n.LANGUAGES)
CORE = [lesson for lesson in lessons.list_lessons() if lesson.id[:2] in translate.CORE_LESSONS]


# --- the shipped catalogues --------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("lesson", CORE, ids=lambda lesson: lesson.id)
def test_core_lessons_are_fully_translated(lesson, lang):
    result = translate.status(lesson, lang)
    assert result.units > 10
    assert result.complete, translate.format_report([result])


@pytest.mark.parametrize("lang", LANGS)
def test_package_messages_are_fully_translated(lang):
    result = translate.package_status(lang)
    assert result.units > 30  # the checks' messages and the CLI's common errors
    assert result.complete, translate.format_report([result], verbose=True)


def test_core_lessons_are_all_there():
    assert [lesson.id[:2] for lesson in CORE] == list(translate.CORE_LESSONS)


def test_templates_are_in_step_with_the_lessons():
    """The committed .pot files are what the lessons hold now (`--update` was run)."""
    root = translate.translations_dir(lessons.lessons_dir())
    for lesson in lessons.list_lessons():
        committed = translate.read_catalogue(root / "templates" / f"{lesson.id}.pot", "en")
        assert [m.id for m in committed if m.id] == [m.id for m in translate.template(lesson)
                                                     if m.id], (
            f"{lesson.id}: run `tinyml-edu course translations --update` and commit")


def test_french_has_a_no_break_space_before_colon_semicolon_and_question_mark():
    """French typography: U+00A0 before : ; ? ! in the prose, so that a line never starts with
    the mark. Code, maths, links and {fields} keep their own spacing."""
    wrong = []
    root = translate.translations_dir(lessons.lessons_dir())
    for path in sorted((root / "fr").glob("*.po")) + [i18n.catalogue_path("fr")]:
        for message in translate.read_catalogue(path, "fr"):
            if not message.id or not message.string:
                continue
            prose = message.string
            for kept in i18n.placeholders(prose):
                prose = prose.replace(kept, "\0")
            wrong += [f"{path.name}: ...{prose[max(0, m.start() - 30):m.end()]!r}"
                      for m in re.finditer(r"[ \u202f][:;?!](?=\s|$)", prose)]
    assert not wrong, "\n".join(wrong)


# --- a small lesson of our own: missing, stale and broken are caught -------------------------


def _lesson(root: Path, paragraphs: list[str]) -> lessons.Lesson:
    folder = root / "lessons" / "01-tiny"
    folder.mkdir(parents=True, exist_ok=True)
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "markdown", "id": "a", "metadata": {}, "source": "\n\n".join(paragraphs)},
        {"cell_type": "code", "id": "b", "metadata": {"nbgrader": {
            "grade": False, "grade_id": "ans", "locked": False, "schema_version": 3,
            "solution": True}}, "execution_count": None, "outputs": [],
         "source": "x = None\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION"},
        {"cell_type": "markdown", "id": "c", "metadata": {"nbgrader": {
            "grade": True, "grade_id": "why", "locked": False, "points": 1,
            "schema_version": 3, "solution": True}}, "source": "Because the model is small."},
        {"cell_type": "markdown", "id": "d", "metadata": {}, "source": "YOUR ANSWER HERE"},
    ]}
    (folder / "01-tiny.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    return lessons.Lesson("01-tiny", folder)


def _translate_all(root: Path, lesson: lessons.Lesson, lang: str, table: dict[str, str]) -> Path:
    translate.update(lesson.folder.parent, (lang,))
    path = root / "translations" / lang / f"{lesson.id}.po"
    cat = translate.read_catalogue(path, lang)
    for message in cat:
        if message.id in table:
            message.string = table[message.id]
    translate._write_catalogue(cat, path)
    return path


ENGLISH = ["## 1. The data", "Call `load()` to read $x_i$ for each example.",
           "| a | b |\n|---|---|\n| 1 | 2 |"]
FRENCH = {ENGLISH[0]: "## 1. Les données",
          ENGLISH[1]: "Appelez `load()` pour lire $x_i$ pour chaque exemple.",
          ENGLISH[2]: "| a | b |\n|---|---|\n| 1 | 2 |"}


def test_a_complete_translation_is_complete(tmp_path):
    lesson = _lesson(tmp_path, ENGLISH)
    _translate_all(tmp_path, lesson, "fr", FRENCH)
    result = translate.status(lesson, "fr")
    assert (result.units, result.translated, result.complete) == (3, 3, True)


def test_the_written_answer_is_not_a_unit(tmp_path):
    lesson = _lesson(tmp_path, ENGLISH)
    texts = [text for text, _cell, _n in translate.units(lessons.read_notebook(lesson.notebook))]
    assert "Because the model is small." not in texts and ENGLISH[1] in texts


def test_a_missing_translation_is_reported(tmp_path):
    lesson = _lesson(tmp_path, ENGLISH)
    _translate_all(tmp_path, lesson, "fr", {k: v for k, v in FRENCH.items() if k != ENGLISH[1]})
    result = translate.status(lesson, "fr")
    assert result.missing == [ENGLISH[1]] and not result.complete


def test_an_english_change_makes_the_translation_stale(tmp_path):
    lesson = _lesson(tmp_path, ENGLISH)
    po = _translate_all(tmp_path, lesson, "fr", FRENCH)
    changed = "Call `load()` to read $x_i$ and $y_i$ for each example."
    _lesson(tmp_path, [ENGLISH[0], changed, ENGLISH[2]])
    result = translate.status(lesson, "fr")  # found without running --update
    assert result.stale == [changed] and not result.complete
    # the stale translation is not used: the English shows, and the notebook says so
    usable = translate.lesson_translations(lesson, "fr", tmp_path / "translations")
    nb, total, done = translate.translate_notebook(lessons.read_notebook(lesson.notebook), "fr",
                                                  usable)
    assert (total, done) == (3, 2) and changed in nb["cells"][1]["source"]
    assert nb["cells"][0]["metadata"]["tinyml_edu"]["id"] == translate.BANNER_ID
    # --update writes it: fuzzy, the old English kept beside it for the translator
    translate.update(lesson.folder.parent, ("fr",))
    text = po.read_text(encoding="utf-8")
    assert "#, fuzzy" in text and '#| msgid "Call `load()` to read $x_i$ for each example."' in text
    # a second --update before the translator came: the old English stays where it was, once
    # (Babel reads `#|` lines back as comments, which used to pile up as `# | msgid` lines)
    translate.update(lesson.folder.parent, ("fr",))
    again = po.read_text(encoding="utf-8")
    assert again == text and "# |" not in again


@pytest.mark.parametrize("bad, problem", [
    ("Appelez load() pour lire $x_i$ pour chaque exemple.", "lost `load()`"),
    ("Appelez `charger()` pour lire $x_i$ pour chaque exemple.", "lost `load()`"),
    ("Appelez `load()` pour lire x_i pour chaque exemple.", "lost $x_i$"),
    ("# Appelez `load()` pour lire $x_i$ pour chaque exemple.", "headings"),
])
def test_a_broken_placeholder_is_caught_and_not_used(tmp_path, bad, problem):
    lesson = _lesson(tmp_path, ENGLISH)
    _translate_all(tmp_path, lesson, "fr", dict(FRENCH, **{ENGLISH[1]: bad}))
    result = translate.status(lesson, "fr")
    assert len(result.broken) == 1 and problem in result.broken[0], result.broken
    assert ENGLISH[1] not in translate.lesson_translations(lesson, "fr",
                                                           tmp_path / "translations")


def test_a_table_row_lost_is_caught():
    assert translate.i18n.placeholder_problems("| a | b |\n|---|---|\n| 1 | 2 |",
                                               "| a | b |\n|---|---|")


def test_placeholders_of_the_package_messages():
    assert i18n.placeholder_problems("is {value}, {wanted}", "est {valeur}, {wanted}")
    assert not i18n.placeholder_problems("is {value}, {wanted}", "{wanted} : {value}")


# --- translated notebooks ----------------------------------------------------------------------


def test_translation_changes_only_the_text(tmp_path):
    lesson = _lesson(tmp_path, ENGLISH)
    _translate_all(tmp_path, lesson, "fr", FRENCH)
    english = lessons.read_notebook(lesson.notebook)
    usable = translate.lesson_translations(lesson, "fr", tmp_path / "translations")
    french, total, done = translate.translate_notebook(english, "fr", usable)
    assert (total, done) == (3, 3) and len(french["cells"]) == len(english["cells"])
    assert french["cells"][0]["source"] == "\n\n".join(FRENCH[p] for p in ENGLISH)
    for en, fr in zip(english["cells"], french["cells"], strict=True):
        assert en["metadata"] == fr["metadata"] and en.get("id") == fr.get("id")
        if en["cell_type"] == "code" or en["metadata"].get("nbgrader", {}).get("solution"):
            assert en["source"] == fr["source"]
    assert french["cells"][3]["source"] == i18n._("YOUR ANSWER HERE", "fr")
    assert french["metadata"]["tinyml_edu"] == {"lang": "fr"}


def test_the_stub_translated_is_nbgraders():
    from tinyml_edu.course.config import TEXT_STUB

    assert TEXT_STUB == "YOUR ANSWER HERE"  # the msgid translate_notebook looks up


def test_split_blocks_keeps_fenced_code_whole():
    text = "Run this:\n\n```python\nx = 1\n\ny = 2\n```\n\nThen that."
    blocks = translate.split_blocks(text)
    assert blocks == ["Run this:", "```python\nx = 1\n\ny = 2\n```", "Then that."]
    assert [translate.is_unit(b) for b in blocks] == [True, False, True]


# --- the student's language --------------------------------------------------------------------


@pytest.mark.parametrize("env, expected", [
    ({"TINYML_EDU_LANG": "fr"}, "fr"),
    ({"TINYML_EDU_LANG": "pt", "JPY_SESSION_NAME": "/h/release-es/01/01.ipynb"}, "pt"),
    ({"JPY_SESSION_NAME": "/home/ana/release-es/01-hello-tinyml/01-hello-tinyml.ipynb"}, "es"),
    ({"JPY_SESSION_NAME": "/home/ana/01-hello-tinyml-pt/01-hello-tinyml.ipynb"}, "pt"),
    ({"JPY_SESSION_NAME": "/home/ana/01-hello-tinyml.fr.ipynb"}, "fr"),
    ({"JPY_SESSION_NAME": "/home/ana/release/01-hello-tinyml/01-hello-tinyml.ipynb",
      "LANG": "fr_FR.UTF-8"}, "en"),  # an English notebook stays English
    ({"LANG": "es_MX.UTF-8"}, "es"),  # the command line follows the computer
    ({"LANG": "de_DE.UTF-8"}, "en"),
    ({"LANG": "C.UTF-8"}, "en"),
])
def test_current_language(monkeypatch, env, expected):
    for name in ("TINYML_EDU_LANG", "JPY_SESSION_NAME", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert i18n.current_language() == expected


def test_lesson_folders_carry_no_language_token():
    """A lesson whose name ended in -es, -fr or -pt would look translated."""
    assert all(i18n.language_of_path(lesson.folder.name) is None
               for lesson in lessons.list_lessons())


@pytest.mark.parametrize("lang", LANGS)
def test_checks_speak_the_students_language(monkeypatch, lang):
    monkeypatch.setenv("TINYML_EDU_LANG", lang)
    with pytest.raises(checks.CheckFailed) as failed:
        checks.check_answered(None, "n_train")
    message = str(failed.value)
    assert i18n._("has no answer yet", lang) in message
    assert "has no answer yet" not in message  # it was translated
    monkeypatch.setenv("TINYML_EDU_LANG", "en")
    with pytest.raises(checks.CheckFailed, match="has no answer yet"):
        checks.check_answered(None, "n_train")


def test_unknown_language_says_which_exist():
    with pytest.raises(KeyError, match="es .*fr .*pt"):
        i18n.check_language("de")


# --- release and grading -----------------------------------------------------------------------

LESSON = "01-hello-tinyml"


def test_release_in_french_is_the_english_release_with_french_text(tmp_path):
    from tinyml_edu.cli import main
    from tinyml_edu.course import config

    course = tmp_path / "course"
    config.init_course(course, lessons.lessons_dir())
    assert main(["course", "--course", str(course), "release", "1", "--lang", "fr,es"]) == 0
    english = json.loads((course / "release" / LESSON / f"{LESSON}.ipynb").read_text())
    french = json.loads((course / "release-fr" / LESSON / f"{LESSON}.ipynb").read_text())
    assert i18n.language_of_path(course / "release-fr" / LESSON / f"{LESSON}.ipynb") == "fr"
    assert len(english["cells"]) == len(french["cells"])  # complete: no English-left note
    changed = 0
    for en, fr in zip(english["cells"], french["cells"], strict=True):
        assert en["metadata"] == fr["metadata"]
        if en["cell_type"] == "code":
            assert en["source"] == fr["source"]
        else:
            changed += en["source"] != fr["source"]
    assert changed >= len([c for c in english["cells"] if c["cell_type"] == "markdown"]) - 1
    with zipfile.ZipFile(course / "zips" / f"{LESSON}-fr.zip") as zf:
        names = zf.namelist()
    assert f"{LESSON}-fr/{LESSON}.ipynb" in names
    assert i18n.language_of_path(f"{LESSON}-fr/{LESSON}.ipynb") == "fr"
    assert (course / "zips" / f"{LESSON}-es.zip").is_file()


def test_release_refuses_an_unknown_language(tmp_path, capsys):
    from tinyml_edu.cli import main
    from tinyml_edu.course import config

    course = tmp_path / "course"
    config.init_course(course, lessons.lessons_dir())
    assert main(["course", "--course", str(course), "release", "1", "--lang", "de"]) == 2
    assert "es (Español)" in capsys.readouterr().err
    assert not (course / "release-de").exists()


def test_translations_report_exit_code(tmp_path, capsys):
    from tinyml_edu.cli import main

    assert main(["course", "translations", "--lang", "fr"]) == 0  # the core is complete
    out = capsys.readouterr().out
    assert "01-hello-tinyml" in out and "(package messages)" in out


def test_notebook_language_for_the_grader():
    from tinyml_edu.course.sandbox import notebook_language

    assert notebook_language({"metadata": {"tinyml_edu": {"lang": "pt"}}}) == "pt"
    assert notebook_language({"metadata": {"tinyml_edu": {"lang": "xx"}}}) == "en"
    assert notebook_language({"metadata": {"tinyml_edu": "fr"}}) == "en"
    assert notebook_language({"metadata": {}}) == "en"


@pytest.mark.slow
def test_a_french_hand_in_grades_as_the_english_one_with_french_feedback(tmp_path):
    """The French solution earns every point, the French blank none, through the project's
    sandboxed grader; the blank's failed checks speak French."""
    from tinyml_edu.course import autograde, config, release

    source = lessons.lessons_dir()
    course = tmp_path / "course"
    config.init_course(course, source)
    release.release(course, [LESSON], log=lambda _m: None, langs=("fr",))
    lesson = lessons.get_lesson(LESSON, source)
    solution, _total, _done = translate.translate_notebook(
        lessons.read_notebook(lesson.notebook), "fr", translate.lesson_translations(lesson, "fr"))
    blank = json.loads((course / "release-fr" / LESSON / f"{LESSON}.ipynb").read_text())
    for student, nb in (("ana", solution), ("ben", copy.deepcopy(blank))):
        folder = course / "submitted" / student / LESSON
        folder.mkdir(parents=True)
        (folder / f"{LESSON}.ipynb").write_text(json.dumps(nb))
    results = autograde.autograde(course, LESSON, workers=2, timeout=600, cell_timeout=300,
                                  progress=False, log=lambda _m: None)
    got = {r.student: r.score for r in results}
    assert got == {"ana": lessons.points(solution)[0], "ben": 0.0}, [
        (r.student, r.messages) for r in results]
    graded = json.loads((course / "autograded" / "ben" / LESSON / f"{LESSON}.ipynb").read_text())
    said = json.dumps([c.get("outputs", []) for c in graded["cells"]], ensure_ascii=False)
    assert i18n._("has no answer yet", "fr") in said
    assert "has no answer yet" not in said


@pytest.mark.slow
def test_course_check_grades_the_spanish_release(capsys):
    """`course check 01 --lang es`: nbgrader releases the lesson, it is translated, and the
    Spanish solution earns every point and the Spanish blank none."""
    from tinyml_edu.cli import main

    assert main(["course", "check", "1", "--lang", "es", "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["lang"] == "es" and result["ok"], result
    assert result["solution_score"] == result["max_score"] > 0 and result["blank_score"] == 0
    assert not [w for w in result["warnings"] if "not translated" in w]


def test_lesson_labels_come_from_visible_code_only():
    nb = {"cells": [
        {"cell_type": "code", "id": "p", "source": 'plt.xlabel(tr("time (s)"))\n!ls\n'},
        {"cell_type": "code", "id": "t", "source": (
            'checks.check_true(True, "x")\n### BEGIN HIDDEN TESTS\n'
            'print(tr("the hidden answer is 42"))\n### END HIDDEN TESTS\n')},
        {"cell_type": "markdown", "id": "m", "source": 'tr("not code")'},
    ]}
    assert translate.lesson_labels(nb) == [("time (s)", "p")]


@pytest.mark.parametrize("lang", LANGS)
def test_plot_labels_of_the_lessons_are_translated(monkeypatch, lang):
    labels = [label for lesson in CORE
              for label, _cell in translate.lesson_labels(lessons.read_notebook(lesson.notebook))]
    assert "time (s)" in labels and len(set(labels)) > 30
    monkeypatch.setenv("TINYML_EDU_LANG", lang)
    assert i18n.tr("time (s)") == i18n.catalogue(lang)["time (s)"] != "time (s)"
