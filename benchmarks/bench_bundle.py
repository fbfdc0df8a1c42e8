"""The offline bundle's two targets, measured: size (≤ 700 MB for Linux and one Python) and the
install from it with the network cut (≤ 5 min on 2 cores).

    python benchmarks/bench_bundle.py                  # builds a Linux bundle for this Python
    python benchmarks/bench_bundle.py --bundle DIR     # measures an existing bundle
    python benchmarks/bench_bundle.py --lesson         # also runs lesson 01's solution from it

The install runs `install.sh` in a network namespace of its own (`unshare -n`, as root), so any
attempt to reach the network fails instead of quietly succeeding.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tinyml_edu.bundle import build  # noqa: E402

MAX_BYTES = 700e6
MAX_INSTALL_S = 300.0


def offline(cmd: str) -> list[str]:
    return ["unshare", "-n", "sh", "-c", f"ip link set lo up && {cmd}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", help="an existing bundle (default: build one)")
    parser.add_argument("--lesson", action="store_true", help="also run lesson 01's solution")
    args = parser.parse_args()
    py = f"{sys.version_info[0]}.{sys.version_info[1]}"
    work = Path(tempfile.mkdtemp(prefix="bench-bundle-"))
    try:
        if args.bundle:
            bundle = Path(args.bundle)
        else:
            bundle = work / "bundle"
            start = time.perf_counter()
            build.build(bundle, "linux", py, log=lambda _: None)
            print(f"build: {time.perf_counter() - start:.0f} s (downloads from pip's cache "
                  "when warm)")
        sizes = build.part_sizes(bundle)
        print(f"bundle {bundle}:\n{build.format_sizes(sizes)}")
        total = sum(sizes.values())
        verdict = "met" if total <= MAX_BYTES else "MISSED"
        print(f"size target ≤ {MAX_BYTES / 1e6:.0f} MB: {verdict}")

        home = work / "home"
        home.mkdir()
        env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(home),
               "PYTHON": sys.executable, "LANG": "C.UTF-8"}
        start = time.perf_counter()
        run = subprocess.run(offline(f"sh '{bundle}/install.sh'"), env=env,
                             capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if run.returncode != 0:
            print(run.stdout[-2000:], run.stderr[-2000:], sep="\n")
            return 1
        venv = home / "tinyml-edu" / "venv"
        venv_mb = sum(p.stat().st_size for p in venv.rglob("*") if p.is_file()) / 1e6
        print(f"offline install: {seconds:.0f} s (target ≤ {MAX_INSTALL_S:.0f} s: "
              f"{'met' if seconds <= MAX_INSTALL_S else 'MISSED'}); venv {venv_mb:,.0f} MB")

        if args.lesson:
            lesson = work / "lesson"
            shutil.copytree(ROOT / "lessons" / "01-hello-tinyml", lesson)
            code = ("import nbformat, nbclient; "
                    "nb = nbformat.read('01-hello-tinyml.ipynb', as_version=4); "
                    "nbclient.NotebookClient(nb, timeout=600, kernel_name='python3', "
                    "resources={'metadata': {'path': '.'}}).execute()")
            start = time.perf_counter()
            run = subprocess.run(offline(f"cd '{lesson}' && '{venv}/bin/python' -c \"{code}\""),
                                 env=dict(env, MPLBACKEND="Agg"), capture_output=True, text=True)
            print(f"lesson 01 solution, offline: {time.perf_counter() - start:.0f} s, "
                  f"{'ok' if run.returncode == 0 else 'FAILED: ' + run.stderr[-1000:]}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
