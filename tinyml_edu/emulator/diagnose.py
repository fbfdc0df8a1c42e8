"""Where does the board part ways with the host? Op by op.

The model is rewritten so that every op's output tensor is also a model output (the ops and
their arithmetic are unchanged; only which tensors stay readable after ``Invoke()`` changes).
Both the emulated Cortex-M4 and the host TFLM runtime run it, and the first op whose output
differs is the op whose kernel computes differently: the other differences follow from it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass
class OpDifference:
    op_index: int  # in execution order
    op: str
    tensor: str
    values: int  # elements of this op's output
    differing: int  # elements that differ, summed over all inputs
    inputs_differing: int
    max_abs_difference: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Layout = list[tuple[int, str, str, int, np.dtype]]
# TFLite tensor types (schema TensorType) that ops here produce -> numpy dtypes.
DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 6: np.bool_,
          7: np.int16, 9: np.int8}


def expose_every_op_output(model_bytes: bytes) -> tuple[bytes, Layout]:
    """The model with each op's output appended to the subgraph outputs; and per model output,
    in output order, (index of its op in execution order, op name, tensor name, bytes,
    dtype)."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(model_bytes), 0)
    graph = model.subgraphs[0]
    names = {code: name for name, code in vars(schema.BuiltinOperator).items()
             if not name.startswith("_")}
    outputs = [int(i) for i in graph.outputs]  # the original outputs stay first
    described: dict[int, tuple[int, str, str, int]] = {}
    for position, op in enumerate(graph.operators):
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        for index in (int(i) for i in op.outputs):
            tensor = graph.tensors[index]
            dtype = np.dtype(DTYPES.get(tensor.type, np.uint8))
            described[index] = (position, names.get(builtin, str(builtin)),
                                tensor.name.decode(),
                                int(np.prod(tensor.shape)) * dtype.itemsize, dtype)
            if index not in outputs:
                outputs.append(index)
    graph.outputs = outputs
    builder = flatbuffers.Builder(len(model_bytes) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), [described[i] for i in outputs]


def host_all_outputs(model_bytes: bytes, inputs: np.ndarray, count: int) -> np.ndarray:
    """The host TFLM's ``count`` outputs per input, as bytes, concatenated (as the board
    writes them)."""
    from tinyml_edu import runtime

    interp, _ = runtime.allocate_tflm(model_bytes)  # raw: it reads every output, not only one
    shape = interp.get_input_details(0)["shape"]
    rows = []
    for row in inputs:
        interp.set_input(row.reshape(shape).astype(np.int8), 0)
        interp.invoke()
        rows.append(np.concatenate([
            np.frombuffer(np.ascontiguousarray(interp.get_output(k)).tobytes(), np.int8)
            for k in range(count)]))
    return np.stack(rows)


def op_differences(board_rows: np.ndarray, host_rows: np.ndarray,
                   layout: Layout) -> list[OpDifference]:
    """Per op output how board and host differ, in execution order; ops that agree are
    listed too, so the first differing one stands out."""
    found, first = [], 0
    for position, op_name, tensor_name, size, dtype in layout:
        a = np.ascontiguousarray(board_rows[:, first:first + size]).view(dtype)
        b = np.ascontiguousarray(host_rows[:, first:first + size]).view(dtype)
        first += size
        diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
        found.append(OpDifference(position, op_name, tensor_name, a.shape[1],
                                  int((diff > 0).sum()), int((diff.max(axis=1) > 0).sum()),
                                  int(np.ceil(diff.max(initial=0)))))
    return sorted(found, key=lambda d: d.op_index)


def diagnose(board, model_bytes: bytes, inputs: np.ndarray) -> list[OpDifference]:
    """Run the op-exposing model on ``board`` (a ``CortexM4Board``) and on the host."""
    exposed, layout = expose_every_op_output(model_bytes)
    board.load(exposed)
    on_board = board.invoke(inputs)
    on_host = host_all_outputs(exposed, inputs, len(layout))
    return op_differences(on_board, on_host, layout)
