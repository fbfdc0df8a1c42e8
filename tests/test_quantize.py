import numpy as np
import pytest

from tinyml_edu import quantize


def test_int8_model_has_int8_input_and_output(sine_models):
    interp = quantize.interpreter(sine_models["int8"])
    assert interp.get_input_details()[0]["dtype"] == np.int8
    assert interp.get_output_details()[0]["dtype"] == np.int8
    ops = {op["op_name"] for op in interp._get_ops_details()}
    assert ops == {"FULLY_CONNECTED"}  # no QUANTIZE/DEQUANTIZE left for the board


def test_int8_is_smaller_and_close_to_float(sine_models):
    assert len(sine_models["int8"]) < len(sine_models["float32"])
    x = np.linspace(0, 2 * np.pi, 200, dtype=np.float32)[:, None]
    y = np.sin(x)
    float_mae = quantize.evaluate(sine_models["float32"], x, y, "regression")["mae"]
    int8_mae = quantize.evaluate(sine_models["int8"], x, y, "regression")["mae"]
    assert abs(int8_mae - float_mae) < 0.05


def test_quantize_input_rounds_and_saturates():
    q = quantize.quantize_input(np.array([0.0, 0.26, -0.26, 100.0, -100.0]), 0.1, 3)
    assert q.tolist() == [3, 6, 0, 127, -128]
    assert quantize.dequantize(q, 0.1, 3)[:3] == pytest.approx([0.0, 0.3, -0.3])
    # exact halves go away from zero, as the sketch's lroundf does (np.round gives 2, -2, 0)
    halves = quantize.quantize_input(np.array([2.5, -2.5, 0.5, -0.5]), 1.0, 0)
    assert halves.tolist() == [3, -3, 1, -1]


def test_int8_needs_representative_data():
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="representative"):
        quantize.convert(model, "int8")
    with pytest.raises(ValueError, match="unknown mode"):
        quantize.convert(model, "int4")
