"""A class on one server, for real: JupyterHub with hub/'s configuration, PAM logins of real
Unix accounts, the nbgrader exchange, the course service (formgrader) and a PostgreSQL
gradebook (tests/hubkit.py stands it up and takes it down).

The instructor releases lesson 01 through the course service; three students log in (one in
Chromium), fetch it, work (one solves it, one leaves it blank, one hands in a notebook cut off
mid-file), validate and submit through their own servers' nbgrader handlers; the instructor
collects, autogrades with ``tinyml-edu course autograde`` (the sandboxed parallel grader) as the
grader account, generates and releases feedback; the students fetch it. Then: the scores in
PostgreSQL, and what each student can and cannot open.

Needs root, Debian's postgresql and configurable-http-proxy; skips without them unless
$TINYML_EDU_REQUIRE_HUB is set (.ci/run sets it), then fails.
"""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent / "browser"))  # labui: Chromium's flags
import hubkit  # noqa: E402
import labui  # noqa: E402

from tinyml_edu.course import lessons  # noqa: E402

LESSON = hubkit.LESSON
COURSE = hubkit.COURSE
SERVICE = f"/services/{COURSE}"  # the course service, behind the hub's proxy
FG = f"{SERVICE}/formgrader/api"  # its formgrader's API


@pytest.fixture(scope="module")
def live():
    reason = hubkit.missing()
    if reason is None and not labui.CHROMIUM.exists():
        reason = f"Debian's Chromium is not installed ({labui.CHROMIUM})"
    if reason:
        if os.environ.get(hubkit.REQUIRE_ENV):
            pytest.fail(f"{reason}, and ${hubkit.REQUIRE_ENV} says the live hub test must run")
        pytest.skip(reason)
    with hubkit.live_class(n_students=3) as klass:
        yield klass


def _ok(result: dict, what: str) -> dict:
    assert result.get("success"), f"{what}: {json.dumps(result)[:3000]}"
    return result


def _assignments(live: hubkit.LiveClass, student: hubkit.Account) -> list[dict]:
    got = live.json("GET", f"/user/{student.name}/assignments?course_id={COURSE}",
                    student.token)
    return _ok(got, f"{student.name}'s assignment list")["value"]


def _status(entries: list[dict]) -> set[str]:
    return {a["status"] for a in entries if a["assignment_id"] == LESSON}


def _solved(released: dict, source: dict) -> dict:
    """The released notebook with every answer cell holding the solution's code or text."""
    nb = json.loads(json.dumps(released))
    for index, (_kind, text) in labui.solutions(source).items():
        nb["cells"][index]["source"] = text
    return nb


def _browser_fetch(live: hubkit.LiveClass, student: hubkit.Account) -> None:
    """The student logs in on the hub's login page (PAM), the hub starts their JupyterLab,
    and they fetch the lesson from Nbgrader → Assignment List."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(labui.CHROMIUM),
                                    args=labui.CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
            page.set_default_timeout(labui.TIMEOUT_MS)
            page.goto(f"{live.url}/hub/login")
            page.fill("input[name=username]", student.name)
            page.fill("input[name=password]", student.password)
            page.click("input[type=submit], button[type=submit]")
            # the hub spawns the server and sends the browser to its JupyterLab
            page.wait_for_url(f"**/user/{student.name}/lab**",
                              timeout=hubkit.START_TIMEOUT_S * 1000)
            menu = page.locator(".lm-MenuBar-itemLabel", has_text="Nbgrader")
            menu.wait_for(timeout=120_000)
            labui.shot(page, "hub-01-student-lab")
            menu.click()
            page.locator(".lm-Menu-itemLabel", has_text="Assignment List").click()
            released = page.locator("#released_assignments_list .list_item",
                                    has_text=LESSON)
            released.wait_for()
            labui.shot(page, "hub-02-assignment-list")
            released.locator("button", has_text="Fetch").click()
            page.locator("#fetched_assignments_list .list_item", has_text=LESSON).first.wait_for()
            labui.shot(page, "hub-03-fetched")
            # JupyterLab shows no Formgrader to a student (hub/README.md's TLJH step 2)
            menu.click()
            assert page.locator(".lm-Menu-itemLabel", has_text="Formgrader").count() == 0
            page.keyboard.press("Escape")
        finally:
            browser.close()


def _denied(live: hubkit.LiveClass, user: str, path: Path, action: str = "read") -> str:
    """What happens when ``user`` tries to list or read ``path``: "denied" or "allowed"."""
    op = {"read": f"open({str(path)!r}).read(1)", "list": f"os.listdir({str(path)!r})"}[action]
    code = (f"import os\ntry:\n    {op}\n    print('allowed')\n"
            "except PermissionError:\n    print('denied')\n")
    return live.python_as(user, code).stdout.strip()


@pytest.mark.slow
def test_a_class_on_one_server(live: hubkit.LiveClass):
    started = time.monotonic()
    solver, blank, broken = live.students
    ins = live.instructor
    for account in (ins, *live.students):
        live.login_token(account)  # name and password, checked by PAM
    # the grader account is a hub user (nbgrader's plugin needs it) nobody can log in as,
    # even with its Unix password
    r = requests.post(f"{live.url}/hub/api/users/{live.grader.name}/tokens", timeout=60,
                      json={"auth": {"username": live.grader.name,
                                     "password": live.grader.password}})
    assert r.status_code == 403 and "refused a login as" in live.log_tail(), r.text[:300]

    # -- the course service: instructors in, students out; its CSP allows the iframe ------
    r = live.api("GET", f"{FG}/status", ins.token)
    assert r.status_code == 200 and r.json() == {"status": True}, r.text[:500]
    assert r.headers.get("Content-Security-Policy") == "frame-ancestors 'self'"
    assert live.api("GET", f"{FG}/status", solver.token).status_code == 403

    # -- the instructor enrols the students in the course service's terminal: nbgrader's
    #    JupyterHub plugin adds them to the gradebook and to nbgrader-tinyml-edu (the
    #    formgrader's "Add student" does only the first); then generates and releases -------
    names = " ".join(s.name for s in live.students)
    status, shown = live.terminal(SERVICE, ins.token, f"for s in {names}; do nbgrader db "
                                  "student add $s --last-name=Live || break; done")
    assert status == 0, shown
    group = live.json("GET", f"/hub/api/groups/nbgrader-{COURSE}")
    assert {s.name for s in live.students} <= set(group["users"]), group
    _ok(live.json("POST", f"{FG}/assignment/{LESSON}/assign", ins.token), "generate")
    _ok(live.json("POST", f"{FG}/assignment/{LESSON}/release", ins.token), "release")
    assert (live.exchange / COURSE / "outbound" / LESSON / f"{LESSON}.ipynb").is_file()

    # -- students: the browser one logs in and fetches; the others through the API --------
    for s in (blank, broken):
        live.start_server(s)
    # its own thread: Playwright's sync API allows one instance per thread, and
    # tests/browser's session-wide one may still be running in this one
    with ThreadPoolExecutor(1) as browser_thread:
        browser_thread.submit(_browser_fetch, live, solver).result()
    for s in (blank, broken):
        live.wait_server(s)
        assert _status(_assignments(live, s)) == {"released"}
        fetched = live.json("POST", f"/user/{s.name}/assignments/fetch", s.token,
                            data={"course_id": COURSE, "assignment_id": LESSON})
        assert _status(_ok(fetched, f"{s.name} fetch")["value"]) == {"fetched"}
    entry = next(a for a in _assignments(live, solver) if a["assignment_id"] == LESSON)
    assert entry["status"] == "fetched"
    nb_path = next(n["path"] for n in entry["notebooks"] if n["notebook_id"] == LESSON)
    idle = {s.name: hubkit.usage(live.processes(s.name)) for s in live.students}

    # -- work: one solves it, one leaves it blank, one hands in a notebook cut off ------------
    contents = f"api/contents/{nb_path}"
    released = live.json("GET", f"/user/{solver.name}/{contents}", solver.token)["content"]
    source = lessons.read_notebook(lessons.get_lesson(LESSON, hubkit.REPO / "lessons").notebook)
    live.json("PUT", f"/user/{solver.name}/{contents}", solver.token,
              json={"type": "notebook", "format": "json", "content": _solved(released, source)})
    cut = json.dumps(released)[:5000]  # the first 5 kB of the file: not JSON any more
    live.json("PUT", f"/user/{broken.name}/{contents}", broken.token,
              json={"type": "file", "format": "text", "content": cut})

    # -- validate (each server runs the notebook in a kernel of its own), then submit -------
    def validate(s: hubkit.Account) -> dict:
        return live.json("POST", f"/user/{s.name}/assignments/validate", s.token,
                         data={"path": nb_path})

    with ThreadPoolExecutor(3) as pool:
        checked = dict(zip(("solver", "blank", "broken"),
                           pool.map(validate, (solver, blank, broken)), strict=True))
    assert checked["solver"]["success"] and not checked["solver"]["value"].get("failed"), \
        checked["solver"]
    assert checked["blank"]["success"] and checked["blank"]["value"].get("failed"), \
        checked["blank"]
    assert not checked["broken"]["success"], checked["broken"]
    for s in live.students:
        submitted = live.json("POST", f"/user/{s.name}/assignments/submit", s.token,
                              data={"course_id": COURSE, "assignment_id": LESSON})
        assert "submitted" in _status(_ok(submitted, f"{s.name} submit")["value"])

    # -- the instructor collects, autogrades (sandboxed, in parallel), gives feedback --------
    _ok(live.json("POST", f"{FG}/assignment/{LESSON}/collect", ins.token), "collect")
    for s in live.students:
        assert (live.course / "submitted" / s.name / LESSON / f"{LESSON}.ipynb").is_file()
    # the project's sandboxed parallel grader, typed in the course service's terminal
    status, shown = live.terminal(SERVICE, ins.token, f"tinyml-edu course autograde {LESSON} "
                                  "--workers 2 --json > autograde.json")
    assert status == 0, shown
    # the grader's account is not root: the sandbox is built in a user namespace
    assert "sandboxed: no network, private PID and mount namespaces" in shown, shown[-3000:]
    results = {r["student"]: r for r in json.loads((live.course / "autograde.json").read_text())}
    _ok(live.json("POST", f"{FG}/assignment/{LESSON}/generate_feedback", ins.token),
        "generate_feedback")
    _ok(live.json("POST", f"{FG}/assignment/{LESSON}/release_feedback", ins.token),
        "release_feedback")

    # -- students fetch their feedback ---------------------------------------------------------
    for s in live.students:
        after = live.json("POST", f"/user/{s.name}/assignments/fetch_feedback", s.token,
                          data={"course_id": COURSE, "assignment_id": LESSON})
        mine = [sub for a in _ok(after, f"{s.name} fetch_feedback")["value"]
                if a["status"] == "submitted" for sub in a["submissions"]]
        paths = [sub["local_feedback_path"] for sub in mine if sub.get("has_local_feedback")]
        assert paths, f"{s.name} got no feedback: {mine}"
        html = live.api("GET", f"/user/{s.name}/api/contents/{paths[0]}/{LESSON}.html",
                        s.token)
        assert html.status_code == 200 and "Score" in html.json()["content"], html.text[:300]

    # -- the gradebook is PostgreSQL's, and holds the right scores ----------------------------
    auto_points = lessons.points(source)[0]
    rows = live.pg.psql(
        "SELECT sa.student_id, SUM(COALESCE(g.manual_score, g.auto_score, 0)), "
        "SUM(gc.max_score) FROM grade g "
        "JOIN grade_cells gc ON gc.id = g.cell_id "
        "JOIN submitted_notebook sn ON sn.id = g.notebook_id "
        "JOIN submitted_assignment sa ON sa.id = sn.assignment_id "
        "JOIN assignment a ON a.id = sa.assignment_id "
        f"WHERE a.name = '{LESSON}' AND gc.cell_type = 'code' GROUP BY sa.student_id")
    scores = {student: (float(score), float(most)) for student, score, most in rows}
    assert scores == {solver.name: (auto_points, auto_points), blank.name: (0.0, auto_points),
                      broken.name: (0.0, auto_points)}, (scores, results)
    assert results[solver.name]["score"] == auto_points, results
    # the formgrader (the course service) reads the same database
    listed = live.json("GET", f"{FG}/submissions/{LESSON}", ins.token)
    assert {s["student"]: s["code_score"] for s in listed} == \
        {student: got for student, (got, _most) in scores.items()}, listed
    assert any("not valid JSON" in m for m in results[broken.name]["messages"]), results

    # -- who can read what ------------------------------------------------------------------
    other_nb = blank.home / nb_path
    assert other_nb.is_file()
    assert _denied(live, solver.name, solver.home / nb_path) == "allowed"  # the probe works
    assert _denied(live, solver.name, other_nb) == "denied"
    assert _denied(live, solver.name, blank.home, "list") == "denied"
    assert _denied(live, solver.name, live.course, "list") == "denied"
    assert _denied(live, solver.name, live.course / "nbgrader_config.py") == "denied"
    assert _denied(live, solver.name, live.grader.home / "lessons", "list") == "denied"
    inbound = live.exchange / COURSE / "inbound"
    assert _denied(live, solver.name, inbound, "list") == "denied"
    assert _denied(live, solver.name, live.exchange / COURSE / "feedback", "list") == "denied"
    # nbgrader's submissions are world-readable by design, hidden by an unguessable name
    theirs = next(p for p in inbound.iterdir() if p.name.startswith(f"{blank.name}+"))
    assert len(theirs.name.rsplit("+", 1)[1]) >= 12, theirs.name
    # the gradebook's database: only the grader's account gets in as the grader's role
    # (peer authentication on the local socket)
    as_student = live.as_user(solver.name, [
        str(live.pg.bindir / "psql"), "-X", "-h", str(live.pg.socket_dir), "-p",
        str(live.pg.port), "-U", live.grader.name, "-d", live.pg.database, "-c", "SELECT 1"],
        check=False)
    assert as_student.returncode != 0 and "Peer authentication failed" in as_student.stderr, \
        as_student.stderr

    wall = time.monotonic() - started
    print(f"\nlive class: {wall:.0f} s; scores {scores}; idle servers (MB): "
          + ", ".join(f"{u}: {m['rss_mb']:.0f} RSS / {m['pss_mb']:.0f} PSS"
                      for u, m in idle.items()))
    for student, result in results.items():
        print(f"autograde {student}: {result['score']:g}/{result['max_score']:g} in "
              f"{result['wall_s']:.0f} s; {'; '.join(result['messages'])[:300]}")
