"""Instructions per inference on the emulated Cortex-M4, beside the MAC-based latency estimate.

    python benchmarks/bench_emulator.py                       # our projects + reference models
    python benchmarks/bench_emulator.py --projects sine kws --no-anchors --json out.json
    python benchmarks/bench_emulator.py --projects --no-anchors --write-measured

``--write-measured`` also measures lesson 06's model (trained as the lesson trains it) on 20
validation inputs and rewrites ``tinyml_edu/emulator/measured.json``, the figures the lesson
shows students who have no emulator.

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


def lesson06_model(inputs: int = 20) -> tuple[bytes, np.ndarray]:
    """Lesson 06's gesture CNN, trained and converted as the lesson does, and int8 inputs."""
    from tinyml_edu import datasets, models, quantize, train
    from tinyml_edu.projects import gestures

    train.set_seed(0)
    data = datasets.load("gestures")
    (raw_train, y_train), (raw_val, y_val) = data.split("train"), data.split("val")
    x_train, x_val = gestures.imu_features(raw_train), gestures.imu_features(raw_val)
    model = models.cnn1d((128, 7), 4, filters=(8, 16), kernel_size=5)
    train.fit(model, x_train, y_train, x_val, y_val, loss="sparse_categorical_crossentropy",
              metrics=("accuracy",), epochs=15, batch_size=32, learning_rate=3e-3,
              patience=15, monitor="val_accuracy")
    tflite = quantize.convert(model, mode="int8", representative=x_train)
    scale, zero_point = quantize.interpreter(tflite).get_input_details()[0]["quantization"]
    x = quantize.quantize_input(x_val[:inputs].astype(np.float32), scale, zero_point)
    return tflite, x.reshape(len(x), -1)


def write_measured(board, path: Path) -> dict:
    """Measure lesson 06's model and write the entry students see (with its provenance)."""
    import platform
    import subprocess

    from tinyml_edu import profile
    from tinyml_edu.emulator import CLOCK_HZ, CYCLES_PER_INSTRUCTION
    from tinyml_edu.emulator.board import QEMU

    model, inputs = lesson06_model()
    board.load(model)
    board.invoke(inputs)
    counts = board.stats.instructions
    tools = "; ".join(subprocess.run([tool, "--version"], capture_output=True, text=True)
                      .stdout.splitlines()[0] for tool in (QEMU, "arm-none-eabi-gcc"))
    entry = {
        "description": "lesson 06: 1-D CNN (8 and 16 filters, kernel 5) on 128 x 7 IMU "
                       "features, int8, trained as the lesson trains it (seed 0)",
        "macs": sum(op.macs for op in profile.op_list(model)),
        "instructions": int(np.median(counts)),
        "instructions_min": int(min(counts)), "instructions_max": int(max(counts)),
        "inputs": len(counts), "cycles_per_instruction": CYCLES_PER_INSTRUCTION,
        "clock_hz": CLOCK_HZ,
        "provenance": "python benchmarks/bench_emulator.py --write-measured on "
                      f"{platform.machine()} {time.strftime('%Y-%m-%d')}: QEMU mps2-an386, "
                      f"instruction-counting plugin, Chirale_TensorFlowLite (CMSIS-NN) from the "
                      f"arduino-nano33ble kit; {tools}",
    }
    entries = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    entries["lesson06"] = entry
    path.write_text(json.dumps(entries, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return entry


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
    parser.add_argument("--write-measured", action="store_true",
                        help="measure lesson 06's model and rewrite "
                             "tinyml_edu/emulator/measured.json")
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
        if args.write_measured:
            from tinyml_edu.emulator.shipped import MEASURED_FILE

            print("lesson06", write_measured(board, MEASURED_FILE), flush=True)
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
