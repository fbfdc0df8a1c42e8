"""What a sandboxed worker sees of the file system: the mount side of :mod:`.sandbox`.

Inside its own mount namespace, a worker builds a new root from nothing (the system's programs
and libraries, Python and its site-packages, the tinyml_edu package alone, a private /tmp, and
its own working copy and HOME), switches to it, makes every other mount read-only, and then drops
every capability so student code cannot undo any of it. The course folder, the gradebook, the
lesson sources with their hidden tests, other checkouts and the other students' copies are not
hidden behind permissions: they are simply not in the new root.

The instructor's process decides what else to cover (:func:`_hidden_paths`: the course, the
gradebook, other copies of the lessons, git history); the forked worker does the rest, after
``unshare``. :mod:`.sandbox` and :mod:`.autograde` import from here, never the reverse.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def _mount_points() -> list[str]:
    points = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            target = line.split()[4].encode().decode("unicode_escape")
            points.append(target)
    return points


NOBODY = 65534  # the uid student code runs as when the grader runs as root


# --- what to hide, decided in the instructor's process -----------------------------------------
# The worker's root already leaves out everything but the system, Python and the package; these
# are the folders to cover should one of them still be reachable inside what it keeps.


def _hidden_paths(paths: list[Path]) -> list[str]:
    """What student code must not see, minus anything the worker itself needs to run."""
    import sys

    needed = [Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.executable)]
    needed.append(Path(__file__).resolve().parents[2])
    out = []
    for path in {p.resolve() for p in paths if p.exists()}:
        if not any(n == path or path in n.parents for n in needed):
            out.append(str(path))
    return sorted(out)


def _other_copies_of_lessons(source: Path) -> Iterator[Path]:
    """Hidden tests live on in the wheel's copy of the lessons and in git history."""
    yield Path(__file__).resolve().parents[1] / "_lessons"
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
