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
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinyml_edu.course import cells, config, redact, sandbox
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


# --- reading what students hand in -----------------------------------------------------------


def _notebooks_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.ipynb")
                  if ".ipynb_checkpoints" not in p.parts and p.is_file())


def find_notebook(folder: Path, notebook: str, known_ids: set[str]) -> tuple[Path | None,
                                                                            list[str]]:
    """The file to grade for ``notebook`` in a submission folder, tolerating a renamed copy."""
    wanted = folder / f"{notebook}.ipynb"
    if wanted.exists():
        return wanted, []
    candidates = _notebooks_in(folder)
    if not candidates:
        return None, [f"no notebook handed in (expected {wanted.name})"]

    def matches(path: Path) -> int:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return 0
        return sum(f'"{gid}"' in text for gid in known_ids)

    best = max(candidates, key=matches)
    others = [p.name for p in candidates if p != best]
    msg = f"graded {best.name} (renamed from {wanted.name})"
    if others:
        msg += f"; also handed in, not graded: {', '.join(others)}"
    return best, [msg]


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    if isinstance(src, list):
        return "".join(str(s) for s in src)
    return src if isinstance(src, str) else ""


def _grade_id(cell: dict[str, Any]) -> str | None:
    meta = cell.get("metadata")
    nbg = meta.get("nbgrader") if isinstance(meta, dict) else None
    return nbg.get("grade_id") if isinstance(nbg, dict) else None


def _similarity(a: str, b: str) -> float:
    import difflib

    return difflib.SequenceMatcher(None, a.strip(), b.strip()).ratio()


def _match_released(cells: list[dict[str, Any]], released: list[dict[str, Any]],
                    missing: list[int]) -> dict[int, tuple[int, str]]:
    """{released index: (submitted index, how)} for the released graded cells in ``missing``,
    among the submitted cells that have no nbgrader metadata: by cell id, then (locked cells)
    by identical source, then by position between cells already matched."""
    free = {i for i, c in enumerate(cells) if _grade_id(c) is None}
    pairs: dict[int, tuple[int, str]] = {}

    def take(r: int, i: int, how: str) -> None:
        pairs[r] = (i, how)
        free.discard(i)

    by_id = {c.get("id"): i for i, c in enumerate(cells) if c.get("id")}
    for r in missing:
        i = by_id.get(released[r].get("id"))
        if i in free and cells[i].get("cell_type") == released[r].get("cell_type"):
            take(r, i, "cell id")
    for r in (r for r in missing if r not in pairs):
        nbg = released[r]["metadata"]["nbgrader"]
        if nbg.get("locked") or (nbg.get("grade") and not nbg.get("solution")):
            same = [i for i in sorted(free) if _source(cells[i]).strip()
                    == _source(released[r]).strip()]
            if same:
                take(r, same[0], "content")
    # Anchors: every released cell whose submitted counterpart is known.
    anchors = {r: i for r, (i, _) in pairs.items()}
    for r, rel in enumerate(released):
        gid = _grade_id(rel)
        found = [i for i, c in enumerate(cells) if gid is not None and _grade_id(c) == gid]
        if found:
            anchors[r] = found[0]
    for r in (r for r in missing if r not in pairs):
        before = max((a for a in anchors if a < r), default=None)
        after = min((a for a in anchors if a > r), default=None)
        low = anchors[before] if before is not None else -1
        high = anchors[after] if after is not None else len(cells)
        kind = released[r].get("cell_type")
        options = [i for i in sorted(free) if low < i < high and cells[i].get("cell_type") == kind]
        if not options:
            continue
        guess = low + (r - before if before is not None else r + 1)
        best = guess if guess in options else max(
            options, key=lambda i: _similarity(_source(cells[i]), _source(released[r])))
        if best == guess or len(options) == 1 or _similarity(
                _source(cells[best]), _source(released[r])) > 0.3:
            take(r, best, "position")
            anchors[r] = best
    return pairs


def recover_metadata(cells: list[dict[str, Any]], released: list[dict[str, Any]],
                     known_ids: set[str]) -> list[str]:
    """Give back the nbgrader metadata an editor dropped (VS Code, Colab and some LMS round
    trips strip cell metadata), in place, by matching cells to the released notebook. Only
    graded cells the submission lacks are looked for; the messages say what was recovered."""
    present = {_grade_id(c) for c in cells}
    missing = [r for r, c in enumerate(released)
               if _grade_id(c) in known_ids and _grade_id(c) not in present]
    if not missing:
        return []
    pairs = _match_released(cells, released, missing)
    for r, (i, _) in pairs.items():
        meta = cells[i].get("metadata") if isinstance(cells[i].get("metadata"), dict) else {}
        cells[i]["metadata"] = {**meta, "nbgrader": copy.deepcopy(
            released[r]["metadata"]["nbgrader"])}
    messages = []
    if pairs:
        how = ", ".join(f"{_grade_id(released[r])} (by {h})"
                        for r, (_, h) in sorted(pairs.items()))
        messages.append(f"nbgrader metadata missing (an editor dropped it); recovered {len(pairs)}"
                        f" of {len(missing)} graded cells from the released notebook: {how}")
    lost = [str(_grade_id(released[r])) for r in missing if r not in pairs]
    if lost:
        messages.append(f"not found in the hand-in, graded as unanswered: {', '.join(lost)}")
    return messages


def read_submission(path: Path | None, known_ids: set[str],
                    released: list[dict[str, Any]] | None = None) -> tuple[Any, list[str]]:
    """A clean nbformat-4 notebook from whatever a student handed in, and what was wrong.

    Cells are rebuilt from their type, source and metadata, so missing, duplicated or changed
    cell ids, old nbformat versions and stray fields never reach nbgrader. Returns ``(None,
    messages)`` when nothing can be read."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_raw_cell

    if path is None:
        return None, []
    raw = path.read_bytes()
    if not raw.strip():
        return None, [f"{path.name} is empty (0 points); ask for the file again"]
    text = raw.decode("utf-8-sig", errors="replace")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        return None, [f"{path.name} is not valid JSON ({err.msg}, line {err.lineno}): "
                      "a damaged save or download; 0 points; ask for the file again"]
    messages: list[str] = []
    major = data.get("nbformat") if isinstance(data, dict) else None
    if not isinstance(data, dict) or ("cells" not in data and "worksheets" not in data):
        return None, [f"{path.name} is JSON but not a notebook; 0 points"]
    if major != 4:
        try:  # nbformat converts v3 worksheets to v4 cells
            data = json.loads(nbformat.writes(nbformat.reads(text, as_version=4)))
            messages.append(f"saved as nbformat {major}; converted to 4")
        except Exception as err:  # noqa: BLE001 (any failure: we say so and grade nothing)
            return None, [f"{path.name}: nbformat {major} could not be converted ({err}); 0 pts"]
    makers = {"code": new_code_cell, "markdown": new_markdown_cell, "raw": new_raw_cell}
    cells = []
    dropped_ids: list[str] = []
    handed_in = [c for c in data.get("cells") or []
                 if isinstance(c, dict) and c.get("cell_type") in makers]
    for cell in handed_in:  # a grade id that is not ours counts as no metadata
        meta = cell.get("metadata")
        if isinstance(meta, dict) and "nbgrader" in meta and _grade_id(cell) not in known_ids:
            dropped_ids.append(str(_grade_id(cell)))
            del meta["nbgrader"]  # the real cell is restored from the gradebook
    if released:
        messages += recover_metadata(handed_in, released, known_ids)
    for cell in handed_in:
        meta = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
        meta = {k: v for k, v in meta.items() if k != "nbgrader"} | (
            {"nbgrader": meta["nbgrader"]} if isinstance(meta.get("nbgrader"), dict) else {})
        cells.append(makers[cell["cell_type"]](_source(cell), metadata=meta))
    if dropped_ids:
        messages.append(f"cells with unknown grade ids ignored: {', '.join(dropped_ids)}")
    meta = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    return new_notebook(cells=cells, metadata=meta), messages


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
            cell.outputs = [nbformat.from_dict(cells._error(NOT_RUN, reason))]
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


def _hidden_paths(paths: list[Path]) -> list[str]:
    """What student code must not see, minus anything the worker itself needs to run."""
    import sys

    needed = [Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.executable)]
    needed.append(Path(sandbox.__file__).resolve().parents[2])
    out = []
    for path in {p.resolve() for p in paths if p.exists()}:
        if not any(n == path or path in n.parents for n in needed):
            out.append(str(path))
    return sorted(out)


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


def _other_copies_of_lessons(source: Path) -> Iterator[Path]:
    """Hidden tests live on in the wheel's copy of the lessons and in git history."""
    yield Path(sandbox.__file__).resolve().parents[1] / "_lessons"
    for folder in (source.resolve(), *source.resolve().parents):
        if (folder / ".git").exists():
            yield folder / ".git"
            yield from _worktree_git_dirs(folder / ".git")
            break


def _worktree_git_dirs(dot_git: Path) -> Iterator[Path]:
    """A git worktree's ``.git`` is a file naming its git folder, whose objects (every version
    of the hidden tests) live in the main repository's ``.git``: hide those folders too."""
    if not dot_git.is_file():
        return
    text = dot_git.read_text(encoding="utf-8", errors="replace").strip()
    if not text.startswith("gitdir:"):
        return
    gitdir = (dot_git.parent / text[len("gitdir:"):].strip()).resolve()
    yield gitdir
    common = gitdir / "commondir"
    if common.is_file():
        yield (gitdir / common.read_text(encoding="utf-8").strip()).resolve()


def _sqlite_dirs(db_url: str) -> Iterator[str]:
    if db_url.startswith("sqlite:///"):
        yield os.path.dirname(db_url[len("sqlite:///"):])


def format_results(results: list[GradeResult], summary: bool = True) -> str:
    lines = []
    for r in results:
        lines.append(f"{r.student:24} {r.score:5g}/{r.max_score:g}  {r.wall_s:5.1f} s")
        lines += [f"    {m}" for m in r.messages]
    if results and summary:
        mean = sum(r.score for r in results) / len(results)
        lines.append(f"{len(results)} submissions graded; mean {mean:.2f}/{results[0].max_score:g}")
    return "\n".join(lines)
