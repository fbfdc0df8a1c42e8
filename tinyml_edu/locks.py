"""The pinned dependency trees (locks) tinyml-edu is installed from, and checks against them.

``pyproject.toml`` keeps version ranges; Binder, the USB bundle and CI install from a lock of the
whole dependency tree, one per OS and Python (``locks/linux-py3.11.txt``, ...), written by
``python tools/refresh_locks.py`` with ``uv pip compile --generate-hashes``. Each lock's header
records a digest of the pyproject inputs it was compiled from, so a stale lock is detected
offline. Standard library only: ``tinyml-edu doctor`` uses this on any installed copy.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from importlib import metadata
from pathlib import Path

from tinyml_edu.errors import TinyMLEduError

LOCKS_DIR_NAME = "locks"
REFRESH_COMMAND = "python tools/refresh_locks.py"
OSES = ("linux", "windows", "macos")
PYTHONS = ("3.10", "3.11", "3.12")
DIGEST_LINE = "# inputs-sha256: "
TARGET_LINE = "# tinyml-edu lock: "
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


class LockError(TinyMLEduError):
    """A lock is missing or unreadable; the message says what to do."""


def normalize(name: str) -> str:
    """A distribution name as PEP 503 compares it (``Tensorflow_CPU`` -> ``tensorflow-cpu``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def locks_dir() -> Path:
    """The folder holding the locks: the copy packed inside an installed wheel, else ``locks/``
    of a source checkout."""
    package = Path(__file__).resolve().parent
    packed = package / "_locks"
    return packed if packed.is_dir() else package.parent / LOCKS_DIR_NAME


def lock_name(os_name: str, python: str, variant: str = "") -> str:
    """``linux-py3.11.txt``; a ``variant`` (``ci``) prefixes it: ``ci-linux-py3.11.txt``."""
    return f"{variant + '-' if variant else ''}{os_name}-py{python}.txt"


def lock_path(os_name: str, python: str, variant: str = "") -> Path:
    """The lock for ``os_name`` (linux, windows, macos) and CPython ``python`` ("3.11")."""
    if os_name not in OSES:
        raise LockError(f"no lock for OS {os_name!r}; choose one of {', '.join(OSES)}")
    if python not in PYTHONS:
        raise LockError(f"tinyml-edu supports Python {PYTHONS[0]}-{PYTHONS[-1]}, not {python}")
    return locks_dir() / lock_name(os_name, python, variant)


def this_os() -> str | None:
    """The lock OS name of this machine, or None where no lock applies."""
    return {"linux": "linux", "win32": "windows", "darwin": "macos"}.get(sys.platform)


def current_lock_path() -> Path | None:
    """The lock this interpreter and OS would install from, if there is one on disk."""
    os_name, python = this_os(), f"{sys.version_info[0]}.{sys.version_info[1]}"
    if os_name is None or python not in PYTHONS:
        return None
    path = lock_path(os_name, python)
    return path if path.is_file() else None


def read_lock(path: Path | str) -> dict[str, str]:
    """The pinned ``{normalized name: version}`` of a requirements-format lock."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise LockError(f"cannot read the lock {path}: {err.strerror}; "
                        f"run `{REFRESH_COMMAND}` in a source checkout") from err
    pins = {}
    for line in text.splitlines():
        match = _PIN.match(line)
        if match:
            pins[normalize(match.group(1))] = match.group(2)
    if not pins:
        raise LockError(f"{path} pins nothing; run `{REFRESH_COMMAND}` to rewrite it")
    return pins


def installed_versions() -> dict[str, str]:
    """``{normalized name: version}`` of every distribution this interpreter can import."""
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(normalize(name), dist.version)
    return found


def compare_installed(lock: dict[str, str],
                      installed: dict[str, str] | None = None) -> list[tuple[str, str, str | None]]:
    """``(name, locked, installed)`` for every locked package installed at another version, or
    not installed (``None``), sorted by name. An empty list: the environment matches the lock."""
    installed = installed_versions() if installed is None else installed
    return [(name, version, installed.get(name)) for name, version in sorted(lock.items())
            if installed.get(name) != version]


def header_value(path: Path | str, prefix: str) -> str | None:
    """The rest of the first header line that starts with ``prefix``, if any."""
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        if line.startswith(prefix):
            return line[len(prefix):].strip()
    return None


def inputs_digest(project: dict, extras: tuple[str, ...] = (),
                  extra_files: dict[str, str] | None = None) -> str:
    """sha256 of what a lock is compiled from: pyproject's ``requires-python``, ``dependencies``,
    the chosen ``extras`` and the text of any other input file (``binder/requirements.in``).
    Order and spacing of the requirement strings do not count."""
    def canonical(reqs: list[str]) -> list[str]:
        return sorted(re.sub(r"\s+", "", req) for req in reqs)

    optional = project.get("optional-dependencies", {})
    missing = [extra for extra in extras if extra not in optional]
    if missing:
        raise LockError(f"pyproject.toml has no extra {', '.join(missing)}")
    payload = {
        "requires-python": project.get("requires-python", ""),
        "dependencies": canonical(project.get("dependencies", [])),
        "extras": {extra: canonical(optional[extra]) for extra in sorted(extras)},
        "files": dict(sorted((extra_files or {}).items())),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
