"""An Edge Impulse Linux model file (.eim) written by tinyml-edu (see WRITTEN_BY).

Start: THIS_FILE SOCKET_PATH. It listens on that Unix socket and answers JSON requests, each
answer followed by one NUL byte: {"hello": 1, "id": N} -> model_parameters and project;
{"classify": [numbers], "id": N} -> result.classification (or result.freeform) and timing.
What classify takes: INPUT_CONTRACT below.

Its source is tinyml_edu/edge_impulse/eim_program.py, which ``export_eim`` copies behind a
``#!`` line, filling in the values under "Filled in by export_eim". The copy runs on its own,
with numpy and ai-edge-litert; only an .eim that computes a project's features from raw windows
imports tinyml-edu. It keeps to Python 3.9, as a board's Python may be older than tinyml-edu's
(hence the quoted annotations), and has no ``from __future__`` import: the #! line written for
an interpreter path with spaces is a string statement, and a future import must come first.
"""

import base64
import json
import os
import signal
import socket
import sys
import time

try:
    import numpy as np
except ImportError:  # reported in the hello answer (see Engine), not as a dead socket
    np = None

# Filled in by export_eim: it replaces each of these four lines (matched whole, exactly once).
WRITTEN_BY = "tinyml-edu (the template: export_eim has not filled it in)"
INPUT_CONTRACT = "nothing: this is the template, not an exported .eim"
META_JSON = "{}"
MODEL_B64 = ""

ACCEPT_TIMEOUT_S = 120  # nobody connected: the program that started us is gone


def quantize_input(x, scale: float, zero_point: int):
    """Float -> int8 as tinyml_edu.runtime.quantize_input (and the board): halves away from
    zero, saturated."""
    v = np.asarray(x, np.float32) / np.float32(scale)
    q = np.sign(v) * np.floor(np.abs(v) + 0.5) + zero_point
    return np.clip(q, -128, 127).astype(np.int8)


def dequantize(q, scale: float, zero_point: int):
    """int8 -> float: (q - zero_point) * scale."""
    return (q.astype(np.float32) - zero_point) * scale


def load_interpreter(model: bytes):
    """LiteRT's interpreter for the model, with the plain built-in kernels (as tinyml-edu's
    predictions: the default XNNPACK delegate can round differently)."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError as err:
        raise RuntimeError(f"{sys.executable} cannot import ai_edge_litert ({err}): "
                           "pip install ai-edge-litert numpy") from err
    interp = Interpreter(
        model_content=model,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interp.allocate_tensors()
    return interp


def project_features(meta: dict):
    """The features function of the run's project, for an .eim that takes raw windows."""
    try:
        from tinyml_edu.projects import get_project
    except ImportError as err:
        raise RuntimeError(
            f"this .eim computes the features of the {meta['project']!r} project with "
            f"tinyml-edu, which {sys.executable} cannot import ({err}): install tinyml-edu for "
            "it, or export with --inputs features") from err
    return get_project(meta["project"]).features


class Engine:
    """The .tflite model (and, for raw inputs, the project's features) of this file."""

    def __init__(self, model: bytes, meta: dict):
        if np is None:
            raise RuntimeError(f"{sys.executable} cannot import numpy: "
                               "pip install ai-edge-litert numpy")
        self.meta = meta
        self.interp = load_interpreter(model)
        self.inp = self.interp.get_input_details()[0]
        self.out = self.interp.get_output_details()[0]
        self.features = project_features(meta) if meta["inputs"] == "raw" else None

    def run(self, values) -> tuple:
        """(scores, timing in ms) for one flat list of numbers."""
        x = np.asarray(values, dtype=np.float64).ravel()
        expected = self.meta["hello"]["model_parameters"]["input_features_count"]
        if x.size != expected:
            raise ValueError(f"expected {expected} values ({self.meta['input_description']}), "
                             f"got {x.size}")
        started = time.perf_counter()
        if self.features is not None:
            x = self.features(x.reshape([1] + self.meta["raw_shape"]),
                              self.meta["feature_params"])
        x = np.asarray(x, np.float32).reshape(self.inp["shape"])
        computed = time.perf_counter()
        if self.inp["dtype"] == np.int8:
            x = quantize_input(x, *self.inp["quantization"])
        self.interp.set_tensor(self.inp["index"], x.astype(self.inp["dtype"]))
        self.interp.invoke()
        y = self.interp.get_tensor(self.out["index"])[0]
        if self.out["dtype"] == np.int8:
            y = dequantize(y, *self.out["quantization"])
        finished = time.perf_counter()
        timing = {"dsp": int(round((computed - started) * 1000)),
                  "classification": int(round((finished - computed) * 1000)), "anomaly": 0}
        scores = [float(v) for v in np.asarray(y, np.float32).ravel()]
        return scores, timing


def encode(message: dict) -> bytes:
    """JSON whose braces are all structural, then NUL: the SDKs find the end of an answer by
    counting braces, so a brace inside a string (a label, an error) is written as a \\u escape."""
    text = json.dumps(message)
    out, in_string, escaped = [], False, False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            elif ch == "{":
                ch = "\\u007b"
            elif ch == "}":
                ch = "\\u007d"
        elif ch == '"':
            in_string = True
        out.append(ch)
    return "".join(out).encode("utf-8") + b"\0"


def answer(message, meta: dict, engine: "Engine | None", load_error: "str | None") -> bytes:
    """The encoded answer to one request; every failure is an answer, never a dead socket."""
    reply = {"id": message.get("id") if isinstance(message, dict) else None, "success": True}
    try:
        if not isinstance(message, dict):
            raise ValueError("expected a JSON object")
        if load_error is not None:
            raise RuntimeError(load_error)
        if "hello" in message:
            reply.update(meta["hello"])
        elif "classify" in message:
            scores, timing = engine.run(message["classify"])
            params = meta["hello"]["model_parameters"]
            if params["model_type"] == "classification":
                labels = params["labels"]  # as many as scores: export_eim checks
                result = {"classification": dict(zip(labels, scores))}  # noqa: B905 - no strict= in 3.9
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
    except Exception as err:
        reply = {"id": reply["id"], "success": False, "error": f"{type(err).__name__}: {err}"}
    return encode(reply)


def serve(connection: socket.socket, meta: dict, engine: "Engine | None",
          load_error: "str | None") -> None:
    """Answer requests until the client closes the socket."""
    decoder = json.JSONDecoder()
    pending = b""
    while True:
        chunk = connection.recv(1 << 16)
        if not chunk:
            return  # the SDK closed the socket
        pending += chunk
        while True:
            # Requests come without a terminator (Python SDK) or with a newline (Node CLI).
            pending = pending.lstrip(b" \t\r\n\0")
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
            connection.sendall(answer(message, meta, engine, load_error))


def listen(path: str) -> socket.socket:
    """Bind under a temporary name, then rename: the SDK connects as soon as the path exists,
    so it must never see a socket that is bound but not yet listening."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    temporary = os.path.join(os.path.dirname(os.path.abspath(path)),
                             f".{os.getpid()}.{os.path.basename(path)}")
    try:
        server.bind(temporary)
    except OSError:  # e.g. the longer name does not fit: bind in place
        server.bind(path)
        server.listen(1)
        return server
    server.listen(1)
    os.replace(temporary, path)
    return server


def main(argv: list) -> int:
    if len(argv) != 2:
        sys.stderr.write(f"usage: {argv[0]} SOCKET_PATH (Edge Impulse's ImpulseRunner starts "
                         "this)\n")
        return 2
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(0))
    server = listen(argv[1])
    meta = json.loads(META_JSON)
    engine, load_error = None, None
    try:
        try:  # after listening, so that a broken install is reported in the hello answer
            engine = Engine(base64.b64decode(MODEL_B64), meta)
        except Exception as err:
            load_error = f"{type(err).__name__}: {err}"
            sys.stderr.write(load_error + "\n")
        server.settimeout(ACCEPT_TIMEOUT_S)
        try:
            connection, _ = server.accept()
        except socket.timeout:  # noqa: UP041 - on Python 3.9 not yet a TimeoutError
            return 1
        connection.settimeout(None)
        with connection:
            serve(connection, meta, engine, load_error)
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
