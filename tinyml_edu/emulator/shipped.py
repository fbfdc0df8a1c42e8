"""Instruction counts measured once on the emulated Cortex-M4 and shipped with the package.

Most students have no QEMU, no Arm compiler and no Arduino kit, yet lesson 06 shows them what
a model really costs on the Nano next to their MAC-based estimate. The count depends on the
model's ops and shapes (CMSIS-NN's loops do not depend on the data: ``instructions_min`` and
``instructions_max`` over the inputs show how little they vary), so a figure measured on the
lesson's own architecture holds for every student's copy of it.

``measured.json`` is written by ``python benchmarks/bench_emulator.py --write-measured``
(which records how and with what tools); ``measured(name)`` reads one entry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tinyml_edu.emulator.board import EmulatorError

MEASURED_FILE = Path(__file__).with_name("measured.json")


@dataclass(frozen=True)
class MeasuredModel:
    name: str
    description: str
    macs: int
    instructions: int  # median per inference over the inputs
    instructions_min: int
    instructions_max: int
    inputs: int
    cycles_per_instruction: float  # the assumption behind latency_ms
    clock_hz: int
    provenance: str  # the command, tools and kit that measured it

    @property
    def latency_ms(self) -> float:
        return self.instructions * self.cycles_per_instruction / self.clock_hz * 1000

    @property
    def instructions_per_mac(self) -> float:
        return self.instructions / self.macs if self.macs else float("nan")


def measured(name: str, path: Path | str = MEASURED_FILE) -> MeasuredModel:
    """The shipped measurement of ``name`` (e.g. ``"lesson06"``)."""
    try:
        entries = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise EmulatorError(f"cannot read the shipped measurements {path}: {err}; reinstall "
                            "tinyml-edu") from err
    if name not in entries:
        raise EmulatorError(f"no shipped measurement named {name!r}; there are: "
                            f"{', '.join(sorted(entries))}")
    return MeasuredModel(name=name, **entries[name])
