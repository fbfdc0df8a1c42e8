"""An emulated Cortex-M4F as a board: the Nano 33 BLE's core (nRF52840) on QEMU's mps2-an386.

The model's inference code is built for the Cortex-M4F with the Arduino core's own flags from
the same TFLM library the sketch uses (Chirale_TensorFlowLite, CMSIS-NN kernels), with the op
resolver, arena size and model C array that ``deploy`` writes, and run on QEMU with semihosting
for inputs and outputs. ``verify`` compares every int8 output with the host TFLM runtime and
counts the instructions per inference.

- ``available()``: can this computer do it, and if not, how to install what is missing;
- ``CortexM4Board``: ``load(model_bytes)``, ``invoke(inputs) -> outputs``, ``stats``;
- ``verify_run(run_dir)``: the figures of `tinyml-edu verify RUN_DIR --on cortex-m4`;
- ``measured(name)``: figures measured once and shipped, for computers without the tools.

The kit (``arduino-nano33ble``, read-only) is found from ``--kit``, ``$TINYML_EDU_ARDUINO_KIT`` or
``../shared/third_party/arduino-nano33ble`` beside the source checkout. Nothing is downloaded.
"""

from __future__ import annotations

import importlib
from typing import Any

# Imported on first use, so that registering `verify` in the CLI imports nothing heavy.
_EXPORTS = {
    "CLOCK_HZ": "board", "CYCLES_PER_INSTRUCTION": "board", "CortexM4Board": "board",
    "EmulatorError": "board", "INSTALL_HINT": "board", "RunStats": "board",
    "available": "board",
    "KIT_ENV": "build", "BuildError": "build", "find_kit": "build",
    "verify_run": "verify", "MeasuredModel": "shipped", "measured": "shipped",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
