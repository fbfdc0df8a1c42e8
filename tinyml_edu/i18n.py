"""The course's languages: which one a student reads, and the package's own translated messages.

Translations are gettext catalogues (``.po`` files) read with Babel, the tool Python projects use
to manage them:

- the package's student-facing messages (the checks' feedback, the CLI's common errors, the
  released notebooks' answer stubs) and the lessons' plot and widget labels:
  ``tinyml_edu/locale/<lang>.po``, marked in the code with :func:`_` (the usual gettext name;
  lessons use :func:`tr`) and a ``str.format`` field for every value;
- each lesson's text: one catalogue per lesson and language beside the lesson sources (see
  :mod:`tinyml_edu.course.translate`).

A student's language is ``$TINYML_EDU_LANG`` when set (the grader sets it per hand-in from the
notebook's metadata); else, in a notebook, the language token of the notebook's path
(``release-fr/…``, ``01-hello-tinyml-fr/…``, ``….fr.ipynb``: Jupyter gives the kernel its path in
``$JPY_SESSION_NAME``) or English; else, on the command line, the computer's language (``LANG``)
when the course is translated into it. Anything not yet translated is shown in English.
"""

from __future__ import annotations

import functools
import os
import re
from collections import Counter
from pathlib import Path

ENGLISH = "en"
# The translated languages, by ISO 639-1 code; English is the source of every catalogue.
LANGUAGES = {"es": "Español", "fr": "Français", "pt": "Português"}
LANG_ENV = "TINYML_EDU_LANG"
SESSION_ENV = "JPY_SESSION_NAME"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "tinyml_edu"

# A language code standing alone in a path part: "release-fr", "fr", "lesson.fr.ipynb".
_PATH_TOKEN = re.compile(r"(?:^|[-_.])(" + "|".join(LANGUAGES) + r")(?:\.ipynb)?$")


def check_language(lang: str) -> str:
    """``lang`` if it is English or a translated language, else an error listing them."""
    from tinyml_edu.errors import UnknownNameError

    code = lang.strip().lower()
    if code == ENGLISH or code in LANGUAGES:
        return code
    known = ", ".join(f"{c} ({n})" for c, n in LANGUAGES.items())
    raise UnknownNameError(f"no translation {lang!r}; the course is translated into {known} "
                           f"(and written in English, {ENGLISH})")


def language_of_path(path: str | os.PathLike[str]) -> str | None:
    """The language a path names with a token of its own (the innermost one wins), if any."""
    for part in reversed(Path(path).parts):
        match = _PATH_TOKEN.search(part)
        if match:
            return match.group(1)
    return None


def current_language() -> str:
    """The language to speak to the student in now (see the module docstring)."""
    chosen = os.environ.get(LANG_ENV, "").strip().lower()
    if chosen in LANGUAGES or chosen == ENGLISH:
        return chosen
    session = os.environ.get(SESSION_ENV)
    if session:  # a notebook's kernel: the notebook's language, whatever the computer's
        return language_of_path(session) or ENGLISH
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):  # the command line: the computer's language
        code = os.environ.get(name, "")[:2].lower()
        if code:
            return code if code in LANGUAGES else ENGLISH
    return ENGLISH


def catalogue_path(lang: str) -> Path:
    return LOCALE_DIR / f"{lang}.po"


@functools.cache
def catalogue(lang: str) -> dict[str, str]:
    """msgid → translation of the package's messages in ``lang``: translated entries only (an
    empty or fuzzy one, whose English changed since, falls back to English)."""
    path = catalogue_path(lang)
    if lang == ENGLISH or not path.is_file():
        return {}
    from babel.messages.pofile import read_po

    with path.open("rb") as f:
        cat = read_po(f, locale=lang)
    return {m.id: m.string for m in cat if m.id and m.string and not m.fuzzy
            and isinstance(m.id, str)}


def _(message: str, lang: str | None = None) -> str:
    """``message`` in the student's language (English when it has no translation yet).
    Format the result, never the argument: ``_("{name} is {value}").format(...)``."""
    return catalogue(lang or current_language()).get(message, message)


def tr(text: str) -> str:
    """A lesson's plot or widget label in the student's language: ``plt.xlabel(tr("time (s)"))``.
    (Lessons cannot use ``_``: IPython keeps the last result in it.)"""
    return _(text)


# What a translation must carry over unchanged: code spans, maths, link targets, HTML tags,
# str.format fields, and a line's heading level and table pipes.
_CODE = re.compile(r"(`+)(.+?)\1", re.S)
_MATH = re.compile(r"\$\$.+?\$\$|\$[^$\n]+\$", re.S)
_LINK_TARGET = re.compile(r"\]\(([^)\s]+)\)")
_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
_FIELD = re.compile(r"(?<!\{)\{[a-zA-Z_][a-zA-Z0-9_]*(?:[.:!][^{}]*)?\}(?!\})")


def placeholders(text: str) -> Counter[str]:
    """The pieces of ``text`` a translation must keep exactly, counted."""
    found: Counter[str] = Counter()
    rest = text
    for pattern in (_CODE, _MATH):  # code first: a `$x` inside backticks is code, not maths
        found.update(m.group(0) for m in pattern.finditer(rest))
        rest = pattern.sub(" ", rest)
    found.update(m.group(0) for m in _LINK_TARGET.finditer(rest))
    found.update(m.group(0) for m in _TAG.finditer(rest))
    found.update(m.group(0) for m in _FIELD.finditer(rest))
    return found


def _shape(text: str) -> list[str]:
    """Per line: the heading marks, or the table row's pipe count (the Markdown structure)."""
    shape = []
    for line in text.strip().splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            shape.append(stripped.split(" ", 1)[0])
        elif stripped.startswith("|"):
            shape.append("|" * stripped.count("|"))
    return shape


def placeholder_problems(source: str, translation: str) -> list[str]:
    """Why ``translation`` cannot stand in for ``source`` (empty when it can)."""
    problems = []
    want, got = placeholders(source), placeholders(translation)
    missing, extra = want - got, got - want
    if missing:
        problems.append("lost " + ", ".join(sorted(missing)))
    if extra:
        problems.append("added " + ", ".join(sorted(extra)))
    if _shape(source) != _shape(translation):
        problems.append("the headings or table rows differ from the English "
                        f"({_shape(source)} vs {_shape(translation)})")
    return problems
