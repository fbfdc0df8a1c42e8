"""Linux boards (Raspberry Pi and friends) through Edge Impulse's Linux SDK.

Edge Impulse runs a model on Linux as an ``.eim`` file: an executable that the SDK starts as
``MODEL.eim SOCKET_PATH`` and then talks to over that Unix socket in JSON (``hello`` -> what the
model is, ``classify`` -> scores). ``export_eim`` writes such a file for a tinyml-edu run: a
Python script (shebang: this interpreter) with the run's int8 ``.tflite`` embedded, which the
SDK's ``ImpulseRunner`` and Edge Impulse's own CLI tools can start like any other ``.eim``.

What ``classify`` takes (``inputs``, chosen at export):

- ``"raw"`` (the default when the run's project can compute its features): one raw sensor window,
  flattened sample by sample (IMU: ``ax, ay, az, gx, gy, gz`` of the first sample, then of the
  second, ...; audio: the int16 samples), exactly what an Edge Impulse ``.eim`` takes. The
  project's features are computed inside the ``.eim`` with the run's ``feature_params``, so the
  SDK's own flows work on raw data (``AudioImpulseRunner`` feeds it microphone samples). The
  ``.eim``'s interpreter must be able to import tinyml-edu.
- ``"features"``: the model input after the project's features, flattened
  (``features_for_eim`` computes it). The ``.eim`` then needs only numpy and ai-edge-litert,
  for a board where the whole of tinyml-edu is too heavy to install.

``run_eim`` and ``classify_recordings`` drive an ``.eim`` through the real
``edge_impulse_linux.runner.ImpulseRunner`` (the ``linux-board`` extra); ``export_ei_dataset``
turns a folder of your recordings into files Edge Impulse's uploader takes.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import json
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from tinyml_edu import __version__, datasets
from tinyml_edu._fs import check_out_dir, replacing, write_atomic
from tinyml_edu.errors import InputError, MissingFileError, TinyMLEduError
from tinyml_edu.predict import FilePrediction
from tinyml_edu.run_report import INT8_MODEL_FILE, REPORT_FILE, RunReport

INPUTS = ("raw", "features")

# Edge Impulse's sensor codes in the hello answer (the Linux CLI maps them to sensorType).
SENSOR_CODES = {"audio": 1, "imu": 2}
SENSOR_UNKNOWN = -1
# Edge Impulse's inferencing engine code for full TensorFlow Lite (what LiteRT is).
ENGINE_TFLITE_FULL = 4
# The uploader takes a sample's label from its file name up to the first dot, in these letters.
EI_LABEL = re.compile(r"^[a-zA-Z0-9\s_-]+$")
EMPTY_SIGNATURE = "0" * 64  # alg "none": the signature is not checked; HS256 would be 64 hex
README_MARK = "Made by tinyml-edu edge-impulse export-data"
INSTALL_HINT = ("install the `linux-board` extra: `sudo apt-get install portaudio19-dev` (PyAudio "
                "builds against it), then `pip install 'tinyml-edu[linux-board]'` (which brings "
                "edge_impulse_linux, pyaudio and opencv-python-headless)")


class EdgeImpulseError(TinyMLEduError, RuntimeError):
    """An ``.eim`` could not be started or answered with an error; the message says why."""


class SDKMissingError(EdgeImpulseError):
    """Edge Impulse's Linux SDK (or one of the modules its package imports) is not installed."""


# ---------------------------------------------------------------------------------------------
# The .eim script


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


# ---------------------------------------------------------------------------------------------
# Running an .eim with the SDK


def _import_runner():
    """``edge_impulse_linux.runner.ImpulseRunner``. The package's ``__init__`` imports its
    audio module (PyAudio) and image module (cv2, which *exits* the interpreter when missing),
    so both failures are caught here."""
    try:
        from edge_impulse_linux.runner import ImpulseRunner
    except (ImportError, SystemExit) as err:
        detail = (f"{err.name} is missing" if isinstance(err, ImportError) and err.name
                  else "cv2 (opencv-python-headless) is missing" if isinstance(err, SystemExit)
                  else str(err))
        hint = INSTALL_HINT
        if isinstance(err, ImportError) and err.name == "six":
            hint += "; the SDK also imports six without declaring it: `pip install six`"
        raise SDKMissingError(f"Edge Impulse's Linux SDK cannot be imported ({detail}): "
                              f"{hint}") from err
    return ImpulseRunner


def _start(runner, path: Path, timeout: float) -> dict[str, Any]:
    """``runner.init()`` with a watchdog: the SDK waits for the socket with no time limit and
    keeps waiting after the program died, so a broken ``.eim`` would hang it for ever."""
    box: dict[str, Any] = {}

    def init() -> None:
        try:
            box["info"] = runner.init()
        except BaseException as err:  # noqa: BLE001 - reported to the caller's thread
            box["error"] = err

    thread = threading.Thread(target=init, name="eim-init", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    problem = None
    while thread.is_alive():
        thread.join(0.05)
        process = getattr(runner, "_runner", None)
        if not thread.is_alive():
            break
        if process is not None and process.poll() is not None:
            problem = (f"{path} exited with code {process.returncode} before it answered; run "
                       f"it by hand to see why: {path} /tmp/test.sock")
        elif time.monotonic() > deadline:
            problem = f"{path} did not answer within {timeout:g} s"
        if problem:
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
            # End the SDK's wait loop: it polls the process only once the socket path exists,
            # so put a file there and take the process away (the poll then raises).
            runner._runner = None
            tempdir = getattr(runner, "_tempdir", None)
            if tempdir and os.path.isdir(tempdir):
                Path(tempdir, "runner.sock").touch()
            thread.join(2.0)
            runner.stop()
            raise EdgeImpulseError(problem)
    if "error" in box:
        err = box["error"]
        message = _describe(runner, path, err)
        _stop(runner)
        raise EdgeImpulseError(message) from err
    return box["info"]


def _describe(runner, path: Path | str, err: BaseException) -> str:
    """What went wrong, in words: the SDK's own errors are terse (an IndexError when the
    program died mid-answer)."""
    process = getattr(runner, "_runner", None)
    if process is not None and process.poll() is not None:
        return f"{path} exited with code {process.returncode} while answering ({err!r})"
    if isinstance(err, OSError):
        return (f"{path} could not be started ({err}); is its #! line an interpreter on this "
                "computer?")
    return f"{path}: {err}"


def _stop(runner) -> None:
    process = getattr(runner, "_runner", None)
    if process is not None and process.poll() is not None:
        runner._runner = None  # already gone: the SDK's SIGINT would raise ProcessLookupError
    try:
        runner.stop()  # SIGINT, and removes the socket folder; it does not wait for the process
    except ProcessLookupError:
        pass
    if process is not None:
        try:
            process.wait(5)
        except Exception:  # noqa: BLE001 - still running: make sure it goes
            process.kill()
            process.wait()


@contextlib.contextmanager
def open_runner(eim_path: Path | str, timeout: float = 60.0) -> Iterator[tuple[Any, dict]]:
    """An initialised ``ImpulseRunner`` for ``eim_path`` and its model information (the hello
    answer), stopped on exit."""
    impulse_runner = _import_runner()
    path = Path(eim_path).resolve()
    if not path.is_file():
        raise MissingFileError(f"{eim_path} not found")
    if not os.access(path, os.X_OK):
        raise EdgeImpulseError(f"{eim_path} is not executable; `chmod +x {eim_path}`")
    runner = impulse_runner(str(path))
    info = _start(runner, path, timeout)
    try:
        yield runner, info
    finally:
        _stop(runner)


def _vector(values: Any) -> list[float]:
    return np.asarray(values, dtype=np.float64).ravel().tolist()


def _classify(runner, path: Path | str, values: Any) -> dict[str, Any]:
    try:
        return runner.classify(_vector(values))
    except Exception as err:
        raise EdgeImpulseError(_describe(runner, path, err)) from err


def run_eim(eim_path: Path | str, features: Any) -> dict[str, Any]:
    """Start ``eim_path`` with Edge Impulse's ``ImpulseRunner``, classify one flat vector and
    return the SDK's answer: ``{"result": {"classification": {label: score}}, "timing": ...}``
    plus ``"model_info"``, the hello answer."""
    with open_runner(eim_path) as (runner, info):
        answer = _classify(runner, eim_path, features)
    return {**answer, "model_info": info}


def classify_recordings(eim_path: Path | str,
                        paths: Sequence[Path | str]) -> list[FilePrediction]:
    """Label recordings (files or folders) with an ``.eim`` through the SDK, like ``tinyml-edu
    predict``: each recording is cut into the model's windows and the windows' scores are
    averaged. An ``.eim`` not made by tinyml-edu is given raw windows of
    ``input_features_count / axis_count`` samples without overlap, which is what Edge Impulse's
    own time-series models take."""
    from tinyml_edu.predict import _recordings
    from tinyml_edu.projects import get_project

    found = _recordings([Path(p) for p in paths])
    results = []
    with open_runner(eim_path) as (runner, info):
        params = info["model_parameters"]
        if params.get("model_type", "classification") != "classification":
            raise InputError(f"{eim_path} is a {params.get('model_type')} model; run labels "
                             "recordings with a classification model")
        ours = info.get("tinyml_edu") or {}
        features = None
        if ours.get("inputs") == "features":
            if not ours.get("raw_shape"):
                raise InputError(f"{eim_path} takes model inputs and does not say how to compute "
                                 "them from recordings; use run_eim with your own features")
            window = int(ours["raw_shape"][0])
            project = get_project(ours["project"])

            def features(w: np.ndarray) -> np.ndarray:
                return project.features(w[np.newaxis], ours["feature_params"])
        else:
            axes = max(int(params.get("axis_count") or 1), 1)
            window = int(params["input_features_count"]) // axes
        stride = int(ours.get("stride") or window)
        rate = float(ours.get("sample_rate") or params.get("frequency") or 0)
        for path in found:
            data, file_rate = datasets.read_recording(path)
            if file_rate and rate and abs(file_rate - rate) > 0.05 * rate:
                raise InputError(f"{path} is {file_rate:g} Hz; this model was trained on "
                                 f"{rate:g} Hz recordings")
            windows = datasets.cut_windows(data, window, stride)
            if not windows:
                raise InputError(f"{path} is shorter than one window ({window} samples)")
            scores = []
            for w in windows:
                values = features(w) if features is not None else w
                answer = _classify(runner, eim_path, values)
                classification = answer["result"]["classification"]
                scores.append([classification[label] for label in params["labels"]])
            mean = np.mean(scores, axis=0)
            best = int(np.argmax(mean))
            results.append(FilePrediction(str(path), params["labels"][best], float(mean[best]),
                                          len(windows)))
    return results


# ---------------------------------------------------------------------------------------------
# Recordings -> Edge Impulse's data acquisition format


@dataclass
class ExportedDataset:
    out_dir: Path
    files: list[Path] = field(default_factory=list)
    per_label: dict[str, int] = field(default_factory=dict)
    readme: Path | None = None


def _sidecar(path: Path) -> dict[str, Any]:
    sidecar = path.with_suffix(".json")
    if not sidecar.is_file():
        return {}
    try:
        found = json.loads(sidecar.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return found if isinstance(found, dict) else {}


def _issued_at(path: Path, sidecar: dict[str, Any]) -> int:
    started = sidecar.get("started")
    if isinstance(started, str):
        try:
            return int(datetime.fromisoformat(started).timestamp())
        except ValueError:
            pass
    return int(path.stat().st_mtime)


def _read_csv(path: Path) -> tuple[list[str], list[list[float]]]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = [row for row in csv.reader(f) if row]
    if not rows:
        raise datasets.DatasetError(f"{path} is empty; expected a header row, then numbers")
    header = [c.strip() for c in rows[0]]
    values = []
    for n, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise datasets.DatasetError(f"{path}, line {n}: {len(row)} values for "
                                        f"{len(header)} columns")
        try:
            values.append([float(v) for v in row])
        except ValueError as err:
            raise datasets.DatasetError(f"{path}, line {n}: {err}") from err
    return header, values


def acquisition_json(path: Path, rate: float | None = None) -> dict[str, Any]:
    """One CSV recording (and its sidecar) in Edge Impulse's data acquisition format, unsigned
    (``alg: none``)."""
    sidecar = _sidecar(path)
    header, values = _read_csv(path)
    try:
        rate = float(sidecar.get("rate") or 0) or rate
    except (TypeError, ValueError):
        pass
    if not rate:
        raise datasets.DatasetError(f"{path}: no sample rate (no `rate` in "
                                    f"{path.with_suffix('.json').name}); pass one (--rate HZ)")
    names = sidecar.get("columns") if isinstance(sidecar.get("columns"), list) else header
    if len(names) != len(header):
        names = header
    units = sidecar.get("units")
    if not isinstance(units, list) or len(units) != len(header):
        units = ["N/A"] * len(header)
    board = str(sidecar.get("board") or "tinyml-edu")
    return {
        "protected": {"ver": "v1", "alg": "none", "iat": _issued_at(path, sidecar)},
        "signature": EMPTY_SIGNATURE,
        "payload": {
            "device_name": board,
            "device_type": board.upper().replace(" ", "_"),
            "interval_ms": 1000.0 / rate,
            "sensors": [{"name": str(n), "units": str(u)} for n, u in zip(names, units,
                                                                         strict=True)],
            "values": values,
        },
    }


_README = """\
{mark} {version}, from {folder}.

{summary}

Upload (when online) with Edge Impulse's CLI (Node.js): `npm install -g edge-impulse-cli`, then
from this folder

    edge-impulse-uploader --category split *.json *.wav

It asks you to log in and pick a project (or pass --api-key ei_... from the project's
Dashboard > Keys). `--category split` puts about 80 % of the samples in training and 20 % in
testing. The uploader takes each sample's label from its file name up to the first dot
(`W.W_20250101-120000_1.json` is labelled W).

IMU recordings are .json files in Edge Impulse's data acquisition format, unsigned
(protected.alg "none"): payload.interval_ms is 1000 / the sample rate, payload.sensors the CSV's
columns and units, payload.values one row per sample as recorded. Audio recordings are .wav files
(Edge Impulse reads the rate from the file).
"""


def _is_our_export(out_dir: Path) -> bool:
    readme = out_dir / "README.txt"
    return readme.is_file() and README_MARK in readme.read_text(encoding="utf-8",
                                                                errors="replace")


def export_ei_dataset(folder: Path | str, out_dir: Path | str,
                      rate: float | None = None) -> ExportedDataset:
    """Convert a recordings folder (``folder/<label>/<name>.csv|.wav|.flac``, what ``tinyml-edu
    capture`` writes) into files for ``edge-impulse-uploader``: ``<label>.<name>.json`` (IMU,
    data acquisition format) and ``<label>.<name>.wav`` (audio), plus a ``README.txt``.

    rate: the sample rate of CSV recordings without a sidecar giving one."""
    folder, out_dir = Path(folder), Path(out_dir)
    if not folder.is_dir():
        raise datasets.DatasetError(f"{folder} is not a folder; expected one sub-folder per "
                                    "label (what `tinyml-edu capture` writes)")
    label_dirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not label_dirs:
        raise datasets.DatasetError(f"{folder} has no label folders (e.g. {folder}/W/)")
    bad = [p.name for p in label_dirs if not EI_LABEL.match(p.name)]
    if bad:
        raise InputError(f"label folder(s) {bad}: Edge Impulse labels may only use letters, "
                         "digits, spaces, '-' and '_'; rename the folders")
    check_out_dir(out_dir, _is_our_export, "an export of ours")
    out_dir.mkdir(parents=True, exist_ok=True)
    result = ExportedDataset(out_dir)
    for label_dir in label_dirs:
        files = sorted(p for p in label_dir.iterdir()
                       if p.is_file() and p.suffix.lower() in datasets.USER_FORMATS)
        for path in files:
            suffix = path.suffix.lower()
            kind = ".json" if suffix == ".csv" else ".wav"
            target = out_dir / f"{label_dir.name}.{path.stem}{kind}"
            if suffix == ".csv":
                sample = acquisition_json(path, rate)
                write_atomic(target, json.dumps(sample) + "\n")
            elif suffix == ".wav":
                shutil.copyfile(path, target)
            else:  # FLAC: Edge Impulse takes WAV
                import soundfile

                audio, file_rate = soundfile.read(path, dtype="int16", always_2d=True)
                soundfile.write(target, audio, int(file_rate), subtype="PCM_16")
            result.files.append(target)
            result.per_label[label_dir.name] = result.per_label.get(label_dir.name, 0) + 1
    if not result.files:
        raise datasets.DatasetError(f"{folder}: no recordings (.csv, .wav or .flac) in its label "
                                    "folders")
    summary = "\n".join(f"  {label}: {n} recording(s)" for label, n in result.per_label.items())
    result.readme = out_dir / "README.txt"
    result.readme.write_text(_README.format(mark=README_MARK, version=__version__,
                                            folder=folder, summary=summary), encoding="utf-8")
    return result


__all__ = ["EdgeImpulseError", "ExportedDataset", "SDKMissingError", "acquisition_json",
           "classify_recordings", "export_ei_dataset", "export_eim", "features_for_eim",
           "open_runner", "run_eim"]
