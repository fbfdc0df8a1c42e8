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

The package: ``eim`` writes the ``.eim`` (the program it holds is ``eim_program.py``),
``runner`` drives one through the SDK, ``acquisition`` exports recordings, ``errors`` holds the
exceptions.
"""

from __future__ import annotations

# The constants, and the private helpers tests use, stay reachable as ei.NAME.
from tinyml_edu.edge_impulse.acquisition import EI_LABEL as EI_LABEL
from tinyml_edu.edge_impulse.acquisition import EMPTY_SIGNATURE as EMPTY_SIGNATURE
from tinyml_edu.edge_impulse.acquisition import README_MARK as README_MARK
from tinyml_edu.edge_impulse.acquisition import ExportedDataset, acquisition_json, export_ei_dataset
from tinyml_edu.edge_impulse.eim import ENGINE_TFLITE_FULL as ENGINE_TFLITE_FULL
from tinyml_edu.edge_impulse.eim import INPUTS as INPUTS
from tinyml_edu.edge_impulse.eim import SENSOR_CODES as SENSOR_CODES
from tinyml_edu.edge_impulse.eim import SENSOR_UNKNOWN as SENSOR_UNKNOWN
from tinyml_edu.edge_impulse.eim import export_eim, features_for_eim
from tinyml_edu.edge_impulse.errors import EdgeImpulseError, SDKMissingError
from tinyml_edu.edge_impulse.runner import INSTALL_HINT as INSTALL_HINT
from tinyml_edu.edge_impulse.runner import _import_runner as _import_runner
from tinyml_edu.edge_impulse.runner import _stop as _stop
from tinyml_edu.edge_impulse.runner import classify_recordings, open_runner, run_eim

__all__ = ["EdgeImpulseError", "ExportedDataset", "SDKMissingError", "acquisition_json",
           "classify_recordings", "export_ei_dataset", "export_eim", "features_for_eim",
           "open_runner", "run_eim"]
