"""`tinyml-edu doctor`: what is installed, what works, and what to do about what doesn't.

Each check imports or runs the real thing (a broken TensorFlow install fails at import, not at
``pip list``), never raises, and says what to do when something is missing.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tinyml_edu._fd import capture_fd2


@dataclass
class Check:
    name: str
    ok: bool
    detail: str  # version or what was found
    fix: str = ""  # what to do when not ok
    required: bool = True  # a missing required part means the core is broken
    seconds: float = 0.0
    note: str = ""  # shown even when ok: something worth knowing that is not a fault


def _module_check(name: str, module: str, fix: str, required: bool = True,
                  attr: str = "__version__") -> Check:
    start = time.perf_counter()
    try:
        with capture_fd2():  # TensorFlow greets us with pages of C++ log lines
            mod = importlib.import_module(module)
        version = str(getattr(mod, attr, "") or _dist_version(module))
        return Check(name, True, version, required=required,
                     seconds=time.perf_counter() - start)
    except Exception as err:  # ImportError, but also protobuf VersionError and friends
        return Check(name, False, f"{type(err).__name__}: {err}", fix, required,
                     time.perf_counter() - start)


def _dist_version(module: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(module.replace("_", "-"))
    except metadata.PackageNotFoundError:
        return "installed"


def _tool_check(name: str, command: str, version_args: list[str], fix: str) -> Check:
    path = shutil.which(command)
    if not path:
        return Check(name, False, "not on PATH", fix, required=False)
    try:
        out = subprocess.run([path, *version_args], capture_output=True, text=True, timeout=20)
        first_line = (out.stdout or out.stderr).strip().splitlines()[:1]
        return Check(name, True, f"{path} ({first_line[0] if first_line else 'found'})",
                     required=False)
    except (OSError, subprocess.SubprocessError) as err:
        return Check(name, False, f"{path} does not run: {err}", fix, required=False)


def _is_board_port(port) -> bool:
    """Boards reach the computer over USB. A port with no USB vendor id is a built-in UART
    (Linux's /dev/ttyS0..31, Windows' COM1), never a board."""
    return getattr(port, "vid", None) is not None


def _serial_ports() -> Check:
    try:
        from serial.tools import list_ports
    except ImportError as err:
        return Check("serial ports", False, str(err), "pip install pyserial", required=True)
    ports = [p.device for p in list_ports.comports() if _is_board_port(p)]
    if ports:
        return Check("serial ports", True, ", ".join(ports), required=False)
    return Check("serial ports", False, "no USB board found",
                 "Plug the board in with a data (not charge-only) USB cable; on Linux add "
                 "yourself to the 'dialout' group. Or use the virtual board: --port virtual",
                 required=False)


def _datasets_check() -> Check:
    from tinyml_edu import datasets

    try:
        problems = datasets.verify()
    except datasets.DatasetError as err:
        return Check("shipped data sets", False, str(err), "restore the datasets folder")
    names = ", ".join(datasets.registry()) or "none"
    if problems:
        return Check("shipped data sets", False, f"{len(problems)} bad file(s): {problems[0]}",
                     "run `tinyml-edu data verify` for the full list")
    return Check("shipped data sets", True, f"{names} (checksums verified)")


def _emulator_check() -> Check:
    """Optional: `tinyml-edu verify RUN_DIR --on cortex-m4` measures instructions per inference
    on an emulated Cortex-M4 instead of estimating latency from MACs."""
    from tinyml_edu import emulator

    ok, detail = emulator.available()
    fix = ("Optional: measures instructions per inference (`tinyml-edu verify RUN_DIR --on "
           f"cortex-m4`). {emulator.INSTALL_HINT}; the Arduino kit is found through "
           f"${emulator.KIT_ENV}.")
    return Check("emulated Cortex-M4", ok, detail, "" if ok else fix, required=False)


def _virtual_board_check() -> Check:
    from tinyml_edu import virtual_board

    if virtual_board.has_pty():
        return Check("virtual board", True, "pseudo-terminals available: --port virtual works",
                     required=False)
    return Check("virtual board", False, "no pseudo-terminals on this system",
                 "The virtual board needs Linux or macOS (on Windows: WSL or Binder).",
                 required=False)


# The CPU features that change what TensorFlow does on a laptop: AVX2 (every wheel since 2.x
# wants it), AVX-512, and the neural-network extensions that switch oneDNN on by default.
CPU_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile",
                "amx_int8", "amx_bf16")
# TensorFlow's own rule (tensorflow/core/util/util.cc, DefaultOneDnnPolicy, 2.x): with
# TF_ENABLE_ONEDNN_OPTS unset, oneDNN is on on Linux when the CPU has one of these, on for
# Windows x86 builds, off on macOS (its wheels are built without oneDNN).
ONEDNN_DEFAULT_ON = ("avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8",
                     "amx_bf16")
NEOVERSE_V1_PART = "0xd40"  # the one Arm CPU the rule also switches on (Linux aarch64)


def _normal(flag: str) -> str:
    # Linux says avx512_vnni, macOS' sysctl says AVX512VNNI
    return flag.lower().replace("_", "").replace(".", "")


def cpu_flags(cpuinfo: Path | str = "/proc/cpuinfo", system: str | None = None) -> set[str] | None:
    """The CPU's feature flags in Linux's spelling, or None when this OS does not say."""
    system = system or platform.system()
    if system == "Linux":
        try:
            text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("flags", "Features"):  # x86, Arm
                found = {_normal(f) for f in value.split()}
                return {f for f in CPU_FEATURES if _normal(f) in found} | (
                    {"neoverse_v1"} if f"CPU part\t: {NEOVERSE_V1_PART}" in text else set())
        return None
    if system == "Darwin":
        try:
            out = subprocess.run(["sysctl", "-n", "machdep.cpu.features",
                                  "machdep.cpu.leaf7_features"], capture_output=True,
                                 text=True, timeout=5).stdout
        except (OSError, subprocess.SubprocessError):
            return None
        found = {_normal(f) for f in out.split()}
        return {f for f in CPU_FEATURES if _normal(f) in found} if found else None
    return None  # Windows: no registry-free way to ask; say "unknown" rather than guess


def onednn_state(flags: set[str] | None, system: str, machine: str,
                 env: dict[str, str] | None = None) -> tuple[bool | None, str]:
    """Whether TensorFlow turns its oneDNN kernels on here, and why (TensorFlow's rule)."""
    env = os.environ if env is None else env
    setting = env.get("TF_ENABLE_ONEDNN_OPTS")
    if setting is not None and setting.strip().lower() in ("1", "true"):
        return True, f"TF_ENABLE_ONEDNN_OPTS={setting}"
    if setting is not None and setting.strip().lower() in ("0", "false"):
        return False, f"TF_ENABLE_ONEDNN_OPTS={setting}"
    unset = "TF_ENABLE_ONEDNN_OPTS unset" if setting is None else (
        f"TF_ENABLE_ONEDNN_OPTS={setting!r} is not 0/1/true/false, so TensorFlow's default")
    if system == "Darwin":
        return False, f"{unset}; TensorFlow for macOS has no oneDNN"
    if system == "Windows":
        x86 = machine.lower() in ("amd64", "x86_64")
        return x86, f"{unset}; TensorFlow's default on Windows {machine}"
    if system != "Linux":
        return None, f"{unset}; unknown on {system}"
    if flags is None:
        return None, f"{unset}; the CPU's features are unknown"
    triggers = sorted(flags & {*ONEDNN_DEFAULT_ON, "neoverse_v1"})
    if triggers:
        return True, f"{unset}; on by default with {', '.join(triggers)}"
    return False, f"{unset}; off by default without AVX-512 VNNI/BF16 or AMX"


def _cpu_check(cpuinfo: Path | str = "/proc/cpuinfo", system: str | None = None,
               machine: str | None = None, env: dict[str, str] | None = None) -> Check:
    system, machine = system or platform.system(), machine or platform.machine()
    flags = cpu_flags(cpuinfo, system)
    if flags is None:
        features = "features unknown"
    else:
        avx512 = sorted(f for f in flags if f.startswith("avx512"))
        amx = sorted(f for f in flags if f.startswith("amx"))
        features = (f"AVX2 {'yes' if 'avx2' in flags else 'no'}, AVX-512 "
                    + (f"yes ({', '.join(avx512)})" if avx512 else "no")
                    + (f", AMX yes ({', '.join(amx)})" if amx else ", AMX no"))
    onednn, why = onednn_state(flags, system, machine, env)
    state = {True: "on", False: "off", None: "unknown"}[onednn]
    detail = f"{machine}: {features}; oneDNN {state} ({why})"
    note = ("" if onednn is not True else
            "Not a fault: oneDNN gives slightly different numbers than the course's reference "
            "(oneDNN off). To match it: set TF_ENABLE_ONEDNN_OPTS=0 before starting Jupyter.")
    return Check("CPU", True, detail, required=False, note=note)  # informational


VERSIONS_SHOWN = 6  # differing packages named on the line; the rest are counted


def _versions_check() -> Check | None:
    """Installed versions against the lock of this OS and Python (what Binder, the bundle and
    CI install), so two laptops can be compared. A difference is information, not a fault:
    `pip install .` takes the newest versions the ranges allow."""
    from tinyml_edu import locks

    path = locks.current_lock_path()
    if path is None:
        return None  # no lock for this OS / Python: nothing to compare with
    try:
        differences = locks.compare_installed(locks.read_lock(path))
    except locks.LockError as err:
        return Check("versions vs lock", False, str(err), "reinstall tinyml-edu", required=False)
    if not differences:
        return Check("versions vs lock", True, f"every package matches {path.name}",
                     required=False)
    shown = ", ".join(f"{name} {installed or 'missing'} (lock {locked})"
                      for name, locked, installed in differences[:VERSIONS_SHOWN])
    more = len(differences) - VERSIONS_SHOWN
    detail = f"{len(differences)} differ from {path.name}: {shown}" + (
        f" and {more} more" if more > 0 else "")
    return Check("versions vs lock", True, detail, required=False,
                 note=f"to match exactly: pip install --require-hashes -r {path}")


# ---- one training step of every project's model, in a child process ----

TRAIN_STEP_TIMEOUT = 180.0  # seconds per project, TensorFlow's import included


def _train_step_child(names: Iterable[str]) -> None:
    """Child process: one step of each project's model; a JSON line before and after each."""
    from tinyml_edu import pipeline
    from tinyml_edu._fd import import_tensorflow

    import_tensorflow()  # before the clock starts: each line times its own training step
    for name in names:
        print(json.dumps({"project": name, "event": "start"}), flush=True)
        start = time.perf_counter()
        try:
            loss = pipeline.train_one_step(name)
            event = {"event": "done", "loss": loss}
        except Exception as err:  # reported by the parent as a FAIL line
            event = {"event": "error", "error": f"{type(err).__name__}: {err}"[:500]}
        event.update(project=name, seconds=time.perf_counter() - start)
        print(json.dumps(event), flush=True)


def _train_step_fix(project: str) -> str:
    flip = "1" if os.environ.get("TF_ENABLE_ONEDNN_OPTS", "").strip() in ("0", "false") else "0"
    return (f"This machine's TensorFlow cannot train the {project} model: the lessons and "
            f"`tinyml-edu run {project}` that train it will fail here. Try "
            f"TF_ENABLE_ONEDNN_OPTS={flip} (set it before starting Jupyter) and run doctor "
            "again; if that does not help, reinstall TensorFlow in a fresh virtual environment "
            "and show this line to your instructor.")


def _pump(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)  # end of the child's output


CHILD_CODE = ("import sys; from tinyml_edu.doctor import _train_step_child; "
              "_train_step_child(sys.argv[1:])")


def _run_train_child(names: list[str], timeout: float,
                     code: str = CHILD_CODE) -> tuple[list[Check], list[str]]:
    """One child for ``names``; returns the checks it finished and the names it never
    started (after a crash or a hang, the caller starts a new child for those)."""
    package_root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p),
        "TINYML_EDU_TF_LOGS": "all"}  # its stderr is kept whole, for the FAIL line
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen([sys.executable, "-c", code, *names], stdout=subprocess.PIPE,
                                stderr=errors, text=True, env=env)
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
        checks: list[Check] = []
        current, started = names[0], time.perf_counter()
        while True:
            try:
                line = lines.get(timeout=max(0.1, timeout - (time.perf_counter() - started)))
            except queue.Empty:
                proc.kill()
                proc.wait()
                checks.append(Check(f"train {current}", False,
                                    f"no answer after {timeout:.0f} s", _train_step_fix(current),
                                    seconds=time.perf_counter() - started))
                break
            if line is None:  # the child ended
                status = proc.wait()
                if current is not None and status != 0:
                    errors.seek(0)
                    tail = errors.read().decode(errors="replace").strip().splitlines()[-3:]
                    how = f"signal {-status}" if status < 0 else f"exit code {status}"
                    checks.append(Check(f"train {current}", False,
                                        f"TensorFlow crashed ({how}): {' | '.join(tail)}"[:600],
                                        _train_step_fix(current),
                                        seconds=time.perf_counter() - started))
                break
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue  # something in the child printed to stdout: not ours
            if not isinstance(event, dict) or "event" not in event:
                continue
            if event["event"] == "start":
                current, started = event["project"], time.perf_counter()
                continue
            ok = event["event"] == "done"
            detail = (f"one training step in {event['seconds']:.1f} s (loss {event['loss']:.3g})"
                      if ok else event["error"])
            checks.append(Check(f"train {event['project']}", ok, detail,
                                "" if ok else _train_step_fix(event["project"]),
                                seconds=event["seconds"]))
            current = None
    done = {c.name.removeprefix("train ") for c in checks}
    return checks, [n for n in names if n not in done]


def train_step_checks(names: Iterable[str] | None = None,
                      timeout: float = TRAIN_STEP_TIMEOUT) -> list[Check]:
    """Train one step of each project's model (each model family the lessons use) in a child
    process, so that a crash of the TensorFlow runtime becomes a FAIL line naming the project."""
    from tinyml_edu.projects import PROJECTS

    remaining = list(PROJECTS if names is None else names)
    checks: list[Check] = []
    while remaining:
        finished, remaining = _run_train_child(remaining, timeout)
        checks += finished
        if not finished:  # nothing moved: do not loop forever
            break
    return checks


def run_checks(train_steps: bool = False) -> list[Check]:
    """Every check, in the order a student would fix them. ``train_steps``: also train one
    step of each project's model in a child process (about 20 s on 2 cores; the command line
    does, ``doctor --quick`` does not; lesson 00 keeps to the quick checks)."""
    tflm_fix = ("tflite-micro has wheels only for Linux x86-64. Elsewhere arenas are labelled "
                "estimates; for measured ones use Binder or a Linux machine.")
    py_ok = (3, 10) <= sys.version_info[:2] <= (3, 12)
    checks = [
        Check("python", py_ok, f"{platform.python_version()} on {platform.system()} "
              f"{platform.machine()}", "use Python 3.10, 3.11 or 3.12"),
        _module_check("numpy", "numpy", "pip install numpy"),
        _module_check("tensorflow", "tensorflow",
                      "pip install 'tensorflow-cpu~=2.21.0' (macOS: 'tensorflow~=2.21.0'); if it "
                      "is installed but fails to import, reinstall it in a fresh virtual "
                      "environment"),
        _module_check("LiteRT (ai-edge-litert)", "ai_edge_litert", "pip install ai-edge-litert"),
        _module_check("TFLM (tflite-micro)", "tflite_micro", tflm_fix, required=False,
                      attr="__nonexistent__"),
        _module_check("matplotlib", "matplotlib", "pip install matplotlib"),
        _module_check("soundfile", "soundfile", "pip install soundfile (Linux may also need "
                      "`apt install libsndfile1`)"),
        _module_check("nbgrader", "nbgrader", "pip install nbgrader", required=False),
        _datasets_check(),
        _tool_check("arm-none-eabi-gcc", "arm-none-eabi-gcc", ["--version"],
                    "Optional: measures flash on the board's CPU. Debian/Ubuntu: "
                    "apt install gcc-arm-none-eabi"),
        _tool_check("arduino-cli", "arduino-cli", ["version"],
                    "Optional: compiles and uploads sketches. Get it from the Arduino website "
                    "(arduino.github.io/arduino-cli) or use the Arduino IDE to open the sketch "
                    "folder that `tinyml-edu deploy` writes."),
        _serial_ports(),
        _virtual_board_check(),
        _emulator_check(),
        _cpu_check(),
    ]
    versions = _versions_check()
    if versions is not None:
        checks.append(versions)
    if train_steps:
        checks += train_step_checks()
    return checks


def core_ok(checks: list[Check]) -> bool:
    return all(c.ok for c in checks if c.required)


def format_checks(checks: list[Check]) -> str:
    lines = []
    width = max(len(c.name) for c in checks)
    for c in checks:
        mark = "ok  " if c.ok else ("FAIL" if c.required else "--  ")
        lines.append(f"[{mark}] {c.name:<{width}}  {c.detail}")
        for hint in ([c.fix] if c.fix and not c.ok else []) + ([c.note] if c.note else []):
            lines.append(f"{'':>7}{'':<{width}}  -> {hint}")
    return "\n".join(lines) + "\n\n" + _verdict(checks)


def _verdict(checks: list[Check]) -> str:
    trained = [c for c in checks if c.name.startswith("train ")]
    untrainable = [c.name.removeprefix("train ") for c in trained if not c.ok]
    if untrainable:
        return (f"TensorFlow cannot train {', '.join(untrainable)} on this machine: the lessons "
                "that train it will fail. Fix the FAIL lines above first.")
    if not core_ok(checks):
        return "Something the course needs is broken: fix the FAIL lines above first."
    if not trained:
        return ("The core works. No model was trained: `tinyml-edu doctor` without --quick "
                "trains one step of every model, to be sure every lesson runs.")
    return "The core works and every model trains: you can run every lesson."
