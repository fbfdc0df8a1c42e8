"""The one runtime interface: LiteRT and TFLM agree bit for bit, the arena loop reports the arena,
and backends come from a registry."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tinyml_edu import profile, quantize, runtime

needs_tflm = pytest.mark.skipif(not runtime.tflm_available(),
                                reason="tflite-micro has a wheel for Linux x86-64 only")


def sine_inputs() -> np.ndarray:
    return np.linspace(0, 2 * np.pi, 50, dtype=np.float32).reshape(-1, 1)


def raw_outputs(interp: runtime.Interpreter, x: np.ndarray) -> np.ndarray:
    """The int8 outputs, row by row, through the interface only."""
    outputs = []
    for row in x:
        interp.set_input(interp.input.quantize(row[np.newaxis]))
        interp.invoke()
        outputs.append(interp.get_output().copy())
    return np.concatenate(outputs)


def test_litert_reads_the_int8_quantization_of_the_sine_model(sine_models):
    interp = runtime.load(sine_models["int8"], "LiteRT")
    details = quantize.interpreter(sine_models["int8"]).get_input_details()[0]
    assert interp.backend == "LiteRT" and interp.arena_used is None
    assert interp.input.shape == (1, 1) and interp.input.dtype == np.int8
    assert (interp.input.scale, interp.input.zero_point) == pytest.approx(details["quantization"])
    assert interp.output.quantized and interp.output.scale > 0


def test_quantize_predict_is_the_runtime_on_litert(sine_models):
    x = sine_inputs()
    expected = runtime.predict(runtime.load(sine_models["int8"]), x)
    np.testing.assert_array_equal(quantize.predict(sine_models["int8"], x), expected)
    assert np.mean(np.abs(expected.ravel() - np.sin(x.ravel()))) < 0.2  # it is a sine


@needs_tflm
def test_litert_and_tflm_give_the_same_int8_outputs_for_the_sine_model(sine_models):
    litert = runtime.load(sine_models["int8"], "LiteRT")
    tflm = runtime.load(sine_models["int8"], "tflm")  # names are case-insensitive
    assert tflm.backend == "TFLM"
    assert tflm.input == litert.input and tflm.output == litert.output
    a, b = raw_outputs(litert, sine_inputs()), raw_outputs(tflm, sine_inputs())
    assert a.dtype == b.dtype == np.int8 and len(np.unique(a)) > 10
    np.testing.assert_array_equal(a, b)


@needs_tflm
def test_the_arena_loop_reports_the_arena_the_profiler_measures(sine_models):
    model = sine_models["int8"]
    interp = runtime.TFLMInterpreter(model)
    assert interp.arena_size == runtime.TFLM_START_ARENA  # big enough at once
    assert interp.arena_used == profile.tflm_arena_bytes(model)
    assert 500 < interp.arena_used < interp.arena_size


@needs_tflm
def test_the_arena_loop_doubles_a_too_small_arena_up_to_its_limit(sine_models, tmp_path):
    # In a child process: tflite-micro crashes the process for some too-small arenas (not this
    # model at 1 KiB, but at 256 bytes).
    model_path = tmp_path / "sine.tflite"
    model_path.write_bytes(sine_models["int8"])
    code = ("from tinyml_edu import runtime\n"
            f"model = open({str(model_path)!r}, 'rb').read()\n"
            "i = runtime.TFLMInterpreter(model, 1024)\n"
            "print(i.arena_size, i.arena_used)\n"
            "try:\n"
            "    runtime.TFLMInterpreter(model, 1024, max_arena_size=1024)\n"
            "except RuntimeError as err:\n"
            "    print(err)\n")
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=120)
    assert child.returncode == 0, child.stderr[-2000:]
    sizes, limited = child.stdout.splitlines()
    size, used = (int(v) for v in sizes.split())
    assert used == profile.tflm_arena_bytes(sine_models["int8"])
    assert size in (2048, 4096) and size >= used  # 1024 doubled, no further than needed
    assert limited.startswith("TFLM cannot run this model: ")


def test_without_tflm_the_board_backend_is_litert(monkeypatch, sine_models):
    monkeypatch.setitem(sys.modules, "tflite_micro", None)  # as on Windows and macOS
    assert not runtime.tflm_available()
    assert runtime.board_backend() == "LiteRT"
    assert "TFLM" not in runtime.available_backends()
    with pytest.raises(RuntimeError, match="not installed"):
        runtime.load(sine_models["int8"], "TFLM")


class _Doubling:
    """A toy backend: output = 2 * input, float32."""

    backend = "doubling"
    arena_used = None
    input = runtime.TensorInfo((1, 1), np.float32)
    output = runtime.TensorInfo((1, 1), np.float32)

    def set_input(self, x: np.ndarray) -> None:
        self._x = x

    def invoke(self) -> None:
        self._y = 2 * self._x

    def get_output(self) -> np.ndarray:
        return self._y


def test_a_new_backend_plugs_in_through_the_registry(monkeypatch):
    monkeypatch.setattr(runtime, "BACKENDS", dict(runtime.BACKENDS))
    runtime.register(runtime.Backend("Doubling", lambda model, arena_size=None: _Doubling()))
    assert "Doubling" in runtime.available_backends()
    interp = runtime.load(b"any", "doubling")
    np.testing.assert_array_equal(runtime.predict(interp, np.array([[1.5], [-2.0]])),
                                  [[3.0], [-4.0]])
    with pytest.raises(ValueError, match="unknown backend 'nope'; use one of LiteRT, TFLM"):
        runtime.load(b"any", "nope")


def test_an_int8_tensor_without_a_scale_is_refused():
    with pytest.raises(ValueError, match="scale > 0"):
        runtime.TensorInfo((1, 4), np.int8)
    info = runtime.TensorInfo([1, 4], "int8", 0.5, -3)
    assert info.shape == (1, 4) and info.size == 4
    np.testing.assert_array_equal(info.quantize(np.array([1.0, -1.25, 100.0, -100.0])),
                                  [-1, -6, 127, -128])
    np.testing.assert_allclose(info.dequantize(np.array([-1, -6], np.int8)), [1.0, -1.5])


def _softmax_model(weight_scale: float) -> bytes:
    """Dense(3) + softmax, int8, whose logits span about ``weight_scale`` times the usual."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3),
                              keras.layers.Softmax()])
    kernel, bias = model.layers[0].get_weights()
    model.layers[0].set_weights([kernel * weight_scale, bias])
    rng = np.random.default_rng(0)
    return quantize.convert(model, "int8", representative=rng.random((16, 4), np.float32))


@needs_tflm
def test_a_softmax_tflm_would_abort_on_is_refused_with_a_reason(tmp_path):
    """TFLM aborts the whole process (not an exception) on an int8 softmax whose input scale is
    below 2**-26, as a collapsed network gives: `allocate_tflm` refuses it first, and says why.
    In a child process, so a missing check fails this test instead of killing pytest."""
    healthy, collapsed = _softmax_model(1.0), _softmax_model(1e-9)
    assert runtime.tflm_abort_reason(healthy) is None
    reason = runtime.tflm_abort_reason(collapsed)
    assert reason and "softmax" in reason and "Train it" in reason
    (tmp_path / "collapsed.tflite").write_bytes(collapsed)
    code = ("from tinyml_edu import profile\n"
            f"model = open({str(tmp_path / 'collapsed.tflite')!r}, 'rb').read()\n"
            "try:\n"
            "    profile.tflm_arena_bytes(model)\n"
            "except RuntimeError as err:\n"
            "    print(err)\n")
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=120)
    assert child.returncode == 0, f"TFLM was handed the model (exit {child.returncode})"
    assert child.stdout.startswith("TFLM cannot run this model: the softmax's input scale")
