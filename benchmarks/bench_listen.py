"""Hits and false alarms per hour of a keyword spotter listening to the long test stream.

    python benchmarks/bench_listen.py                        # the shipped pretrained kws run
    python benchmarks/bench_listen.py --runs runs/kws runs/kws_seed1 --json out.json
    python benchmarks/bench_listen.py --train-seeds 0 1 2    # train one kws run per seed first
    python benchmarks/bench_listen.py --sweep                # threshold x window trade-off

The stream (``tinyml_edu.generators.kws_stream``, 21 min) puts every word clip of the kws test
split (voices no model heard in training) on a background of the split's noise recordings,
with the 350 keywords' times as the truth. Each run's int8 model listens to it exactly as
``tinyml-edu listen`` (and the board) does; a detection is a hit when its label matches a
keyword between the keyword's start and 1 s after its end, else a false alarm. With several
runs the figures are medians over them (training seeds). The listening wall time is a median
over ``--repeat`` passes. Nothing here fails a build.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

THRESHOLDS = (0.4, 0.5, 0.6, 0.7, 0.8)
WINDOWS_MS = (500, 750, 1000)


def train(seed: int, out: Path) -> Path:
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=os.environ.get("TF_ENABLE_ONEDNN_OPTS", "0"))
    subprocess.run([sys.executable, "-m", "tinyml_edu", "run", "kws", "--seed", str(seed),
                    "--out", str(out), "--quiet"], check=True, env=env)
    return out


def main(argv: list[str] | None = None) -> int:
    from tinyml_edu import listen, pretrained
    from tinyml_edu.generators import kws_stream
    from tinyml_edu.listen import ListenParams

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="*", type=Path, help="run folders (default: pretrained)")
    parser.add_argument("--train-seeds", nargs="*", type=int, default=[],
                        help="train a kws run per seed (about 4 min each on 2 cores) and add it")
    parser.add_argument("--sweep", action="store_true", help="threshold x window table")
    parser.add_argument("--repeat", type=int, default=3, help="listening passes to time")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    runs = list(args.runs or [])
    scratch = Path(tempfile.mkdtemp(prefix="bench_listen_"))
    runs += [train(seed, scratch / f"kws_seed{seed}") for seed in args.train_seeds]
    if not runs:
        runs = [pretrained.run_dir("kws")]

    audio, events = kws_stream.build()
    same = kws_stream.digest(audio, events) == kws_stream.STREAM_SHA256
    print(f"stream: {len(audio) / 16000 / 60:.1f} min, {len(events)} keywords "
          f"(digest {'ok' if same else 'CHANGED: figures are not comparable'})")
    defaults = ListenParams()
    rows = []
    for run in runs:
        listener = listen.Listener.from_run(run)
        walls = []
        for _ in range(max(1, args.repeat)):
            start = time.perf_counter()
            times, scores = listener.scores(audio, defaults.hop_ms)
            walls.append(time.perf_counter() - start)
        detections = listen.smooth(times, scores, listener.labels, defaults)
        score = listen.score_detections(detections, events, len(audio) / listener.rate)
        row = {"run": str(run), **score.to_dict(), "listen_s": round(statistics.median(walls), 2),
               "realtime_factor": round(len(audio) / listener.rate / statistics.median(walls))}
        if args.sweep:
            row["sweep"] = [
                {"threshold": th, "average_window_ms": win,
                 **{k: v for k, v in listen.score_detections(
                     listen.smooth(times, scores, listener.labels,
                                   replace(defaults, average_window_ms=win, threshold=th,
                                           min_count=min(defaults.min_count,
                                                         win // defaults.hop_ms))),
                     events, len(audio) / listener.rate).to_dict().items()
                    if k in ("hit_rate", "false_alarms_per_hour")}}
                for win in WINDOWS_MS for th in THRESHOLDS]
        rows.append(row)
        print(f"{run}: hits {score.hits}/{score.keywords} ({score.hit_rate:.1%}), "
              f"{score.false_alarms} false alarms ({score.false_alarms_per_hour:.0f}/h); "
              f"listening took {row['listen_s']} s ({row['realtime_factor']}x real time)")
        print("  per keyword (hits/35): " + ", ".join(
            f"{k} {v['hits']}" for k, v in score.per_label.items()))

    print(f"\nsettings: {defaults.to_dict()}")
    if len(rows) > 1:
        print(f"median over {len(rows)} runs: hit rate "
              f"{statistics.median(r['hit_rate'] for r in rows):.1%}, false alarms "
              f"{statistics.median(r['false_alarms_per_hour'] for r in rows):.0f}/h")
    if args.sweep:
        print("\nwindow_ms threshold  hit_rate  false_alarms/h   (median over runs)")
        for k, point in enumerate(rows[0]["sweep"]):
            hit = statistics.median(r["sweep"][k]["hit_rate"] for r in rows)
            fa = statistics.median(r["sweep"][k]["false_alarms_per_hour"] for r in rows)
            print(f"{point['average_window_ms']:>9} {point['threshold']:>9}  {hit:>8.1%}  "
                  f"{fa:>14.0f}")
    if args.json:
        args.json.write_text(json.dumps({"settings": defaults.to_dict(), "runs": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
