"""``tinyml-edu bundle build``: everything a classroom needs offline, for one OS and Python.

The wheelhouse is fetched with pip for the *target* platform (``--platform``, ``--python-version``,
``--only-binary=:all:``), with the target's environment markers (tflite-micro only on Linux
x86-64, colorama and pywin32 only on Windows), from the target's lock (``locks/OS-pyX.Y.txt``:
every version pinned, every file's sha256 checked). Work happens in ``OUT.partial``: an interrupted
build keeps its downloads for the next run, and only a finished bundle replaces ``OUT``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from tinyml_edu import i18n, locks
from tinyml_edu.bundle.checksums import MANIFEST, BundleError, bundle_files, write_manifest

INFO = "bundle.json"
Log = Callable[[str], None]


@dataclass(frozen=True)
class Target:
    """A platform the wheelhouse is fetched for, and the marker values pip should judge by."""

    os: str
    platforms: tuple[str, ...]  # pip --platform tags, most preferred first
    sys_platform: str
    platform_system: str
    os_name: str
    platform_machine: str

    def marker_environment(self, python: str) -> dict[str, str]:
        """PEP 508 marker values of a CPython ``python`` on this target."""
        full = (".".join(map(str, sys.version_info[:3]))
                if python == f"{sys.version_info[0]}.{sys.version_info[1]}" else f"{python}.0")
        return {
            "implementation_name": "cpython", "implementation_version": full,
            "os_name": self.os_name, "platform_machine": self.platform_machine,
            "platform_python_implementation": "CPython", "platform_release": "",
            "platform_system": self.platform_system, "platform_version": "",
            "python_full_version": full, "python_version": python,
            "sys_platform": self.sys_platform,
        }


# Linux: glibc 2.31 (Ubuntu 20.04) and newer; pip needs every manylinux tag spelled out.
_MANYLINUX = tuple(f"manylinux_2_{minor}_x86_64" for minor in range(31, 4, -1)) + (
    "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64")
TARGETS = {
    "linux": Target("linux", _MANYLINUX, "linux", "Linux", "posix", "x86_64"),
    "windows": Target("windows", ("win_amd64",), "win32", "Windows", "nt", "AMD64"),
    # Apple silicon; pip expands macosx_14_0 to every older macOS and to universal2 wheels.
    "macos": Target("macos", ("macosx_14_0_arm64",), "darwin", "Darwin", "posix", "arm64"),
}

# pip judges environment markers (`sys_platform == 'linux'`, `platform_system == 'Windows'`) by
# the machine it runs on, even with --platform (pypa/pip#11664): a Windows bundle built on Linux
# would get tflite-micro and miss colorama. This runs pip with the target's marker values.
_PIP_FOR_TARGET = """\
import json, sys
env = json.loads(sys.argv[1])
from pip._vendor.packaging import markers
markers.default_environment = lambda: dict(env)
from pip._internal.cli.main import main
sys.exit(main(sys.argv[2:]))
"""



def _pip_for_target(target: Target, python: str, args: list[str]) -> list[str]:
    """A pip command line that resolves for ``target`` and CPython ``python``."""
    platforms = [arg for tag in target.platforms for arg in ("--platform", tag)]
    return [sys.executable, "-c", _PIP_FOR_TARGET, json.dumps(target.marker_environment(python)),
            *args, "--only-binary=:all:", *platforms, "--implementation", "cp",
            "--python-version", python, "--abi", "cp" + python.replace(".", "")]


def repo_root() -> Path | None:
    """The source checkout this package runs from (it has pyproject.toml), if any."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() else None


def build_wheel(out_dir: Path, log: Log = print) -> Path:
    """Build the tinyml-edu wheel from the source checkout into ``out_dir``."""
    from tinyml_edu import __version__

    root = repo_root()
    if root is None:
        raise BundleError("building a bundle needs the tinyml-edu source (a git clone of the "
                          "repository), or a wheel: pass --wheel tinyml_edu-*.whl")
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(out_dir),
           str(root)]
    if importlib.util.find_spec("hatchling"):  # installed: build offline, no isolated env
        cmd.insert(4, "--no-build-isolation")
    log(f"building the tinyml-edu {__version__} wheel")
    _run(cmd, "building the tinyml-edu wheel")
    wheels = sorted(out_dir.glob(f"tinyml_edu-{__version__}-*.whl"))
    if not wheels:
        raise BundleError(f"pip wheel wrote no tinyml_edu-{__version__} wheel into {out_dir}")
    return wheels[-1]


def check_wheel_carries_data(wheel: Path) -> None:
    """The bundle's only copy of the data sets is the one inside the tinyml-edu wheel: refuse a
    wheel built without them (from a checkout missing ``datasets/``)."""
    import zipfile

    with zipfile.ZipFile(wheel) as zf:
        has_manifest = "tinyml_edu/_data/manifest.json" in zf.namelist()
    if not has_manifest:
        raise BundleError(f"{wheel.name} carries no data sets (tinyml_edu/_data/manifest.json); "
                          "build the wheel from a checkout with datasets/ (`tinyml-edu data "
                          "verify` passes there)")


def download_wheelhouse(wheelhouse: Path, target: Target, python: str,
                        log: Log = print) -> None:
    """Every wheel of the lock for ``target`` and CPython ``python``, hashes checked, into
    ``wheelhouse`` (files already there are reused, so an interrupted build resumes)."""
    lock = locks.lock_path(target.os, python)
    if not lock.is_file():
        raise BundleError(f"no lock {lock.name} for {target.os} / Python {python}; run "
                          f"`{locks.REFRESH_COMMAND}` in the tinyml-edu source checkout")
    cmd = _pip_for_target(target, python, ["download", "--dest", str(wheelhouse),
                                           "--progress-bar", "off", "--require-hashes",
                                           "--requirement", str(lock)])
    log(f"downloading wheels for {target.os}, Python {python} (the first time: ~500 MB)")
    _run(cmd, f"downloading the wheels for {target.os} / Python {python}")


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-25:])
        raise BundleError(f"{what} failed (exit {proc.returncode}):\n{tail}\n"
                          "Check the network connection (building needs PyPI; installing from "
                          "the bundle does not) and run the same command again: finished "
                          "downloads are kept.")


def release_lessons(dest: Path, log: Log = print, langs: tuple[str, ...] = ()) -> list[str]:
    """The student versions of every lesson (nbgrader's generate_assignment) into ``dest``,
    and for each language in ``langs`` the same translated into ``<dest>-<lang>/``.

    They are released in a throw-away course folder with its own SQLite gradebook, so an
    instructor's gradebook (even one named by $TINYML_EDU_GRADEBOOK_URL) is never touched.
    """
    from nbgrader.apps import NbGraderAPI

    from tinyml_edu.course import config, lessons, translate

    try:
        source = lessons.lessons_dir()
    except lessons.SourcesMissing as err:
        raise BundleError(f"releasing the lessons needs their sources: {err}") from None
    released = []
    with tempfile.TemporaryDirectory(prefix="bundle-release-") as tmp:
        c = config.load_config(tmp, source)
        c.CourseDirectory.db_url = f"sqlite:///{Path(tmp) / 'gradebook.db'}"
        api = NbGraderAPI(config=c)  # one course for all lessons: nbgrader's set-up is slow
        for lesson in lessons.list_lessons(source):
            result = api.generate_assignment(lesson.id, force=True, create=True)
            if not result.get("success"):
                raise BundleError(f"nbgrader could not release {lesson.id}: "
                                  f"{result.get('error')}; run `tinyml-edu course check "
                                  f"{lesson.id}` to see why")
            shutil.copytree(Path(tmp) / "release" / lesson.id, dest / lesson.id)
            for lang in langs:
                translated = dest.with_name(f"{dest.name}-{lang}") / lesson.id
                shutil.copytree(Path(tmp) / "release" / lesson.id, translated)
                translate.translate_folder(translated, lesson, lang)
            released.append(lesson.id)
            log(f"released {lesson.id}" + (f" (and {', '.join(langs)})" if langs else ""))
    return released


def check_student_files(root: Path, skip: tuple[str, ...] = (),
                        hidden_lines: list[str] | None = None) -> None:
    """Refuse a bundle (or any folder students get) that holds a solution or a hidden test of
    the lesson sources: an nbgrader marker line or the text of a hidden test line
    (``hidden_lines``, default: those of the lesson sources found now)."""
    from tinyml_edu.course import leaks

    if hidden_lines is None:
        hidden_lines = leaks.secrets()
    found = leaks.scan(root, hidden_lines, skip)
    if found:
        listed = "\n".join(f"  {leak}" for leak in found[:20])
        raise BundleError(f"{len(found)} answer(s) would reach students:\n{listed}\n"
                          "ship only released lessons (nbgrader's generate_assignment) and a "
                          "tinyml-edu wheel without lesson sources")


def _part_of(rel: str) -> str:
    if rel.startswith("wheelhouse/"):
        return "tinyml-edu wheel" if rel.startswith("wheelhouse/tinyml_edu-") else "dependencies"
    return rel.split("/", 1)[0] if "/" in rel else "scripts and notes"


def part_sizes(root: Path | str) -> dict[str, int]:
    """Bytes per part of a bundle (dependencies, tinyml-edu wheel, lessons, datasets, ...)."""
    root = Path(root)
    sizes: dict[str, int] = {}
    for rel in bundle_files(root) + [MANIFEST]:
        if (root / rel).is_file():
            part = _part_of(rel)
            sizes[part] = sizes.get(part, 0) + (root / rel).stat().st_size
    return sizes


def _write_scripts(root: Path, target: Target, python: str, wheel_name: str) -> None:
    from tinyml_edu.bundle import checksums
    from tinyml_edu.bundle.scripts import render

    # The install scripts run this copy before installing: a damaged stick says so at once.
    shutil.copyfile(checksums.__file__, root / "verify_bundle.py")
    for name, text in render(target.os, python, wheel_name, target.platforms[0]).items():
        path = root / name
        # Windows scripts need CRLF for cmd.exe; the shell script must keep LF.
        path.write_text(text, encoding="utf-8", newline="\r\n" if name.endswith(
            (".bat", ".ps1")) or (name == "START-HERE.txt" and target.os == "windows") else "\n")
        if name.endswith(".sh"):
            path.chmod(0o755)


def build(out: Path | str, os_name: str = "linux", python: str | None = None,
          wheel: Path | str | None = None, log: Log = print,
          langs: tuple[str, ...] = ()) -> dict[str, int]:
    """Build a bundle in ``out`` for ``os_name`` and CPython ``python`` (default: this one),
    with the lessons in English (``lessons/``) and in each of ``langs`` (``lessons-<lang>/``).

    Work happens in ``OUT.partial`` (kept when interrupted: the next build reuses its downloads);
    only a finished bundle replaces ``out``, and only if ``out`` is empty or an older bundle.
    Returns the size of each part in bytes.
    """
    from tinyml_edu import __version__

    if os_name not in TARGETS:
        raise BundleError(f"unknown --os {os_name!r}; choose one of {', '.join(TARGETS)}")
    target = TARGETS[os_name]
    python = python or f"{sys.version_info[0]}.{sys.version_info[1]}"
    if python not in ("3.10", "3.11", "3.12"):
        raise BundleError(f"tinyml-edu supports Python 3.10-3.12, not {python}; "
                          "use --python 3.11 (recommended)")
    out = Path(out).resolve()
    if out.exists() and any(out.iterdir()) and not (out / INFO).is_file():
        raise BundleError(f"{out} holds other files; give an empty or new folder for --out "
                          "(an older bundle there would be replaced)")
    staging = out.with_name(out.name + ".partial")
    staging.mkdir(parents=True, exist_ok=True)
    # Rebuilt every time (small); wheels are reused. "datasets" only from older builds.
    for leftover in ("lessons", "datasets", *(f"lessons-{lang}" for lang in i18n.LANGUAGES)):
        shutil.rmtree(staging / leftover, ignore_errors=True)
    (staging / MANIFEST).unlink(missing_ok=True)
    wheelhouse = staging / "wheelhouse"
    wheelhouse.mkdir(exist_ok=True)
    for old in wheelhouse.glob("tinyml_edu-*.whl"):
        old.unlink()

    if wheel is not None:
        wheel_path = Path(wheel)
        if not wheel_path.is_file():
            raise BundleError(f"--wheel {wheel_path} not found")
        shutil.copy2(wheel_path, wheelhouse / wheel_path.name)
        wheel_path = wheelhouse / wheel_path.name
    else:
        wheel_path = build_wheel(wheelhouse, log)
    check_wheel_carries_data(wheel_path)
    download_wheelhouse(wheelhouse, target, python, log)
    # A wheel left from an earlier build with other requirements would be dead weight.
    _prune_wheelhouse(wheelhouse, wheel_path, target, python)

    release_lessons(staging / "lessons", log, langs)
    # No datasets/ folder: the data sets travel once, inside the tinyml-edu wheel (53 MB), and
    # the installed package finds them there (datasets.data_dir()).
    _write_scripts(staging, target, python, wheel_path.name)
    # Only the dependencies from PyPI are left out: they cannot hold this course's sources.
    check_student_files(staging, skip=_third_party_wheels(wheelhouse, wheel_path))
    wheels = sorted(p.name for p in wheelhouse.glob("*.whl"))
    (staging / INFO).write_text(json.dumps({
        "tinyml_edu": __version__, "os": target.os, "python": python,
        "platform": target.platforms[0], "wheels": len(wheels),
        "tinyml_edu_wheel": wheel_path.name,
    }, indent=2) + "\n", encoding="utf-8")
    write_manifest(staging)

    if out.exists():  # an older bundle: swap, then delete it
        old = out.with_name(out.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
        os.replace(staging, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, out)
    return part_sizes(out)


def _third_party_wheels(wheelhouse: Path, wheel_path: Path) -> tuple[str, ...]:
    return tuple(f"wheelhouse/{whl.name}" for whl in wheelhouse.glob("*.whl")
                 if whl.name != wheel_path.name)


def _prune_wheelhouse(wheelhouse: Path, wheel_path: Path, target: Target, python: str) -> None:
    """Drop wheels an earlier build left that this one's resolution no longer needs."""
    report = wheelhouse.parent / "resolution.json"
    cmd = _pip_for_target(target, python, [
        # --isolated: only this wheelhouse counts, not a find-links from pip's own config.
        "install", "--isolated", "--dry-run", "--ignore-installed", "--no-index", "--find-links",
        str(wheelhouse), "--target", str(wheelhouse.parent / "unused"), "--quiet",
        "--report", str(report), str(wheel_path)])
    _run(cmd, "checking the wheelhouse")
    needed = {Path(item["download_info"]["url"]).name
              for item in json.loads(report.read_text())["install"]}
    report.unlink()
    for whl in wheelhouse.glob("*.whl"):
        if unquote(whl.name) not in {unquote(n) for n in needed}:
            whl.unlink()


def format_sizes(sizes: dict[str, int]) -> str:
    order = ["dependencies", "tinyml-edu wheel", "lessons", "datasets", "scripts and notes"]
    parts = sorted(sizes, key=lambda p: order.index(p) if p in order else len(order))
    width = max(len(p) for p in parts)
    lines = [f"  {p:<{width}}  {sizes[p] / 1e6:9.1f} MB" for p in parts]
    lines.append(f"  {'total':<{width}}  {sum(sizes.values()) / 1e6:9.1f} MB")
    return "\n".join(lines)
