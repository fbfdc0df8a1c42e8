"""Run students' notebooks in sandboxes: the worker side of ``tinyml-edu course autograde``.

The instructor's process prepares each notebook with nbgrader's own preprocessors and saves the
grades; this module only *executes* notebooks. A fork server (:class:`ForkServer`, started once
per run) imports nbclient and nbgrader once, then forks one process per submission, so each
submission pays for its kernel, not for Python's imports. On Linux, when the system allows it,
that process enters its own

- network namespace (no network: only a loopback interface, which the kernel's ZMQ sockets need);
- PID namespace (killing the worker kills the kernel and anything the student started);
- mount namespace whose root is built from nothing: the system's programs and libraries
  (read-only), Python and its site-packages (read-only), the tinyml_edu package alone (never the
  checkout around it: no lessons/, grading/ or .git), a private /tmp, and this submission's own
  working copy and HOME (writable). The course folder, the gradebook, every copy of the lesson
  sources, other checkouts, homes and the other students' copies are not in it at all;

with a ``/dev`` holding only null, zero, full, random, urandom and tty, and read-only sysctls. It
then drops every capability before the kernel starts, so student code cannot undo those mounts;
when the grader runs as root it also becomes ``nobody``, owning only its working copy and HOME.
As a non-root user the same happens inside a user namespace.
Limits on the kernel: CPU seconds (``RLIMIT_CPU``), address space (``RLIMIT_AS``), file size
(``RLIMIT_FSIZE``); the parent enforces the wall-clock limit by killing the process group. Where
namespaces are not available the worker still runs, with a note saying what is not isolated.

Results come back on a pipe as JSON lines: ``{"cell": i, "outputs": [...], "count": n}`` after
each executed code cell, ``{"note": str}``, ``{"kernel_pid": n}``, ``{"event": ...}`` (a restart,
a stuck kernel) and finally ``{"done": true}``. Cells already reported keep their results even
when the worker is killed later. Not stdout: the kernel inherits stdout and student code could
write to it.

When a cell kills its kernel or times out, a new kernel re-runs the cells before it (not the
one that failed) and the run goes on, so a notebook loses only what depends on that cell. A
kernel that sits idle without answering (:class:`.cells._Watchdog`) is killed within seconds and the
cell retried once in a new kernel; a second time it is reported as stuck.

This module is the fork server and the worker's life cycle; the private root and dropped
capabilities are :mod:`.isolation`, running the cells in a kernel is :mod:`.cells`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinyml_edu import i18n
from tinyml_edu.course.cells import STUCK_AFTER_S, _Progress, _run_cells, _Watchdog
from tinyml_edu.course.isolation import (
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_REC,
    _drop_privileges,
    _enter_private_root,
    _libc,
    _mount,
)
from tinyml_edu.errors import ToolError

# Threads per kernel: workers share the cores, so each one gets one thread.
ONE_THREAD = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                               "NUMEXPR_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                               "TF_NUM_INTEROP_THREADS")}
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x20000, 0x10000000, 0x20000000, \
    0x40000000

NOTES = {
    "full": "sandboxed: no network, private PID and mount namespaces, a private root without "
            "course files, read-only system, no capabilities (as root: runs as nobody)",
    "net": "partly sandboxed: no network, but this system refuses mount/PID namespaces, so "
           "student code can read files you can read (the gradebook, hidden tests)",
    "none": "not sandboxed: this system refuses namespaces (Linux with user namespaces, or "
            "grading as root, is needed), so student code runs with your rights and network; "
            "grade on such a Linux machine for isolation",
}


@dataclass(frozen=True)
class Isolation:
    mode: str  # "full", "net" or "none"

    @property
    def net(self) -> bool:
        return self.mode in ("full", "net")

    @property
    def pid(self) -> bool:
        return self.mode == "full"

    @property
    def mounts(self) -> bool:
        return self.mode == "full"

    @property
    def note(self) -> str:
        return NOTES[self.mode]


def worker_env(home: Path) -> dict[str, str]:
    """A clean environment: a private HOME and caches, one thread, no gradebook URL."""
    # TF_ENABLE_ONEDNN_OPTS: grade with the CPU kernels the instructor chose (CI turns oneDNN
    # off, as most student laptops run, so a model that only trains with oneDNN is caught).
    keep = ("PATH", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV", "CONDA_PREFIX", "SYSTEMROOT",
            "TF_ENABLE_ONEDNN_OPTS")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(ONE_THREAD, HOME=str(home), TMPDIR=str(home / "tmp"), USERPROFILE=str(home),
               IPYTHONDIR=str(home / ".ipython"), MPLCONFIGDIR=str(home / ".matplotlib"),
               MPLBACKEND="Agg", JUPYTER_RUNTIME_DIR=str(home / ".jupyter-runtime"),
               JUPYTER_DATA_DIR=str(home / ".jupyter-data"), XDG_CACHE_HOME=str(home / ".cache"),
               TF_CPP_MIN_LOG_LEVEL="3", MALLOC_ARENA_MAX="2", PYTHONDONTWRITEBYTECODE="1",
               PYDEVD_DISABLE_FILE_VALIDATION="1", NBGRADER_EXECUTION="autograde")
    # The package itself must stay importable when it is not installed (a source checkout).
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    return env


def notebook_language(nb: dict[str, Any]) -> str:
    """The language a hand-in was released in (its metadata), so its checks' feedback speaks
    it; English for anything else, whatever the grading computer's own language."""
    try:
        lang = nb.get("metadata", {}).get("tinyml_edu", {}).get("lang", "")
    except AttributeError:  # a hand-in whose metadata is not a mapping
        return i18n.ENGLISH
    return lang if isinstance(lang, str) and lang in i18n.LANGUAGES else i18n.ENGLISH


# --- the instructor's side -------------------------------------------------------------------


def _send_msg(sock: socket.socket, data: bytes, fds: list[int] | None = None) -> None:
    header = struct.pack("!Q", len(data))
    if fds:
        socket.send_fds(sock, [header], fds)
    else:
        sock.sendall(header)
    sock.sendall(data)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            raise EOFError("the fork server went away")
        buf += chunk
    return buf


def _recv_msg(sock: socket.socket, want_fd: bool = False) -> tuple[bytes, list[int]]:
    fds: list[int] = []
    if want_fd:
        header, fds, _, _ = socket.recv_fds(sock, 8, 1)
        header += _recv_exact(sock, 8 - len(header))
    else:
        header = _recv_exact(sock, 8)
    return _recv_exact(sock, struct.unpack("!Q", header)[0]), fds


class ForkServer:
    """One pre-imported Python that forks a sandboxed worker per submission."""

    def __init__(self, log_path: Path) -> None:
        if not hasattr(os, "fork"):
            raise ToolError("autograde forks a sandboxed worker per notebook, which needs "
                            "Linux or macOS; on Windows grade inside WSL, or run nbgrader's "
                            "own serial `nbgrader autograde`")
        ours, theirs = socket.socketpair()
        env = worker_env(log_path.parent)
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tinyml_edu.course.sandbox", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, env=env, start_new_session=True)
        theirs.close()
        self.sock = ours
        self.lock = threading.Lock()
        ready, _ = _recv_msg(self.sock)
        self.isolation = Isolation(json.loads(ready)["mode"])

    def start(self, spec: dict[str, Any], nb: Any) -> tuple[int, int]:
        """Fork a worker for one notebook: (its pid, also its process group; the read end of
        its result pipe)."""
        data = json.dumps({"spec": spec, "nb": nb}).encode()
        with self.lock:  # one request at a time on the socket
            _send_msg(self.sock, data)
            reply, fds = _recv_msg(self.sock, want_fd=True)
        return json.loads(reply)["pid"], fds[0]

    def close(self) -> None:
        self.sock.close()  # the server exits when its socket closes
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# --- inside the fork server and its workers --------------------------------------------------


def _lo_up() -> None:
    """Bring up the loopback interface of the new network namespace (it starts down)."""
    import fcntl
    import socket
    import struct

    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifr = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(s, siocgifflags, ifr)[:18])[1]
        fcntl.ioctl(s, siocsifflags, struct.pack("16sH", b"lo", flags | iff_up))


def _unshare(flags: int) -> bool:
    uid, gid = os.getuid(), os.getgid()
    if _libc().unshare(flags) != 0:
        return False
    if flags & CLONE_NEWUSER:  # root inside, the instructor outside
        for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"),
                           ("gid_map", f"0 {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
    return True


def _flags(mode: str) -> int:
    user = CLONE_NEWUSER if os.geteuid() != 0 else 0
    return {"full": CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWPID | user,
            "net": CLONE_NEWNET | user, "none": 0}[mode]


def _probe() -> str:
    """The strongest isolation this system allows, tried in throw-away children."""
    if sys.platform != "linux":
        return "none"
    for mode in ("full", "net"):
        pid = os.fork()
        if pid == 0:
            ok = _unshare(_flags(mode))
            if ok and mode == "full":  # the PID namespace needs a child and /proc mounted
                child = os.fork()
                if child == 0:
                    try:
                        _mount(None, "/", None, MS_REC | MS_PRIVATE)
                        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
                        os._exit(0)
                    except OSError:
                        os._exit(1)
                ok = os.waitpid(child, 0)[1] == 0
            os._exit(0 if ok else 1)
        if os.waitpid(pid, 0)[1] == 0:
            return mode
    return "none"


def _worker(request: dict[str, Any], write_fd: int, mode: str) -> None:
    """The forked child: enter the namespaces, then run the notebook (never returns)."""
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the server's reaper is not ours
        os.setsid()  # its own process group: the instructor kills the whole group at once
        spec = request["spec"]
        log = os.open(spec["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.closerange(3, write_fd)
        os.closerange(write_fd + 1, 1024)
        if mode != "none":
            _unshare(_flags(mode))
        if mode == "full":  # PID namespace: the next child is its init; we only wait for it
            child = os.fork()
            if child:
                os.close(write_fd)
                status = os.waitpid(child, 0)[1]
                os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
            _libc().prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG: die with the keeper
            _mount(None, "/", None, MS_REC | MS_PRIVATE)
            _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        spec["uid_drop"] = _STARTED_AS_ROOT
        os.environ.clear()
        os.environ.update(worker_env(Path(spec["home"])))
        os.environ[i18n.LANG_ENV] = notebook_language(request["nb"])
        code = run_worker(request, write_fd, mode)
    except BaseException as err:  # noqa: BLE001 (report, never return into the server loop)
        print(f"worker failed: {type(err).__name__}: {err}", flush=True)
        code = 1
    os._exit(code)


def _reap(_signum: int, _frame: Any) -> None:
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


_STARTED_AS_ROOT = os.name == "posix" and os.geteuid() == 0


def serve(sock_fd: int) -> int:
    """The fork server: import once, probe once, then fork a worker per request."""
    import nbclient  # noqa: F401 (imported once here so every fork starts warm)
    import nbformat  # noqa: F401
    from nbgrader.preprocessors import Execute  # noqa: F401

    sock = socket.socket(fileno=sock_fd)
    mode = _probe()
    # Reap workers as they exit (waited-for, their CPU time counts in the server's rusage).
    signal.signal(signal.SIGCHLD, _reap)
    _send_msg(sock, json.dumps({"mode": mode}).encode())
    while True:
        try:
            data, _ = _recv_msg(sock)
        except EOFError:
            return 0
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            sock.close()
            os.close(read_fd)
            _worker(json.loads(data), write_fd, mode)
        os.close(write_fd)
        _send_msg(sock, json.dumps({"pid": pid}).encode(), [read_fd])
        os.close(read_fd)


def run_worker(request: dict[str, Any], write_fd: int, mode: str) -> int:
    spec, nb_json = request["spec"], request["nb"]
    out = os.fdopen(write_fd, "w", buffering=1, encoding="utf-8")

    def send(**msg: Any) -> None:
        out.write(json.dumps(msg) + "\n")

    notes: list[str] = []
    if mode in ("full", "net"):
        try:
            _lo_up()
        except OSError as err:
            notes.append(f"loopback not up ({err})")
    if mode == "full":
        own = [spec["workdir"], spec["home"]]
        uid_drop = bool(spec.get("uid_drop"))
        _enter_private_root(spec["hide"], own, notes)
        _drop_privileges(own, uid_drop, notes)
    for note in notes:
        send(note=note)
    os.chdir(spec["workdir"])
    if sys.platform == "linux":  # hidden tests sit in this process's memory: no ptrace, no dumps
        _libc().prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 0

    import nbformat
    from nbgrader.preprocessors import Execute

    nb = nbformat.from_dict(nb_json)
    ep = Execute(timeout=spec["cell_timeout"], interrupt_on_timeout=True,
                 raise_on_iopub_timeout=False, allow_errors=True, kernel_name="python3",
                 startup_timeout=120, shutdown_kernel="immediate")
    # Preprocessor.preprocess re-inits the client the same way; we drive the cells ourselves so a
    # dead or stuck kernel is restarted and the remaining cells still run.
    from nbclient import NotebookClient

    NotebookClient.__init__(ep, nb)
    ep.reset_execution_trackers()
    ep._check_assign_resources({"metadata": {"path": spec["workdir"]}})
    cells, prog = nb.cells, _Progress()
    dog = _Watchdog(ep, float(spec.get("stuck_after_s", STUCK_AFTER_S)))
    while prog.next < len(cells):
        before = (prog.next, len(prog.failed), len(prog.retried))
        try:
            _run_cells(ep, cells, prog, spec, send, dog)
        except Exception as err:  # noqa: BLE001 (a kernel that will not start or stop)
            send(note=f"kernel problem: {type(err).__name__}: {err}")
            ep.kc = ep.km = None
        if (prog.next, len(prog.failed), len(prog.retried)) == before:
            break  # no cell moved on: a kernel that will not start; nothing more can run
    send(done=True)
    out.close()
    return 0


if __name__ == "__main__":
    sys.exit(serve(int(sys.argv[1])))
