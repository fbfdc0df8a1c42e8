"""Start-up cost: a grading worker or a `tinyml-edu` command does not build parsers it never uses.

jsonschema (under nbformat and nbgrader) imports the optional IRI checker rfc3987-syntax, whose
import builds Earley parsers for seconds; importing tinyml_edu first keeps it out, and
jsonschema then works as when that package is not installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata

import pytest

from tinyml_edu.course import lessons


def _python(code: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


REPORT = ("import json, sys, jsonschema; print(json.dumps({'iri': 'iri' in "
          "jsonschema.FormatChecker.checkers, 'parser_loaded': "
          "sys.modules.get('rfc3987_syntax') is not None}))")


@pytest.fixture(scope="module")
def iri_checker_installed() -> None:
    try:
        metadata.version("rfc3987-syntax")
    except metadata.PackageNotFoundError:
        pytest.skip("rfc3987-syntax is not installed here: nothing to keep out")


def test_without_tinyml_edu_jsonschema_loads_the_iri_parser(iri_checker_installed):
    assert _python(REPORT) == {"iri": True, "parser_loaded": True}


def test_after_tinyml_edu_nbformat_validates_without_it(iri_checker_installed):
    notebook = lessons.list_lessons()[0].notebook
    code = ("import tinyml_edu, nbformat; "
            f"nbformat.validate(nbformat.read({str(notebook)!r}, as_version=4)); " + REPORT)
    assert _python(code) == {"iri": False, "parser_loaded": False}


def test_a_program_that_loaded_it_first_keeps_it(iri_checker_installed):
    assert _python("import rfc3987_syntax, tinyml_edu; " + REPORT) == {
        "iri": True, "parser_loaded": True}
