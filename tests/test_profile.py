from pathlib import Path

import numpy as np
import pytest

from tinyml_edu import profile, quantize
from tinyml_edu.boards import BOARDS

ANCHORS = Path(__file__).resolve().parents[2] / "shared" / "anchors" / "models"

needs_tflm = pytest.mark.skipif(not profile.tflm_available(),
                                reason="tflite-micro has wheels only for Linux x86-64")


@needs_tflm
def test_arena_is_measured_with_tflm_and_the_smallest_arena_allocates(sine_models):
    model = sine_models["int8"]
    arena = profile.tflm_arena_bytes(model)
    assert 500 < arena < 5000
    smallest = profile.smallest_arena_bytes(model, upper=2 * arena)
    assert profile._allocates(model, smallest)
    assert not profile._allocates(model, smallest - 16)


@needs_tflm
@pytest.mark.skipif(not (ANCHORS / "tflm_micro_speech_quantized.tflite").exists(),
                    reason="reference models in ../shared/anchors are not here")
def test_micro_speech_anchor_matches_its_published_figures():
    p = profile.profile((ANCHORS / "tflm_micro_speech_quantized.tflite").read_bytes())
    assert (p.model_bytes, p.arena_bytes, p.arena_source) == (18800, 7584, "tflm")
    assert p.op_counts() == {"RESHAPE": 1, "DEPTHWISE_CONV_2D": 1, "FULLY_CONNECTED": 1,
                             "SOFTMAX": 1}
    # depthwise 10x8 filter over a 25x20x8 output (80,000 x 4 = 320,000) + FC 4000x4
    assert p.macs == 25 * 20 * 8 * 10 * 8 + 4000 * 4


@needs_tflm
def test_int8_outputs_of_litert_and_tflm_agree(sine_models, conv_int8):
    """What the student sees on the laptop is what the board computes."""
    from tflite_micro import runtime

    rng = np.random.default_rng(1)
    for model in (sine_models["int8"], conv_int8):
        litert = quantize.interpreter(model)
        tflm = runtime.Interpreter.from_bytes(model, arena_size=64 * 1024)
        inp = litert.get_input_details()[0]
        for _ in range(20):
            x = rng.integers(-128, 128, size=inp["shape"], dtype=np.int8)
            litert.set_tensor(inp["index"], x)
            litert.invoke()
            tflm.set_input(x, 0)
            tflm.invoke()
            expected = litert.get_tensor(litert.get_output_details()[0]["index"])
            np.testing.assert_array_equal(tflm.get_output(0), expected)


def test_macs_count_conv_depthwise_and_dense(conv_int8):
    ops = profile.op_list(conv_int8)
    names = [op.name for op in ops]
    assert "CONV_2D" in names and "DEPTHWISE_CONV_2D" in names and "FULLY_CONNECTED" in names
    by_name = {op.name: op.macs for op in ops}
    # conv0: 5x3 kernel, stride 2 over 49x40 -> 25x20 output, 8 filters, 1 input channel
    assert by_name["CONV_2D"] in (25 * 20 * 8 * 15, 25 * 20 * 8 * 8)  # conv0 or pointwise
    assert sum(op.macs for op in ops) == (25 * 20 * 8 * 15 + 25 * 20 * 8 * 9
                                          + 25 * 20 * 8 * 8 + 8 * 4)


def test_profile_without_tflm_falls_back_to_a_labelled_estimate(sine_models, monkeypatch):
    monkeypatch.setattr(profile, "tflm_available", lambda: False)
    p = profile.profile(sine_models["int8"])
    assert p.arena_source == "estimate" and p.min_arena_bytes is None
    assert 200 < p.arena_bytes < 10_000
    assert "no TFLM" in p.boards["virtual"].latency_source
    assert p.boards["nano33ble_sense_rev2"].latency_source.startswith("estimate")


def test_fit_verdict_follows_ram_and_flash():
    board = BOARDS["nano33ble_sense_rev2"]
    small = profile.fit_on_board(board, 20_000, 10_000, 1_000_000, None)
    assert small.fits and small.latency_ms == pytest.approx(1_000_000 * 2 / 64e6 * 1000)
    too_big_ram = profile.fit_on_board(board, 20_000, 200_000, 0, None)
    assert not too_big_ram.fits and too_big_ram.ram_free_bytes < 0
    too_big_flash = profile.fit_on_board(board, 900_000, 1_000, 0, None)
    assert not too_big_flash.fits


@needs_tflm
def test_smallest_arena_search_survives_arenas_that_crash_tflm():
    """For this autoencoder, tflite-micro segfaults (not just fails) at some too-small arenas;
    the search must still finish, in this process."""
    from tinyml_edu import models, train

    train.set_seed(0)
    model = models.dense_autoencoder(432, (32, 8))
    rng = np.random.default_rng(0)
    blob = quantize.convert(model, "int8", representative=rng.normal(size=(64, 432)))
    arena = profile.tflm_arena_bytes(blob)
    smallest = profile.smallest_arena_bytes(blob, upper=2 * arena)
    assert profile._allocates(blob, smallest) and not profile._allocates(blob, smallest - 16)
    assert smallest >= arena


@needs_tflm
def test_arena_parts_add_up_to_the_measured_arena(conv_int8):
    parts = profile.tflm_arena_parts(conv_int8)
    assert parts["total"] == profile.tflm_arena_bytes(conv_int8)
    assert parts["head"] + parts["tail"] == parts["total"]
    named = {k: v for k, v in parts.items() if k not in ("total", "head", "tail")}
    assert "NodeAndRegistration struct" in named and 0 < sum(named.values()) <= parts["tail"]
    # the head holds the activations: at least the largest input + output of one op
    litert = quantize.interpreter(conv_int8)
    sizes = {t["index"]: int(np.prod(t["shape"])) for t in litert.get_tensor_details()}
    ops = litert._get_ops_details()
    written = {int(i) for op in ops for i in op["outputs"]}
    written |= {int(d["index"]) for d in litert.get_input_details()}
    peak = max(sum(sizes[int(i)] for i in (*op["inputs"], *op["outputs"]) if int(i) in written)
               for op in ops)
    assert peak <= parts["head"] < 2 * peak
