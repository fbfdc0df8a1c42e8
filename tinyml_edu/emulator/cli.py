"""`tinyml-edu verify`: the command's parser and its thin body (kept here so that
``tinyml_edu/cli.py`` only registers it)."""

from __future__ import annotations

import argparse
import json

TARGETS = ("cortex-m4",)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="run a run's int8 model on an emulated board and compare "
                       "every output with the host")
    p.add_argument("run_dir", help="a `tinyml-edu run` output folder")
    p.add_argument("--on", choices=TARGETS, default="cortex-m4",
                   help="the emulated board: the Nano 33 BLE's Cortex-M4F on QEMU")
    p.add_argument("--kit", help="the arduino-nano33ble kit folder (default: "
                   "$TINYML_EDU_ARDUINO_KIT or ../shared/third_party/arduino-nano33ble)")
    p.add_argument("--inputs", type=int, default=100, help="test inputs to run (default 100)")
    p.add_argument("--jobs", type=int, default=2, help="parallel compiles (default 2)")
    p.add_argument("--no-report", action="store_true",
                   help="do not add the figures to the run's report.json and report.md")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tinyml_edu.emulator import verify_run
    from tinyml_edu.errors import InputError

    if args.inputs < 1:
        raise InputError("--inputs must be at least 1")
    result = verify_run(args.run_dir, kit=args.kit, inputs=args.inputs, jobs=args.jobs,
                        update_report=not args.no_report)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_result(result))
    return 0 if result["bit_exact"] else 1


def format_result(r: dict) -> str:
    same = ("bit-exact" if r["bit_exact"] else
            f"DIFFERENT on {r['inputs_differing']} inputs (max |diff| {r['max_abs_difference']})")
    per_mac = (f" ({r['instructions_per_mac']:g} per MAC, {r['macs']:,} MACs)"
               if r.get("instructions_per_mac") else "")
    return "\n".join([
        f"cortex-m4 (QEMU mps2-an386): {same} against the host TFLM on {r['inputs']} test inputs",
        f"  ops: {', '.join(r['ops'])}; arena used on the M4: {r['arena_used_bytes_on_m4']:,} B",
        f"  instructions per inference: {r['instructions_per_inference']:,}{per_mac}",
        f"  latency at 64 MHz: {r['latency_ms_at_64mhz']:.3f} ms, assuming "
        f"{r['cycles_per_instruction']:g} cycles per instruction",
        *([f"  first differing op: {r['first_differing_op']['op']} (op "
           f"{r['first_differing_op']['op_index']}): {r['explanation']}"]
          if r.get("first_differing_op") else []),
        *([f"  warning: FULLY_CONNECTED op(s) {r['per_channel_fully_connected_ops']} have "
           "per-channel weight scales, which Chirale 2.0 computes wrongly on the Nano: quantize "
           "dense layers per tensor (README, An emulated Cortex-M4)"]
          if r.get("per_channel_fully_connected_ops") else []),
        f"  verified: {r['verified']}",
        f"  build: {r['build_seconds']:.1f} s ({r['objects_compiled']} objects compiled, "
        f"{r['objects_cached']} from the cache)",
    ])
