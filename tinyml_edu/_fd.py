"""Capture what C and C++ code (TensorFlow, TFLM) writes to file descriptor 2.

Python's ``sys.stderr`` redirection never sees those writes, so we swap the descriptor itself.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator


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


def import_tensorflow():
    """Import TensorFlow without its start-up log lines (oneDNN, CPU features, absl)."""
    with quiet_fd2():
        import tensorflow as tf
    return tf
