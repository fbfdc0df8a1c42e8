"""The program inside every exported .eim (tinyml_edu/edge_impulse/eim_program.py), tested as
the module it is, and the export that fills it in; no Edge Impulse SDK needed."""

from __future__ import annotations

import base64
import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

from tinyml_edu import __version__, runtime
from tinyml_edu import edge_impulse as ei
from tinyml_edu.edge_impulse import eim, eim_program


@pytest.fixture(scope="module")
def tiny_int8() -> bytes:
    """An untrained 3-input, 2-class MLP, int8 in and out."""
    from tinyml_edu import models, quantize, train

    train.set_seed(0)
    model = models.mlp(3, (4,), 2, name="tiny")
    rng = np.random.default_rng(0)
    return quantize.convert(model, "int8", representative=rng.normal(size=(50, 3)))


def _meta(labels: list[str], model_type: str = "classification", count: int = 3) -> dict:
    return {"inputs": "features", "project": None, "raw_shape": [], "feature_params": {},
            "input_description": "three numbers",
            "hello": {"model_parameters": {"labels": labels, "model_type": model_type,
                                           "input_features_count": count}}}


class FixedEngine:
    """Stands in for Engine: fixed scores, or an error for a request of the wrong length."""

    def run(self, values):
        if len(values) != 3:
            raise ValueError(f"expected 3 values, got {len(values)}")
        return [0.25, 0.75], {"dsp": 0, "classification": 1, "anomaly": 0}


def _decode(answer: bytes) -> dict:
    assert answer.endswith(b"\0") and answer.count(b"\0") == 1
    return json.loads(answer[:-1])


def test_quantize_and_dequantize_match_the_library():
    x = np.array([-1000.0, -2.5, -1.5, -0.5, 0.0, 0.5, 1.5, 2.5, 3.49, 1000.0], np.float32)
    for scale, zero_point in [(1.0, 0), (0.5, -3), (0.0123, 17)]:
        got = eim_program.quantize_input(x, scale, zero_point)
        want = runtime.quantize_input(x, scale, zero_point)
        assert got.dtype == np.int8 and np.array_equal(got, want)
        np.testing.assert_array_equal(eim_program.dequantize(got, scale, zero_point),
                                      runtime.dequantize(want, scale, zero_point))
    assert eim_program.quantize_input(np.float32(2.5), 1.0, 0) == 3  # halves away from zero


def test_answers_hello_classify_and_errors():
    labels = ["{a}", "b}", 'c "quoted" \\']
    meta = _meta(labels)
    meta["hello"]["project"] = {"name": "tiny"}
    engine = FixedEngine()

    hello = _decode(eim_program.answer({"hello": 1, "id": 7}, meta, engine, None))
    assert hello["id"] == 7 and hello["success"] and hello["project"] == {"name": "tiny"}
    assert hello["model_parameters"]["labels"] == labels
    raw = eim_program.answer({"classify": [1, 2, 3], "id": 8}, meta, engine, None)
    # The SDKs count braces to find an answer's end: only the structural ones may be literal.
    assert raw.count(b"{") == raw.count(b"}") == 4  # answer, result, classification, timing
    classified = _decode(raw)
    assert classified["result"] == {"classification": {"{a}": 0.25, "b}": 0.75}}
    assert classified["timing"]["classification"] == 1

    freeform = _decode(eim_program.answer({"classify": [1, 2, 3], "id": 9},
                                          _meta([], "freeform"), engine, None))
    assert freeform["result"] == {"freeform": [[0.25, 0.75]]}

    for request, error in [({"classify": [1], "id": 10}, "ValueError: expected 3 values"),
                           ({"classify_shm": {}, "id": 11}, "no shared memory"),
                           ({"what": 1, "id": 12}, "unknown request"),
                           ([1, 2], "expected a JSON object")]:
        failed = _decode(eim_program.answer(request, meta, engine, None))
        assert not failed["success"] and error in failed["error"]
        assert failed["id"] == (request["id"] if isinstance(request, dict) else None)
    broken = _decode(eim_program.answer({"hello": 1, "id": 13}, meta, None, "ImportError: np"))
    assert broken == {"id": 13, "success": False, "error": "RuntimeError: ImportError: np"}


def test_engine_runs_a_tiny_model_like_the_library(tiny_int8):
    engine = eim_program.Engine(tiny_int8, _meta(["a", "b"]))
    x = np.random.default_rng(1).normal(size=(5, 3))
    want = runtime.predict(runtime.load(tiny_int8, "LiteRT"), x)
    for row, expected in zip(x, want, strict=True):
        scores, timing = engine.run(row.tolist())
        np.testing.assert_allclose(scores, expected, atol=1e-6)
        assert set(timing) == {"dsp", "classification", "anomaly"}
    with pytest.raises(ValueError, match=r"expected 3 values \(three numbers\), got 4"):
        engine.run([0.0] * 4)


def test_exported_eim_is_the_program_with_no_placeholder_left(tiny_int8, tmp_path,
                                                              monkeypatch):
    model = tmp_path / "tiny.tflite"
    model.write_bytes(tiny_int8)
    out = ei.export_eim(model, tmp_path / "tiny.eim", labels=["MODEL_B64 = \"\"", "b"])
    text = out.read_text(encoding="utf-8")
    template = eim.program_template()
    lines = text.splitlines()
    for placeholder in eim.PLACEHOLDERS.values():
        assert template.splitlines().count(placeholder) == 1
        assert placeholder not in lines
    assert text.startswith("#!") and template.splitlines()[0] in lines[:3]

    # Only numpy and LiteRT: the .eim runs where tinyml-edu is not installed.
    for name in ("tinyml_edu", "tinyml_edu.runtime", "tinyml_edu.projects"):
        monkeypatch.setitem(sys.modules, name, None)
    program = runpy.run_path(str(out), run_name="exported_eim")
    assert base64.b64decode(program["MODEL_B64"]) == tiny_int8
    assert program["WRITTEN_BY"] == f"tinyml-edu {__version__}"
    meta = json.loads(program["META_JSON"])
    assert meta["hello"]["model_parameters"]["labels"] == ["MODEL_B64 = \"\"", "b"]
    assert program["INPUT_CONTRACT"] == meta["input_description"]
    scores, _ = program["Engine"](tiny_int8, meta).run([0.1, 0.2, 0.3])
    assert len(scores) == 2 and sum(scores) == pytest.approx(1, abs=0.02)


def test_fill_program_needs_each_placeholder_exactly_once():
    template = eim.program_template()
    values = {name: f"{name} = 1" for name in eim.PLACEHOLDERS}
    filled = eim.fill_program(template, values)
    assert "MODEL_B64 = 1\n" in filled and eim.PLACEHOLDERS["MODEL_B64"] not in filled
    missing = template.replace(eim.PLACEHOLDERS["META_JSON"] + "\n", "")
    with pytest.raises(RuntimeError, match="META_JSON.*0 time"):
        eim.fill_program(missing, values)
    twice = template + eim.PLACEHOLDERS["MODEL_B64"] + "\n"
    with pytest.raises(RuntimeError, match="MODEL_B64.*2 time"):
        eim.fill_program(twice, values)


def test_the_program_ships_beside_the_package():
    assert Path(eim_program.__file__).name == eim.PROGRAM
    assert Path(eim_program.__file__).read_text(encoding="utf-8") == eim.program_template()
