"""`tinyml-edu doctor`: what is installed, what works, and what to do about what doesn't.

Each check imports or runs the real thing (a broken TensorFlow install fails at import, not at
``pip list``), never raises, and says what to do when something is missing.
"""

from __future__ import annotations

import importlib
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass

from tinyml_edu._fd import capture_fd2


@dataclass
class Check:
    name: str
    ok: bool
    detail: str  # version or what was found
    fix: str = ""  # what to do when not ok
    required: bool = True  # a missing required part means the core is broken
    seconds: float = 0.0


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


def _serial_ports() -> Check:
    try:
        from serial.tools import list_ports
    except ImportError as err:
        return Check("serial ports", False, str(err), "pip install pyserial", required=True)
    ports = [p.device for p in list_ports.comports()]
    if ports:
        return Check("serial ports", True, ", ".join(ports), required=False)
    return Check("serial ports", False, "no board found",
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


def _virtual_board_check() -> Check:
    from tinyml_edu import virtual_board

    if virtual_board.has_pty():
        return Check("virtual board", True, "pseudo-terminals available: --port virtual works",
                     required=False)
    return Check("virtual board", False, "no pseudo-terminals on this system",
                 "The virtual board needs Linux or macOS (on Windows: WSL or Binder).",
                 required=False)


def run_checks() -> list[Check]:
    """Every check, in the order a student would fix them."""
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
    ]
    return checks


def core_ok(checks: list[Check]) -> bool:
    return all(c.ok for c in checks if c.required)


def format_checks(checks: list[Check]) -> str:
    lines = []
    width = max(len(c.name) for c in checks)
    for c in checks:
        mark = "ok  " if c.ok else ("FAIL" if c.required else "--  ")
        lines.append(f"[{mark}] {c.name:<{width}}  {c.detail}")
        if not c.ok and c.fix:
            lines.append(f"{'':>7}{'':<{width}}  -> {c.fix}")
    verdict = ("The core works: you can run every lesson." if core_ok(checks) else
               "Something the course needs is broken: fix the FAIL lines above first.")
    return "\n".join(lines) + "\n\n" + verdict
