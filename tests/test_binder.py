"""The Binder environment stays pinned inside the package's own requirements."""

from __future__ import annotations

import re
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.version import Version

from tinyml_edu import locks

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest's own dependency. Not pip's vendored copy:
    # importing pip turns off setuptools' distutils shim, and nbgrader 0.9.5 then fails to import.
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"
# Binder builds Linux x86-64 images with the Python of runtime.txt: judge markers there.
BINDER_ENV = dict(default_environment(), sys_platform="linux", platform_system="Linux",
                  platform_machine="x86_64", os_name="posix")


def _pins() -> dict[str, Version]:
    return {name: Version(v) for name, v in locks.read_lock(BINDER / "requirements.txt").items()}


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_runtime_is_a_supported_python():
    runtime = (BINDER / "runtime.txt").read_text().strip()
    match = re.fullmatch(r"python-(\d+\.\d+)", runtime)
    assert match, f"runtime.txt must read python-X.Y, not {runtime!r}"
    from packaging.specifiers import SpecifierSet

    assert Version(match.group(1)) in SpecifierSet(_project()["requires-python"])


def test_every_dependency_is_pinned_inside_pyproject_range():
    pins = _pins()
    env = dict(BINDER_ENV, python_version=(BINDER / "runtime.txt").read_text().strip()[7:])
    wanted = [Requirement(r) for r in _project()["dependencies"]]
    for req in wanted:
        name = locks.normalize(req.name)
        applies = req.marker is None or req.marker.evaluate(env)
        if not applies:
            assert name not in pins, f"{name} is not for Linux in pyproject.toml; drop its pin"
            continue
        assert name in pins, f"binder/requirements.txt lacks {req.name} (pyproject: {req})"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"binder pins {name}=={pins[name]}, outside pyproject.toml's {req.specifier}")


def test_post_build_installs_package_and_student_side_of_nbgrader():
    script = (BINDER / "postBuild").read_text()
    assert script.startswith("#!/bin/bash") and (BINDER / "postBuild").stat().st_mode & 0o111
    assert "pip install --no-cache-dir --no-deps ." in script
    for off in ("@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                "nbgrader.server_extensions.formgrader"):
        assert re.search(rf"disable .*{re.escape(off)}$", script, re.M), off
    for on in ("@jupyter/nbgrader:assignment-list", "@jupyter/nbgrader:validate-assignment",
               "nbgrader.server_extensions.validate_assignment"):
        assert re.search(rf"enable .*{re.escape(on)}$", script, re.M), on


def test_readme_has_badge_and_nbgitpuller_link():
    readme = (BINDER / "README.md").read_text()
    assert "mybinder.org/badge_logo.svg" in readme
    assert "urlpath=git-pull%3Frepo%3D" in readme


def _runtime_python() -> str:
    return (BINDER / "runtime.txt").read_text().strip().removeprefix("python-")


def test_requirements_are_the_linux_lock_for_runtime_python_plus_nbgitpuller():
    header = locks.header_value(BINDER / "requirements.txt", locks.TARGET_LINE) or ""
    assert f"os=linux python={_runtime_python()} " in header, (
        f"binder/requirements.txt was not compiled for Linux and runtime.txt's Python; run "
        f"`{locks.REFRESH_COMMAND}`")
    binder = locks.read_lock(BINDER / "requirements.txt")
    linux = locks.read_lock(locks.lock_path("linux", _runtime_python()))
    assert "nbgitpuller" in binder
    assert {name: binder.get(name) for name in linux} == linux, (
        "binder/requirements.txt and the Linux lock pin different versions; run "
        f"`{locks.REFRESH_COMMAND}`")
