"""Every project's model trains on every CPU kernel set a student laptop may have.

TensorFlow turns its oneDNN kernels on by default only on CPUs with AVX-512-class features,
so most laptops (and Apple silicon, which has none) train with TensorFlow's default CPU
kernels, which refuse some layer settings that oneDNN's accept (a DepthwiseConv2D with
unequal strides, for one). Each setting runs in a fresh process: the variable is read when
TensorFlow starts.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from tinyml_edu.projects import PROJECTS

ONE_STEP = """
import json, sys
from tinyml_edu import pipeline
losses = {}
for name in sys.argv[1:]:
    try:
        losses[name] = pipeline.train_one_step(name)
    except Exception as error:  # report every project, not just the first that fails
        losses[name] = f"{type(error).__name__}: {str(error).splitlines()[0]}"
print("RESULT " + json.dumps(losses))
"""


@pytest.mark.slow
@pytest.mark.parametrize("onednn", ["0", "1"])
def test_every_project_trains_one_step(onednn):
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": onednn, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-c", ONE_STEP, *PROJECTS], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    losses = json.loads(line.removeprefix("RESULT "))
    failed = {name: loss for name, loss in losses.items() if not isinstance(loss, float)}
    assert not failed, f"with TF_ENABLE_ONEDNN_OPTS={onednn} these cannot train: {failed}"
    assert set(losses) == set(PROJECTS)
    assert all(math.isfinite(loss) for loss in losses.values())
