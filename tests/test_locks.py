"""The locks (locks/*.txt, binder/requirements.txt) agree with pyproject.toml; offline."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from tinyml_edu import locks
from tinyml_edu.bundle.build import TARGETS

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest's own dependency. Not pip's vendored copy:
    # importing pip turns off setuptools' distutils shim, and nbgrader 0.9.5 then fails to import.
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
LOCKS = sorted(p for p in (ROOT / "locks").glob("*.txt") if p.name != "constraints.txt")
ALL_LOCKS = LOCKS + [ROOT / "binder" / "requirements.txt"]


def _target(path: Path) -> dict[str, str]:
    """The ``key=value`` fields of a lock's ``# tinyml-edu lock:`` header line."""
    line = locks.header_value(path, locks.TARGET_LINE)
    assert line, f"{path.name} has no '{locks.TARGET_LINE}' header; run `{locks.REFRESH_COMMAND}`"
    return dict(field.split("=", 1) for field in line.split())


def _extras(target: dict[str, str]) -> tuple[str, ...]:
    return () if target["extras"] == "-" else tuple(target["extras"].split(","))


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("os_name", locks.OSES)
@pytest.mark.parametrize("python", locks.PYTHONS)
def test_every_os_and_python_has_its_lock(os_name, python):
    path = locks.lock_path(os_name, python)
    assert path.is_file(), f"{path.name} is missing; run `{locks.REFRESH_COMMAND}`"
    target = _target(path)
    assert (target["os"], target["python"], target["extras"]) == (os_name, python, "-")


@pytest.mark.parametrize("path", ALL_LOCKS, ids=_rel)
def test_lock_was_compiled_from_the_current_inputs(path):
    target = _target(path)
    files = [name for name in target["inputs"].split(",") if name != "pyproject.toml"]
    texts = {name: (ROOT / name).read_text(encoding="utf-8") for name in files}
    expected = locks.inputs_digest(PROJECT, _extras(target), texts)
    assert locks.header_value(path, locks.DIGEST_LINE) == expected, (
        f"{_rel(path)} is stale: pyproject.toml or {', '.join(files)} changed since it was "
        f"compiled; run `{locks.REFRESH_COMMAND}` and commit the locks")


@pytest.mark.parametrize("path", ALL_LOCKS, ids=_rel)
def test_lock_pins_every_direct_requirement_inside_its_range(path):
    target = _target(path)
    pins = locks.read_lock(path)
    env = TARGETS[target["os"]].marker_environment(target["python"])
    wanted = [(Requirement(r), "") for r in PROJECT["dependencies"]]
    wanted += [(Requirement(r), extra) for extra in _extras(target)
               for r in PROJECT["optional-dependencies"][extra]]
    for req, extra in wanted:
        name = locks.normalize(req.name)
        if req.marker is not None and not req.marker.evaluate(dict(env, extra=extra)):
            assert name not in pins, f"{_rel(path)} pins {name}, which is not for {target['os']}"
            continue
        assert name in pins, f"{_rel(path)} lacks {req}; run `{locks.REFRESH_COMMAND}`"
        assert req.specifier.contains(Version(pins[name]), prereleases=True), (
            f"{_rel(path)} pins {name}=={pins[name]}, outside pyproject's {req.specifier}")


@pytest.mark.parametrize("path", ALL_LOCKS, ids=_rel)
def test_every_pin_carries_its_hashes(path):
    # pip's --require-hashes mode refuses a whole file if one pin lacks a hash.
    blocks = re.split(r"\n(?=[A-Za-z0-9])", path.read_text(encoding="utf-8"))
    pinned = [block for block in blocks if "==" in block.split("\n", 1)[0]]
    assert len(pinned) == len(locks.read_lock(path))
    for block in pinned:
        assert "--hash=sha256:" in block, f"{block.splitlines()[0]} has no hash in {path.name}"


def test_ci_installs_from_locks_that_exist():
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    named = set(re.findall(r"locks/([\w.-]+\.txt)", script))
    assert {"ci-linux-py3.11.txt", "ci-board-linux-py3.11.txt"} <= named
    for name in named:
        assert (ROOT / "locks" / name).is_file(), f".ci/run names locks/{name}, which is missing"
    assert subprocess.run(["bash", "-n", str(ROOT / ".ci" / "run")]).returncode == 0


def test_wheel_carries_the_locks():
    build = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["hatch"]
    assert build["build"]["targets"]["wheel"]["force-include"]["locks"] == "tinyml_edu/_locks"


# The library tinyml-edu doctor uses.

SAMPLE = """\
# tinyml-edu lock: os=linux python=3.11 extras=- inputs=pyproject.toml
# inputs-sha256: abc
Tensorflow_CPU==2.21.0 \\
    --hash=sha256:0000
    # via tinyml-edu (pyproject.toml)
backports.strenum==1.2.8 \\
    --hash=sha256:1111
jupyter-server[lsp]==2.17.0
tflite-micro==0.dev20261023182759 ; sys_platform == 'linux'
"""


def test_read_lock_normalizes_names_and_skips_comments(tmp_path):
    path = tmp_path / "lock.txt"
    path.write_text(SAMPLE)
    assert locks.read_lock(path) == {"tensorflow-cpu": "2.21.0", "backports-strenum": "1.2.8",
                                     "jupyter-server": "2.17.0",
                                     "tflite-micro": "0.dev20261023182759"}
    assert locks.header_value(path, locks.DIGEST_LINE) == "abc"


def test_read_lock_of_a_missing_or_empty_file_says_how_to_refresh(tmp_path):
    with pytest.raises(locks.LockError, match="refresh_locks"):
        locks.read_lock(tmp_path / "none.txt")
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(locks.LockError, match="pins nothing"):
        locks.read_lock(tmp_path / "empty.txt")


def test_compare_installed_lists_other_versions_and_missing_packages():
    lock = {"numpy": "2.4.6", "tqdm": "4.70.1", "pyserial": "3.5"}
    installed = {"numpy": "2.4.6", "tqdm": "4.66.0"}
    assert locks.compare_installed(lock, installed) == [("pyserial", "3.5", None),
                                                        ("tqdm", "4.70.1", "4.66.0")]


def test_compare_installed_reads_this_environment():
    from importlib.metadata import version

    pytest_version = version("pytest")
    assert locks.compare_installed({"pytest": pytest_version}) == []
    assert locks.compare_installed({"pytest": "0.0.1"}) == [("pytest", "0.0.1", pytest_version)]


def test_inputs_digest_follows_requirements_not_their_order():
    project = {"requires-python": ">=3.10", "dependencies": ["numpy>=1.26", "tqdm>=4"],
               "optional-dependencies": {"test": ["pytest>=8"]}}
    digest = locks.inputs_digest(project)
    assert locks.inputs_digest(dict(project, dependencies=["tqdm >= 4", "numpy>=1.26"])) == digest
    assert locks.inputs_digest(dict(project, dependencies=["numpy>=2", "tqdm>=4"])) != digest
    assert locks.inputs_digest(project, ("test",)) != digest
    assert locks.inputs_digest(project, (), {"binder/requirements.in": "x"}) != digest
    with pytest.raises(locks.LockError, match="no extra docs"):
        locks.inputs_digest(project, ("docs",))


def test_lock_path_names_and_refuses_unknown_targets():
    assert locks.lock_path("windows", "3.12").name == "windows-py3.12.txt"
    assert locks.lock_path("linux", "3.11", "ci").name == "ci-linux-py3.11.txt"
    with pytest.raises(locks.LockError, match="choose one of"):
        locks.lock_path("freebsd", "3.11")
    with pytest.raises(locks.LockError, match="3.10-3.12"):
        locks.lock_path("linux", "3.9")


# The bundle downloads the target's lock, hashes checked.

def test_bundle_downloads_the_targets_lock_with_hashes(monkeypatch, tmp_path):
    from tinyml_edu.bundle import build

    ran = []
    monkeypatch.setattr(build, "_run", lambda cmd, what: ran.append(cmd))
    build.download_wheelhouse(tmp_path, build.TARGETS["windows"], "3.12", log=lambda _: None)
    (cmd,) = ran
    assert "--require-hashes" in cmd and "win_amd64" in cmd
    assert cmd[cmd.index("--requirement") + 1] == str(locks.lock_path("windows", "3.12"))
    assert cmd[cmd.index("--python-version") + 1] == "3.12"


def test_bundle_without_its_lock_says_how_to_refresh(monkeypatch, tmp_path):
    from tinyml_edu.bundle import build

    monkeypatch.setattr(locks, "locks_dir", lambda: tmp_path)
    with pytest.raises(build.BundleError, match="refresh_locks"):
        build.download_wheelhouse(tmp_path, build.TARGETS["linux"], "3.11", log=lambda _: None)
