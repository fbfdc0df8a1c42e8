"""Refresh every lock: ``python tools/refresh_locks.py [--upgrade]``.

Writes, with ``uv pip compile --generate-hashes`` (``pip install uv``; it needs the network):

- ``locks/{linux,windows,macos}-py{3.10,3.11,3.12}.txt``: tinyml-edu's whole dependency tree per
  OS and Python, which the USB bundle downloads and ``tinyml-edu doctor`` compares against;
- ``locks/ci-linux-py3.11.txt`` (with the ``test`` extra) and ``locks/ci-board-linux-py3.11.txt``
  (``test`` and ``linux-board``): what ``.ci/run`` installs;
- ``binder/requirements.txt``: the Linux lock for ``binder/runtime.txt``'s Python plus
  ``binder/requirements.in`` (nbgitpuller), held to the same versions as the Linux lock.

Every lock is also held to ``locks/constraints.txt`` (versions pip refuses that uv would pick).
Without ``--upgrade`` a pin that still fits pyproject.toml is kept (uv reads the old lock as a
preference), so only what must change does; ``--upgrade`` takes the newest allowed versions.
Each header records a digest of the inputs; ``tests/test_locks.py`` fails when it is stale.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tinyml_edu import locks  # noqa: E402

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    from pip._vendor import tomli as tomllib

# uv's target triples; x86-64 Linux as old as the bundle supports (glibc 2.31), Apple silicon.
UV_PLATFORMS = {"linux": "x86_64-manylinux_2_31", "windows": "x86_64-pc-windows-msvc",
                "macos": "aarch64-apple-darwin"}
MACOS_DEPLOYMENT_TARGET = "14.0"  # the bundle's macosx_14_0_arm64
CI_PYTHON = "3.11"
# Applied to every lock, and part of every lock's digest.
COMMON_CONSTRAINTS = "locks/constraints.txt"


@dataclass(frozen=True)
class LockSpec:
    path: str  # relative to the repository
    os: str
    python: str
    extras: tuple[str, ...] = ()
    extra_inputs: tuple[str, ...] = ()  # more requirement files, relative to the repository
    constraints: tuple[str, ...] = field(default=(), compare=False)


def specs() -> list[LockSpec]:
    """Every lock, the plain ones first: the others are held to the plain Linux lock."""
    runtime = (ROOT / "binder" / "runtime.txt").read_text().strip().removeprefix("python-")
    found = [LockSpec(f"locks/{locks.lock_name(os_name, py)}", os_name, py)
             for os_name in locks.OSES for py in locks.PYTHONS]
    ci_linux = (f"locks/{locks.lock_name('linux', CI_PYTHON)}",)
    for variant, extras in (("ci", ("test",)), ("ci-board", ("test", "linux-board"))):
        found.append(LockSpec(f"locks/{locks.lock_name('linux', CI_PYTHON, variant)}", "linux",
                              CI_PYTHON, extras, constraints=ci_linux))
    found.append(LockSpec("binder/requirements.txt", "linux", runtime, (),
                          ("binder/requirements.in",),
                          constraints=(f"locks/{locks.lock_name('linux', runtime)}",)))
    return found


def header(spec: LockSpec, digest: str) -> str:
    extras = ",".join(spec.extras) or "-"
    inputs = ",".join(("pyproject.toml",) + spec.extra_inputs + (COMMON_CONSTRAINTS,))
    return (f"{locks.TARGET_LINE}os={spec.os} python={spec.python} extras={extras} "
            f"inputs={inputs}\n"
            f"{locks.DIGEST_LINE}{digest}\n"
            f"# Do not edit: change its inputs, then run `{locks.REFRESH_COMMAND}`.\n")


def digest_for(spec: LockSpec, project: dict) -> str:
    names = spec.extra_inputs + (COMMON_CONSTRAINTS,)
    files = {name: (ROOT / name).read_text(encoding="utf-8") for name in names}
    return locks.inputs_digest(project, spec.extras, files)


def uv_command() -> list[str]:
    if shutil.which("uv"):
        return ["uv"]
    try:
        from uv import find_uv_bin
    except ImportError:
        sys.exit("refreshing the locks needs uv: run `pip install uv`, then this again")
    return [find_uv_bin()]


def compile_lock(spec: LockSpec, project: dict, upgrade: bool) -> None:
    out = ROOT / spec.path
    cmd = uv_command() + [
        "pip", "compile", "--quiet", "pyproject.toml", *spec.extra_inputs,
        "--python-platform", UV_PLATFORMS[spec.os], "--python-version", spec.python,
        "--generate-hashes", "--custom-compile-command", locks.REFRESH_COMMAND,
        *[arg for extra in spec.extras for arg in ("--extra", extra)],
        *[arg for c in (COMMON_CONSTRAINTS, *spec.constraints) for arg in ("--constraint", c)]]
    with tempfile.TemporaryDirectory() as tmp:
        draft = Path(tmp) / out.name
        if out.is_file() and not upgrade:  # the old pins are uv's preferences
            shutil.copyfile(out, draft)
        cmd += ["--output-file", str(draft)] + (["--upgrade"] if upgrade else [])
        env = dict(os.environ, MACOSX_DEPLOYMENT_TARGET=MACOS_DEPLOYMENT_TARGET)
        proc = subprocess.run(cmd, cwd=ROOT, env=env, text=True, capture_output=True)
        if proc.returncode != 0:
            sys.exit(f"uv could not lock {spec.path}:\n{proc.stderr.strip()}")
        body = draft.read_text(encoding="utf-8")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(header(spec, digest_for(spec, project)) + body, encoding="utf-8")
    print(f"{spec.path}: {len(locks.read_lock(out))} packages")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upgrade", action="store_true",
                        help="take the newest versions pyproject.toml allows")
    args = parser.parse_args(argv)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for spec in specs():
        compile_lock(spec, project, args.upgrade)


if __name__ == "__main__":
    main()
