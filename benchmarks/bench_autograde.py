"""Autograde N submissions of one lesson two ways, in one run, on the same submissions:

- nbgrader's own serial autograde (``NbGraderAPI.autograde``, one student after another);
- ``tinyml-edu course autograde --workers W`` (sandboxed workers in parallel).

Prints both wall times and the speed-up. The default lesson is the small test lesson in
``tests/fixtures/grading`` (plain Python, so the figure measures the grader, not TensorFlow);
``--lesson-dir lessons --lesson 01-hello-tinyml`` measures a real lesson (~15 s a notebook).

    python benchmarks/bench_autograde.py [--n 30] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _cpu() -> float:
    """CPU seconds of this process and every child it has waited for (kernels, workers)."""
    import resource

    own, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF,
                                                 resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def make_class(root: Path, source: Path, lesson: str, n: int) -> list[str]:
    """``n`` submissions: solutions, blanks and half-done notebooks, in turn."""
    import json

    released = json.loads((root / "release" / lesson / f"{lesson}.ipynb").read_text())
    solution = json.loads((source / lesson / f"{lesson}.ipynb").read_text())
    students = []
    for i in range(n):
        student = f"s{i:02d}"
        nb = [solution, released][i % 2] if i % 3 else json.loads(json.dumps(released))
        if i % 3 == 0:  # half done: the first half of the answers from the solution
            answers = [k for k, c in enumerate(solution["cells"])
                       if c["metadata"].get("nbgrader", {}).get("solution")]
            for k in answers[: len(answers) // 2]:
                nb["cells"][k]["source"] = solution["cells"][k]["source"]
        folder = root / "submitted" / student / lesson
        folder.mkdir(parents=True)
        (folder / f"{lesson}.ipynb").write_text(json.dumps(nb))
        students.append(student)
    return students


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=30, help="submissions (default 30)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--lesson-dir", default=str(REPO / "tests" / "fixtures" / "grading" /
                                                    "lessons"))
    parser.add_argument("--lesson", default="90-tiny-quiz")
    args = parser.parse_args()

    from nbgrader.api import Gradebook
    from nbgrader.apps import NbGraderAPI

    from tinyml_edu.course import autograde, config, release

    source = Path(args.lesson_dir).resolve()
    work = Path(tempfile.mkdtemp(prefix="bench-autograde-"))
    try:
        roots = {}
        for name in ("nbgrader", "tinyml"):
            roots[name] = work / name
            config.init_course(roots[name], source)
            release.release(roots[name], [args.lesson], log=lambda _m: None)
            students = make_class(roots[name], source, args.lesson, args.n)

        api = NbGraderAPI(config=config.load_config(roots["nbgrader"]))
        cpu0 = _cpu()
        start = time.perf_counter()
        for student in students:
            result = api.autograde(args.lesson, student, force=True, create=True)
            if not result.get("success"):
                print(result.get("log", "")[-2000:])
                return 1
        serial_s = time.perf_counter() - start
        serial_cpu = _cpu() - cpu0

        cpu0 = _cpu()
        start = time.perf_counter()
        results = autograde.autograde(roots["tinyml"], args.lesson, workers=args.workers,
                                      progress=False, log=lambda _m: None)
        parallel_s = time.perf_counter() - start
        parallel_cpu = _cpu() - cpu0

        # Same submissions, same scores: the comparison is fair only if both graded alike.
        db = config.load_config(roots["nbgrader"]).CourseDirectory.db_url
        with Gradebook(db) as gb:
            theirs = {s: gb.find_submission(args.lesson, s).code_score for s in students}
        ours = {r.student: r.score for r in results}
        if theirs != ours:
            print(f"scores differ:\nnbgrader {theirs}\ntinyml   {ours}")
            return 1
        print(f"{args.n} submissions of {args.lesson}")
        print(f"nbgrader serial autograde:          {serial_s:7.1f} s wall "
              f"{serial_cpu:7.1f} s CPU")
        print(f"tinyml-edu autograde --workers {args.workers}:   {parallel_s:7.1f} s wall "
              f"{parallel_cpu:7.1f} s CPU (sandboxed)")
        print(f"speed-up: {serial_s / parallel_s:.2f}x; load average at the end "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other work slows the "
              "parallel run most)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
