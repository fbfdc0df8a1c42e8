"""Running an ``.eim`` through Edge Impulse's Linux SDK (``edge_impulse_linux.runner``).

The SDK waits for an ``.eim`` without a time limit, and its errors are terse; this module adds
the watchdog, errors that say what went wrong, and ``classify_recordings``, which labels
recordings like ``tinyml-edu predict``.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tinyml_edu import datasets
from tinyml_edu.edge_impulse.errors import EdgeImpulseError, SDKMissingError
from tinyml_edu.errors import InputError, MissingFileError
from tinyml_edu.predict import FilePrediction

INSTALL_HINT = ("install the `linux-board` extra: `sudo apt-get install portaudio19-dev` (PyAudio "
                "builds against it), then `pip install 'tinyml-edu[linux-board]'` (which brings "
                "edge_impulse_linux, pyaudio and opencv-python-headless)")


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


