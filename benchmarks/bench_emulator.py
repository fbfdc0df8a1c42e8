"""Instructions per inference on the emulated Cortex-M4, beside the MAC-based latency estimate.

    python benchmarks/bench_emulator.py                       # our projects + reference models
    python benchmarks/bench_emulator.py --projects sine kws --no-anchors --json out.json

For each of our projects (the untrained network: same ops and shapes as `tinyml-edu run`
exports) and each int8 reference model in ``../shared/anchors/models`` (never part of this
repository), the model is built for the Nano's Cortex-M4F (Chirale TFLM + CMSIS-NN) and run
on QEMU; an instruction-counting plugin measures each Invoke(). The table puts the count beside
the MACs and the board catalog's estimate (MACs x 2 cycles/MAC at 64 MHz), with the emulated
latency at an assumed 1.25 cycles per instruction. It also times a cold and a warm build (the
object cache emptied, then reused). Nothing here fails a build.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
# ../shared beside the checkout (CI), or one level up (a git worktree in a folder of worktrees)
ANCHORS = next((up / "shared/anchors/models" for up in (REPO.parent, REPO.parent.parent)
                if (up / "shared/anchors/models").is_dir()), REPO.parent / "shared/anchors/models")
PROJECTS = ["sine", "gestures", "wingbeats", "ecg", "water_quality", "kws", "elephant_rumbles"]


def measure(board, model: bytes, inputs: np.ndarray) -> dict:
    from tinyml_edu import profile

    started = time.perf_counter()
    program = board.load(model)
    board.invoke(inputs)
    macs = sum(op.macs for op in profile.op_list(model))
    count = int(np.median(board.stats.instructions))
    nano = 64e6
    return {"macs": macs, "instructions": count,
            "instructions_per_mac": round(count / macs, 2) if macs else None,
            "estimate_ms": round(macs * 2.0 / nano * 1000, 3),
            "emulated_ms": round(board.latency_ms(count), 3),
            "ops": ",".join(program.ops), "arena_on_m4": board.stats.arena_used_bytes,
            "build_s": program.seconds, "total_s": round(time.perf_counter() - started, 1)}


def anchor_inputs(model: bytes, count: int = 3) -> np.ndarray | None:
    """Zeros of the input's byte size, or None for a model the harness cannot feed."""
    from tinyml_edu.quantize import interpreter

    details = interpreter(model).get_input_details()[0]
    size = int(np.prod(details["shape"])) * np.dtype(details["dtype"]).itemsize
    return np.zeros((count, size), np.int8)


def cold_and_warm(board_cls, model: bytes, cache: Path) -> dict:
    """Build times with an empty object cache, then with it full."""
    os.environ["TINYML_EDU_M4_CACHE"] = str(cache)
    shutil.rmtree(cache, ignore_errors=True)
    times = {}
    for label in ("cold", "warm"):
        with tempfile.TemporaryDirectory() as tmp:
            program = board_cls(work_dir=tmp).load(model)
            times[f"{label}_build_s"] = program.seconds
            times[f"{label}_objects_compiled"] = program.objects_compiled
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", nargs="*", default=PROJECTS)
    parser.add_argument("--no-anchors", action="store_true")
    parser.add_argument("--cold", action="store_true",
                        help="also time a cold build (empties a private object cache)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args(argv)

    from tinyml_edu.emulator import CortexM4Board, EmulatorError, available
    from tinyml_edu.emulator.projects import project_model

    ok, message = available()
    if not ok:
        print(f"emulated Cortex-M4 not available: {message}")
        return 0
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        board = CortexM4Board(work_dir=tmp)
        for name in args.projects:
            project = project_model(name)
            rows[name] = measure(board, project.model, project.inputs[:3])
            print(name, rows[name], flush=True)
        if not args.no_anchors and ANCHORS.is_dir():
            for path in sorted(ANCHORS.glob("*.tflite")):
                model = path.read_bytes()
                try:
                    rows[path.stem] = measure(board, model, anchor_inputs(model))
                except (EmulatorError, RuntimeError, ValueError) as err:  # a model TFLM or
                    rows[path.stem] = {"error": str(err).splitlines()[0][:120]}  # LiteRT refuses
                print(path.stem, rows[path.stem], flush=True)
    if args.cold and args.projects:
        with tempfile.TemporaryDirectory() as cache:
            timing = cold_and_warm(CortexM4Board, project_model(args.projects[0]).model,
                                   Path(cache) / "m4")
        print(f"build of {args.projects[0]}: {timing}")
    print()
    print("| model | MACs | instructions | instr/MAC | MAC estimate ms | emulated ms | ops |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for name, r in rows.items():
        if "error" in r:
            print(f"| {name} | | | | | | {r['error']} |")
            continue
        print(f"| {name} | {r['macs']:,} | {r['instructions']:,} | {r['instructions_per_mac']} "
              f"| {r['estimate_ms']} | {r['emulated_ms']} | {r['ops']} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
