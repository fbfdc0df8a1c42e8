"""Every shipped project's model on the emulated Cortex-M4, without training it first.

``project_model`` builds a project's network (same layers, so the same ops and shapes as
`tinyml-edu run` exports) from a few examples of each class, quantizes it to int8 calibrated on
them, and returns it with those examples' test inputs. Checking a model this way takes seconds
instead of the minutes training takes; the trained weights change the numbers, not the kernels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinyml_edu.emulator.board import CortexM4Board
from tinyml_edu.emulator.verify import compare, host_outputs

EXAMPLES_PER_CLASS = 4


@dataclass
class ProjectModel:
    name: str
    model: bytes
    inputs: np.ndarray  # int8, one row per test input
    macs: int


def _small(dataset, per_class: int):
    from tinyml_edu import datasets

    small = datasets.Dataset(dataset.info, {})
    for split in datasets.SPLITS:
        labels = dataset.arrays[f"y_{split}"]
        if dataset.info.task == "regression":
            keep = np.arange(min(len(labels), 25 * per_class))
        else:
            keep = np.concatenate([np.flatnonzero(labels == c)[:per_class]
                                   for c in np.unique(labels)])
        small.arrays.update({key: array[keep] for key, array in dataset.arrays.items()
                             if key.endswith(f"_{split}")})
    return small


def project_model(name: str, seed: int = 0, per_class: int = EXAMPLES_PER_CLASS,
                  per_channel_dense: bool | None = None) -> ProjectModel:
    """The project's untrained int8 model and a few int8 test inputs for it.
    ``per_channel_dense``: override the project's choice of dense-layer weight scales."""
    from tinyml_edu import datasets, profile, quantize, train
    from tinyml_edu.projects import get_project

    project = get_project(name)
    prep = project.prepare(_small(datasets.load(project.dataset), per_class))
    train.set_seed(seed)
    network = project.build(prep)
    model = quantize.convert(network, "int8", representative=prep.x["train"],
                             per_channel_dense=(project.per_channel_dense
                                                if per_channel_dense is None
                                                else per_channel_dense))
    scale, zero_point = quantize.interpreter(model).get_input_details()[0]["quantization"]
    x = quantize.quantize_input(np.asarray(prep.x["test"], np.float32), scale, zero_point)
    macs = sum(op.macs for op in profile.op_list(model))
    return ProjectModel(name, model, x.reshape(len(x), -1), macs)


def check_model(board: CortexM4Board, model: bytes, inputs: np.ndarray) -> dict[str, Any]:
    """Run ``inputs`` on the board and on the host; explain any difference op by op."""
    from tinyml_edu.emulator.verify import explain_difference

    board.load(model)
    on_board = board.invoke(inputs)
    stats = board.stats
    host = host_outputs(model, inputs)
    result = compare(on_board, host)
    result["instructions_per_inference"] = int(np.median(stats.instructions))
    result["calibration_ok"] = stats.calibration_ok
    if not result["bit_exact"]:
        result.update(explain_difference(board, model, inputs, on_board, host))
    return result


def check_project(name: str, work_dir: Path, kit: Path | str | None = None,
                  per_channel_dense: bool | None = None) -> dict[str, Any]:
    project = project_model(name, per_channel_dense=per_channel_dense)
    board = CortexM4Board(kit=kit, work_dir=work_dir)
    result = check_model(board, project.model, project.inputs)
    result.update({"project": name, "macs": project.macs, "model_bytes": len(project.model)})
    return result
