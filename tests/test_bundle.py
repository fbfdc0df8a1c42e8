"""The offline bundle: checksums, verify, resumable copy, target resolution, and (slow) a real
Linux bundle installed with the network cut and lesson 01's solution run from it."""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tinyml_edu import bundle
from tinyml_edu.bundle import build, checksums, scripts, transfer

ROOT = Path(__file__).resolve().parents[1]
PY = f"{sys.version_info[0]}.{sys.version_info[1]}"


def _cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tinyml_edu.cli", *args], capture_output=True,
                          text=True, **kwargs)


@pytest.fixture()
def small_bundle(tmp_path: Path) -> Path:
    """A synthetic bundle: a few files (one of several MiB, to interrupt mid-file)."""
    root = tmp_path / "bundle"
    (root / "wheelhouse").mkdir(parents=True)
    (root / "lessons" / "01-x").mkdir(parents=True)
    (root / "wheelhouse" / "big-1.0-py3-none-any.whl").write_bytes(os.urandom(5 * 2**20 + 123))
    (root / "wheelhouse" / "small-1.0-py3-none-any.whl").write_bytes(b"small wheel")
    (root / "lessons" / "01-x" / "01-x.ipynb").write_text('{"cells": []}')
    (root / "START-HERE.txt").write_text("read me\n")
    checksums.write_manifest(root)
    return root


def _flip_byte(path: Path, offset: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= 0xFF
    path.write_bytes(bytes(data))


# --- checksums and verify -------------------------------------------------------------------


def test_manifest_is_sha256sum_format(small_bundle):
    lines = (small_bundle / "SHA256SUMS").read_text().splitlines()
    assert len(lines) == 4
    digest, rel = lines[0].split("  ")
    assert len(digest) == 64 and not rel.startswith("/")
    if shutil.which("sha256sum"):
        subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=small_bundle, check=True)


def test_verify_names_missing_and_corrupted_files(small_bundle):
    assert bundle.verify(small_bundle).ok
    _flip_byte(small_bundle / "wheelhouse" / "big-1.0-py3-none-any.whl")
    (small_bundle / "START-HERE.txt").unlink()
    (small_bundle / "stray.txt").write_text("x")
    result = bundle.verify(small_bundle)
    assert not result.ok
    assert result.corrupted == ["wheelhouse/big-1.0-py3-none-any.whl"]
    assert result.missing == ["START-HERE.txt"]
    assert result.extra == ["stray.txt"]


def test_verify_cli_exit_codes_and_fast_start(small_bundle):
    ok = _cli("bundle", "verify", str(small_bundle))
    assert ok.returncode == 0 and "all 4 files" in ok.stdout
    _flip_byte(small_bundle / "lessons" / "01-x" / "01-x.ipynb", 3)
    bad = _cli("bundle", "verify", str(small_bundle))
    assert bad.returncode == 1
    assert "corrupted: lessons/01-x/01-x.ipynb" in bad.stderr
    none = _cli("bundle", "verify", str(small_bundle / "lessons"))
    assert none.returncode == 2 and "SHA256SUMS" in none.stderr
    # `bundle` starts fast: neither TensorFlow nor nbgrader is imported to verify or copy.
    probe = subprocess.run([sys.executable, "-c", (
        "import sys; from tinyml_edu import cli; cli.main(['bundle', 'verify', sys.argv[1]]); "
        "print(sorted(m for m in ('tensorflow', 'nbgrader') if m in sys.modules))"),
        str(small_bundle)], capture_output=True, text=True)
    assert probe.stdout.strip().endswith("[]"), probe.stdout + probe.stderr


def test_standalone_verify_script_matches(small_bundle, tmp_path):
    script = tmp_path / "verify_bundle.py"
    shutil.copyfile(checksums.__file__, script)
    run = subprocess.run([sys.executable, "-I", str(script), str(small_bundle)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    (small_bundle / "wheelhouse" / "small-1.0-py3-none-any.whl").unlink()
    run = subprocess.run([sys.executable, "-I", str(script), str(small_bundle)],
                         capture_output=True, text=True)
    assert run.returncode == 1 and "missing:   wheelhouse/small-1.0" in run.stderr


def test_damaged_manifest_cannot_point_outside(small_bundle):
    with open(small_bundle / "SHA256SUMS", "a") as f:
        f.write("0" * 64 + "  ../../etc/passwd\n")
    with pytest.raises(bundle.BundleError, match="damaged"):
        bundle.verify(small_bundle)


# --- copy -----------------------------------------------------------------------------------


class PulledStick(Exception):
    pass


def test_interrupted_copy_resumes_and_verifies(small_bundle, tmp_path):
    dest = tmp_path / "stick"
    written = 0

    def pull_after_3_mib(n: int) -> None:
        nonlocal written
        written += n
        if written >= 3 * 2**20:
            raise PulledStick()

    with pytest.raises(PulledStick):
        bundle.copy(small_bundle, dest, on_bytes=pull_after_3_mib)
    assert not (dest / "SHA256SUMS").exists(), "an interrupted copy must not look complete"
    part = dest / "wheelhouse" / "big-1.0-py3-none-any.whl.part"
    assert part.is_file() and part.stat().st_size == 3 * 2**20  # the partial file is kept
    with pytest.raises(bundle.BundleError, match="not a complete bundle"):
        bundle.verify(dest)

    result = bundle.copy(small_bundle, dest)
    assert result.resumed == ["wheelhouse/big-1.0-py3-none-any.whl"]
    assert result.bytes_copied < 3 * 2**20  # only the rest was copied
    assert bundle.verify(dest).ok
    assert not list(dest.rglob("*.part"))

    again = bundle.copy(small_bundle, dest)  # everything in place: nothing copied
    assert again.copied == [] and len(again.skipped) == 4


def test_damaged_partial_file_is_copied_again(small_bundle, tmp_path):
    dest = tmp_path / "stick"
    part = dest / "wheelhouse" / "big-1.0-py3-none-any.whl.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\0" * 1000)  # not what the source holds
    result = transfer.copy(small_bundle, dest)
    assert "wheelhouse/big-1.0-py3-none-any.whl" in result.copied
    assert bundle.verify(dest).ok


def test_copy_replaces_a_corrupted_file_at_the_destination(small_bundle, tmp_path):
    dest = tmp_path / "stick"
    bundle.copy(small_bundle, dest)
    _flip_byte(dest / "wheelhouse" / "big-1.0-py3-none-any.whl")
    result = bundle.copy(small_bundle, dest)
    assert result.copied == ["wheelhouse/big-1.0-py3-none-any.whl"]
    assert bundle.verify(dest).ok


def test_copy_refuses_a_damaged_source_and_itself(small_bundle, tmp_path):
    with pytest.raises(bundle.BundleError, match="into itself"):
        bundle.copy(small_bundle, small_bundle / "inner")
    _flip_byte(small_bundle / "wheelhouse" / "big-1.0-py3-none-any.whl")
    with pytest.raises(bundle.BundleError, match="source bundle is damaged"):
        bundle.copy(small_bundle, tmp_path / "stick")
    assert not list((tmp_path / "stick").rglob("*.part"))


def test_copy_cli_killed_then_resumed(small_bundle, tmp_path):
    """A real process killed mid-copy (SIGKILL: no cleanup at all), then run again."""
    big = small_bundle / "wheelhouse" / "big-1.0-py3-none-any.whl"
    big.write_bytes(os.urandom(100 * 2**20))  # big enough to catch it mid-file
    checksums.write_manifest(small_bundle)
    dest = tmp_path / "stick"
    proc = subprocess.Popen([sys.executable, "-m", "tinyml_edu.cli", "bundle", "copy", "--quiet",
                             str(small_bundle), str(dest)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    part = dest / "wheelhouse" / (big.name + ".part")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (part.exists() and part.stat().st_size > 2**20):
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (dest / "SHA256SUMS").exists()
    run = _cli("bundle", "copy", "--quiet", str(small_bundle), str(dest))
    assert run.returncode == 0, run.stderr
    assert "all 4 files" in run.stdout and "1 resumed" in run.stdout


# --- build pieces that need no network --------------------------------------------------------


def _dependencies() -> list[Requirement]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        from pip._vendor import tomli as tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["dependencies"]]


@pytest.mark.parametrize(("os_name", "present", "absent"), [
    ("linux", {"tflite-micro", "tensorflow-cpu"}, {"tensorflow"}),
    ("windows", {"tensorflow-cpu"}, {"tflite-micro", "tensorflow"}),
    ("macos", {"tensorflow"}, {"tflite-micro", "tensorflow-cpu"}),
])
def test_target_markers_choose_the_right_packages(os_name, present, absent):
    env = build.TARGETS[os_name].marker_environment("3.11")
    chosen = {r.name for r in _dependencies() if r.marker is None or r.marker.evaluate(env)}
    assert present <= chosen and not absent & chosen


def _fake_wheel(folder: Path, name: str, requires: list[str]) -> None:
    dist = f"{name}-1.0.dist-info"
    meta = "Metadata-Version: 2.1\nName: {}\nVersion: 1.0\n{}".format(
        name, "".join(f"Requires-Dist: {r}\n" for r in requires))
    with zipfile.ZipFile(folder / f"{name}-1.0-py3-none-any.whl", "w") as z:
        z.writestr(f"{dist}/METADATA", meta)
        z.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                    "Tag: py3-none-any\n")
        z.writestr(f"{dist}/RECORD", "")


@pytest.mark.parametrize(("os_name", "expected"), [
    ("windows", {"app", "winonly"}), ("linux", {"app", "linuxonly"}), ("macos", {"app"})])
def test_pip_resolves_with_the_targets_markers(tmp_path, os_name, expected):
    """pip itself judges markers by the machine it runs on; the bundle's pip runs by the
    target's. Checked offline on a tiny local index."""
    index = tmp_path / "index"
    index.mkdir()
    _fake_wheel(index, "app", ["winonly; sys_platform == 'win32'",
                               "linuxonly; platform_system == 'Linux'"])
    _fake_wheel(index, "winonly", [])
    _fake_wheel(index, "linuxonly", [])
    out = tmp_path / "out"
    cmd = build._pip_for_target(build.TARGETS[os_name], PY, [
        "download", "--isolated", "--no-index", "--find-links", str(index), "--dest", str(out),
        "--quiet", "app"])
    subprocess.run(cmd, check=True)
    assert {p.name.split("-")[0] for p in out.glob("*.whl")} == expected


def test_scripts_per_os(tmp_path):
    linux = scripts.render("linux", "3.11", "tinyml_edu-0.1.0-py3-none-any.whl")
    assert set(linux) == {"START-HERE.txt", "install.sh"}
    assert "--no-index" in linux["install.sh"] and "python3.11" in linux["install.sh"]
    assert "--isolated" in linux["install.sh"]
    windows = scripts.render("windows", "3.11", "tinyml_edu-0.1.0-py3-none-any.whl")
    assert set(windows) == {"START-HERE.txt", "install.ps1", "install.bat"}
    assert '"py", "-3.11"' in windows["install.ps1"] and "--no-index" in windows["install.ps1"]
    assert "install.ps1" in windows["install.bat"]
    if shutil.which("sh"):
        (tmp_path / "install.sh").write_text(linux["install.sh"])
        subprocess.run(["sh", "-n", str(tmp_path / "install.sh")], check=True)  # valid sh


def test_build_refuses_a_folder_with_other_files(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(bundle.BundleError, match="holds other files"):
        build.build(tmp_path, "linux", "3.11")
    assert (tmp_path / "notes.txt").read_text() == "mine"
    with pytest.raises(bundle.BundleError, match="choose one of"):
        build.build(tmp_path / "new", "solaris", "3.11")


def test_release_lessons_removes_solutions(tmp_path):
    released = build.release_lessons(tmp_path, log=lambda _: None)
    assert "01-hello-tinyml" in released
    text = (tmp_path / "01-hello-tinyml" / "01-hello-tinyml.ipynb").read_text()
    assert "### BEGIN SOLUTION" not in text and "### BEGIN HIDDEN TESTS" not in text
    assert "raise NotImplementedError()" in text


# --- slow: a real bundle, installed with no network -----------------------------------------


def _offline(cmd: str) -> list[str]:
    """Run a shell command with the network cut (its own network namespace; loopback up, as
    Jupyter kernels talk to their client over 127.0.0.1)."""
    return ["unshare", "-n", "sh", "-c", f"ip link set lo up && {cmd}"]


def _can_cut_network() -> bool:
    if not (shutil.which("unshare") and shutil.which("ip")):
        return False
    return subprocess.run(_offline("true"), capture_output=True).returncode == 0


@pytest.fixture(scope="session")
def linux_bundle(tmp_path_factory) -> Path:
    """A Linux bundle for this Python; $TINYML_EDU_TEST_BUNDLE reuses one built earlier."""
    if sys.platform != "linux" or platform.machine() != "x86_64":
        pytest.skip("the Linux bundle installs on Linux x86-64 only")
    given = os.environ.get("TINYML_EDU_TEST_BUNDLE")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("bundle") / "linux"
    start = time.perf_counter()
    run = _cli("bundle", "build", "--out", str(out), "--os", "linux", "--python", PY,
               "--lang", "fr")
    assert run.returncode == 0, run.stdout + run.stderr
    print(f"\nbuild: {time.perf_counter() - start:.0f} s\n{run.stdout}")
    assert "dependencies" in run.stdout and "total" in run.stdout
    return out


@pytest.mark.slow
def test_linux_bundle_installs_offline_and_runs_lesson_01(linux_bundle, tmp_path):
    if not _can_cut_network():
        pytest.skip("needs `unshare -n` (root or user namespaces) and `ip`")
    info = json.loads((linux_bundle / "bundle.json").read_text())
    assert info["os"] == "linux" and info["python"] == PY
    total = sum(build.part_sizes(linux_bundle).values())
    assert total <= 700e6, f"the bundle is {total / 1e6:.0f} MB (target ≤ 700 MB)"
    wheels = {p.name.split("-")[0].lower() for p in (linux_bundle / "wheelhouse").glob("*.whl")}
    assert {"tflite_micro", "tensorflow_cpu", "tinyml_edu", "ipykernel"} <= wheels
    assert "colorama" not in wheels and "pywin32" not in wheels
    assert bundle.verify(linux_bundle).ok

    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "PYTHON": sys.executable,
           "LANG": "C.UTF-8"}
    start = time.perf_counter()
    run = subprocess.run(_offline(f"sh '{linux_bundle}/install.sh'"), env=env,
                         capture_output=True, text=True)
    seconds = time.perf_counter() - start
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    print(f"\noffline install: {seconds:.0f} s (target ≤ 300 s)")
    venv_py = home / "tinyml-edu" / "venv" / "bin" / "python"
    assert (home / "tinyml-edu" / "lessons" / "01-hello-tinyml").is_dir()
    french = home / "tinyml-edu" / "lessons" / "fr" / "01-hello-tinyml" / "01-hello-tinyml.ipynb"
    assert json.loads(french.read_text())["metadata"]["tinyml_edu"]["lang"] == "fr"

    # Lesson 01's solution (the source notebook), run by the offline install, network cut.
    work = tmp_path / "lesson"
    shutil.copytree(ROOT / "lessons" / "01-hello-tinyml", work)
    code = ("import nbformat, nbclient; "
            "nb = nbformat.read('01-hello-tinyml.ipynb', as_version=4); "
            "nbclient.NotebookClient(nb, timeout=600, kernel_name='python3', "
            "resources={'metadata': {'path': '.'}}).execute(); print('lesson ran')")
    run = subprocess.run(_offline(f"cd '{work}' && '{venv_py}' -c \"{code}\""),
                         env=dict(env, MPLBACKEND="Agg"), capture_output=True, text=True)
    assert run.returncode == 0 and "lesson ran" in run.stdout, run.stderr[-4000:]


@pytest.mark.slow
def test_linux_bundle_holds_no_answers(linux_bundle):
    """Everything in the real bundle but the dependency wheels from PyPI (the tinyml-edu wheel,
    the released lessons, the data sets, the scripts) is free of solutions and hidden tests."""
    from tinyml_edu.course import leaks

    info = json.loads((linux_bundle / "bundle.json").read_text())
    third_party = tuple(f"wheelhouse/{p.name}" for p in (linux_bundle / "wheelhouse").glob("*.whl")
                        if p.name != info["tinyml_edu_wheel"])
    assert third_party and (linux_bundle / "wheelhouse" / info["tinyml_edu_wheel"]).is_file()
    hidden_lines = leaks.secrets(ROOT / "lessons")
    assert leaks.scan(linux_bundle, hidden_lines, skip=third_party) == []
    with zipfile.ZipFile(linux_bundle / "wheelhouse" / info["tinyml_edu_wheel"]) as zf:
        assert not [n for n in zf.namelist() if n.endswith(".ipynb")]


@pytest.mark.slow
def test_linux_bundle_flipped_byte_and_interrupted_copy(linux_bundle, tmp_path):
    # Work on a copy, so a shared bundle ($TINYML_EDU_TEST_BUNDLE) is never changed; the copy is
    # interrupted after 150 MB (inside the TensorFlow wheel) and then finished.
    copied = tmp_path / "copy"
    seen = 0

    def pull(n: int) -> None:
        nonlocal seen
        seen += n
        if seen > 150e6:
            raise PulledStick()

    with pytest.raises(PulledStick):
        bundle.copy(linux_bundle, copied, on_bytes=pull)
    assert list(copied.rglob("*.part"))
    run = _cli("bundle", "copy", "--quiet", str(linux_bundle), str(copied))
    assert run.returncode == 0 and "1 resumed" in run.stdout, run.stdout + run.stderr

    victim = next(copied.glob("wheelhouse/numpy-*.whl"))
    _flip_byte(victim, 12345)
    run = _cli("bundle", "verify", str(copied))
    assert run.returncode == 1
    assert f"corrupted: wheelhouse/{victim.name}" in run.stderr
    assert run.stderr.count("corrupted:") == 1
