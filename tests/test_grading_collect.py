"""Collecting hand-ins: an LMS zip whose names do not match the class list exactly, a USB folder,
and re-collecting without losing what was collected before."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from tinyml_edu.course import collect, config

FIXTURE = Path(__file__).parent / "fixtures" / "grading" / "lessons"
LESSON = "90-tiny-quiz"
CLASS = """id,first_name,last_name,email,lms_id
jdoe,Jane,Doe,jane.doe@example.org,
zobrien,Zoë,O'Brien,,
mgarcia,María José,García López,,
wchen,Wei,Chen,,55501
tnguyen,Thi,Nguyen,,
"""


def _nb(marker: str) -> bytes:
    return json.dumps({"cells": [], "metadata": {"marker": marker}, "nbformat": 4,
                       "nbformat_minor": 5}).encode()


@pytest.fixture()
def course(tmp_path: Path) -> Path:
    root = tmp_path / "course"
    config.init_course(root, FIXTURE)
    (root / "students.csv").write_text(CLASS, encoding="utf-8")
    return root


def test_lms_zip_with_inexact_names(course: Path, tmp_path: Path) -> None:
    zpath = tmp_path / "moodle.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        # Moodle: "Full Name_<id>_assignsubmission_file_<file>", case and accents differ
        zf.writestr(f"JANE DOE_901_assignsubmission_file_{LESSON}.ipynb", _nb("jane"))
        zf.writestr(f"Zoe OBrien_902_assignsubmission_file_/{LESSON}.ipynb", _nb("zoe"))
        # Canvas: "lastfirst_<user>_<submission>_<file>", LATE marker, a typo in the name
        zf.writestr(f"garcialopezmariajose_LATE_903_4411_{LESSON}-1.ipynb", _nb("maria"))
        zf.writestr(f"chen_55501_4412_{LESSON}.ipynb", _nb("wei"))  # by the LMS id
        zf.writestr(f"Thi Nguyne_905_assignsubmission_file_{LESSON}.ipynb", _nb("thi"))  # typo
        zf.writestr(f"Somebody Else_906_assignsubmission_file_{LESSON}.ipynb", _nb("x"))
        zf.writestr("__MACOSX/._junk.ipynb", b"junk")
    report = collect.collect(course, zpath)
    got = {c.student: c for c in report.collected}
    assert set(got) == {"jdoe", "zobrien", "mgarcia", "wchen", "tnguyen"}
    assert got["wchen"].how == "lms id"
    assert got["tnguyen"].how.startswith("fuzzy")
    assert [src for src, _ in report.unmatched] == [
        f"Somebody Else_906_assignsubmission_file_{LESSON}.ipynb"]
    for student, marker in (("jdoe", "jane"), ("zobrien", "zoe"), ("mgarcia", "maria")):
        nb = course / "submitted" / student / LESSON / f"{LESSON}.ipynb"
        assert json.loads(nb.read_text())["metadata"]["marker"] == marker
        assert (nb.parent / "timestamp.txt").exists()
    assert "not matched" in report.format()


def test_usb_folder_and_recollect_keeps_earlier_hand_in(course: Path, tmp_path: Path) -> None:
    usb = tmp_path / "usb"
    (usb / "Jane Doe").mkdir(parents=True)
    (usb / "Jane Doe" / f"{LESSON}.ipynb").write_bytes(_nb("v1"))
    (usb / "misc.ipynb").write_bytes(_nb("?"))  # no lesson, no student
    first = collect.collect(course, usb)
    assert [(c.student, c.status) for c in first.collected] == [("jdoe", "new")]
    assert collect.collect(course, usb).collected[0].status == "unchanged"
    (usb / "Jane Doe" / f"{LESSON}.ipynb").write_bytes(_nb("v2"))
    assert collect.collect(course, usb).collected[0].status == "replaced"
    kept = list((course / "submitted" / "jdoe" / ".replaced").rglob("*.ipynb"))
    assert len(kept) == 1 and json.loads(kept[0].read_text())["metadata"]["marker"] == "v1"


def test_missing_or_bad_class_list_says_what_to_do(course: Path, tmp_path: Path) -> None:
    (course / "students.csv").unlink()
    with pytest.raises(FileNotFoundError, match="id,first_name"):
        collect.collect(course, tmp_path)
    (course / "students.csv").write_text("id\nbad id!\n")
    with pytest.raises(ValueError, match="line 2"):
        collect.collect(course, tmp_path)


def test_cli_release_collect(course: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from tinyml_edu.cli import main

    assert main(["course", "--course", str(course), "release", "90"]) == 0
    assert (course / "zips" / f"{LESSON}.zip").exists()
    usb = tmp_path / "usb"
    usb.mkdir()
    (usb / f"jdoe_{LESSON}.ipynb").write_bytes(_nb("x"))
    assert main(["course", "--course", str(course), "collect", str(usb)]) == 0
    assert "1 collected, 0 not matched" in capsys.readouterr().out
    assert main(["course", "--course", str(course), "collect", str(tmp_path / "nope")]) == 2
