"""Browser tests: a real JupyterLab (with nbgrader's extensions) on loopback, driven by Debian's
Chromium through Playwright. No browser is downloaded: Playwright starts /usr/bin/chromium.

One course folder, one JupyterLab server and one browser serve the whole session:

- ``course``: a temporary nbgrader course folder (``init_course``) whose source is the
  repository's ``lessons/``; lesson 01 and a board lesson released with nbgrader's API, and one
  submission of lesson 01 (its solution, by student ``ada``) autograded, so the Formgrader has a
  graded submission to show;
- ``lab``: ``jupyter lab`` in that folder on 127.0.0.1, a free port and a random token, with
  private settings, workspaces and runtime folders, and nothing that reaches the network;
- ``page``: a fresh browser tab per test.

Screenshots of every step go to ``artifacts/screenshots/`` (gitignored); their paths are listed
at the end of the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import labui
import pytest
from labui import BOARD_LESSONS, CHROMIUM, CHROMIUM_ARGS, LESSON, STUDENT

# .ci/run sets this: there the browser tests must run, so a missing Chromium fails them.
REQUIRE_ENV = "TINYML_EDU_REQUIRE_BROWSER"
SERVER_START_TIMEOUT_S = 120.0


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE_ENV):
        pytest.fail(f"{reason}, and ${REQUIRE_ENV} says the browser tests must run here")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        _unavailable(f"Debian's Chromium is not installed ({CHROMIUM}); "
                     "`apt-get install chromium` (.ci/run does)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("the playwright package is missing: pip install -e '.[test]'")
    return CHROMIUM


@dataclass
class Course:
    root: Path
    lessons: list[str]  # every lesson id in the source folder
    released: dict[str, str]  # lesson id -> error ("" when nbgrader released it)
    board_lesson: str | None
    student: str = STUDENT
    score: float = 0.0  # the autograded submission's score and maximum, from the gradebook
    max_score: float = 0.0
    source_notebooks: dict[str, dict] = field(default_factory=dict)

    def student_copy(self, lesson: str) -> str:
        """A fresh copy of the released lesson in ``students/<lesson>/``, as a student who
        fetched it has; its path relative to the server's root."""
        dest = self.root / "students" / lesson
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(self.root / "release" / lesson, dest)
        return f"students/{lesson}/{lesson}.ipynb"


@pytest.fixture(scope="session")
def course(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Course:
    from nbgrader.api import Gradebook
    from nbgrader.apps import NbGraderAPI

    from tinyml_edu.course import config, lessons

    root = tmp_path_factory.mktemp("course")
    config.init_course(root)
    api = NbGraderAPI(config=config.load_config(root))
    every = [lesson.id for lesson in lessons.list_lessons()]
    board = next((b for b in BOARD_LESSONS if b in every), None)
    released: dict[str, str] = {}
    for lesson in [LESSON] + ([board] if board else []):
        result = api.generate_assignment(lesson, force=True, create=True)
        released[lesson] = "" if result.get("success") else (
            f"{result.get('error')}\n{result.get('log', '')[-2000:]}")
    assert not released[LESSON], f"nbgrader could not release {LESSON}: {released[LESSON]}"

    # One submission, graded: the lesson's solution, handed in by STUDENT.
    source = lessons.get_lesson(LESSON)
    shutil.copytree(source.folder, root / "submitted" / STUDENT / LESSON,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    graded = api.autograde(LESSON, STUDENT, force=True, create=True)
    assert graded.get("success"), f"autograde failed:\n{graded.get('log', '')[-3000:]}"
    with Gradebook(config.load_config(root).CourseDirectory.db_url) as gb:
        submission = gb.find_submission(LESSON, STUDENT)
        score, max_score = float(submission.score), float(submission.max_score)
    notebooks = {lesson: lessons.read_notebook(lessons.get_lesson(lesson).notebook)
                 for lesson in released}
    return Course(root, every, released, board, score=score, max_score=max_score,
                  source_notebooks=notebooks)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Lab:
    base: str
    token: str
    root: Path
    log: Path

    def url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.base}{path}{sep}token={self.token}"

    def shutdown_kernels(self) -> None:
        """End every kernel the server runs (each lesson's kernel holds TensorFlow)."""
        def call(method: str, path: str) -> bytes:
            request = urllib.request.Request(self.base + path, method=method,
                                             headers={"Authorization": f"token {self.token}"})
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.read()

        for kernel in json.loads(call("GET", "/api/kernels")):
            call("DELETE", f"/api/kernels/{kernel['id']}")

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


@pytest.fixture(scope="session")
def lab(course: Course, tmp_path_factory: pytest.TempPathFactory):
    with running_lab(course.root, tmp_path_factory.mktemp("jupyter")) as server:
        yield server


@contextlib.contextmanager
def running_lab(root: Path, private: Path) -> Iterator[Lab]:
    """``jupyter lab`` serving ``root`` on loopback until the block ends; its settings, logs and
    runtime files in ``private``."""
    settings = private / "lab-settings"
    # No news, no update check: the classroom may be offline, and so is CI.
    notification = settings / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    env = dict(os.environ,
               JUPYTER_CONFIG_DIR=str(private / "config"),
               JUPYTER_RUNTIME_DIR=str(private / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(settings),
               JUPYTERLAB_WORKSPACES_DIR=str(private / "workspaces"),
               IPYTHONDIR=str(private / "ipython"),
               TF_CPP_MIN_LOG_LEVEL="2")
    # A kernel that inherits a non-inline backend draws no plots in the browser.
    env.pop("MPLBACKEND", None)
    port, token = _free_port(), secrets.token_hex(16)
    log = private / "jupyterlab.log"
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
           "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}",
           "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--LabApp.extension_manager=readonly"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    server = Lab(f"http://127.0.0.1:{port}", token, root, log)
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while True:
        try:
            with urllib.request.urlopen(server.url("/api/status"), timeout=5) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"JupyterLab did not start:\n{server.log_tail()}")
        time.sleep(1)
    try:
        yield server
    finally:
        proc.terminate()  # the server stops its kernels on SIGTERM
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the server's own session: it and its kernels
            proc.wait()


@pytest.fixture(scope="session")
def playwright_driver():
    """One Playwright for the session: its sync API allows only one running instance per thread,
    so every browser below is launched from this one."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=labui.TIMEOUT_MS)  # its default, 5 s, is short on 2 busy cores
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(chromium: Path, playwright_driver):
    b = playwright_driver.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture(scope="session")
def empty_lab(chromium: Path, tmp_path_factory: pytest.TempPathFactory):
    """JupyterLab on an empty folder, for tests that need no nbgrader course."""
    root = tmp_path_factory.mktemp("lab-root")
    with running_lab(root, tmp_path_factory.mktemp("jupyter-empty")) as server:
        yield server


# Chromium's stand-ins for a microphone (a beep) and for the user allowing it.
FAKE_MEDIA_ARGS = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]


@pytest.fixture(scope="session")
def fake_media_browser(chromium: Path, playwright_driver):
    """A Chromium whose microphone is a fake one that is always allowed."""
    b = playwright_driver.chromium.launch(executable_path=str(chromium),
                                          args=CHROMIUM_ARGS + FAKE_MEDIA_ARGS)
    try:
        yield b
    finally:
        b.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.browser_test_failed = report.failed
    return report


@pytest.fixture()
def page(request: pytest.FixtureRequest, browser, lab: Lab):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(labui.TIMEOUT_MS)
    try:
        yield tab
        if getattr(request.node, "browser_test_failed", False):  # what the page showed then
            labui.shot(tab, f"FAILED-{request.node.name}")
    finally:
        context.close()
        lab.shutdown_kernels()


def pytest_terminal_summary(terminalreporter) -> None:
    if labui.SAVED:
        terminalreporter.section("browser screenshots")
        for path in labui.SAVED:
            terminalreporter.write_line(str(path))
