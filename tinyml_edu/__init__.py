"""tinyml-edu: a TinyML course library, from sensor data to a model on the board.

The pipeline, one module per stage::

    datasets -> features -> models -> train -> quantize -> profile -> export

plus ``boards`` (facts about kit boards), ``pipeline`` (``tinyml-edu run``), ``doctor``
(what is installed) and ``cli`` (a thin shell over all of it).
TensorFlow is imported only inside the stages that need it, so the command line starts fast.
"""

import os
import sys

__version__ = "0.1.0"

# TensorFlow's C++ start-up chatter (CPU features, oneDNN, CUDA) buries what a student needs to
# read; keep warnings and errors. Set before TensorFlow is first imported; a user's value wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# jsonschema (under nbformat, nbgrader and Jupyter's event schemas) imports the optional IRI
# checker rfc3987-syntax, which builds ~35 Earley parsers on import: 5 s of every grading worker
# and `tinyml-edu course` command on a 2-core laptop, for two formats no notebook or nbgrader
# schema uses. jsonschema skips a checker whose module does not import, as when it is not
# installed (python-jsonschema/jsonschema#1428). A program that imported it first keeps it.
sys.modules.setdefault("rfc3987_syntax", None)
