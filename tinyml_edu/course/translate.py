"""Lessons in the network's languages: gettext catalogues of each lesson's text, kept in step
with the English source, and released notebooks built from them.

One English source notebook grades every language: only the text a student reads changes.
Code cells, grade ids, tests, points and nbgrader's metadata are shared, so a hand-in grades the
same whatever its language.

Layout, beside the lesson sources (``lessons/``) so an instructor's clone carries both::

    translations/templates/01-hello-tinyml.pot   # the English units, extracted (never edit)
    translations/fr/01-hello-tinyml.po           # their French, edited by translators

A *unit* is one Markdown block (a paragraph, a heading, a list, a table: text between blank
lines, with fenced code kept whole and left alone) of a markdown cell that is not a written
answer (nbgrader replaces those with the answer stub on release). Units are matched by their
English text, so a cell that moves keeps its translation.

Invariants:

- a unit is shown translated only if its entry exists, is not fuzzy and keeps every placeholder
  (code spans, maths, link targets, tags, headings, table rows: :func:`i18n.placeholder_problems`);
  otherwise the English stays, so a lesson never loses text;
- *stale* is Babel's fuzzy: the English changed after the translation (``update`` marks it, and
  :func:`status` finds it without writing anything);
- a released notebook that keeps any English says so in a first cell, in its language.
"""

from __future__ import annotations

import copy
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinyml_edu import i18n
from tinyml_edu.course import lessons
from tinyml_edu.errors import InputError, MissingFileError

TEMPLATES = "templates"
# Lessons 00–07, the core arc, and lesson 16 (debugging on the board) are translated in full;
# the others may fall back to English.
CORE_LESSONS = (*(f"{n:02d}" for n in range(8)), "16")
BANNER_ID = "tinyml-edu-translation-note"
HEADER = ("# The text of a tinyml-edu lesson, for translators: see translations/README.md.\n"
          "# Made by `tinyml-edu course translations --update`; edit only the msgstr lines.")
PACKAGE_HEADER = ("# tinyml-edu's student-facing messages, for translators: see "
                  "translations/README.md.\n# Made by `tinyml-edu course translations --update`; "
                  "edit only the msgstr lines.")
_DATES = re.compile(rb'^"(?:POT-Creation|PO-Revision)-Date: .*$', re.M)
_FENCE = re.compile(r"^\s*(```|~~~)")
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)


def translations_dir(source: Path | None = None) -> Path:
    """``translations/`` beside the lesson sources (``source``: the lessons folder)."""
    source = Path(source) if source else lessons.lessons_dir()
    return source.resolve().parent / "translations"


def _text(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def split_blocks(markdown: str) -> list[str]:
    """``markdown`` as blocks between blank lines; a fenced code block stays one block."""
    blocks: list[str] = []
    current: list[str] = []
    fenced = False
    for line in markdown.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        if not line.strip() and not fenced:
            if current:
                blocks.append("\n".join(current))
                current = []
            continue
        current.append(line)
    if current:
        blocks.append("\n".join(current))
    return blocks


def is_unit(block: str) -> bool:
    """A block worth translating: it has words and is not a fenced code block."""
    return bool(_LETTER.search(block)) and not _FENCE.match(block)


def _translatable_cells(nb: dict[str, Any]) -> Iterator[tuple[int, dict[str, Any]]]:
    for i, cell in enumerate(nb.get("cells", [])):
        meta = cell.get("metadata", {})
        if cell.get("cell_type") != "markdown" or meta.get("nbgrader", {}).get("solution"):
            continue  # a written answer: replaced by the stub on release
        if meta.get("tinyml_edu", {}).get("id") == BANNER_ID or _text(cell).strip() == _text_stub():
            continue  # our note, or a written answer's stub in a released notebook
        yield i, cell


def units(nb: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(English text, cell id, block number) of every unit, in reading order."""
    found = []
    for i, cell in _translatable_cells(nb):
        cell_id = str(cell.get("id") or f"cell-{i}")
        for n, block in enumerate(split_blocks(_text(cell)), start=1):
            if is_unit(block):
                found.append((block, cell_id, n))
    return found


def template(lesson: lessons.Lesson) -> Any:
    """The lesson's English units as a Babel catalogue (a ``.pot``)."""

    cat = _new_catalogue(f"tinyml-edu {lesson.id}", HEADER)
    for text, cell_id, n in units(lessons.read_notebook(lesson.notebook)):
        cat.add(text, locations=[(f"{lesson.notebook.name}#{cell_id}", n)])
    return cat


def read_catalogue(path: Path, lang: str) -> Any:
    from babel.messages.pofile import read_po

    try:
        with path.open("rb") as f:
            cat = read_po(f, locale=lang)
    except (OSError, ValueError, SyntaxError) as err:
        raise InputError(f"{path} is not a readable .po file ({err}); restore it from git or "
                         f"run `tinyml-edu course translations --update` to start it again") \
            from None
    for message in cat:
        _restore_previous_id(message)
    return cat


def _restore_previous_id(message: Any) -> None:
    """Babel reads a stale entry's ``#| msgid`` lines (the old English) back as translator
    comments, and would write them out as ``# | msgid`` comments that pile up at every update:
    turn them back into the previous msgid."""
    from babel.messages.pofile import denormalize

    previous = [c[1:].strip() for c in message.user_comments if c.startswith("|")]
    if not previous:
        return
    message.user_comments = [c for c in message.user_comments if not c.startswith("|")]
    if previous[0].startswith("msgid "):
        previous[0] = previous[0][len("msgid "):]
        message.previous_id = [denormalize("\n".join(previous))]


def _write_catalogue(cat: Any, path: Path) -> None:
    from babel.messages.pofile import write_po

    from tinyml_edu._fs import write_atomic

    buf = io.BytesIO()
    # width 0: no re-wrapping, so a translator's line breaks (Markdown!) survive.
    write_po(buf, cat, width=0, sort_output=False, include_previous=True, omit_header=False)
    new = buf.getvalue()
    if path.is_file() and _DATES.sub(b"", path.read_bytes()) == _DATES.sub(b"", new):
        return  # nothing but the dates changed: keep git quiet
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, new)


def _new_catalogue(project: str, header: str, lang: str | None = None) -> Any:
    from babel.messages.catalog import Catalog

    return Catalog(locale=lang, project=project, header_comment=header, fuzzy=False,
                   copyright_holder="tinyml-edu contributors", msgid_bugs_address="")


def _in_step(path: Path, lang: str, english: Any) -> Any:
    """The catalogue at ``path`` (a new one when there is none) brought in step with the
    ``english`` template, in memory: new units empty, changed ones fuzzy."""
    cat = (read_catalogue(path, lang) if path.is_file() else
           _new_catalogue(english.project, english.header_comment, lang))
    previous = {m.id: m.previous_id for m in cat if m.id and m.previous_id}
    cat.update(english, update_header_comment=False)
    for message in cat:  # a still-stale entry keeps its old English (Babel's update drops it)
        if message.fuzzy and not message.previous_id and message.id in previous:
            message.previous_id = previous[message.id]
    return cat


def _catalogue_for(lesson: lessons.Lesson, lang: str, root: Path) -> Any:
    """The language's catalogue for ``lesson`` brought in step with the English (in memory)."""
    return _in_step(root / lang / f"{lesson.id}.po", lang, template(lesson))


def update(source: Path | None = None,
           langs: tuple[str, ...] = tuple(i18n.LANGUAGES)) -> list[Path]:
    """Write every lesson's template and bring each language's catalogue in step with it:
    new English units appear empty, changed ones are marked fuzzy with the old English beside
    them, removed ones become obsolete (``#~``). Returns the files written."""
    source = Path(source) if source else lessons.lessons_dir()
    root = translations_dir(source)
    written = []
    for lesson in lessons.list_lessons(source):
        english = template(lesson)
        pot = root / TEMPLATES / f"{lesson.id}.pot"
        _write_catalogue(english, pot)
        written.append(pot)
        for lang in langs:
            po = root / i18n.check_language(lang) / f"{lesson.id}.po"
            _write_catalogue(_in_step(po, lang, english), po)
            written.append(po)
    return written


def package_template() -> Any:
    """The package's ``_("...")`` messages, extracted from its source with Babel."""
    from babel.messages.extract import extract_from_dir

    package = i18n.LOCALE_DIR.parent
    cat = _new_catalogue("tinyml-edu", PACKAGE_HEADER)
    for filename, lineno, message, comments, context in extract_from_dir(
            package, method_map=[("**.py", "python")], keywords={"_": None},
            comment_tags=("TRANSLATORS:",), strip_comment_tags=True):
        cat.add(message, locations=[(f"tinyml_edu/{filename}", lineno)],
                auto_comments=comments, context=context)
    source = lessons.repository_lessons()  # the lessons' labels, where their sources are
    for lesson in lessons.list_lessons(source) if source else []:
        for label, where in lesson_labels(lessons.read_notebook(lesson.notebook)):
            cat.add(label, locations=[(f"lessons/{lesson.id}#{where}", 1)])
    return cat


_GRADED = re.compile(r"### BEGIN (SOLUTION|HIDDEN TESTS).*?### END (SOLUTION|HIDDEN TESTS)",
                     re.S)


def lesson_labels(nb: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, cell id) of every ``tr("...")`` in a lesson's code, outside answers and hidden
    tests (what the package ships must not give those away)."""
    import ast

    found = []
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        code = _GRADED.sub("", _text(cell))
        code = "\n".join("" if line.lstrip().startswith(("!", "%")) else line
                         for line in code.splitlines())  # IPython's shell and magic lines
        try:
            tree = ast.parse(code)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "tr" and node.args
                    and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)):
                found.append((node.args[0].value, str(cell.get("id") or f"cell-{i}")))
    return found


def update_package(langs: tuple[str, ...] = tuple(i18n.LANGUAGES)) -> list[Path]:
    """The package's template and catalogues, as :func:`update` does for lessons."""
    english = package_template()
    pot = i18n.LOCALE_DIR / f"{i18n.DOMAIN}.pot"
    _write_catalogue(english, pot)
    written = [pot]
    for lang in langs:
        path = i18n.catalogue_path(i18n.check_language(lang))
        _write_catalogue(_in_step(path, lang, english), path)
        written.append(path)
    return written


def package_status(lang: str) -> LessonStatus:
    """How much of the package's messages is translated into ``lang`` (as :func:`status`)."""
    path = i18n.catalogue_path(i18n.check_language(lang))
    return _classify(_in_step(path, lang, package_template()), "(package messages)", lang)


@dataclass
class LessonStatus:
    lesson: str
    lang: str
    units: int
    translated: int = 0
    missing: list[str] = field(default_factory=list)  # English units with no translation
    stale: list[str] = field(default_factory=list)  # the English changed since (fuzzy)
    broken: list[str] = field(default_factory=list)  # "unit: problem" (placeholders)

    @property
    def complete(self) -> bool:
        return not (self.missing or self.stale or self.broken)


def usable_translations(cat: Any) -> dict[str, str]:
    """msgid → translation for the entries a release may use (see the module's invariants)."""
    usable = {}
    for message in cat:
        if (message.id and isinstance(message.id, str) and message.string and not message.fuzzy
                and not i18n.placeholder_problems(message.id, message.string)):
            usable[message.id] = message.string
    return usable


def status(lesson: lessons.Lesson, lang: str, root: Path | None = None) -> LessonStatus:
    """How much of ``lesson`` is translated into ``lang``, against the English as it is now."""
    root = root or translations_dir(lesson.folder.parent)
    return _classify(_catalogue_for(lesson, i18n.check_language(lang), root), lesson.id, lang)


def _classify(cat: Any, name: str, lang: str) -> LessonStatus:
    result = LessonStatus(name, lang, units=0)
    for message in cat:
        if not message.id:
            continue  # the header
        result.units += 1
        text = message.id
        if message.fuzzy:
            result.stale.append(text)
        elif not message.string:
            result.missing.append(text)
        elif problems := i18n.placeholder_problems(text, message.string):
            result.broken.append(f"{_short(text)}: {'; '.join(problems)}")
        else:
            result.translated += 1
    return result


def _short(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 70 else line[:67] + "..."


def format_report(results: list[LessonStatus], verbose: bool = False) -> str:
    """A table of what is left to translate, per lesson and language."""
    lines = [f"{'lesson':36} lang  done/units  missing  stale  broken"]
    for r in results:
        lines.append(f"{r.lesson:36} {r.lang:4}  {r.translated:4}/{r.units:<5}  "
                     f"{len(r.missing):7}  {len(r.stale):5}  {len(r.broken):6}")
    for r in results:
        if verbose or r.lesson[:2] in CORE_LESSONS:
            lines += [f"{r.lesson} [{r.lang}] missing: {_short(t)}" for t in r.missing]
            lines += [f"{r.lesson} [{r.lang}] stale: {_short(t)}" for t in r.stale]
        lines += [f"{r.lesson} [{r.lang}] broken: {t}" for t in r.broken]
    return "\n".join(lines)


def _translate_cell_text(text: str, usable: dict[str, str]) -> tuple[str, int, int]:
    """``text`` with each unit replaced by its translation; (text, units, translated)."""
    out, total, done = [], 0, 0
    for block in split_blocks(text):
        if is_unit(block):
            total += 1
            if block in usable:
                done += 1
                block = usable[block]
        out.append(block)
    return "\n\n".join(out), total, done


def translate_notebook(nb: dict[str, Any], lang: str, usable: dict[str, str]
                       ) -> tuple[dict[str, Any], int, int]:
    """A copy of ``nb`` (a source or released notebook) whose text reads in ``lang``; code and
    nbgrader metadata unchanged. Returns (notebook, units, translated)."""
    lang = i18n.check_language(lang)
    out = copy.deepcopy(nb)
    total = done = 0
    stub = i18n._("YOUR ANSWER HERE", lang)  # nbgrader's text stub (config.TEXT_STUB)
    for i, cell in _translatable_cells(out):
        translated, n, k = _translate_cell_text(_text(cell), usable)
        total, done = total + n, done + k
        out["cells"][i]["source"] = translated
    for cell in out["cells"]:  # the written answers' stub, as nbgrader left it
        if cell.get("cell_type") == "markdown" and _text(cell).strip() == _text_stub():
            cell["source"] = stub
    out.setdefault("metadata", {})["tinyml_edu"] = {"lang": lang}
    if done < total:
        out["cells"].insert(0, _banner(lang, total - done, total))
    return out, total, done


def _text_stub() -> str:
    from tinyml_edu.course.config import TEXT_STUB

    return TEXT_STUB


def _banner(lang: str, english: int, total: int) -> dict[str, Any]:
    note = i18n._("**Note:** {english} of the {total} paragraphs of this lesson are not "
                  "translated yet and appear in English.", lang)
    return {"cell_type": "markdown", "id": BANNER_ID, "source": note.format(
        english=english, total=total), "metadata": {"tinyml_edu": {"id": BANNER_ID}}}


def lesson_translations(lesson: lessons.Lesson, lang: str, root: Path | None = None
                        ) -> dict[str, str]:
    """The usable translations of ``lesson`` into ``lang`` (empty when it has no catalogue)."""
    root = root or translations_dir(lesson.folder.parent)
    path = root / i18n.check_language(lang) / f"{lesson.id}.po"
    return usable_translations(read_catalogue(path, lang)) if path.is_file() else {}


def translate_folder(folder: Path, lesson: lessons.Lesson, lang: str,
                     root: Path | None = None) -> tuple[int, int]:
    """Translate, in place, the lesson's notebook in ``folder`` (a copy of a release or of the
    source). Returns (units, translated)."""
    import json

    from tinyml_edu._fs import write_atomic

    path = folder / lesson.notebook.name
    if not path.is_file():
        raise MissingFileError(f"{path} is missing; release {lesson.id} again")
    nb = json.loads(path.read_text(encoding="utf-8"))
    out, total, done = translate_notebook(nb, lang, lesson_translations(lesson, lang, root))
    write_atomic(path, json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    return total, done
