"""Writing an Edge Impulse ``.eim`` for a tinyml-edu run (see the package's docstring)."""

from __future__ import annotations

import base64
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path

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


_EIM_TEMPLATE = '''\
__SHEBANG__
"""An Edge Impulse Linux model file (.eim) written by tinyml-edu __VERSION__.

Start: THIS_FILE SOCKET_PATH. It listens on that Unix socket and answers JSON requests, each
answer followed by one NUL byte: {"hello": 1, "id": N} -> model_parameters and project;
{"classify": [numbers], "id": N} -> result.classification (or result.freeform) and timing.
classify takes __CONTRACT__.
"""

import base64
import json
import os
import signal
import socket
import sys
import time

META = json.loads(__META__)
MODEL_B64 = (
__MODEL__
)
ACCEPT_TIMEOUT_S = 120  # nobody connected: the program that started us is gone


class Engine:
    """The .tflite model (and, for raw inputs, the project's features) of this file."""

    def __init__(self):
        import numpy as np

        self.np = np
        model = base64.b64decode(MODEL_B64)
        try:
            from tinyml_edu.quantize import dequantize, interpreter, quantize_input
        except ImportError:
            interpreter = dequantize = quantize_input = None
        if interpreter is None:
            try:
                from ai_edge_litert.interpreter import Interpreter, OpResolverType
            except ImportError as err:
                raise RuntimeError(
                    "%s cannot import ai_edge_litert (%s): pip install ai-edge-litert numpy"
                    % (sys.executable, err)) from err
            self.interp = Interpreter(
                model_content=model,
                experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
            self.interp.allocate_tensors()
        else:
            self.interp = interpreter(model)
            self.quantize_input, self.dequantize = quantize_input, dequantize
        self.inp = self.interp.get_input_details()[0]
        self.out = self.interp.get_output_details()[0]
        self.features = None
        if META["inputs"] == "raw":
            try:
                from tinyml_edu.projects import get_project
            except ImportError as err:
                raise RuntimeError(
                    "this .eim computes the features of the %r project with tinyml-edu, which "
                    "%s cannot import (%s): install tinyml-edu for it, or export with "
                    "--inputs features" % (META["project"], sys.executable, err)) from err
            self.features = get_project(META["project"]).features

    def quantize_input(self, x, scale, zero_point):
        np = self.np  # halves away from zero, as tinyml_edu.quantize.quantize_input
        v = np.asarray(x, np.float32) / np.float32(scale)
        q = np.sign(v) * np.floor(np.abs(v) + 0.5) + zero_point
        return np.clip(q, -128, 127).astype(np.int8)

    def dequantize(self, q, scale, zero_point):
        return (q.astype(self.np.float32) - zero_point) * scale

    def run(self, values):
        np = self.np
        x = np.asarray(values, dtype=np.float64).ravel()
        expected = META["hello"]["model_parameters"]["input_features_count"]
        if x.size != expected:
            raise ValueError("expected %d values (%s), got %d"
                             % (expected, META["input_description"], x.size))
        started = time.perf_counter()
        if self.features is not None:
            x = self.features(x.reshape([1] + META["raw_shape"]), META["feature_params"])
        x = np.asarray(x, np.float32).reshape(self.inp["shape"])
        computed = time.perf_counter()
        if self.inp["dtype"] == np.int8:
            x = self.quantize_input(x, *self.inp["quantization"])
        self.interp.set_tensor(self.inp["index"], x.astype(self.inp["dtype"]))
        self.interp.invoke()
        y = self.interp.get_tensor(self.out["index"])[0]
        if self.out["dtype"] == np.int8:
            y = self.dequantize(y, *self.out["quantization"])
        finished = time.perf_counter()
        timing = {"dsp": int(round((computed - started) * 1000)),
                  "classification": int(round((finished - computed) * 1000)), "anomaly": 0}
        scores = [float(v) for v in np.asarray(y, np.float32).ravel()]
        return scores, timing


def encode(message):
    """JSON whose braces are all structural: the SDKs find the end of an answer by counting
    braces, so a brace inside a string (a label, an error) is written as a \\\\u escape."""
    text = json.dumps(message)
    out, in_string, escaped = [], False, False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\\\":
                escaped = True
            elif ch == \'"\':
                in_string = False
            elif ch == "{":
                ch = "\\\\u007b"
            elif ch == "}":
                ch = "\\\\u007d"
        elif ch == \'"\':
            in_string = True
        out.append(ch)
    return "".join(out).encode("utf-8") + b"\\0"


def answer(message, engine, load_error):
    reply = {"id": message.get("id"), "success": True} if isinstance(message, dict) else {
        "id": None, "success": True}
    try:
        if not isinstance(message, dict):
            raise ValueError("expected a JSON object")
        if load_error is not None:
            raise RuntimeError(load_error)
        if "hello" in message:
            reply.update(META["hello"])
        elif "classify" in message:
            scores, timing = engine.run(message["classify"])
            if META["hello"]["model_parameters"]["model_type"] == "classification":
                labels = META["hello"]["model_parameters"]["labels"]
                result = {"classification": dict(zip(labels, scores))}
            else:
                result = {"freeform": [scores]}
            reply.update(result=result, timing=timing)
        elif "classify_shm" in message:
            raise ValueError("this .eim offers no shared memory; send classify")
        elif "classify_continuous" in message:
            raise ValueError("this .eim has no continuous mode; send whole windows to classify")
        elif "set_threshold" in message:
            raise ValueError("this .eim has no thresholds to set")
        else:
            raise ValueError("unknown request; send hello or classify")
    except Exception as err:  # every failure is an answer, never a dead socket
        reply = {"id": reply["id"], "success": False,
                 "error": "%s: %s" % (type(err).__name__, err)}
    return encode(reply)


def serve(connection, engine, load_error):
    decoder = json.JSONDecoder()
    pending = b""
    while True:
        chunk = connection.recv(1 << 16)
        if not chunk:
            return  # the SDK closed the socket
        pending += chunk
        while True:
            # Requests come without a terminator (Python SDK) or with a newline (Node CLI).
            pending = pending.lstrip(b" \\t\\r\\n\\0")
            if not pending:
                break
            try:
                message, end = decoder.raw_decode(pending.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                if len(pending) > (64 << 20):
                    connection.sendall(encode({"id": None, "success": False,
                                               "error": "unreadable request"}))
                    pending = b""
                break  # the rest of the request is still on its way
            pending = pending.decode("utf-8")[end:].encode("utf-8")
            connection.sendall(answer(message, engine, load_error))


def listen(path):
    """Bind under a temporary name, then rename: the SDK connects as soon as the path exists,
    so it must never see a socket that is bound but not yet listening."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    temporary = os.path.join(os.path.dirname(os.path.abspath(path)),
                             ".%d.%s" % (os.getpid(), os.path.basename(path)))
    try:
        server.bind(temporary)
    except OSError:  # e.g. the longer name does not fit: bind in place
        server.bind(path)
        server.listen(1)
        return server
    server.listen(1)
    os.replace(temporary, path)
    return server


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: %s SOCKET_PATH (Edge Impulse's ImpulseRunner starts this)\\n"
                         % argv[0])
        return 2
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(0))
    server = listen(argv[1])
    engine, load_error = None, None
    try:
        try:  # after listening, so that a broken install is reported in the hello answer
            engine = Engine()
        except Exception as err:
            load_error = "%s: %s" % (type(err).__name__, err)
            sys.stderr.write(load_error + "\\n")
        server.settimeout(ACCEPT_TIMEOUT_S)
        try:
            connection, _ = server.accept()
        except socket.timeout:
            return 1
        connection.settimeout(None)
        with connection:
            serve(connection, engine, load_error)
    except KeyboardInterrupt:  # ImpulseRunner.stop() sends SIGINT
        pass
    finally:
        server.close()
        try:
            os.unlink(argv[1])
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
'''


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
    from tinyml_edu import runtime

    source, out_path = Path(source), Path(out_path)
    model_path, report = _load_report(source)
    model = model_path.read_bytes()
    interp = runtime.load(model, "LiteRT")
    model_shape = list(interp.input.shape[1:])
    model_inputs = int(np.prod(model_shape))
    outputs = int(np.prod(interp.output.shape[1:]))

    task = report.task or "classification"
    project = _project_of(report)
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
    if task == "classification":
        classes = [str(c) for c in (labels or report.labels or
                                    [f"class_{i}" for i in range(outputs)])]
        if len(classes) != outputs:
            raise InputError(f"{len(classes)} labels for a model with {outputs} outputs")
    else:
        classes = []

    feature_params = report.params
    if inputs == "raw":
        info = datasets.info(project.dataset)
        raw_shape = [int(d) for d in info.input_shape]
        rate = float(info.sample_rate or 0)
        sensor = SENSOR_CODES.get(project.sensor, SENSOR_UNKNOWN)
        features_count = int(np.prod(raw_shape))
        axes = raw_shape[1] if len(raw_shape) > 1 else 1
        stride = int(feature_params.get("stride", raw_shape[0]))
        description = (f"one raw window of {raw_shape[0]} samples x {axes} axes, flattened "
                       "sample by sample")
    else:
        raw_shape, rate, sensor, axes = [], 0.0, SENSOR_UNKNOWN, 1
        features_count = model_inputs
        stride = 0
        description = (f"the model input {model_shape} flattened "
                       "(tinyml_edu.edge_impulse.features_for_eim)")
        if project is not None and project.features is not None:
            info = datasets.info(project.dataset)
            raw_shape = [int(d) for d in info.input_shape]
            rate = float(info.sample_rate or 0)
            stride = int(feature_params.get("stride", raw_shape[0]))

    name = report.project or model_path.stem
    hello = {
        "model_parameters": {
            "axis_count": axes,
            # Raw windows are a time series at the data set's rate; model inputs are not.
            "frequency": rate if inputs == "raw" else 0,
            "has_anomaly": 0,
            "has_object_tracking": False,
            "input_features_count": features_count,
            "image_input_height": 0,
            "image_input_width": 0,
            "image_input_frames": 0,
            "image_channel_count": 0,
            "image_resize_mode": "none",
            "interval_ms": (1000.0 / rate) if inputs == "raw" and rate else 0,
            "label_count": len(classes),
            "labels": classes,
            "model_type": "classification" if task == "classification" else "freeform",
            "sensor": sensor if inputs == "raw" else SENSOR_UNKNOWN,
            "slice_size": features_count,
            "use_continuous_mode": False,
            "has_performance_calibration": False,
            "inferencing_engine": ENGINE_TFLITE_FULL,
            "thresholds": [],
        },
        "project": {"id": 0, "owner": "tinyml-edu", "name": str(name), "deploy_version": 1},
        "inferencing_engine": {"inferencing_engine": ENGINE_TFLITE_FULL},
        # Ignored by the SDKs; what `tinyml-edu edge-impulse run` needs to cut recordings.
        "tinyml_edu": {
            "version": __version__, "project": report.project, "task": task,
            "inputs": inputs, "raw_shape": raw_shape, "sample_rate": rate, "stride": stride,
            "model_input_shape": model_shape, "feature_params": feature_params,
        },
    }
    meta = {"inputs": inputs, "project": report.project, "raw_shape": raw_shape,
            "feature_params": feature_params, "input_description": description,
            "hello": hello}
    encoded = base64.b64encode(model).decode("ascii")
    model_lines = "\n".join(f'    "{encoded[i:i + 96]}"' for i in range(0, len(encoded), 96))
    fill = {"SHEBANG": _shebang(python or sys.executable or "/usr/bin/python3"),
            "VERSION": __version__, "CONTRACT": description, "META": repr(json.dumps(meta)),
            "MODEL": model_lines or '    ""'}
    # One pass: a label that happens to read __MODEL__ must not be filled in again.
    script = re.sub(r"__(SHEBANG|VERSION|CONTRACT|META|MODEL)__", lambda m: fill[m.group(1)],
                    _EIM_TEMPLATE)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(out_path) as tmp:
        tmp.write_text(script, encoding="utf-8")
        tmp.chmod(0o755)
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


