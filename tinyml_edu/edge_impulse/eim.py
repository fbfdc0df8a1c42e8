"""Writing an Edge Impulse ``.eim`` for a tinyml-edu run (see the package's docstring).

The ``.eim`` is ``eim_program.py`` (this package's data, read with ``importlib.resources``) behind
a ``#!`` line, with its placeholder lines replaced by the run's model (base64) and what the
SDK's ``hello`` gets back."""

from __future__ import annotations

import base64
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from tinyml_edu import __version__, datasets
from tinyml_edu._fs import replacing
from tinyml_edu.errors import InputError, MissingFileError
from tinyml_edu.run_report import INT8_MODEL_FILE, REPORT_FILE, RunReport

INPUTS = ("raw", "features")

# Edge Impulse's sensor codes in the hello answer (the Linux CLI maps them to sensorType).
SENSOR_CODES = {"audio": 1, "imu": 2}
SENSOR_UNKNOWN = -1
# Edge Impulse's inferencing engine code for full TensorFlow Lite (what LiteRT is).
ENGINE_TFLITE_FULL = 4


def _shebang(python: str) -> str:
    """``#!python``, or a line that both sh and Python read where the kernel cannot take the
    path as a shebang (spaces, or longer than the kernel reads)."""
    if python and not re.search(r"\s", python) and len(python) < 120:
        return f"#!{python}"
    quoted = python.replace('"', '\\"')
    # sh runs the exec; Python sees a string expression and goes on.
    return f'#!/bin/sh\n\'\'\'\'exec "{quoted}" "$0" "$@" # \'\'\''


def _load_report(source: Path) -> tuple[Path, RunReport]:
    """(model path, report; an empty one for a lone .tflite) of a run folder or a .tflite file."""
    if source.is_dir():
        model_path = source / INT8_MODEL_FILE
        if not model_path.is_file():
            raise MissingFileError(f"{source} has no {INT8_MODEL_FILE}; make a run with "
                                   f"`tinyml-edu run PROJECT --out {source}`")
    elif source.is_file():
        if source.suffix != ".tflite":
            raise InputError(f"{source} is not a .tflite model or a run folder")
        model_path = source
    else:
        raise MissingFileError(f"{source} not found")
    return model_path, RunReport.beside(model_path)


def _project_of(report: RunReport):
    from tinyml_edu.projects import PROJECTS

    return PROJECTS.get(report.project or "")


# The program an .eim runs: a module of this package, copied behind a #! line with the lines
# below (each in it exactly once) replaced by the exported values.
PROGRAM = "eim_program.py"
PLACEHOLDERS = {
    "WRITTEN_BY": 'WRITTEN_BY = "tinyml-edu (the template: export_eim has not filled it in)"',
    "INPUT_CONTRACT": 'INPUT_CONTRACT = "nothing: this is the template, not an exported .eim"',
    "META_JSON": 'META_JSON = "{}"',
    "MODEL_B64": 'MODEL_B64 = ""',
}
MODEL_LINE_CHARS = 96  # base64 characters per line of MODEL_B64


@dataclass(frozen=True)
class InputLayout:
    """What ``classify`` of the ``.eim`` takes, and the data set behind it (what ``tinyml-edu
    edge-impulse run`` needs to cut recordings into windows)."""

    inputs: str  # "raw" or "features"
    features_count: int  # numbers per classify request
    axes: int
    description: str  # for the error when a request has the wrong length
    raw_shape: list[int] = field(default_factory=list)  # one raw window; [] when unknown
    rate: float = 0.0  # Hz of the raw windows; 0 when unknown
    stride: int = 0  # samples between windows when cutting recordings; 0 when unknown
    sensor: int = SENSOR_UNKNOWN

    def __post_init__(self) -> None:
        if self.inputs not in INPUTS:
            raise InputError(f"unknown inputs {self.inputs!r}; use 'raw' or 'features'")


def _model_shapes(model: bytes) -> tuple[list[int], int]:
    """(the model's input shape without the batch, its number of outputs)."""
    from tinyml_edu import runtime

    interp = runtime.load(model, "LiteRT")
    return list(interp.input.shape[1:]), int(np.prod(interp.output.shape[1:]))


def _choose_inputs(inputs: str | None, report: RunReport, project, model_path: Path) -> str:
    """``inputs``, or the default: raw windows where the run's project computes features."""
    raw_ok = project is not None and project.features is not None
    if inputs is None:
        inputs = "raw" if raw_ok else "features"
    if inputs not in INPUTS:
        raise InputError(f"unknown inputs {inputs!r}; use 'raw' or 'features'")
    if inputs == "raw" and not raw_ok:
        what = (f"project {report.project!r} cannot compute features for new recordings"
                if report.project else f"no {REPORT_FILE} beside {model_path} names the "
                                       "project that computes the features")
        raise InputError(f"raw inputs need the project's features: {what}; export with "
                         "inputs='features' (--inputs features)")
    return inputs


def _class_names(task: str, labels: Sequence[str] | None, report: RunReport,
                 outputs: int) -> list[str]:
    """One label per output for a classifier (``class_I`` without any); none otherwise."""
    if task != "classification":
        return []
    classes = [str(c) for c in (labels or report.labels or
                                [f"class_{i}" for i in range(outputs)])]
    if len(classes) != outputs:
        raise InputError(f"{len(classes)} labels for a model with {outputs} outputs")
    return classes


def _input_layout(inputs: str, project, feature_params: dict[str, Any],
                  model_shape: list[int]) -> InputLayout:
    if project is None or project.features is None:  # a model input only; no data set known
        return InputLayout(inputs, int(np.prod(model_shape)), 1, _features_description(
            model_shape))
    info = datasets.info(project.dataset)
    raw_shape = [int(d) for d in info.input_shape]
    rate = float(info.sample_rate or 0)
    stride = int(feature_params.get("stride", raw_shape[0]))
    if inputs == "features":
        return InputLayout(inputs, int(np.prod(model_shape)), 1,
                           _features_description(model_shape), raw_shape, rate, stride)
    axes = raw_shape[1] if len(raw_shape) > 1 else 1
    return InputLayout(inputs, int(np.prod(raw_shape)), axes,
                       f"one raw window of {raw_shape[0]} samples x {axes} axes, flattened "
                       "sample by sample", raw_shape, rate, stride,
                       SENSOR_CODES.get(project.sensor, SENSOR_UNKNOWN))


def _features_description(model_shape: list[int]) -> str:
    return (f"the model input {model_shape} flattened "
            "(tinyml_edu.edge_impulse.features_for_eim)")


def _hello(layout: InputLayout, classes: list[str], task: str, name: str, report: RunReport,
           model_shape: list[int]) -> dict[str, Any]:
    """The answer to the SDK's ``hello``: what Edge Impulse's own ``.eim`` files say, plus
    a ``tinyml_edu`` part."""
    raw = layout.inputs == "raw"
    return {
        "model_parameters": {
            "axis_count": layout.axes,
            # Raw windows are a time series at the data set's rate; model inputs are not.
            "frequency": layout.rate if raw else 0,
            "has_anomaly": 0,
            "has_object_tracking": False,
            "input_features_count": layout.features_count,
            "image_input_height": 0,
            "image_input_width": 0,
            "image_input_frames": 0,
            "image_channel_count": 0,
            "image_resize_mode": "none",
            "interval_ms": (1000.0 / layout.rate) if raw and layout.rate else 0,
            "label_count": len(classes),
            "labels": classes,
            "model_type": "classification" if task == "classification" else "freeform",
            "sensor": layout.sensor if raw else SENSOR_UNKNOWN,
            "slice_size": layout.features_count,
            "use_continuous_mode": False,
            "has_performance_calibration": False,
            "inferencing_engine": ENGINE_TFLITE_FULL,
            "thresholds": [],
        },
        "project": {"id": 0, "owner": "tinyml-edu", "name": name, "deploy_version": 1},
        "inferencing_engine": {"inferencing_engine": ENGINE_TFLITE_FULL},
        # Ignored by the SDKs; what `tinyml-edu edge-impulse run` needs to cut recordings.
        "tinyml_edu": {
            "version": __version__, "project": report.project, "task": task,
            "inputs": layout.inputs, "raw_shape": layout.raw_shape,
            "sample_rate": layout.rate, "stride": layout.stride,
            "model_input_shape": model_shape, "feature_params": report.params,
        },
    }


def fill_program(template: str, values: dict[str, str]) -> str:
    """``template`` with each placeholder line of ``PLACEHOLDERS`` replaced by ``values[name]``.

    Lines, not text: a label that reads like a placeholder is never filled in again, and a
    placeholder line missing (or twice) in the template is an error, not a silent no-op."""
    lines = template.splitlines(keepends=True)
    for name, placeholder in PLACEHOLDERS.items():
        found = [i for i, line in enumerate(lines) if line.rstrip("\r\n") == placeholder]
        if len(found) != 1:
            raise RuntimeError(f"{PROGRAM} must hold the line {placeholder!r} exactly once; "
                               f"it holds it {len(found)} time(s). tinyml-edu is damaged: "
                               "reinstall it")
        lines[found[0]] = values[name] + "\n"
    return "".join(lines)


def program_template() -> str:
    """The text of ``eim_program.py``, as installed (from the wheel, or this folder)."""
    return resources.files("tinyml_edu.edge_impulse").joinpath(PROGRAM).read_text(encoding="utf-8")


def _program_values(layout: InputLayout, meta: dict[str, Any], model: bytes) -> dict[str, str]:
    encoded = base64.b64encode(model).decode("ascii")
    chunks = [encoded[i:i + MODEL_LINE_CHARS]
              for i in range(0, len(encoded), MODEL_LINE_CHARS)] or [""]
    model_lines = "\n".join(f'    "{chunk}"' for chunk in chunks)
    return {
        "WRITTEN_BY": f"WRITTEN_BY = {f'tinyml-edu {__version__}'!r}",
        "INPUT_CONTRACT": f"INPUT_CONTRACT = {layout.description!r}",
        "META_JSON": f"META_JSON = {json.dumps(meta)!r}",
        "MODEL_B64": f"MODEL_B64 = (\n{model_lines}\n)",
    }


def _write_executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o755)


def export_eim(source: Path | str, out_path: Path | str, inputs: str | None = None,
               python: str | None = None, labels: Sequence[str] | None = None) -> Path:
    """Write an Edge Impulse ``.eim`` for a run folder (its ``model_int8.tflite`` and
    ``report.json``) or for a ``.tflite`` file; return its path.

    inputs: ``"raw"`` (raw sensor windows; features computed inside, the default where the
    run's project has features) or ``"features"`` (model inputs, see ``features_for_eim``).
    python: the interpreter in the shebang (default: this one). On another computer export
    there, or pass the board's python.
    labels: class names for a bare ``.tflite`` without a ``report.json`` beside it.
    """
    source, out_path = Path(source), Path(out_path)
    model_path, report = _load_report(source)
    model = model_path.read_bytes()
    model_shape, outputs = _model_shapes(model)
    project = _project_of(report)
    inputs = _choose_inputs(inputs, report, project, model_path)
    task = report.task or "classification"
    classes = _class_names(task, labels, report, outputs)
    layout = _input_layout(inputs, project, report.params, model_shape)
    hello = _hello(layout, classes, task, str(report.project or model_path.stem), report,
                   model_shape)
    meta = {"inputs": inputs, "project": report.project, "raw_shape": layout.raw_shape,
            "feature_params": report.params, "input_description": layout.description,
            "hello": hello}
    program = fill_program(program_template(), _program_values(layout, meta, model))
    shebang = _shebang(python or sys.executable or "/usr/bin/python3")
    _write_executable(out_path, f"{shebang}\n{program}")
    return out_path


def features_for_eim(run_dir: Path | str, raw_windows: np.ndarray) -> list:
    """The project's features of raw windows, flattened: what ``classify`` of an ``.eim``
    exported with ``inputs="features"`` takes.

    One window (shaped like the data set's windows, e.g. (128, 6) or (4000,)) gives one flat
    list; a stack of windows gives a list of them."""
    model_path, report = _load_report(Path(run_dir))
    project = _project_of(report)
    if project is None or project.features is None:
        raise InputError(f"{run_dir}: the run's project cannot compute features for new "
                         "recordings; pass model inputs yourself")
    shape = tuple(datasets.info(project.dataset).input_shape)
    x = np.asarray(raw_windows)
    single = x.shape[:len(shape)] == shape and all(d == 1 for d in x.shape[len(shape):])
    if single:
        x = x.reshape((1, *shape))
    computed = np.asarray(project.features(x, report.params), np.float32)
    rows = [row.ravel().astype(np.float64).tolist() for row in computed]
    return rows[0] if single else rows


