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
kernel that sits idle without answering (:class:`_Watchdog`) is killed within seconds and the
cell retried once in a new kernel; a second time it is reported as stuck.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinyml_edu.errors import ToolError

# Cell outputs larger than this are cut: a student printing megabytes must not flood the pipe,
# the gradebook or the feedback HTML.
MAX_OUTPUT_CHARS = 100_000
MAX_FILE_MB = 512  # no file a kernel writes grows beyond this (a student filling the disk)
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

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND = 32, 1024, 2048, 4096
MS_REC, MS_PRIVATE, MS_RELATIME = 16384, 1 << 18, 1 << 21
_KEEP_FLAGS = ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC),
               (getattr(os, "ST_NOATIME", 1024), MS_NOATIME),
               (getattr(os, "ST_NODIRATIME", 2048), MS_NODIRATIME),
               (getattr(os, "ST_RELATIME", 4096), MS_RELATIME)) if os.name == "posix" else ()


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def _mount(src: str | None, target: str, fstype: str | None, flags: int,
           data: str | None = None) -> None:
    args = [s.encode() if s is not None else None for s in (src, target, fstype)]
    if _libc().mount(*args, flags, data.encode() if data else None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {target}: {os.strerror(err)}")


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


def _mount_points() -> list[str]:
    points = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            target = line.split()[4].encode().decode("unicode_escape")
            points.append(target)
    return points


NOBODY = 65534  # the uid student code runs as when the grader runs as root


# --- what the worker sees of the file system --------------------------------------------------
# A new root, built from nothing: the system's programs and libraries, Python with its
# site-packages, the tinyml_edu package (never the checkout around it), a private /tmp, and this
# submission's working copy and HOME. A course folder, a gradebook, lesson sources, a sibling
# checkout, anyone's home and the other students' copies are simply not there, wherever they are.

SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/sys")
# The package's data next to a source checkout's package (datasets/, firmware/): what the
# library reads when it is not installed. Never lessons/ or grading/.
CHECKOUT_DATA = ("datasets", "firmware")
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
MNT_DETACH = 2


def _inside(path: str, folders: list[str]) -> bool:
    return any(path == f or path.startswith(f.rstrip("/") + "/") for f in folders)


def _visible_paths() -> list[str]:
    """Read-only folders the worker and kernel need: the system, Python, the package."""
    python = {sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    wanted = [p for p in SYSTEM_DIRS if os.path.lexists(p)]
    wanted += sorted(os.path.realpath(p) for p in python)
    package = Path(__file__).resolve().parents[1]
    if not _inside(str(package), wanted):  # a source checkout: the package, not the checkout
        wanted.append(str(package))
        wanted += [str(package.parent / d) for d in CHECKOUT_DATA
                   if (package.parent / d).is_dir()]
    kept: list[str] = []
    for path in sorted(set(wanted), key=len):  # a folder inside a kept one comes with it
        if not _inside(path, kept) and os.path.lexists(path):
            kept.append(path)
    return kept


def _installed_lesson_sources() -> list[str]:
    """Lesson sources inside site-packages: earlier tinyml-edu wheels, and hatchling's editable
    installs of them, copied the sources into ``tinyml_edu/_lessons``; one may still be there."""
    import site

    folders = {*sys.path, *site.getsitepackages()}
    return sorted(str(Path(f, "tinyml_edu", "_lessons").resolve()) for f in folders
                  if f and os.path.isdir(os.path.join(f, "tinyml_edu", "_lessons")))


def _bind(fd: int, target: str) -> None:
    """Bind the folder held open as ``fd`` at ``target`` (read-only comes later, in
    :func:`_freeze`, for every mount but the worker's own)."""
    os.makedirs(target, exist_ok=True)
    _mount(f"/proc/self/fd/{fd}", target, None, MS_BIND | MS_REC)
    os.close(fd)


def _populate_root(new: str, visible: dict[str, int], links: dict[str, str],
                   hide: list[str], own: dict[str, int], devices: dict[str, int],
                   proc: int) -> None:
    """Fill the empty tmpfs at ``new`` with what the worker may see."""
    for path, target in links.items():  # /bin -> usr/bin on merged-/usr systems
        os.symlink(target, new + path)
    for path, fd in visible.items():
        _bind(fd, new + path)
    _bind(proc, new + "/proc")
    os.makedirs(new + "/tmp")
    _mount("tmpfs", new + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=256m,mode=1777")
    # Anything to hide that is still reachable (lesson sources inside an installed package, a
    # course folder inside a Python prefix) is covered; the worker's own folders go on top.
    for path in sorted(hide, key=len):
        if os.path.isdir(new + path) and not os.path.islink(new + path):
            _mount("tmpfs", new + path, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=755")
    for path, fd in own.items():
        _bind(fd, new + path)
    # Disks and the like are root's files: a capability-less root could still open them.
    os.makedirs(new + "/dev")
    _mount("tmpfs", new + "/dev", "tmpfs", MS_NOSUID, "size=64k,mode=755")
    for name, fd in devices.items():
        open(f"{new}/dev/{name}", "w").close()
        _mount(f"/proc/self/fd/{fd}", f"{new}/dev/{name}", None, MS_BIND)
        os.close(fd)
    os.makedirs(new + "/dev/shm")
    _mount("tmpfs", new + "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=1777")


def _switch_root(new: str, notes: list[str]) -> None:
    """Make ``new`` the root of this mount namespace and drop the old one entirely."""
    import platform

    libc = _libc()
    os.chdir(new)
    number = SYS_PIVOT_ROOT.get(platform.machine())
    if number is not None and libc.syscall(number, b".", b".") == 0:
        libc.umount2(b".", MNT_DETACH)  # the old root, now stacked on the new one
    else:  # without capabilities, student code cannot leave a chroot either
        os.chroot(".")
        notes.append("entered the private root with chroot (pivot_root refused)")
    os.chdir("/")


def _freeze(own: list[str], notes: list[str]) -> None:
    """Every mount read-only but the worker's own folders, /tmp and /dev/shm; sysctls too."""
    writable = set(own) | {"/tmp", "/dev/shm"}
    failed = 0
    for point in _mount_points():
        if point in writable or point.startswith(("/proc", "/dev/")):
            continue
        try:
            st = os.statvfs(point)
        except OSError:
            continue
        flags = sum(ms for st_flag, ms in _KEEP_FLAGS if st.f_flag & st_flag)
        try:
            _mount(None, point, None, MS_REMOUNT | MS_BIND | MS_RDONLY | flags)
        except OSError:
            failed += 1
    try:  # sysctls: root may write them whatever its capabilities
        _mount("/proc/sys", "/proc/sys", None, MS_BIND | MS_REC)
        _mount(None, "/proc/sys", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV
               | MS_NOEXEC)
    except OSError:
        failed += 1
    if failed:
        notes.append(f"{failed} mount(s) could not be made read-only")


def _enter_private_root(hide: list[str], own: list[str], notes: list[str]) -> None:
    """Give this mount namespace a root holding only what grading needs (see above)."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we do leaks to the host
    hide = [*hide, *_installed_lesson_sources()]
    paths = _visible_paths()
    links = {p: os.readlink(p) for p in paths if os.path.islink(p)}
    visible = {p: os.open(p, os.O_PATH | os.O_DIRECTORY) for p in paths if p not in links}
    held = {p: os.open(p, os.O_PATH | os.O_DIRECTORY) for p in own}
    devices = {d: os.open(f"/dev/{d}", os.O_PATH) for d in
               ("null", "zero", "full", "random", "urandom", "tty") if os.path.exists(f"/dev/{d}")}
    proc = os.open("/proc", os.O_PATH | os.O_DIRECTORY)
    # The new root is a tmpfs mounted on this worker's own scratch folder (any folder would do:
    # it is reached only through the file descriptors taken above once the tmpfs covers it).
    new = os.path.dirname(own[0])
    _mount("tmpfs", new, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
    _populate_root(new, visible, links, hide, held, devices, proc)
    _switch_root(new, notes)
    _freeze(own, notes)


def _drop_privileges(own: list[str], uid_drop: bool, notes: list[str]) -> None:
    """No capability survives, so student code cannot unmount what hides the course files; as
    root, also become ``nobody`` (owning only its working copy and HOME)."""
    libc = _libc()
    pr_capbset_drop, pr_set_no_new_privs, pr_cap_ambient, clear_all = 24, 38, 47, 4
    for cap in range(64):
        if libc.prctl(pr_capbset_drop, cap, 0, 0, 0) != 0:
            break  # EINVAL: past the last capability this kernel knows
    libc.prctl(pr_cap_ambient, clear_all, 0, 0, 0)
    if uid_drop:
        try:
            for top in own:
                for folder, dirs, files in os.walk(top):
                    for name in [folder, *(os.path.join(folder, n) for n in dirs + files)]:
                        os.lchown(name, NOBODY, NOBODY)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)  # clears the remaining capabilities too
        except OSError as err:
            notes.append(f"kept uid 0 without capabilities (could not become nobody: {err})")

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    data = (Data * 2)()
    if libc.capset(ctypes.byref(Header(0x20080522, 0)), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")
    libc.prctl(pr_set_no_new_privs, 1, 0, 0, 0)


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
