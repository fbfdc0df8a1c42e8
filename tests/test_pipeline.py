"""End to end: `run sine` writes every report field, and the files agree with each other."""

import json

import numpy as np
import pytest

from tinyml_edu import export, pipeline, quantize
from tinyml_edu.boards import BOARDS


@pytest.fixture(scope="module")
def sine_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "sine"
    messages: list[str] = []
    report = pipeline.run("sine", out, progress=False, log=messages.append)
    return out, report, messages


@pytest.mark.slow
def test_report_has_every_field(sine_run):
    out, report, messages = sine_run
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk == report
    for key in ("project", "dataset", "classes", "float_mae", "int8_mae", "model_bytes",
                "arena_bytes", "arena_source", "train_seconds", "boards", "artifacts"):
        assert key in report, key
    assert report["project"] == report["dataset"] == "sine"
    assert report["model_bytes"] == len((out / "model_int8.tflite").read_bytes())
    assert report["model_bytes"] <= 3000
    assert report["arena_source"] in ("tflm", "estimate") and report["arena_bytes"] > 0
    assert set(report["boards"]) == set(BOARDS)
    for fit in report["boards"].values():
        assert set(fit) == {"fits", "flash_bytes", "ram_bytes", "latency_ms", "latency_source"}
        assert fit["fits"] is True
    for rel in report["artifacts"].values():
        assert (out / rel).is_file(), rel
    assert any(m.startswith("[6/6]") for m in messages)


@pytest.mark.slow
def test_int8_accuracy_close_to_float_and_better_than_a_constant(sine_run):
    out, report, _ = sine_run
    assert report["int8_mae"] <= report["float_mae"] * 1.10
    assert report["float_mae"] < 0.2  # predicting the mean everywhere gives 0.68


@pytest.mark.slow
def test_exported_c_array_is_the_int8_model(sine_run):
    out, report, _ = sine_run
    source = (out / "export" / "model_data.cpp").read_text()
    assert export.read_c_array(source) == (out / "model_int8.tflite").read_bytes()
    settings = (out / "export" / "model_settings.h").read_text()
    assert f"kTensorArenaSize = {(int(report['arena_bytes'] * 1.1) + 15) // 16 * 16};" in settings


@pytest.mark.slow
def test_int8_model_on_disk_reproduces_the_reported_error(sine_run):
    from tinyml_edu import datasets

    out, report, _ = sine_run
    x, y = datasets.load("sine").split("test")
    mae = quantize.evaluate((out / "model_int8.tflite").read_bytes(), x, y, "regression")["mae"]
    assert mae == pytest.approx(report["int8_mae"], rel=1e-6)


@pytest.mark.slow
def test_a_rerun_replaces_the_old_run_and_a_failed_run_keeps_it(sine_run, monkeypatch):
    out, report, _ = sine_run
    before = (out / "report.json").read_text()

    def broken_profile(*args, **kwargs):
        raise RuntimeError("simulated failure")

    monkeypatch.setattr("tinyml_edu.profile.profile", broken_profile)
    with pytest.raises(RuntimeError, match="simulated"):
        pipeline.run("sine", out, progress=False, log=lambda m: None)
    assert (out / "report.json").read_text() == before  # the earlier results survive
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".sine.")]  # no staging


def test_refuses_a_folder_that_holds_other_files(tmp_path):
    (tmp_path / "thesis.docx").write_text("precious")
    with pytest.raises(FileExistsError, match="choose another --out"):
        pipeline.run("sine", tmp_path, progress=False, log=lambda m: None)
    assert (tmp_path / "thesis.docx").read_text() == "precious"


def test_unknown_project_lists_the_available_ones():
    with pytest.raises(KeyError, match="available projects: .*sine"):
        pipeline.get_project("nope")


def test_roc_auc_matches_hand_computed_values():
    assert pipeline.roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
    assert pipeline.roc_auc(np.array([1, 1, 1, 1]), np.array([0, 1, 0, 1])) == 0.5
