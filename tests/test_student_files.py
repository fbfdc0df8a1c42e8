"""What students get holds no answers: the tinyml-edu wheel, the student bundle and the files
Binder's postBuild leaves are scanned for nbgrader's markers and for the text of every hidden test
line of the lesson sources. And the instructor's documented commands work from a non-editable
install, where the sources are found through the course folder, not the package.

Nothing here needs the network but building the wheel, which pip does as `pip install .` does
(with hatchling from the package index unless it is installed). The full bundle, with its ~460 MB
of dependency wheels, is scanned in tests/test_bundle.py with the bundle that test builds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tinyml_edu import i18n
from tinyml_edu.bundle import BundleError, build
from tinyml_edu.course import leaks, lessons

ROOT = Path(__file__).resolve().parents[1]
PY = f"{sys.version_info[0]}.{sys.version_info[1]}"


@pytest.fixture(scope="module")
def hidden_lines() -> list[str]:
    found = leaks.secrets(ROOT / "lessons")
    assert len(found) > 50, "too few hidden test lines: is the extraction broken?"
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build.build_wheel(tmp_path_factory.mktemp("wheel"), log=lambda _m: None)


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel installed as `pip install .` would (not editable) into its own folder."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    "--target", str(target), str(wheel)], check=True)
    return target


def _run(*args: str, cwd: Path, site: Path) -> subprocess.CompletedProcess:
    """`tinyml-edu ARGS` run from ``cwd`` with only the installed wheel importable."""
    env = dict(os.environ, PYTHONPATH=str(site))
    return subprocess.run([sys.executable, "-m", "tinyml_edu", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


# --- the scanner itself must find what it looks for ------------------------------------------


def test_scan_finds_a_source_notebook_inside_a_wheel_inside_a_zip(tmp_path, hidden_lines):
    source = ROOT / "lessons" / "07-deployment" / "07-deployment.ipynb"
    inner = tmp_path / "inner.whl"
    with zipfile.ZipFile(inner, "w") as zf:
        zf.write(source, "tinyml_edu/_lessons/07/07-deployment.ipynb")
    outer = tmp_path / "bundle" / "stick.zip"
    outer.parent.mkdir()
    with zipfile.ZipFile(outer, "w") as zf:
        zf.write(inner, "wheelhouse/tinyml_edu-0-py3-none-any.whl")
    inner.unlink()
    found = leaks.scan(tmp_path / "bundle", hidden_lines)
    assert any("nbgrader marker" in leak.what for leak in found), found
    assert any("hidden test line" in leak.what for leak in found), found
    assert all("!tinyml_edu/_lessons/07/07-deployment.ipynb" in leak.where for leak in found)
    with pytest.raises(BundleError, match="would reach students"):
        build.check_student_files(tmp_path / "bundle", hidden_lines=hidden_lines)


def test_scan_finds_a_hidden_test_line_pasted_into_a_released_notebook(tmp_path, hidden_lines):
    nb = {"cells": [{"cell_type": "code", "source": ["x = 1\n", hidden_lines[7] + "\n"]}]}
    (tmp_path / "01.ipynb").write_text(json.dumps(nb))  # JSON escapes its quotes
    (tmp_path / "notes.py").write_text("# `### BEGIN SOLUTION` marks an answer\n")
    found = leaks.scan(tmp_path, hidden_lines)
    assert [leak.where for leak in found] == [str(tmp_path / "01.ipynb")], found


def test_hidden_lines_come_from_the_hidden_blocks_only():
    nb = {"cells": [{"cell_type": "code", "source": (
        "assert visible_check(answer) == 42\n### BEGIN HIDDEN TESTS\n"
        "assert secret_check(answer) == 4242\nassert visible_check(answer) == 42\nok = 1\n"
        "### END HIDDEN TESTS\n")}]}
    hidden, visible = leaks._split_hidden(nb)
    assert hidden == {"assert secret_check(answer) == 4242", "assert visible_check(answer) == 42",
                      "ok = 1"}
    assert "assert visible_check(answer) == 42" in visible


# --- the artifacts ------------------------------------------------------------------------------


def test_wheel_carries_no_lesson_source(wheel, hidden_lines):
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    assert not [n for n in names if n.endswith(".ipynb") or "/_lessons/" in n]
    assert any(n.startswith("tinyml_edu/_data/") for n in names)  # the data sets still ship
    assert {f"tinyml_edu/locale/{lang}.po" for lang in i18n.LANGUAGES} <= set(names)
    assert leaks.scan(wheel, hidden_lines) == []


def test_student_bundle_files_hold_no_answer(wheel, hidden_lines, tmp_path):
    """What `bundle build` puts beside the dependency wheels: the tinyml-edu wheel, the released
    lessons, the data sets and the scripts; built here without downloading anything."""
    staging = tmp_path / "bundle"
    (staging / "wheelhouse").mkdir(parents=True)
    shutil.copy2(wheel, staging / "wheelhouse" / wheel.name)
    released = build.release_lessons(staging / "lessons", log=lambda _m: None,
                                     langs=tuple(i18n.LANGUAGES))
    assert released == [lesson.id for lesson in lessons.list_lessons(ROOT / "lessons")]
    for lang in i18n.LANGUAGES:  # `bundle build --lang all`: the translations hold no answer
        assert sorted(p.name for p in (staging / f"lessons-{lang}").iterdir()) == released
    shutil.copytree(ROOT / "datasets", staging / "datasets")
    build._write_scripts(staging, build.TARGETS["linux"], PY, wheel.name)
    assert leaks.scan(staging, hidden_lines) == []
    build.check_student_files(staging)  # what `bundle build` runs before finishing


def _repository_copy(dest: Path) -> Path:
    """The repository as Binder clones it: its tracked files and a git history."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        if (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run(git + ["init", "-q"], cwd=dest, check=True)
    subprocess.run(git + ["add", "-A"], cwd=dest, check=True)
    subprocess.run(git + ["commit", "-qm", "clone"], cwd=dest, check=True)
    return dest


def test_binder_post_build_leaves_no_answer(tmp_path, hidden_lines):
    if shutil.which("git") is None:
        pytest.skip("needs git")
    repo = _repository_copy(tmp_path / "repo")
    site = tmp_path / "site"
    shims = tmp_path / "bin"  # `jupyter` would change this venv's extensions: record instead
    shims.mkdir()
    (shims / "jupyter").write_text(f"#!/bin/sh\necho \"$@\" >> '{tmp_path / 'jupyter.log'}'\n")
    (shims / "jupyter").chmod(0o755)
    env = dict(os.environ, PIP_TARGET=str(site), PYTHONPATH=str(site),
               PATH=os.pathsep.join([str(shims), os.path.dirname(sys.executable),
                                     os.environ["PATH"]]))
    run = subprocess.run(["bash", str(repo / "binder" / "postBuild")], cwd=repo, env=env,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "no answers in" in run.stdout
    assert "formgrader" in (tmp_path / "jupyter.log").read_text()
    for gone in (".git", "grading", "tests"):
        assert not (repo / gone).exists(), f"postBuild left {gone}/"
    released = sorted(p.name for p in (repo / "lessons").iterdir() if p.is_dir())
    assert released == [lesson.id for lesson in lessons.list_lessons(ROOT / "lessons")]
    assert "raise NotImplementedError()" in (
        repo / "lessons" / "01-hello-tinyml" / "01-hello-tinyml.ipynb").read_text()
    for lang in i18n.LANGUAGES:  # the students pick their language's folder
        folder = repo / f"lessons-{lang}"
        assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == released
        nb = json.loads((folder / "01-hello-tinyml" / "01-hello-tinyml.ipynb").read_text())
        assert nb["metadata"]["tinyml_edu"]["lang"] == lang
    assert leaks.scan(repo, hidden_lines) == []
    assert leaks.scan(site / "tinyml_edu", hidden_lines) == []


# --- instructor commands from a non-editable install ------------------------------------------


def _instructor_checkout(dest: Path) -> Path:
    """The parts of a clone the README's grading section uses: lessons/ and grading/."""
    for folder in ("lessons", "grading"):
        shutil.copytree(ROOT / folder, dest / folder)
    return dest


def test_readme_grading_commands_work_from_the_repository_root(installed, tmp_path):
    repo = _instructor_checkout(tmp_path / "clone")
    check = subprocess.run([sys.executable, "-c", "import tinyml_edu; print(tinyml_edu.__file__)"],
                           cwd=repo, env=dict(os.environ, PYTHONPATH=str(installed)),
                           capture_output=True, text=True)
    assert check.stdout.startswith(str(installed)), check.stdout + check.stderr
    listed = _run("course", "list", cwd=repo, site=installed)
    assert listed.returncode == 0, listed.stderr
    assert "07-deployment" in listed.stdout
    released = _run("course", "release", "--all", cwd=repo, site=installed)
    assert released.returncode == 0, released.stderr[-3000:]
    zips = sorted(p.name for p in (repo / "grading" / "zips").glob("*.zip"))
    assert zips == [f"{lesson.id}.zip" for lesson in lessons.list_lessons(ROOT / "lessons")]
    assert leaks.scan(repo / "grading" / "zips", leaks.secrets(ROOT / "lessons")) == []


def test_student_install_says_where_lesson_sources_are(installed, tmp_path):
    listed = _run("course", "list", cwd=tmp_path, site=installed)
    assert listed.returncode == 2
    assert "lesson sources" in listed.stderr and "instructor" in listed.stderr
    assert "grading/" in listed.stderr and "Traceback" not in listed.stderr
    released = _run("course", "release", "--all", cwd=tmp_path, site=installed)
    assert released.returncode == 2
    assert "no course folder here" in released.stderr and "grading/" in released.stderr


def test_course_folder_from_environment(installed, tmp_path):
    repo = _instructor_checkout(tmp_path / "clone")
    env_run = subprocess.run(
        [sys.executable, "-m", "tinyml_edu", "course", "list"], cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(installed), TINYML_EDU_COURSE=str(repo / "grading")),
        capture_output=True, text=True, timeout=300)
    assert env_run.returncode == 0, env_run.stderr
    assert "01-hello-tinyml" in env_run.stdout
