"""Capture what C and C++ code (TensorFlow, TFLM) writes to file descriptor 2.

Python's ``sys.stderr`` redirection never sees those writes, so we swap the descriptor itself.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator

# TensorFlow log lines that are not the student's problem and look like failures (a red block
# under a notebook cell). Only these are dropped; every other line, errors above all, passes.
HARMLESS_TF_LOGS = (
    # tf.data's Python side knows an attribute its C++ op does not: logged at ERROR level on
    # every model.predict/fit trace in TF 2.21, and TensorFlow says itself it is ignored
    "NodeDef mentions attribute use_unbounded_threadpool",
    # start-up notes: CPU instructions this wheel was not built for, oneDNN on, absl's preamble
    "cpu_feature_guard.cc",
    "To enable the following instructions:",
    "All log messages before absl::InitializeLog() is called",
    "oneDNN custom operations are on",
)
# Set to "all" to see every TensorFlow log line (when reporting a bug).
SHOW_ALL_LOGS_ENV = "TINYML_EDU_TF_LOGS"

# The filter is a separate small process, not a thread: when TensorFlow aborts the process, the
# filter still reads the pipe to its end, so the fatal message reaches the screen.
_FILTER_CODE = """
import signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the program, not its stderr
drop = [p.encode() for p in sys.argv[1:]]
out = sys.stdout.buffer
for line in sys.stdin.buffer:
    if not any(p in line for p in drop):
        out.write(line)
        out.flush()
"""
_noise_filter: subprocess.Popen | None = None


@contextlib.contextmanager
def capture_fd2() -> Iterator[list[str]]:
    """Within the block, fd 2 goes to a temporary file; afterwards its text is in the list."""
    sys.stderr.flush()
    captured: list[str] = []
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.append(sink.read().decode(errors="replace"))


@contextlib.contextmanager
def quiet_fd2() -> Iterator[None]:
    """Hide C-level log noise in the block, but replay it if the block fails."""
    try:
        with capture_fd2() as logs:
            yield
    except BaseException:
        sys.stderr.write(logs[0][-4000:] if logs else "")
        raise


def filter_tensorflow_noise() -> bool:
    """Once per process: pass fd 2 through a filter that drops ``HARMLESS_TF_LOGS`` lines and
    keeps everything else. Returns whether the filter is on. POSIX only (on Windows the C++
    runtime of TensorFlow's DLL does not write through our fd 2); off when
    ``TINYML_EDU_TF_LOGS=all``."""
    global _noise_filter
    if _noise_filter is not None and _noise_filter.poll() is None:
        return True
    if os.name != "posix" or os.environ.get(SHOW_ALL_LOGS_ENV, "").lower() == "all":
        return False
    sys.stderr.flush()
    try:
        real_stderr = os.dup(2)
        try:
            proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", _FILTER_CODE,
                                     *HARMLESS_TF_LOGS], stdin=subprocess.PIPE,
                                    stdout=real_stderr, stderr=real_stderr)
        finally:
            os.close(real_stderr)
        os.dup2(proc.stdin.fileno(), 2)
    except OSError:  # no fd 2 to replace, no processes left: the noise is the lesser harm
        return False
    _noise_filter = proc
    return True


def import_tensorflow():
    """Import TensorFlow without its start-up log lines (oneDNN, CPU features, absl), and
    from then on without the log lines that only frighten (see ``filter_tensorflow_noise``)."""
    filter_tensorflow_noise()
    with quiet_fd2():
        import tensorflow as tf
    return tf
