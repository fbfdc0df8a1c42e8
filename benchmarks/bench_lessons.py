"""Benchmark the lessons the way `tinyml-edu course check` grades them.

    python benchmarks/bench_lessons.py                  # every lesson, 3 runs
    python benchmarks/bench_lessons.py 01 04 --runs 5

Each run releases the lesson and autogrades its solution with real nbgrader in a fresh process,
so wall time includes kernel and TensorFlow start-up, and peak RSS is the kernel's high-water
mark. Figures are medians over the runs (a 2-core machine is noisy), checked against the course
plan's targets: each solution ≤ 180 s and ≤ 1.5 GB (Binder gives 2 GB), all lessons ≤ 15 min.
Nothing here fails a build; `course check` and the tests do that.
"""

from __future__ import annotations

import argparse
import statistics

from tinyml_edu.course import check, lessons

TOTAL_WALL_S = 15 * 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lessons", nargs="*", help="lesson ids or numbers (default: all)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    chosen = ([lessons.get_lesson(n) for n in args.lessons] if args.lessons
              else lessons.list_lessons())
    rows = []
    for lesson in chosen:
        walls, peaks, ok = [], [], True
        for run in range(args.runs):
            result = check.check_lesson(lesson, log=lambda _: None)
            ok &= result.ok
            walls.append(result.wall_s or float("nan"))
            peaks.append(result.peak_rss_mb or float("nan"))
            print(f"{lesson.id} run {run + 1}: {result.wall_s:.1f} s, {result.peak_rss_mb:.0f} MB, "
                  f"{result.solution_score:g}/{result.max_score:g} solution, "
                  f"{result.blank_score:g} blank", flush=True)
        rows.append((lesson.id, statistics.median(walls), statistics.median(peaks), ok))

    print(f"\nmedians of {args.runs} runs")
    print(f"{'lesson':36} {'wall s':>7} {'peak MB':>8}  verdict")
    for lesson_id, wall, peak, ok in rows:
        verdict = "ok" if ok and wall <= check.MAX_WALL_S and peak <= check.MAX_RSS_MB else "MISS"
        print(f"{lesson_id:36} {wall:7.1f} {peak:8.0f}  {verdict}")
    total = sum(r[1] for r in rows)
    print(f"{'all lessons':36} {total:7.1f}           "
          f"{'ok' if total <= TOTAL_WALL_S else 'MISS'} (target ≤ {TOTAL_WALL_S} s)")


if __name__ == "__main__":
    main()
