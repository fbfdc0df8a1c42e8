"""`tinyml-edu verify RUN_DIR --on cortex-m4`: does the board compute what the host computes?

The run's int8 model, built from its ``export/`` folder for the emulated Cortex-M4, runs the
run's test inputs; every int8 output is compared with the host's TFLM runtime (the
``tflite-micro`` package, reference kernels) on the same inputs.

Audio runs (log-mel or MFCC features) feed the board the test split's raw int16 clips: the
sketch's own front end (``tinyml_edu_dsp.c`` with ``tinyml_edu_audio_input.h``) computes,
normalises and quantizes each model input on the emulated core. Then two comparisons: the
board's outputs against the host TFLM on the board's own inputs (must be bit-exact: the kernel
path alone), and the board's inputs and outputs against the host's whole path (numpy features,
quantized): float32 on the core against float64 in numpy moves an input value by one step
now and then, which is measured and reported (``features``). IMU runs (gestures) likewise feed
the board the test split's raw windows (float32, g and dps): the sketch's IMU code
(``tme_imu_input_sample`` set up by ``tinyml_edu_imu_input.h``) scales, clips, adds ``amag``
and quantizes each reading on the core, compared the same way. Other runs (hand-made
features) get the test split's features computed and quantized on the host.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from tinyml_edu.emulator.board import (
    CLOCK_HZ,
    CPI_ASSUMPTION,
    CYCLES_PER_INSTRUCTION,
    CortexM4Board,
    EmulatorError,
)
from tinyml_edu.run_report import REPORT_MD_FILE, RunReport

DEFAULT_INPUTS = 100
DIAGNOSE_INPUTS = 20  # differing inputs re-run op by op to find where the difference starts
# Differences between Chirale 2.0's TFLM (on the board) and the host's newer tflite-micro that
# are understood: op -> why. Found with `diagnose` on the shipped projects.
KNOWN_DIFFERENCES = {
    "FULLY_CONNECTED per-channel": (
        "a board bug, not a rounding detail: Chirale 2.0's FULLY_CONNECTED (CMSIS-NN) applies "
        "one output multiplier, from the first weight scale, to every output unit, so a dense "
        "layer quantized per channel (one scale per unit) computes wrong values on the Nano. "
        "The host's newer TFLM uses each unit's scale. Quantize dense layers per tensor "
        "(quantize.convert(..., per_channel_dense=False), as the sine project does) and the "
        "board is bit-exact."),
    "MEAN": ("TFLM version, not the board: Chirale 2.0's MEAN (int8, different input and output "
             "scales) computes the mean in float and rounds it, which gives the exactly rounded "
             "mean; the host's newer tflite-micro computes it in fixed point and is off by one "
             "on some values. The ops after it inherit the difference."),
}
M4_CPU = "Arm Cortex-M4F"
WHAT_IS_VERIFIED = ("the int8 model (TFLM + CMSIS-NN, the deployed op resolver, arena and C "
                    "array) on the test split's features computed on the host; the sketch's "
                    "feature code is not run on the emulated core")
WHAT_IS_VERIFIED_IMU = ("the sketch's IMU scaling (channel order, full scales, clip to [-1, 1], "
                        "|a| when the run has amag, quantization: tme_imu_input_sample in "
                        "tinyml_edu_dsp.c) on the test split's raw windows, then the int8 model "
                        "(TFLM + CMSIS-NN, the deployed op resolver, arena and C array) on the "
                        "inputs the core computed")
WHAT_IS_VERIFIED_AUDIO = ("the sketch's audio front end (log-mel/MFCC, normalisation, "
                          "quantization: tinyml_edu_dsp.c) on the test split's raw clips, then "
                          "the int8 model (TFLM + CMSIS-NN, the deployed op resolver, arena and "
                          "C array) on the inputs the core computed")
BOARD_FEATURES = "sketch-dsp-on-cortex-m4"
# The training normalisations the sketch's front end knows (tinyml_edu_audio_input.h).
SKETCH_NORMS = ("clip_mean", "none")
FEATURE_DIFFERENCE = (
    "float32 on the Cortex-M4F (FFT, mel filterbank with fused multiply-adds, newlib's logf) "
    "against float64 in numpy: the log-mel values differ in their last float32 bits, so an "
    "input whose exact value lies that close to a rounding boundary of the int8 scale lands "
    "one step (1 LSB) the other way. Rare, and one step: the kernel path is checked apart from "
    "it, on the board's own inputs (bit_exact).")
IMU_FEATURE_DIFFERENCE = (
    "float32 on the Cortex-M4F against float64 in numpy: the scaled channels are one division "
    "each, correctly rounded on both sides, so they agree; |a| (sqrtf of a float32 sum of "
    "squares) can differ in its last float32 bit, which moves an input one step (1 LSB) only "
    "where its exact value lies that close to a rounding boundary of the int8 scale.")
# Derived IMU channels the sketch computes (tme_imu_input_init).
SKETCH_IMU_DERIVED = ("amag",)


def test_inputs(run_dir: Path, report: RunReport, model_bytes: bytes,
                count: int = DEFAULT_INPUTS) -> np.ndarray:
    """The first ``count`` test-split inputs of the run's project, quantized to int8 exactly as
    the evaluation and the sketch do."""
    from tinyml_edu import pipeline, quantize
    from tinyml_edu.projects import get_project

    project = get_project(report.project or "")
    dataset = report.dataset
    own_data = dataset if dataset and dataset != project.dataset and Path(dataset).is_dir() \
        else None
    prep = project.prepare(pipeline.load_data(project.name, own_data))
    x = np.asarray(prep.x["test"], np.float32)[:count]
    details = quantize.interpreter(model_bytes).get_input_details()[0]
    if details["dtype"] != np.int8:
        raise EmulatorError("verify compares int8 models; this model's input is "
                            f"{np.dtype(details['dtype']).name}")
    scale, zero_point = details["quantization"]
    return quantize.quantize_input(x, scale, zero_point).reshape(len(x), -1)


def sketch_audio_params(params: dict[str, Any]) -> str | None:
    """Why the sketch's front end cannot compute this run's inputs, or None when it can: an
    audio run whose extra feature keys are the normalisations tinyml_edu_audio_input.h knows."""
    from tinyml_edu.features import AUDIO_KINDS, AudioFeatureParams

    if params.get("kind") not in AUDIO_KINDS:
        return "not an audio run (its feature_params name no log_mel or mfcc kind)"
    audio_keys = {f for f in AudioFeatureParams.__dataclass_fields__} | {
        "window_samples", "stride_samples", "clip_samples", "num_frames", "shape"}
    extra = sorted(set(params) - audio_keys - {"norm", "input_scale"})
    if extra:
        return f"feature_params keys {extra} are computed on the host only"
    if params.get("norm", "none") not in SKETCH_NORMS:
        return f"norm {params['norm']!r} is not one the sketch computes ({', '.join(SKETCH_NORMS)})"
    return None


def sketch_imu_params(params: dict[str, Any]) -> str | None:
    """Why the sketch's IMU code cannot compute this run's inputs, or None when it can: an IMU
    run whose channels are accelerometer or gyroscope axes (ax .. gz) and whose derived
    channels are ones tme_imu_input_init knows."""
    from tinyml_edu.features import ImuFeatureParams

    if "channels" not in params:
        return "not an IMU run (its feature_params name no channels)"
    known = set(ImuFeatureParams.__dataclass_fields__) | {
        "num_channels", "shape", "derived_channels", "amag_offset_g"}
    extra = sorted(set(params) - known)
    if extra:
        return f"feature_params keys {extra} are computed on the host only"
    odd = [c for c in params["channels"] if len(c) != 2 or c[0].lower() not in "ag"
           or c[1].lower() not in "xyz"]
    if odd:
        return f"channels {odd} are not IMU axes the sketch reads (ax .. gz)"
    derived = [d for d in params.get("derived_channels", []) if d not in SKETCH_IMU_DERIVED]
    if derived or len(params.get("derived_channels", [])) > 1:
        return (f"derived channels {params.get('derived_channels')} are not what the sketch "
                f"computes (at most one of {', '.join(SKETCH_IMU_DERIVED)})")
    return None


def _quantized_host_inputs(x: np.ndarray, model_bytes: bytes) -> np.ndarray:
    from tinyml_edu import quantize

    details = quantize.interpreter(model_bytes).get_input_details()[0]
    if details["dtype"] != np.int8:
        raise EmulatorError("verify compares int8 models; this model's input is "
                            f"{np.dtype(details['dtype']).name}")
    scale, zero_point = details["quantization"]
    return quantize.quantize_input(x, scale, zero_point).reshape(len(x), -1)


def raw_test_windows(run_dir: Path, report: RunReport, model_bytes: bytes,
                     count: int = DEFAULT_INPUTS) -> tuple[np.ndarray, np.ndarray]:
    """An IMU run's first ``count`` test-split windows as the IMU reads them (float32, g and
    dps, (windows, samples, 6)), and the host's int8 model inputs for them (the project's
    feature function, quantized as the sketch does)."""
    from tinyml_edu import pipeline
    from tinyml_edu.projects import get_project

    project = get_project(report.project or "")
    if project.features is None:
        raise EmulatorError(f"project {project.name} has no feature function for raw windows")
    dataset = report.dataset
    own_data = dataset if dataset and dataset != project.dataset and Path(dataset).is_dir() \
        else None
    raw = np.asarray(pipeline.load_data(project.name, own_data).split("test")[0][:count])
    if raw.ndim != 3 or raw.shape[-1] != 6:
        raise EmulatorError(f"the test windows have shape {raw.shape}, not (windows, samples, 6)"
                            " IMU readings (ax, ay, az, gx, gy, gz) as the board reads them")
    windows = raw.astype(np.float32)  # the IMU library's readings are float32
    x = np.asarray(project.features(windows, report.params), np.float32)
    return windows, _quantized_host_inputs(x, model_bytes)


def raw_test_clips(run_dir: Path, report: RunReport, model_bytes: bytes,
               count: int = DEFAULT_INPUTS) -> tuple[np.ndarray, np.ndarray]:
    """An audio run's first ``count`` test-split clips as the board's ring holds them (int16,
    fit to ``clip_samples``), and the host's int8 model inputs for them (numpy features, the
    project's normalisation, quantized as the sketch does)."""
    from tinyml_edu import features, pipeline
    from tinyml_edu.projects import get_project

    project = get_project(report.project or "")
    if project.features is None:
        raise EmulatorError(f"project {project.name} has no feature function for raw clips")
    dataset = report.dataset
    own_data = dataset if dataset and dataset != project.dataset and Path(dataset).is_dir() \
        else None
    raw = pipeline.load_data(project.name, own_data).split("test")[0][:count]
    clip_samples = int(report.params["clip_samples"])
    clips = features.fit_clip(np.asarray(raw), clip_samples)
    if clips.dtype != np.int16:
        raise EmulatorError(f"the test clips are {clips.dtype}, not int16 PCM as a microphone "
                            "gives them; the board's front end reads int16")
    x = np.asarray(project.features(clips, report.params), np.float32)
    return clips, _quantized_host_inputs(x, model_bytes)


def _top1_agreement(a: np.ndarray, b: np.ndarray) -> float:
    return round(float(np.mean(a.argmax(axis=1) == b.argmax(axis=1))), 4)


def compare_features(board_inputs: np.ndarray, host_inputs: np.ndarray,
                     board_outputs: np.ndarray, host_on_board_inputs: np.ndarray,
                     host_path_outputs: np.ndarray,
                     feature_instructions: list[int], sensor: str = "audio") -> dict[str, Any]:
    """The board's front end against the host's: int8 inputs value by value (in LSB, steps of
    the input scale); the board's outputs against the host's whole path (numpy features, host
    TFLM); and the host TFLM on the board's inputs against it on its own (what the front end
    alone changes). ``sensor``: "audio" (rows are clips) or "imu" (rows are windows); the
    keys keep the audio names (``clips``, ``instructions_per_clip``) for both."""
    lsb = np.abs(board_inputs.astype(np.int16) - host_inputs.astype(np.int16))
    end_to_end = compare(board_outputs, host_path_outputs)
    from_features = compare(host_on_board_inputs, host_path_outputs)
    return {
        "source": BOARD_FEATURES,
        "sensor": sensor,
        "clips": int(len(board_inputs)),
        "input_values": int(lsb.size),
        "input_values_differing": int((lsb > 0).sum()),
        "clips_with_differing_inputs": int((lsb.max(axis=1, initial=0) > 0).sum()),
        "max_lsb": int(lsb.max(initial=0)),
        "outputs_bit_exact_vs_host_features": end_to_end["bit_exact"],
        "clips_outputs_differing_vs_host_features": end_to_end["inputs_differing"],
        "max_abs_output_difference_vs_host_features": end_to_end["max_abs_difference"],
        "top1_agreement": _top1_agreement(board_outputs, host_path_outputs),
        # the front end alone: the same (host) kernels on the board's and on the host's inputs
        "clips_outputs_differing_from_features": from_features["inputs_differing"],
        "top1_agreement_from_features": _top1_agreement(host_on_board_inputs, host_path_outputs),
        "instructions_per_clip": int(np.median(feature_instructions)),
        "latency_ms_at_64mhz": round(float(np.median(feature_instructions))
                                     * CYCLES_PER_INSTRUCTION / CLOCK_HZ * 1000, 4),
        "explanation": IMU_FEATURE_DIFFERENCE if sensor == "imu" else FEATURE_DIFFERENCE,
    }


def host_outputs(model_bytes: bytes, inputs: np.ndarray) -> np.ndarray:
    """The host TFLM runtime's int8 outputs for each row of ``inputs``."""
    from tinyml_edu import runtime

    if not runtime.tflm_available():
        raise EmulatorError("the host TFLM runtime (pip package tflite-micro) is not installed; "
                            "it has wheels for Linux only")
    interp = runtime.TFLMInterpreter(model_bytes)
    results = []
    for row in inputs:
        interp.set_input(row.reshape(interp.input.shape).astype(np.int8))
        interp.invoke()
        results.append(np.asarray(interp.get_output(), np.int8).reshape(-1))
    return np.stack(results)


def compare(board: np.ndarray, host: np.ndarray) -> dict[str, Any]:
    diff = np.abs(board.astype(np.int16) - host.astype(np.int16))
    differing = np.flatnonzero(diff.max(axis=1) > 0)
    return {"bit_exact": bool(len(differing) == 0), "inputs": int(len(board)),
            "inputs_differing": int(len(differing)),
            "outputs_differing": int((diff > 0).sum()),
            "max_abs_difference": int(diff.max(initial=0)),
            "first_differing_input": int(differing[0]) if len(differing) else None}


def verify_run(run_dir: Path | str, kit: Path | str | None = None,
               inputs: int = DEFAULT_INPUTS, jobs: int = 2,
               update_report: bool = True, host_features: bool = False) -> dict[str, Any]:
    """Build, run and compare; return the figures (and add them to the run's report).
    ``host_features``: feed an audio or IMU run host-computed inputs too, instead of its raw
    clips or windows through the sketch's front end on the core."""
    run_dir = Path(run_dir)
    report, model_path = RunReport.load_finished(run_dir)
    model = model_path.read_bytes()
    imu = "channels" in report.params
    not_on_board = (sketch_imu_params if imu else sketch_audio_params)(report.params)
    board = CortexM4Board(kit=kit, jobs=jobs)
    if not_on_board is None and not host_features and imu:
        windows, host_inputs = raw_test_windows(run_dir, report, model, inputs)
        program = board.load(model, export_dir=run_dir / "export", imu_input=True)
        x, on_board = board.invoke_windows(windows)  # x: the inputs the board computed
    elif not_on_board is None and not host_features:
        clips, host_inputs = raw_test_clips(run_dir, report, model, inputs)
        program = board.load(model, export_dir=run_dir / "export", audio_input=True)
        x, on_board = board.invoke_clips(clips)
    else:
        x = test_inputs(run_dir, report, model, inputs)
        program = board.load(model, export_dir=run_dir / "export")
        on_board = board.invoke(x)
    stats = board.stats
    if not stats.calibration_ok:
        raise EmulatorError("the instruction counter failed its check on loops of known length;"
                            " the counts cannot be trusted on this QEMU")
    host = host_outputs(model, x)
    result = compare(on_board, host)
    if program.computes_input:
        result["features"] = compare_features(x, host_inputs, on_board, host,
                                              host_outputs(model, host_inputs),
                                              stats.feature_instructions,
                                              "imu" if program.imu_input else "audio")
    else:
        why = ("--host-features was given" if host_features and not_on_board is None
               else not_on_board)
        result["features"] = {"source": "host", "why": why}
    per_inference = int(np.median(stats.instructions))
    macs = report.macs or 0
    result.update({
        "instructions_per_inference": per_inference,
        "instructions_min": int(min(stats.instructions)),
        "instructions_max": int(max(stats.instructions)),
        "latency_ms_at_64mhz": round(board.latency_ms(per_inference), 4),
        "cycles_per_instruction": CYCLES_PER_INSTRUCTION,
        "cycles_per_instruction_note": CPI_ASSUMPTION,
        "clock_hz": CLOCK_HZ,
        "macs": macs,
        "instructions_per_mac": round(per_inference / macs, 3) if macs else None,
        "arena_used_bytes_on_m4": stats.arena_used_bytes,
        "ops": program.ops,
        "verified": (WHAT_IS_VERIFIED_AUDIO if program.audio_input else WHAT_IS_VERIFIED_IMU
                     if program.imu_input else WHAT_IS_VERIFIED),
        "latency_source": board.latency_source,
        "build_seconds": program.seconds,
        "objects_compiled": program.objects_compiled,
        "objects_cached": program.objects_cached,
        "kit": str(board.kit),
    })
    # Wrong on this library whatever the first differing op is (a MEAN difference can come first).
    result["per_channel_fully_connected_ops"] = per_channel_fully_connected(model)
    if not result["bit_exact"]:
        result.update(explain_difference(board, model, x, on_board, host))
    if update_report:
        add_to_report(run_dir, report, result)
    return result


def explain_difference(board: CortexM4Board, model: bytes, x: np.ndarray,
                       on_board: np.ndarray, host: np.ndarray) -> dict[str, Any]:
    """Re-run some differing inputs op by op: which op's output differs first, and why."""
    from tinyml_edu.emulator.diagnose import diagnose

    differing = np.flatnonzero((on_board != host).any(axis=1))[:DIAGNOSE_INPUTS]
    first = next((d for d in diagnose(board, model, x[differing]) if d.differing), None)
    if first is None:
        return {"first_differing_op": None, "explained": False,
                "explanation": "no op output differs when every op's output is exposed"}
    key = first.op
    if first.op == "FULLY_CONNECTED" and _per_channel_weights(model, first.op_index):
        key = "FULLY_CONNECTED per-channel"
    return {"first_differing_op": {**first.to_dict(), "known_as": key},
            "explained": key in KNOWN_DIFFERENCES,
            "explanation": KNOWN_DIFFERENCES.get(key, "not understood yet")}


def per_channel_fully_connected(model: bytes) -> list[int]:
    """Execution indices of the FULLY_CONNECTED ops whose weights have per-channel scales."""
    from tinyml_edu.quantize import interpreter

    ops = interpreter(model)._get_ops_details()
    return [i for i, op in enumerate(ops)
            if op["op_name"] == "FULLY_CONNECTED" and _per_channel_weights(model, i)]


def _per_channel_weights(model: bytes, op_index: int) -> bool:
    """Are the weights of op ``op_index`` (execution order) quantized with one scale per
    output channel?"""
    from tinyml_edu.quantize import interpreter

    interp = interpreter(model)
    op = interp._get_ops_details()[op_index]
    weights = {t["index"]: t for t in interp.get_tensor_details()}[int(op["inputs"][1])]
    return len(weights["quantization_parameters"]["scales"]) > 1


def add_to_report(run_dir: Path, report: RunReport, result: dict[str, Any]) -> None:
    """Record the figures in ``report.json`` (key ``cortex_m4``), give the Cortex-M4F boards
    the emulated latency, and rewrite ``report.md``'s fit table."""
    from tinyml_edu.boards import BOARDS
    from tinyml_edu.report import write_markdown

    boards = {board_id: dict(fit) for board_id, fit in (report.boards or {}).items()}
    for board_id, fit in boards.items():
        board = BOARDS.get(board_id)
        if board is not None and board.cpu == M4_CPU:
            fit["latency_ms"] = round(result["instructions_per_inference"]
                                      * result["cycles_per_instruction"]
                                      / board.clock_hz * 1000, 4)
            fit["latency_source"] = result["latency_source"]
    cortex_m4 = {k: v for k, v in result.items() if k != "kit"}
    report = replace(report, boards=boards if report.boards is not None else None,
                     extra={**report.extra, "cortex_m4": cortex_m4})
    report.write(run_dir)
    if (run_dir / REPORT_MD_FILE).is_file():
        write_markdown(report.to_dict(), run_dir / REPORT_MD_FILE)
