"""``tinyml-edu course check``: prove every lesson grades as it should, before a class sees it.

For each lesson, in a throw-away course folder (the instructor's gradebook is never touched):

1. check the source notebook is well-formed (:func:`lessons.problems`);
2. release the student version with nbgrader's ``generate_assignment``;
3. autograde two submissions with nbgrader's ``autograde``: the solution notebook itself, which
   must earn every autograded point, and the untouched release, which must earn none and must
   not crash the grader;
4. report the solution's wall time and peak memory (what a student's laptop or Binder's 2 GB pays).

Where the machine allows it (Linux, ``unshare --net``), grading runs with the network cut, so a
lesson that reaches for the internet fails here rather than in a classroom without one.

Each autograde runs in its own process so its peak memory is measured alone. With ``jobs=2``
the solution and the blank are graded side by side, each in its own copy of the course folder
(nbgrader's SQLite gradebook takes one writer): about half the time on 2 cores, but the
solution's wall time then includes the other's load.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tinyml_edu import i18n
from tinyml_edu.course import config, lessons

SOLUTION, BLANK = "solution", "blank"
# Targets from the course plan: a lesson fits a class slot on a 2-core laptop and in Binder.
MAX_WALL_S = 180.0
MAX_RSS_MB = 1536.0


@dataclass
class LessonCheck:
    lesson: str
    max_score: float = 0.0  # autograded points in the notebook
    solution_score: float | None = None
    blank_score: float | None = None
    wall_s: float | None = None  # the solution's autograde, kernel start to saved grades
    peak_rss_mb: float | None = None
    offline: bool = False  # graded in a network namespace with no network
    lang: str = "en"  # the language of the release and solution that were graded
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return dict(asdict(self), ok=self.ok)


@dataclass
class _Run:
    wall_s: float
    peak_rss_mb: float | None
    returncode: int
    output: str


def _run_measured(cmd: list[str], env: dict[str, str], cwd: Path) -> _Run:
    """Run ``cmd``; its wall time and the peak RSS of its largest process (the kernel)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                            cwd=cwd)
    output = proc.stdout.read().decode("utf-8", "replace") if proc.stdout else ""
    if hasattr(os, "wait4"):
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        # ru_maxrss folds in waited-for grandchildren (the kernel): kilobytes on Linux.
        scale = 1 / 1024 if sys.platform != "darwin" else 1 / 1024 / 1024
        peak = usage.ru_maxrss * scale
    else:  # Windows: no rusage; time only
        proc.wait()
        peak = None
    return _Run(time.perf_counter() - start, peak, proc.returncode, output)


# A lesson must run in a classroom with no internet: prove it by grading with no network. A new
# network namespace has only a loopback interface, down; the kernel's ZMQ sockets need it up.
OFFLINE_PREFIX = ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "offline"]


@functools.cache
def offline_available() -> bool:
    """Can this machine run a command with the network cut (root or user namespaces + iproute2)?"""
    if not (shutil.which("unshare") and shutil.which("ip")):
        return False
    probe = subprocess.run([*OFFLINE_PREFIX, "true"], capture_output=True, check=False)
    return probe.returncode == 0


def _autograde_in_child(root: Path, source: Path, lesson: str, student: str,
                        offline: bool, lang: str = i18n.ENGLISH) -> _Run:
    cmd = [sys.executable, "-m", "tinyml_edu.course.check", "--autograde-one",
           str(root), str(source), lesson, student]
    # 3: no TensorFlow C++ log line at all. nbgrader fails a test cell that writes to stderr,
    # and tf.data logs a harmless ERROR line under some model.predict calls.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", MPLBACKEND="Agg")
    env[i18n.LANG_ENV] = lang  # the checks' feedback in the notebook's language
    # nbgrader chdirs into the course and back, and fails if the folder it started in is gone:
    # start in this course's own folder, whatever another check has done to ours.
    return _run_measured([*OFFLINE_PREFIX, *cmd] if offline else cmd, env, cwd=root)


def _autograde_one(root: str, source: str, lesson: str, student: str) -> int:
    """Child process: autograde one submission with nbgrader's API."""
    from nbgrader.apps import NbGraderAPI

    api = NbGraderAPI(config=config.load_config(root, source))
    result = api.autograde(lesson, student, force=True, create=True)
    if not result.get("success"):
        print(result.get("log", ""), result.get("error", ""), sep="\n")
        return 1
    return 0


def _score(root: Path, source: Path, lesson: str, student: str) -> float | None:
    from nbgrader.api import Gradebook, MissingEntry

    db_url = config.load_config(root, source).CourseDirectory.db_url
    with Gradebook(db_url) as gb:
        try:
            return float(gb.find_submission(lesson, student).code_score)
        except MissingEntry:
            return None


def check_lesson(lesson: lessons.Lesson, log: Callable[[str], None] = print,
                 lang: str = i18n.ENGLISH, jobs: int = 1) -> LessonCheck:
    """Release and autograde one lesson as described in the module docstring; with ``lang``,
    the release and the solution are that language's (translated as ``course release --lang``
    does), so a translation that broke a notebook fails here. ``jobs=2`` grades the solution
    and the blank at the same time."""
    from nbgrader.apps import NbGraderAPI

    lang = i18n.check_language(lang)
    result = LessonCheck(lesson.id, offline=offline_available(), lang=lang)
    if not result.offline:
        result.warnings.append("graded with the network on: this machine cannot cut it "
                               "(needs `unshare --net` and `ip`)")
    result.problems += lessons.problems(lesson)
    if not lesson.notebook.exists():
        return result
    result.max_score = lessons.points(lessons.read_notebook(lesson.notebook))[0]
    source = lesson.folder.parent
    scratch = Path(tempfile.mkdtemp(prefix=f"course-check-{lesson.id}-"))
    # One course folder per submission, copied after the release: each has its own gradebook.
    roots = {SOLUTION: scratch / SOLUTION, BLANK: scratch / BLANK}
    roots[SOLUTION].mkdir()  # nbgrader reaches the lessons by a path relative to it
    try:
        api = NbGraderAPI(config=config.load_config(roots[SOLUTION], source))
        released = api.generate_assignment(lesson.id, force=True, create=True)
        if not released.get("success"):
            result.problems.append(f"nbgrader could not release it: {released.get('error')}\n"
                                   f"{released.get('log', '')[-2000:]}")
            return result
        shutil.copytree(roots[SOLUTION], roots[BLANK])
        ignore = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__")
        shutil.copytree(lesson.folder, roots[SOLUTION] / "submitted" / SOLUTION / lesson.id,
                        ignore=ignore)
        shutil.copytree(roots[BLANK] / "release" / lesson.id,
                        roots[BLANK] / "submitted" / BLANK / lesson.id)
        if lang != i18n.ENGLISH:
            _translate_submissions(roots, lesson, lang, result)

        def grade(student: str) -> _Run:
            log(f"  {lesson.id}: autograding the {student} notebook ...")
            return _autograde_in_child(roots[student], source, lesson.id, student,
                                       result.offline, lang)

        with ThreadPoolExecutor(max(1, min(jobs, 2))) as pool:
            runs = dict(zip((SOLUTION, BLANK), pool.map(grade, (SOLUTION, BLANK)), strict=True))
        for student, run in runs.items():
            if run.returncode != 0:
                result.problems.append(f"autograding the {student} notebook failed:\n"
                                       f"{run.output[-3000:]}")
        result.wall_s, result.peak_rss_mb = runs[SOLUTION].wall_s, runs[SOLUTION].peak_rss_mb
        result.solution_score = _score(roots[SOLUTION], source, lesson.id, SOLUTION)
        result.blank_score = _score(roots[BLANK], source, lesson.id, BLANK)
        if result.solution_score is not None and result.solution_score < result.max_score:
            failing = roots[SOLUTION] / "autograded" / SOLUTION / lesson.id
            result.problems.append(
                f"the solution earns {result.solution_score:g} of {result.max_score:g} autograded "
                f"points; see {failing} for the failing cells")
        if result.blank_score:
            result.problems.append(f"a blank release earns {result.blank_score:g} points; "
                                   "a test passes without an answer")
        if result.wall_s is not None and result.wall_s > MAX_WALL_S:
            result.warnings.append(
                f"solution takes {result.wall_s:.0f} s (target ≤ {MAX_WALL_S:g} s)")
        if result.peak_rss_mb is not None and result.peak_rss_mb > MAX_RSS_MB:
            result.warnings.append(
                f"solution peaks at {result.peak_rss_mb:.0f} MB (target ≤ {MAX_RSS_MB:g} MB)")
    finally:
        if result.ok:
            shutil.rmtree(scratch, ignore_errors=True)
    return result


def _translate_submissions(roots: dict[str, Path], lesson: lessons.Lesson, lang: str,
                           result: LessonCheck) -> None:
    """Both submissions in ``lang``: the blank is the translated release, the solution the
    translated source, as a student of that language would hand them in."""
    from tinyml_edu.course import translate

    for student, root in roots.items():
        total, done = translate.translate_folder(root / "submitted" / student / lesson.id,
                                                 lesson, lang)
    if done < total:
        result.warnings.append(f"{total - done} of {total} paragraphs are not translated into "
                               f"{lang} yet (shown in English)")


def check_course(names: list[str] | None = None, log: Callable[[str], None] = print,
                 root: Path | None = None, lang: str = i18n.ENGLISH,
                 jobs: int = 1) -> list[LessonCheck]:
    """Check the named lessons (ids or numbers), or all of them, in ``lang``; ``jobs=2``
    grades each lesson's solution and blank at the same time."""
    chosen = ([lessons.get_lesson(n, root) for n in names] if names
              else lessons.list_lessons(root))
    results = []
    for lesson in chosen:
        log(f"checking {lesson.id}" + (f" in {lang}" if lang != i18n.ENGLISH else ""))
        results.append(check_lesson(lesson, log, lang, jobs))
    return results


def format_table(results: list[LessonCheck]) -> str:
    def num(x: float | None, fmt: str) -> str:
        return "-" if x is None else format(x, fmt)

    rows = [("lesson", "solution", "blank", "wall s", "peak MB", "status")]
    for r in results:
        rows.append((r.lesson, f"{num(r.solution_score, 'g')}/{r.max_score:g}",
                     num(r.blank_score, "g"), num(r.wall_s, ".1f"), num(r.peak_rss_mb, ".0f"),
                     "ok" if r.ok else "FAIL"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    total = sum(r.wall_s or 0 for r in results)
    lines.append(f"total solution wall time: {total:.0f} s")
    for r in results:
        lines += [f"{r.lesson}: {p}" for p in r.problems]
        lines += [f"{r.lesson}: warning: {w}" for w in r.warnings]
    return "\n".join(lines)


if __name__ == "__main__" and len(sys.argv) == 6 and sys.argv[1] == "--autograde-one":
    sys.exit(_autograde_one(*sys.argv[2:]))
