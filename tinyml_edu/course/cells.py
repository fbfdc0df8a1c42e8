"""Running a notebook's cells in a kernel that may die, hang or lose a message.

A worker of :mod:`.sandbox` hands the notebook to :func:`_run_cells`, one kernel at a time: when
a cell kills its kernel or times out, the next kernel re-runs the cells before it (not the one
that failed) and the run goes on, so a notebook loses only what depends on that cell. A kernel
that sits idle without answering (:class:`_Watchdog`) is killed within seconds and the cell
retried once in a new kernel; a second time it is reported as stuck. Each cell's outputs, cut to
a size the gradebook can hold, are sent back as soon as it has run.

:mod:`.sandbox` imports from here, never the reverse.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any

# Cell outputs larger than this are cut: a student printing megabytes must not flood the pipe,
# the gradebook or the feedback HTML.
MAX_OUTPUT_CHARS = 100_000
MAX_FILE_MB = 512  # no file a kernel writes grows beyond this (a student filling the disk)


def _limit_kernel(pid: int, cpu_s: float | None, memory_mb: float | None) -> None:
    import resource

    if not hasattr(resource, "prlimit"):  # macOS: no limits on another process
        return
    if cpu_s:
        resource.prlimit(pid, resource.RLIMIT_CPU, (int(cpu_s), int(cpu_s) + 5))
    if memory_mb:
        limit = int(memory_mb * 1024 * 1024)
        resource.prlimit(pid, resource.RLIMIT_AS, (limit, limit))
    size = MAX_FILE_MB * 1024 * 1024
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (size, size))


def _cut(outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for out in outputs:
        text = out.get("text")
        if isinstance(text, str) and len(text) > MAX_OUTPUT_CHARS:
            out["text"] = (text[:MAX_OUTPUT_CHARS] + f"\n... [output cut: {len(text):,} characters"
                           " printed]\n")
    return outputs


def _error(ename: str, evalue: str) -> dict[str, Any]:
    return {"output_type": "error", "ename": ename, "evalue": evalue,
            "traceback": [f"{ename}: {evalue}"]}


# Seconds a kernel may sit idle without answering before the grader calls it stuck (see
# _Watchdog). A working kernel answers within milliseconds of going idle.
STUCK_AFTER_S = 10.0


def _cpu_seconds(pid: int) -> float | None:
    try:
        import psutil  # ipykernel's own dependency

        times = psutil.Process(pid).cpu_times()
        return times.user + times.system
    except Exception:  # noqa: BLE001 (no psutil, or the process is gone: no CPU evidence)
        return None


class _Watchdog:
    """Tells a kernel that lost a message from one that is working, in seconds.

    ipykernel answers an ``execute_request`` with ``busy`` on iopub at once, then the
    ``execute_reply`` on shell, then ``idle``. Stuck means one of:

    - ``idle`` came but the reply did not, for ``grace`` seconds (a lost reply);
    - nothing came at all for ``grace`` seconds while the kernel used no CPU (a request
      the kernel never read: ipykernel 7.0-7.3 can strand one on its shell socket when it
      arrives while a reply is being sent, and then sits idle until the cell timeout);
    - the heartbeat stopped answering for ``grace`` seconds (a frozen process).

    A student's ``time.sleep`` is none of these: ``busy`` came and ``idle`` did not. A stuck
    kernel is killed, so nbclient raises ``DeadKernelError`` within a second; ``reason``
    then says it was the grader's doing.
    """

    def __init__(self, ep: Any, grace: float) -> None:
        self.grace = grace
        self.lock = threading.Lock()
        self.pid: int | None = None
        self.armed_at = self.busy_at = self.idle_at = 0.0
        self.cpu_at_arm: float | None = None
        self.hb_lost_at = 0.0
        self.reason = ""
        self.ep = ep
        original = ep.process_message

        def watched(msg: dict[str, Any], cell: Any, index: int) -> Any:
            self._saw(msg)
            return original(msg, cell, index)

        ep.process_message = watched  # nbclient calls it for each iopub message of the cell
        threading.Thread(target=self._watch, daemon=True, name="kernel-watchdog").start()

    def _saw(self, msg: dict[str, Any]) -> None:
        now = time.monotonic()
        with self.lock:
            self.busy_at = self.busy_at or now
            if (msg.get("msg_type") == "status"
                    and msg.get("content", {}).get("execution_state") == "idle"):
                self.idle_at = now

    def arm(self, pid: int | None) -> None:
        with self.lock:
            self.pid, self.reason = pid, ""
            self.armed_at, self.busy_at, self.idle_at, self.hb_lost_at = time.monotonic(), 0, 0, 0
            self.cpu_at_arm = _cpu_seconds(pid) if pid else None

    def disarm(self) -> str:
        with self.lock:
            self.pid = None
            return self.reason

    def _verdict(self, now: float) -> str:
        if self.idle_at and now - self.idle_at > self.grace:
            return f"went idle but sent no execute_reply for {self.grace:g} s (a lost reply)"
        if not self.busy_at and now - self.armed_at > self.grace:
            cpu = _cpu_seconds(self.pid) if self.pid else None
            if cpu is not None and self.cpu_at_arm is not None and cpu - self.cpu_at_arm < 0.2:
                return (f"never started the cell: no message and no CPU for {self.grace:g} s "
                        "(a lost request)")
        # The private attribute: the public property would create (not start) a channel.
        hb = getattr(getattr(self.ep, "kc", None), "_hb_channel", None)
        try:
            beating = hb is None or not hb.is_alive() or hb.is_beating()
        except Exception:  # noqa: BLE001 (a channel that is closing: no evidence)
            beating = True
        if beating:
            self.hb_lost_at = 0.0
        elif not self.hb_lost_at:
            self.hb_lost_at = now
        elif now - self.hb_lost_at > self.grace:
            return f"stopped answering its heartbeat for {self.grace:g} s (frozen)"
        return ""

    def _watch(self) -> None:
        while True:
            time.sleep(0.5)
            with self.lock:
                if self.pid is None or self.reason:
                    continue
                self.reason = self._verdict(time.monotonic())
                if self.reason:
                    try:
                        os.kill(self.pid, signal.SIGKILL)
                    except OSError:
                        pass


@dataclass
class _Progress:
    """Where a notebook's run stands, across kernel restarts."""

    next: int = 0  # the first cell not yet reported
    failed: set[int] = field(default_factory=set)  # took the kernel down: never re-run
    retried: set[int] = field(default_factory=set)  # found stuck once, retried


def _kernel_lost(cell: Any) -> bool:
    return any(o.get("ename") in ("DeadKernelError", "CellTimeoutError", "KernelStuck")
               for o in cell.outputs)


def _execute_one(ep: Any, cell: Any, index: int, dog: _Watchdog, pid: int | None) -> str:
    """Run one cell; "" when the kernel is still good, else why it must be replaced."""
    import nbformat
    from nbclient.exceptions import DeadKernelError

    dog.arm(pid)
    why = ""
    try:
        ep.execute_cell(cell, index, store_history=True)
    except DeadKernelError:
        why = "died"
    except Exception as err:  # noqa: BLE001 (any failure is this cell's)
        cell.outputs.append(nbformat.from_dict(_error(type(err).__name__, str(err))))
        why = "failed"
    stuck = dog.disarm()
    if stuck:  # the watchdog killed it, whatever nbclient saw first
        cell.outputs = [o for o in cell.outputs if o.get("ename") != "CellTimeoutError"]
        return "stuck: " + stuck
    if why == "died":
        cell.outputs.append(nbformat.from_dict(_error(
            "DeadKernelError", "the kernel died while running this cell (sys.exit, os._exit, "
            "a crash, or its CPU/memory limit)")))
    # A timed-out kernel may ignore the interrupt: go on in a clean one.
    if not why and any(o.get("ename") == "CellTimeoutError" for o in cell.outputs):
        why = "timeout"
    return why


REPLAYED = ("the grader restarted the kernel and re-ran the cells above (without this one), "
            "so only what depends on this cell loses points")


def _run_cells(ep: Any, cells: list[Any], prog: _Progress, spec: dict[str, Any], send: Any,
               dog: _Watchdog) -> None:
    """One kernel: re-run the cells before ``prog.next`` that did not fail (the state a new
    kernel lacks), then run on until the end or until the kernel must be replaced."""
    import copy

    import nbformat

    with ep.setup_kernel(cwd=spec["workdir"]):
        kernel = getattr(ep.km, "provisioner", None)
        pid = getattr(getattr(kernel, "process", None), "pid", None)
        if pid:
            send(kernel_pid=pid)
            _limit_kernel(pid, spec.get("cpu_s"), spec.get("memory_mb"))
        # setup_kernel has waited for kernel_info already; asking again right away is what
        # strands the next request in ipykernel 7.0-7.3 (see _Watchdog), so we do not.
        replay = [i for i in range(prog.next) if i not in prog.failed
                  and cells[i].cell_type == "code" and cells[i].source.strip()]
        if replay:
            send(event="replay", cells=len(replay), before=prog.next)
        for index in replay:
            scratch = copy.deepcopy(cells[index])  # its reported outputs stay as they were
            why = _execute_one(ep, scratch, index, dog, pid)
            if why.startswith("stuck") and index not in prog.retried:
                prog.retried.add(index)
                send(event="stuck", cell=index, why=why[7:], final=False)
                return  # the replay again, in a new kernel
            if why:
                prog.failed.add(index)
                send(event="replay_failed", cell=index, why=why)
                return
        while prog.next < len(cells):
            index = prog.next
            cell = cells[index]
            if cell.cell_type != "code":
                prog.next += 1
                continue
            why = _execute_one(ep, cell, index, dog, pid)
            if why.startswith("stuck") and index not in prog.retried:
                prog.retried.add(index)
                send(event="stuck", cell=index, why=why[7:], final=False)
                cell.outputs = []
                return  # the same cell again, in a new kernel
            if why.startswith("stuck"):
                send(event="stuck", cell=index, why=why[7:], final=True)
                cell.outputs.append(nbformat.from_dict(_error(
                    "KernelStuck", "the kernel stopped answering while running this cell, "
                    "twice; the instructor has been told")))
            prog.next += 1
            if why:
                prog.failed.add(index)
                if prog.next < len(cells):
                    cell.outputs.append(nbformat.from_dict(_error("KernelRestarted",
                                                                  REPLAYED)))
            send(cell=index, count=cell.get("execution_count"),
                 outputs=_cut([dict(o) for o in cell.outputs]))
            if why:
                return
