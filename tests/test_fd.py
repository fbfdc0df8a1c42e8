"""The TensorFlow log filter drops the lines that only frighten and keeps real errors, even
when the process dies right after writing them."""

import os
import subprocess
import sys

import pytest

CHILD = """
import os, sys
from tinyml_edu import _fd
assert _fd.filter_tensorflow_noise()
os.write(2, b"E0000 00:00:1.0 node_def_util.cc:682] NodeDef mentions attribute "
            b"use_unbounded_threadpool which is not in the op definition\\n")
os.write(2, b"I0000 cpu_feature_guard.cc:227] This TensorFlow binary is optimized\\n")
os.write(2, b"E0000 real_error.cc:1] Something real went wrong\\n")
print("a Python warning", file=sys.stderr, flush=True)
os.write(2, b"F0000 check.cc:2] Check failed: fatal\\n")
os.abort()
"""


@pytest.mark.skipif(os.name != "posix", reason="the filter is POSIX only")
def test_filter_drops_harmless_lines_and_keeps_errors_through_an_abort():
    result = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0
    assert "Something real went wrong" in result.stderr
    assert "a Python warning" in result.stderr
    assert "Check failed: fatal" in result.stderr  # written just before the abort
    assert "use_unbounded_threadpool" not in result.stderr
    assert "cpu_feature_guard" not in result.stderr


def test_all_lines_when_asked():
    env = {**os.environ, "TINYML_EDU_TF_LOGS": "all"}
    code = "from tinyml_edu import _fd; print(_fd.filter_tensorflow_noise())"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=60)
    assert result.stdout.strip() == "False"
