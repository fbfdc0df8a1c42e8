"""How long the lessons' sentences are: many students read English as a second or third language.

    python benchmarks/bench_plain_language.py                # every lesson
    python benchmarks/bench_plain_language.py 08 14          # some lessons

For each lesson's markdown as students get it (code, tables, maths and the model answers of
written exercises left out) this prints the words, the
sentences (list items and paragraphs without a full stop count as sentences), the mean words per
sentence and the share of sentences over 25 words. Target: a mean of at most 16 words and at most
12 % of sentences over 25 words. Exit code 1 if a lesson misses it, so a reviewer sees which.
A translated lesson (00-07, 16) that is rewritten goes stale in es, fr and pt until re-translated.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
LONG_SENTENCE_WORDS = 25
MAX_MEAN_WORDS = 16.0
MAX_LONG_SHARE = 0.12

_FENCED_CODE = re.compile(r"```.*?```", re.S)
_TABLE_ROW = re.compile(r"^\|.*$", re.M)
_MATH = re.compile(r"\$[^$]*\$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*\n|\n[-*] |\n\d+\. ")


def sentence_lengths(markdown: str) -> list[int]:
    """Words per sentence of one markdown cell; pieces under 3 words (labels) are skipped."""
    text = _MATH.sub("X", _TABLE_ROW.sub(" ", _FENCED_CODE.sub(" ", markdown)))
    return [n for n in (len(s.split()) for s in _SENTENCE_END.split(text)) if n >= 3]


def lesson_lengths(notebook: Path) -> list[int]:
    """What students read: markdown cells, without the model answers of written exercises
    (nbgrader solution cells, which the release replaces with an empty answer)."""
    cells = nbformat.read(notebook, as_version=4).cells
    return [n for cell in cells if cell.cell_type == "markdown"
            and not cell.metadata.get("nbgrader", {}).get("solution")
            for n in sentence_lengths(cell.source)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lessons", nargs="*", help="lesson numbers (default: all)")
    args = parser.parse_args(argv)
    notebooks = sorted((ROOT / "lessons").glob("*/*.ipynb"))
    if args.lessons:
        notebooks = [nb for nb in notebooks if nb.parent.name[:2] in args.lessons]
    missed = []
    print(f"{'lesson':30} {'words':>6} {'sentences':>9} {'mean':>5} {'>25 words':>10}")
    for notebook in notebooks:
        lengths = lesson_lengths(notebook)
        mean = sum(lengths) / len(lengths)
        long_share = sum(n > LONG_SENTENCE_WORDS for n in lengths) / len(lengths)
        ok = mean <= MAX_MEAN_WORDS and long_share <= MAX_LONG_SHARE
        missed += [] if ok else [notebook.parent.name]
        print(f"{notebook.parent.name[:30]:30} {sum(lengths):6d} {len(lengths):9d} {mean:5.1f} "
              f"{long_share:9.0%}{'' if ok else '  (over the target)'}")
    meet = len(notebooks) - len(missed)
    print(f"target: mean <= {MAX_MEAN_WORDS:g} words, <= {MAX_LONG_SHARE:.0%} of sentences over "
          f"{LONG_SENTENCE_WORDS} words; {meet} of {len(notebooks)} lessons meet it")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
