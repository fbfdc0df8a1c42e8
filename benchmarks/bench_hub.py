"""Memory and CPU per active student on a live JupyterHub: the hub of tests/test_hub_live.py
(tests/hubkit.py: PAM accounts, LocalProcessSpawner, the course service, the exchange), with
N students whose servers first sit idle, then run a lesson's solution, one student alone and
then all N at once.

    python benchmarks/bench_hub.py [--students 3] [--lesson 04-keyword-spotting]   # as root

Needs what the live test needs (root, Debian's postgresql, configurable-http-proxy). A student's
figures are those of every process of their Unix account: the Jupyter server and its kernels.
RSS counts shared pages in full for each process; PSS splits them between the processes that
share them (what one more student costs the server). CPU seconds include kernels that have
exited. "Running" is nbgrader's Validate on the lesson's solution (as a student presses it):
every cell, in a fresh kernel the student's server starts, so the lesson's training cells are
the peak. Prints a Markdown table for hub/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

import hubkit  # noqa: E402


def _watch(klass: hubkit.LiveClass, names: list[str], stop: threading.Event,
           peaks: dict[str, dict[str, float]]) -> None:
    """Peak RSS and PSS of each account, sampled every second until ``stop``."""
    while not stop.is_set():
        for name in names:
            now = hubkit.usage(klass.processes(name))
            for key in ("rss_mb", "pss_mb"):
                peaks[name][key] = max(peaks[name].get(key, 0.0), now[key])
        stop.wait(1.0)


def run_lesson(klass: hubkit.LiveClass, students: list[hubkit.Account],
               path: str) -> list[dict[str, float]]:
    """Every student in ``students`` validates ``path`` at the same moment; per student: peak
    RSS/PSS, CPU seconds and wall time of the run."""
    names = [s.name for s in students]
    before = {n: hubkit.usage(klass.processes(n))["cpu_s"] for n in names}
    peaks: dict[str, dict[str, float]] = {n: {} for n in names}
    stop = threading.Event()
    watcher = threading.Thread(target=_watch, args=(klass, names, stop, peaks), daemon=True)
    watcher.start()

    def validate(s: hubkit.Account) -> tuple[float, dict]:
        start = time.monotonic()
        out = klass.json("POST", f"/user/{s.name}/assignments/validate", s.token,
                         data={"path": path})
        return time.monotonic() - start, out

    try:
        with ThreadPoolExecutor(len(students)) as pool:
            runs = list(pool.map(validate, students))
    finally:
        stop.set()
        watcher.join()
    rows = []
    for s, (wall, out) in zip(students, runs, strict=True):
        if not out.get("success") or out["value"].get("failed"):
            raise SystemExit(f"{s.name}'s run of {path} failed:\n{json.dumps(out)[:3000]}")
        cpu = hubkit.usage(klass.processes(s.name))["cpu_s"] - before[s.name]
        rows.append({**peaks[s.name], "cpu_s": cpu, "wall_s": wall})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=3)
    parser.add_argument("--lesson", default="04-keyword-spotting")
    parser.add_argument("--idle-s", type=float, default=30.0,
                        help="seconds the idle servers are watched (default 30)")
    args = parser.parse_args()
    reason = hubkit.missing()
    if reason:
        print(f"cannot stand a hub up here: {reason}", file=sys.stderr)
        return 2

    source = REPO / "lessons" / args.lesson / f"{args.lesson}.ipynb"
    notebook = json.loads(source.read_text(encoding="utf-8"))
    with hubkit.live_class(n_students=args.students, lessons=(args.lesson,)) as klass:
        students = klass.students
        for s in students:
            klass.login_token(s)
            klass.start_server(s)
        for s in students:
            klass.wait_server(s)
            klass.json("PUT", f"/user/{s.name}/api/contents/{source.name}", s.token,
                       json={"type": "notebook", "format": "json", "content": notebook})

        time.sleep(10)  # past the servers' start-up work
        first = {s.name: hubkit.usage(klass.processes(s.name)) for s in students}
        time.sleep(args.idle_s)
        idle = []
        for s in students:
            now = hubkit.usage(klass.processes(s.name))
            idle.append({**now, "cores": (now["cpu_s"] - first[s.name]["cpu_s"]) / args.idle_s})
        # what the class costs before any student: the hub and its proxy (root's processes
        # under the hub), the course service (the grader's account), both idle
        import psutil

        hub = psutil.Process(klass.proc.pid)
        hub_tree = [hub] + [p for p in hub.children(recursive=True) if p.uids().real == 0]
        overhead = {"hub and proxy": hubkit.usage(hub_tree),
                    "course service": hubkit.usage(klass.processes(klass.grader.name))}

        alone = run_lesson(klass, students[:1], source.name)
        together = run_lesson(klass, students, source.name)

    def med(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    print(f"\n{args.students} students on {os.cpu_count()} cores; load average at the end "
          f"{os.getloadavg()[0]:.1f}; lesson {args.lesson} (medians over students)\n")
    print("| per student, or once per hub | RSS | PSS | CPU | wall |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print(f"| idle server ({args.idle_s:g} s) | {med(idle, 'rss_mb'):.0f} MB | "
          f"{med(idle, 'pss_mb'):.0f} MB | {100 * med(idle, 'cores'):.2f} % of a core | |")
    for label, used in overhead.items():
        print(f"| {label} (idle, once per hub) | {used['rss_mb']:.0f} MB | "
              f"{used['pss_mb']:.0f} MB | | |")
    for label, rows in ((f"running {args.lesson}, alone", alone),
                        (f"running {args.lesson}, {len(together)} at once", together)):
        print(f"| {label} (peak) | {med(rows, 'rss_mb'):.0f} MB | {med(rows, 'pss_mb'):.0f} MB "
              f"| {med(rows, 'cpu_s'):.0f} s | {med(rows, 'wall_s'):.0f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
