"""Stage 5, quantize: convert a Keras model to ``.tflite`` (int8, float16, dynamic range or
float32) and evaluate any ``.tflite`` on a data set with the LiteRT interpreter
(``tinyml_edu.runtime``).

Full-integer int8 is what a microcontroller runs: weights *and* activations are int8, calibrated
on a representative sample of the training data, and the model's input and output are int8 too,
so the board never touches floating point.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from tinyml_edu import runtime
from tinyml_edu._fd import capture_fd2, import_tensorflow

# The board's float <-> int8 conversions live with the runtime; lessons call them from here.
from tinyml_edu.runtime import dequantize as dequantize
from tinyml_edu.runtime import quantize_input as quantize_input

if TYPE_CHECKING:
    import keras

MODES = ("int8", "float16", "dynamic", "float32")


@contextlib.contextmanager
def _quiet_converter() -> Iterator[None]:
    """The converter prints its SavedModel signature to stdout, pages of MLIR logs to the
    C stderr and "Assets written to ..." through Python logging (shown in notebooks): hide all
    three unless the conversion fails."""
    printed = io.StringIO()
    tf_logger = logging.getLogger("tensorflow")
    level = tf_logger.level
    tf_logger.setLevel(logging.WARNING)
    try:
        with capture_fd2() as logs, contextlib.redirect_stdout(printed):
            yield
    except Exception:
        sys.stderr.write(printed.getvalue()[-2000:] + logs[0][-4000:])
        raise
    finally:
        tf_logger.setLevel(level)


def convert(model: keras.Model, mode: str = "int8", representative: np.ndarray | None = None,
            per_channel_dense: bool = False, calibration_samples: int = 300) -> bytes:
    """Convert ``model`` to a ``.tflite`` flatbuffer.

    mode: ``int8`` (full integer, int8 in and out; needs ``representative`` inputs),
    ``float16`` (weights stored as float16), ``dynamic`` (int8 weights, float activations) or
    ``float32`` (no quantization, the baseline).
    per_channel_dense: one scale per output unit of a Dense layer. Off by default: the TFLM
    library the sketches build with (Chirale_TensorFlowLite 2.0, CMSIS-NN kernels) applies the
    first unit's scale to every unit, so such a model computes wrong outputs on the board
    (found by ``tinyml-edu verify --on cortex-m4``); each unit would also cost 12 bytes.
    Convolutions stay per channel: the board's kernels handle those.
    """
    tf = import_tensorflow()
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if mode == "int8":
        if representative is None or len(representative) == 0:
            raise ValueError("int8 quantization needs representative inputs (e.g. x_train) to "
                             "calibrate the activation ranges")
        rng = np.random.default_rng(0)
        picks = rng.permutation(len(representative))[:calibration_samples]
        sample = np.asarray(representative, dtype=np.float32)[picks]

        def representative_dataset():
            for row in sample:
                yield [row[np.newaxis]]

        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
        if not per_channel_dense:
            converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    with _quiet_converter(), warnings.catch_warnings():
        # Asked of every int8 conversion with int8 inputs; the scale is in the model anyway.
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        return bytes(converter.convert())


def interpreter(model_bytes: bytes):
    """LiteRT's own interpreter for ``model_bytes`` (allocated, plain built-in kernels), for
    looking inside a model: its tensors, ops and quantization. To run one, see ``predict`` or
    ``tinyml_edu.runtime``."""
    return runtime.litert_interpreter(model_bytes)


def predict(model_bytes: bytes, x: np.ndarray) -> np.ndarray:
    """Run a ``.tflite`` model on every row of ``x`` with LiteRT and return float outputs.

    Quantized inputs and outputs are converted with the model's own scale and zero point, so
    int8 and float models can be compared on the same data."""
    return runtime.predict(runtime.load(model_bytes, "LiteRT"), x)


def evaluate(model_bytes: bytes, x: np.ndarray, y: np.ndarray, task: str) -> dict[str, float]:
    """Accuracy (classification) or mean absolute error (regression) of a ``.tflite`` model."""
    pred = predict(model_bytes, x)
    if task == "classification":
        return {"accuracy": float(np.mean(np.argmax(pred, axis=-1) == np.asarray(y).ravel()))}
    if task == "regression":
        return {"mae": float(np.mean(np.abs(pred.reshape(len(y), -1) - y.reshape(len(y), -1))))}
    raise ValueError(f"unknown task {task!r}; use 'classification' or 'regression'")
