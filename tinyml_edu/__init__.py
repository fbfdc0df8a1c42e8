"""tinyml-edu: a TinyML course library, from sensor data to a model on the board.

The pipeline, one module per stage::

    datasets -> features -> models -> train -> quantize -> profile -> export

plus ``boards`` (facts about kit boards), ``pipeline`` (``tinyml-edu run``), ``doctor``
(what is installed) and ``cli`` (a thin shell over all of it).
TensorFlow is imported only inside the stages that need it, so the command line starts fast.
"""

import os

__version__ = "0.1.0"

# TensorFlow's C++ start-up chatter (CPU features, oneDNN, CUDA) buries what a student needs to
# read; keep warnings and errors. Set before TensorFlow is first imported; a user's value wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
