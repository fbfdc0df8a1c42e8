"""report.json through RunReport: the same keys back, and a bad report says to run again."""

import json

import pytest

from tinyml_edu import cli
from tinyml_edu.errors import TinyMLEduError
from tinyml_edu.run_report import INT8_MODEL_FILE, REPORT_FILE, RunReport, RunReportError

PIPELINE_REPORT = {  # the keys, in order, that `tinyml-edu run` writes, and one verify adds
    "project": "sine", "dataset": "sine", "task": "regression", "classes": [],
    "float_mae": 0.05, "int8_mae": 0.06, "model_bytes": 2800, "arena_bytes": 1500,
    "arena_source": "measured", "min_arena_bytes": 1400, "macs": 321,
    "ops": {"FULLY_CONNECTED": 3}, "train_seconds": 1.5, "epochs": 40,
    "boards": {"nano33ble_sense_rev2": {"fits": True, "latency_ms": 0.1}},
    "variants": {"int8": 2800}, "feature_params": {}, "seed": 0,
    "versions": {"python": "3.11"}, "artifacts": {"int8 model": INT8_MODEL_FILE},
    "total_seconds": 9.5, "cortex_m4": {"bit_exact": True},
}


def test_a_pipeline_report_round_trips_key_for_key(tmp_path):
    (tmp_path / REPORT_FILE).write_text(json.dumps(PIPELINE_REPORT))
    report = RunReport.load(tmp_path)
    assert report.metrics == {"float_mae": 0.05, "int8_mae": 0.06}
    assert report.extra == {"cortex_m4": {"bit_exact": True}}
    assert report.project == "sine" and report.model_bytes == 2800
    (tmp_path / "again").mkdir()
    report.write(tmp_path / "again")
    again = json.loads((tmp_path / "again" / REPORT_FILE).read_text())
    assert list(again.items()) == list(PIPELINE_REPORT.items())


def test_a_hand_written_report_keeps_only_its_keys(tmp_path):
    minimal = {"project": "sine", "task": "regression", "classes": [], "feature_params": {}}
    assert RunReport.from_dict(minimal).to_dict() == minimal
    assert RunReport.beside(tmp_path / "lone.tflite") == RunReport()  # no report beside it


@pytest.mark.parametrize("content, says", [
    (None, "no report.json"),
    ("{not json", "not readable JSON"),
    ("[1, 2]", "no JSON object"),
    (json.dumps({"task": "clustering"}), "task 'clustering'"),
    (json.dumps({"classes": "yes,no"}), "classes must be a list"),
])
def test_a_bad_report_names_the_run_folder_and_says_to_run_again(tmp_path, content, says):
    run = tmp_path / "runs" / "gestures"
    run.mkdir(parents=True)
    if content is not None:
        (run / REPORT_FILE).write_text(content)
    with pytest.raises(RunReportError, match=says) as caught:
        RunReport.load(run)
    assert str(run) in str(caught.value) and "tinyml-edu run" in str(caught.value)
    assert isinstance(caught.value, TinyMLEduError)


def test_predict_on_a_broken_report_is_a_user_error(tmp_path, capsys):
    (tmp_path / REPORT_FILE).write_text("{broken")
    (tmp_path / INT8_MODEL_FILE).write_bytes(b"")
    (tmp_path / "a.csv").write_text("ax\n0\n")
    assert cli.main(["predict", str(tmp_path), str(tmp_path / "a.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not readable JSON" in err and "Traceback" not in err
