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
    p.add_argument("--host-features", action="store_true",
                   help="audio and IMU runs: feed the board host-computed inputs instead of raw "
                   "clips or windows through the sketch's front end on the core")
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
                        update_report=not args.no_report, host_features=args.host_features)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_result(result))
    return 0 if result["bit_exact"] else 1


def format_features(f: dict) -> list[str]:
    """The lines about where the model inputs came from (verify's ``features`` block)."""
    if f.get("source") != "sketch-dsp-on-cortex-m4":
        return [f"  features: computed on the host ({f.get('why')})"]
    rows = "windows" if f.get("sensor") == "imu" else "clips"
    same = ("all equal" if f["input_values_differing"] == 0 else
            f"{f['input_values_differing']:,} of {f['input_values']:,} values differ "
            f"(in {f['clips_with_differing_inputs']} {rows}, at most {f['max_lsb']} LSB)")
    outputs = ("bit-exact" if f["outputs_bit_exact_vs_host_features"] else
               f"differ on {f['clips_outputs_differing_vs_host_features']} {rows} (max |diff| "
               f"{f['max_abs_output_difference_vs_host_features']})")
    return [
        f"  features: the sketch's front end on the core, {f['instructions_per_clip']:,} "
        f"instructions per {rows[:-1]}; int8 inputs against the host's numpy features: {same}",
        f"  against the host's whole path (numpy features -> TFLM): outputs {outputs}, top "
        f"label agrees on {f['top1_agreement']:.1%} of {f['clips']} {rows}; the front end "
        f"alone changes the host's outputs on {f['clips_outputs_differing_from_features']} "
        f"{rows}, its top label on {1 - f['top1_agreement_from_features']:.1%}",
        *([f"  why inputs differ: {f['explanation']}"] if f["input_values_differing"] else []),
    ]


def format_result(r: dict) -> str:
    same = ("bit-exact" if r["bit_exact"] else
            f"DIFFERENT on {r['inputs_differing']} inputs (max |diff| {r['max_abs_difference']})")
    per_mac = (f" ({r['instructions_per_mac']:g} per MAC, {r['macs']:,} MACs)"
               if r.get("instructions_per_mac") else "")
    board_inputs = r.get("features", {}).get("source") == "sketch-dsp-on-cortex-m4"
    rows = "windows" if r.get("features", {}).get("sensor") == "imu" else "clips"
    on_what = ("the inputs the core computed from" if board_inputs else "")
    return "\n".join([
        f"cortex-m4 (QEMU mps2-an386): {same} against the host TFLM on {on_what}"
        f"{' ' if on_what else ''}{r['inputs']} test {rows if board_inputs else 'inputs'}",
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
        *format_features(r.get("features", {})),
        f"  verified: {r['verified']}",
        f"  build: {r['build_seconds']:.1f} s ({r['objects_compiled']} objects compiled, "
        f"{r['objects_cached']} from the cache)",
    ])
