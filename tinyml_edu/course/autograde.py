"""``tinyml-edu course autograde``: every submission of a lesson, in parallel, each in a sandbox.

nbgrader's own ``autograde`` does two passes per notebook in one process: *sanitize* (clear
outputs, deduplicate ids, overwrite the kernelspec, restore the graded cells from the gradebook,
check the metadata) and *autograde* (execute, then ignore noise, limit outputs, save grades,
late penalties). We run the same nbgrader preprocessors, split three ways:

1. here, serially: read the submission tolerantly (empty, corrupt, renamed, old nbformat,
   mangled metadata) and sanitize it;
2. in worker processes, in parallel: only the execution, sandboxed (:mod:`.sandbox`), with wall,
   CPU and memory limits; results stream back cell by cell, so a submission killed half way keeps
   the points its finished cells earned;
3. here, serially (the gradebook, SQLite by default, takes one writer): the autograde pass's other
   preprocessors, then ``autograded/<student>/<lesson>/``.

Test cells that never ran (the run was killed, or the notebook was unreadable) get an error output,
so they earn nothing: nbgrader would otherwise give an unexecuted test cell full points.
"""

from __future__ import annotations

import copy
import json
import os
import selectors
import shutil
import signal
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinyml_edu.course import config, redact, sandbox
from tinyml_edu.course.cells import _error
from tinyml_edu.course.handin import find_notebook, read_submission
from tinyml_edu.course.handin import recover_metadata as recover_metadata  # re-exported
from tinyml_edu.course.isolation import _hidden_paths, _other_copies_of_lessons, _sqlite_dirs
from tinyml_edu.errors import InputError

DEFAULT_TIMEOUT_S = 900.0  # whole submission, wall clock (lesson 01: ~15 s)
DEFAULT_MEMORY_MB = 4096.0  # address space: TensorFlow alone maps ~1.8 GB
NOT_RUN = "NotRun"


@dataclass
class GradeResult:
    student: str
    lesson: str
    notebook: str
    score: float = 0.0  # autograded points earned (nbgrader's code score)
    max_score: float = 0.0
    messages: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class _Job:
    student: str
    notebook: str
    nb: Any  # the sanitized notebook (holds hidden tests: never written where students run)
    resources: dict[str, Any]
    submitted: Path  # submitted/<student>/<lesson>/
    runnable: bool
    messages: list[str]
    workdir: Path | None = None
    home: Path | None = None


@dataclass
class _Run:
    cells: dict[int, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)  # restarts, stuck kernels
    killed: str = ""  # why the parent killed it, if it did
    finished: bool = False
    log_tail: str = ""
    wall_s: float = 0.0


# --- the three steps -------------------------------------------------------------------------


def _preprocess(classes: list[Any], nb: Any, resources: dict[str, Any], cfg: Any) -> Any:
    for cls in classes:  # calling honours each preprocessor's `enabled`, as nbgrader's exporter
        nb, resources = cls(config=cfg)(nb, resources)
        # DeduplicateIds leaves `nbgrader: {}` on the copies it demotes, which OverwriteCells
        # then fails on (KeyError 'grade_id'): a duplicated cell is an ordinary cell.
        for cell in nb.cells:
            if cell.metadata.get("nbgrader", None) == {}:
                del cell.metadata["nbgrader"]
    return nb


def _steps(cfg: Any, name: str) -> list[Any]:
    """nbgrader's Autograde preprocessor list ``name``, as the course configures it."""
    from nbgrader.converters import Autograde

    return list(cfg.Autograde.get(name, Autograde.class_traits()[name].default()))


def _sanitize(nb: Any, resources: dict[str, Any], cfg: Any) -> Any:
    return _preprocess(_steps(cfg, "sanitize_preprocessors"), nb, resources, cfg)


def _finish(nb: Any, resources: dict[str, Any], cfg: Any) -> Any:
    from nbgrader.preprocessors import Execute

    after = [p for p in _steps(cfg, "autograde_preprocessors") if p is not Execute]
    return _preprocess(after, nb, resources, cfg)


def _prepare(cfg: Any, coursedir: Any, gb: Any, lesson: str, notebook: str, student: str,
             known_ids: set[str]) -> _Job:
    import nbformat

    submitted = Path(coursedir.format_path(coursedir.submitted_directory, student, lesson))
    gb.update_or_create_student(student)
    timestamp = coursedir.get_existing_timestamp(str(submitted))
    gb.update_or_create_submission(lesson, student, **({"timestamp": timestamp}
                                                       if timestamp else {}))
    path, messages = find_notebook(submitted, notebook, known_ids)
    released = Path(coursedir.format_path(coursedir.release_directory, ".", lesson),
                    f"{notebook}.ipynb")
    released_cells = (json.loads(released.read_text(encoding="utf-8")).get("cells", [])
                      if released.exists() else None)
    nb, read_msgs = read_submission(path, known_ids, released_cells)
    messages += read_msgs
    resources = {"unique_key": notebook, "output_files_dir": f"{notebook}_files",
                 "metadata": {"path": str(submitted)},
                 "nbgrader": {"student": student, "assignment": lesson, "notebook": notebook,
                              "db_url": coursedir.db_url}}
    # The released notebook stands in for one that cannot be read: every graded cell is there,
    # unanswered, so the gradebook gets a complete row of zeros.
    for attempt in ("as handed in", "without its nbgrader metadata", "as a blank notebook"):
        blank = nb is None or attempt == "as a blank notebook"
        if blank:
            candidate = (nbformat.read(str(released), as_version=4) if released.exists()
                         else nbformat.v4.new_notebook())
        else:
            candidate = copy.deepcopy(nb)
        if attempt == "without its nbgrader metadata":
            for cell in candidate.cells:
                cell.metadata.pop("nbgrader", None)
        try:
            return _Job(student, notebook, _sanitize(candidate, resources, cfg), resources,
                        submitted, not blank, messages)
        except Exception as err:  # noqa: BLE001 (nbgrader raises plain Exceptions on bad cells)
            if blank:
                raise  # even the release fails: the gradebook itself is wrong
            messages.append(f"nbgrader rejected it {attempt} ({err}); retrying")
    raise AssertionError("unreachable")


def _setup_workdir(job: _Job, scratch: Path, source: Path, ignore: list[str]) -> None:
    """The submission's private working copy: the lesson's files and the student's notebook."""
    from nbgrader.utils import find_all_files

    base = Path(tempfile.mkdtemp(prefix="s-", dir=scratch))
    job.workdir, job.home = base / "work", base / "home"
    job.workdir.mkdir()
    for sub in ("", "tmp", ".ipython", ".matplotlib"):
        (job.home / sub).mkdir(parents=True, exist_ok=True)
    for name in find_all_files(str(source), ignore + ["*.ipynb"]):
        dest = job.workdir / os.path.relpath(name, source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(name, dest)
    own = job.submitted / f"{job.notebook}.ipynb"
    if own.exists():  # the student's own file (no hidden tests), for code that opens it
        shutil.copy(own, job.workdir / own.name)


def _execute(job: _Job, server: sandbox.ForkServer, hide: list[str], limits: dict[str, float],
             log_dir: Path) -> _Run:
    """Run one prepared notebook in a sandboxed worker; collect what it reports."""
    run = _Run()
    start = time.perf_counter()
    spec = {"workdir": str(job.workdir), "home": str(job.home), "hide": hide,
            "log": str(log_dir / f"{job.student}.{job.notebook}.log"),
            "cell_timeout": int(limits["cell_timeout"]), "cpu_s": limits["timeout"],
            "memory_mb": limits["memory_mb"], "stuck_after_s": limits["stuck_after_s"]}
    pid, read_fd = server.start(spec, job.nb)
    kernel_pid = None
    try:
        deadline = start + limits["timeout"]
        buffer = b""
        with selectors.DefaultSelector() as sel:
            sel.register(read_fd, selectors.EVENT_READ)
            while True:
                left = deadline - time.perf_counter()
                if left <= 0:
                    run.killed = f"stopped after {limits['timeout']:g} s (the time limit)"
                    break
                if not sel.select(timeout=min(left, 1.0)):
                    continue
                chunk = os.read(read_fd, 1 << 16)
                if not chunk:
                    break  # the worker has exited
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    msg = json.loads(line)
                    if "event" in msg:  # before "cell": events name a cell too
                        run.events.append(msg)
                    elif "cell" in msg:
                        run.cells[msg["cell"]] = msg
                    elif "note" in msg:
                        run.notes.append(msg["note"])
                    elif "kernel_pid" in msg:
                        kernel_pid = msg["kernel_pid"]
                    elif msg.get("done"):
                        run.finished = True
    finally:
        os.close(read_fd)
        if run.finished:  # a clean exit is imminent; let it happen (its CPU time is counted)
            _wait_group_gone(pid, 2.0)
        _kill_group(pid)  # whatever is left of it: the kernel dies with its PID namespace
        if kernel_pid and not server.isolation.pid:  # else the kernel has its own session
            _kill_group(kernel_pid)
    run.wall_s = time.perf_counter() - start
    if not run.finished:
        log = Path(spec["log"])
        if log.exists():
            run.log_tail = log.read_text(encoding="utf-8", errors="replace")[-1500:]
    return run


def _wait_group_gone(pgid: int, seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.02)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _merge(job: _Job, run: _Run | None, reason: str) -> list[str]:
    """Put the worker's outputs into the prepared notebook; error outputs on test cells that
    never ran. Messages about what went wrong, per cell."""
    import nbformat
    from nbgrader import utils

    messages: list[str] = []
    not_run: list[str] = []
    for index, cell in enumerate(job.nb.cells):
        if cell.cell_type != "code":
            continue
        gid = _cell_name(job, index)
        result = run.cells.get(index) if run else None
        if result is not None:
            cell.outputs = [nbformat.from_dict(o) for o in result["outputs"]]
            cell.execution_count = result.get("count")
            for out in cell.outputs:
                if out.get("ename") == "DeadKernelError":
                    messages.append(f"{gid}: the kernel died (sys.exit, os._exit, a crash or "
                                    "the memory/CPU limit)")
                elif out.get("ename") == "KernelStuck":
                    messages.append(f"{gid}: 0 points for it, the kernel got stuck twice")
                elif out.get("ename") == "CellTimeoutError":
                    messages.append(f"{gid}: stopped after the cell time limit")
                elif out.get("ename") == "MemoryError":
                    messages.append(f"{gid}: ran out of memory (the memory limit)")
        elif utils.is_grade(cell) and not utils.is_solution(cell):
            cell.outputs = [nbformat.from_dict(_error(NOT_RUN, reason))]
            not_run.append(gid)
    if not_run:
        messages.append(f"not run, 0 points: {', '.join(not_run)} ({reason})")
    return messages


def _cell_name(job: _Job, index: int) -> str:
    cells = job.nb.cells
    meta = cells[index].metadata.get("nbgrader", {}) if 0 <= index < len(cells) else {}
    return meta.get("grade_id") or f"cell {index + 1}"


def describe_events(job: _Job, events: list[dict[str, Any]]) -> list[str]:
    """The worker's restarts and stuck kernels, in words, by grade id."""
    out = []
    for ev in events:
        kind = ev.get("event")
        if kind == "replay":
            out.append(f"kernel restarted: re-ran the {ev['cells']} code cell(s) before "
                       f"{_cell_name(job, ev['before'])} (not those that had stopped the "
                       "kernel) and went on from there")
        elif kind == "replay_failed":
            out.append(f"{_cell_name(job, ev['cell'])} stopped the kernel again when re-run "
                       f"({ev['why']}); skipped from then on")
        elif kind == "stuck" and not ev.get("final"):
            out.append(f"{_cell_name(job, ev['cell'])}: the kernel {ev['why']}; restarted it "
                       "and ran the cell again")
        elif kind == "stuck":
            out.append(f"STUCK KERNEL on {_cell_name(job, ev['cell'])}, twice: the kernel "
                       f"{ev['why']}; the cell got 0 points; re-grade {job.student} once the "
                       "grading machine is fixed (ipykernel >= 7.4 avoids a known lost message)")
    return out


def _save(job: _Job, cfg: Any, coursedir: Any, gb_url: str, course_id: str) -> GradeResult:
    import nbformat
    from nbgrader.api import Gradebook

    nb = _finish(job.nb, job.resources, cfg)  # the gradebook has the scores now
    redact.redact_outputs(nb.cells)  # what a student may get back shows no hidden test
    lesson = job.resources["nbgrader"]["assignment"]
    out_dir = Path(coursedir.format_path(coursedir.autograded_directory, job.student, lesson))
    if out_dir.exists():
        shutil.rmtree(out_dir)  # derived output only; submitted/ is never touched
    ignore = shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints", *coursedir.ignore)
    if job.submitted.is_dir():
        shutil.copytree(job.submitted, out_dir, ignore=ignore)
    out_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(out_dir / f"{job.notebook}.ipynb"))
    with Gradebook(gb_url, course_id) as gb:
        sub = gb.find_submission_notebook(job.notebook, lesson, job.student)
        return GradeResult(job.student, lesson, job.notebook, float(sub.code_score or 0),
                           float(sub.max_code_score or 0), job.messages)


# --- the command -----------------------------------------------------------------------------


def submitted_students(course: Path, lesson: str) -> list[str]:
    from nbgrader.coursedir import CourseDirectory

    coursedir = CourseDirectory(config=config.load_config(course))
    root = Path(coursedir.root) / coursedir.submitted_directory
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / lesson).is_dir())


def autograde(course: Path | str, lesson: str, students: list[str] | None = None,
              workers: int = 2, timeout: float = DEFAULT_TIMEOUT_S,
              cell_timeout: float | None = None, memory_mb: float = DEFAULT_MEMORY_MB,
              progress: bool = True, log: Callable[[str], None] = print,
              stuck_after_s: float = sandbox.STUCK_AFTER_S) -> list[GradeResult]:
    """Autograde every submission of ``lesson`` (or only ``students``) in ``course``.

    ``timeout`` bounds each submission's wall and CPU time; a single cell stops after
    ``cell_timeout`` (default: the course's ``Execute.timeout``, at most ``timeout``), and the
    kernel's address space is limited to ``memory_mb``. A kernel idle without answering for
    ``stuck_after_s`` is restarted and the cell retried once, then reported by student name.
    Each result is reported as it comes (progress bar, ``logs/autograde-<lesson>.log``)."""
    from nbgrader.api import Gradebook, MissingEntry
    from nbgrader.coursedir import CourseDirectory
    from tqdm import tqdm

    course = Path(course).resolve()
    cfg = config.load_config(course)
    coursedir = CourseDirectory(config=cfg)
    db_url, course_id = coursedir.db_url, coursedir.course_id
    source = Path(coursedir.format_path(coursedir.source_directory, ".", lesson))
    chosen = students if students is not None else submitted_students(course, lesson)
    if not chosen:
        raise InputError(f"no submissions of {lesson} in "
                         f"{course / coursedir.submitted_directory}; run `tinyml-edu course "
                         "collect SOURCE` first")
    cell_limit = min(float(cell_timeout or cfg.Execute.get("timeout", config.CELL_TIMEOUT_S)),
                     timeout)
    limits = {"timeout": timeout, "cell_timeout": cell_limit, "memory_mb": memory_mb,
              "stuck_after_s": stuck_after_s}

    with Gradebook(db_url, course_id) as gb:
        try:
            assignment = gb.find_assignment(lesson)
        except MissingEntry:
            raise InputError(f"{lesson} is not in the gradebook; run `tinyml-edu course release "
                             f"{lesson}` first") from None
        notebooks = {nb.name: {c.name for c in nb.source_cells} | {c.name for c in nb.grade_cells}
                     for nb in assignment.notebooks}

    scratch = Path(tempfile.mkdtemp(prefix="tinyml-edu-grade-"))
    hide = _hidden_paths([course, source.parent, scratch, *map(Path, _sqlite_dirs(db_url)),
                          *_other_copies_of_lessons(source.parent)])
    results: list[GradeResult] = []
    # The fork server imports while the first notebooks are prepared.
    starting = ThreadPoolExecutor(1)
    server_future = starting.submit(sandbox.ForkServer, scratch / "fork-server.log")
    server: sandbox.ForkServer | None = None
    bar = tqdm(total=len(chosen) * len(notebooks), desc=f"autograde {lesson}",
               unit="notebook", disable=not progress, file=sys.stderr)
    log_path = course / "logs" / f"autograde-{lesson}.log"
    log_path.parent.mkdir(exist_ok=True)
    instructor_log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 (closed below)
    instructor_log.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} autograde {lesson}: "
                         f"{len(chosen)} student(s), limits {limits}\n")

    def finish(job: _Job, run: _Run | None) -> None:
        if run is None:
            job.messages += _merge(job, None, "the notebook could not be read")
        else:
            reason = run.killed or ("the worker stopped early" if not run.finished
                                    else "the kernel could not run it")
            job.messages += run.notes + describe_events(job, run.events) + _merge(job, run,
                                                                                  reason)
            if run.killed:
                job.messages.append(run.killed)
            elif not run.finished and run.log_tail.strip():
                job.messages.append(f"worker output: {run.log_tail.strip()[-500:]}")
        result = _save(job, cfg, coursedir, db_url, course_id)
        result.wall_s = run.wall_s if run else 0.0
        report(result)

    def report(result: GradeResult) -> None:
        """Each submission as soon as it is graded: the bar, a line, the instructor's log."""
        results.append(result)
        instructor_log.write(format_results([result], summary=False) + "\n")
        instructor_log.flush()
        for message in result.messages:
            if message.startswith("STUCK KERNEL"):
                log(f"{result.student}: {message}")
        if progress:
            bar.write(f"{result.student}: {result.score:g}/{result.max_score:g} "
                      f"({result.wall_s:.1f} s)" + (f", {len(result.messages)} note(s)"
                                                   if result.messages else ""),
                      file=sys.stderr)
        bar.update()

    def collect(futures: dict[Any, _Job], block: bool) -> None:
        # as_completed yields each as it finishes: never wait for the whole class.
        done = as_completed(list(futures)) if block else [f for f in list(futures) if f.done()]
        for future in done:
            job = futures.pop(future)
            try:
                run = future.result()
            except Exception as err:  # noqa: BLE001 (a grader bug must not stop the class)
                run = _Run(notes=[f"grader error: {type(err).__name__}: {err}"])
            finish(job, run)

    try:
        with warnings.catch_warnings(), ThreadPoolExecutor(max(1, workers)) as pool:
            # nbgrader's gradebook warns about its own session handling on every submission.
            warnings.filterwarnings("ignore", message=".*not in session.*")
            futures: dict[Any, _Job] = {}
            for student in chosen:
                for notebook, known in notebooks.items():
                    # Serial gradebook work interleaves with the workers: prepare the next
                    # notebook and save finished ones while the others run.
                    try:
                        with Gradebook(db_url, course_id) as gb:
                            job = _prepare(cfg, coursedir, gb, lesson, notebook, student, known)
                    except Exception as err:  # noqa: BLE001 (one student, not the class)
                        report(GradeResult(student, lesson, notebook, messages=[
                            f"could not be graded: {type(err).__name__}: {err}"]))
                        continue
                    if not job.runnable:
                        finish(job, None)
                        continue
                    _setup_workdir(job, scratch, source, list(coursedir.ignore))
                    if server is None:
                        server = server_future.result()
                        log(server.isolation.note)
                    futures[pool.submit(_execute, job, server, hide, limits, scratch)] = job
                    collect(futures, block=False)
            collect(futures, block=True)
        bar.close()
    finally:
        instructor_log.close()
        starting.shutdown()
        if server is None and server_future.exception() is None:
            server = server_future.result()
        if server is not None:
            server.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return sorted(results, key=lambda r: (r.student, r.notebook))


def format_results(results: list[GradeResult], summary: bool = True) -> str:
    lines = []
    for r in results:
        lines.append(f"{r.student:24} {r.score:5g}/{r.max_score:g}  {r.wall_s:5.1f} s")
        lines += [f"    {m}" for m in r.messages]
    if results and summary:
        mean = sum(r.score for r in results) / len(results)
        lines.append(f"{len(results)} submissions graded; mean {mean:.2f}/{results[0].max_score:g}")
    return "\n".join(lines)
