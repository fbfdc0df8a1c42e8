"""Linux boards through Edge Impulse's SDK: our .eim under the real ImpulseRunner, and the data
export for Edge Impulse's uploader."""

from __future__ import annotations

import builtins
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from tinyml_edu import cli, datasets, predict, quantize
from tinyml_edu import edge_impulse as ei


def sdk_runner_module():
    """``edge_impulse_linux.runner``, or skip: its package imports PyAudio and cv2 first (and a
    missing cv2 exits the interpreter instead of raising ImportError)."""
    pytest.importorskip("pyaudio", reason="Edge Impulse's SDK needs PyAudio: the linux-board "
                                          "extra (apt-get install portaudio19-dev first)")
    pytest.importorskip("cv2", reason="Edge Impulse's SDK needs opencv-python-headless")
    return pytest.importorskip("edge_impulse_linux.runner")


@pytest.fixture(scope="module")
def wingbeats_run(tmp_path_factory) -> Path:
    """A run folder like `tinyml-edu run wingbeats` leaves (model_int8.tflite + report.json),
    with the project's real features and a briefly trained MLP."""
    from tinyml_edu import train
    from tinyml_edu.projects import wingbeats

    ds = datasets.load("wingbeats")
    prep = wingbeats.prepare(ds)
    train.set_seed(0)
    model = wingbeats.build(prep)
    train.fit(model, prep.x["train"], prep.y["train"], prep.x["val"], prep.y["val"],
              loss="sparse_categorical_crossentropy", epochs=15, batch_size=32,
              learning_rate=1e-2, patience=15, progress=False)
    run = tmp_path_factory.mktemp("runs") / "wingbeats"
    run.mkdir()
    (run / "model_int8.tflite").write_bytes(
        quantize.convert(model, "int8", representative=prep.x["train"]))
    (run / "report.json").write_text(json.dumps({
        "project": "wingbeats", "task": "classification", "classes": prep.labels,
        "feature_params": prep.feature_params}))
    return run


@pytest.fixture(scope="module")
def clips() -> np.ndarray:
    x, _ = datasets.load("wingbeats").split("test")
    return x[np.random.default_rng(0).choice(len(x), 8, replace=False)]


def reference(run: Path, clips: np.ndarray) -> np.ndarray:
    from tinyml_edu.projects import wingbeats

    report = json.loads((run / "report.json").read_text())
    model = (run / "model_int8.tflite").read_bytes()
    return quantize.predict(model, wingbeats.model_inputs(clips, report["feature_params"]))


def scores_of(answer: dict, labels: list[str]) -> np.ndarray:
    return np.array([answer["result"]["classification"][label] for label in labels])


# ---------------------------------------------------------------------------------------------
# The .eim under the real SDK


def test_impulse_runner_on_raw_windows_matches_quantize_predict(wingbeats_run, clips, tmp_path):
    runner_module = sdk_runner_module()
    eim = ei.export_eim(wingbeats_run, tmp_path / "wingbeats.eim")
    assert os.stat(eim).st_mode & 0o777 == 0o755
    head = "\n".join(eim.read_text().splitlines()[:2])  # #!python, or sh's exec of it
    assert head.startswith("#!") and sys.executable in head
    labels = json.loads((wingbeats_run / "report.json").read_text())["classes"]
    expected = reference(wingbeats_run, clips)

    runner = runner_module.ImpulseRunner(str(eim))
    try:
        info = runner.init()
        params = info["model_parameters"]
        assert params["labels"] == labels and params["label_count"] == len(labels)
        assert params["input_features_count"] == 4000 and params["axis_count"] == 1
        assert params["frequency"] == 8000 and params["interval_ms"] == pytest.approx(0.125)
        assert params["sensor"] == 1 and params["model_type"] == "classification"
        assert info["project"]["name"] == "wingbeats"
        tops = set()
        for clip, want in zip(clips, expected, strict=True):
            answer = runner.classify(clip.astype(int).tolist())  # int16 samples, as a mic gives
            got = scores_of(answer, labels)
            np.testing.assert_allclose(got, want, atol=1e-6)
            assert labels[int(np.argmax(got))] == labels[int(np.argmax(want))]
            assert set(answer["timing"]) >= {"dsp", "classification", "anomaly"}
            tops.add(int(np.argmax(got)))
        assert len(tops) > 1  # a trained model: the inputs really reach it
    finally:
        ei._stop(runner)  # runner.stop(), then waits for the process


def test_audio_impulse_runner_takes_its_rate_and_window_from_hello(wingbeats_run, clips,
                                                                   tmp_path):
    sdk_runner_module()
    from edge_impulse_linux.audio import AudioImpulseRunner

    eim = ei.export_eim(wingbeats_run, tmp_path / "wingbeats.eim")
    runner = AudioImpulseRunner(str(eim))
    try:
        runner.init()
        assert (runner.sampling_rate, runner.window_size) == (8000, 4000)
        answer = runner.classify(clips[0].astype(int).tolist())
        np.testing.assert_allclose(scores_of(answer, runner.labels),
                                   reference(wingbeats_run, clips[:1])[0], atol=1e-6)
    finally:
        ei._stop(runner)  # runner.stop(), then waits for the process


def test_features_inputs_with_features_for_eim(wingbeats_run, clips, tmp_path):
    sdk_runner_module()
    eim = ei.export_eim(wingbeats_run, tmp_path / "features.eim", inputs="features")
    labels = json.loads((wingbeats_run / "report.json").read_text())["classes"]
    expected = reference(wingbeats_run, clips)
    rows = ei.features_for_eim(wingbeats_run, clips)  # a stack: one flat list per clip
    assert len(rows) == len(clips) and all(len(r) == 7 for r in rows)
    assert ei.features_for_eim(wingbeats_run, clips[3]) == rows[3]  # one window: one list

    answer = ei.run_eim(eim, ei.features_for_eim(wingbeats_run, clips[3]))
    params = answer["model_info"]["model_parameters"]
    assert params["input_features_count"] == 7 and params["frequency"] == 0
    np.testing.assert_allclose(scores_of(answer, labels), expected[3], atol=1e-6)
    with ei.open_runner(eim) as (runner, _):
        for row, want in zip(rows, expected, strict=True):
            np.testing.assert_allclose(scores_of(runner.classify(row), labels), want, atol=1e-6)
        with pytest.raises(Exception, match="expected 7 values"):
            runner.classify([0.0] * 6)


def test_bare_tflite_and_freeform_outputs(wingbeats_run, tmp_path):
    sdk_runner_module()
    bare = tmp_path / "bare" / "model.tflite"
    bare.parent.mkdir()
    shutil.copy(wingbeats_run / "model_int8.tflite", bare)
    with pytest.raises(ValueError, match="raw inputs need the project's features"):
        ei.export_eim(bare, tmp_path / "raw.eim", inputs="raw")
    answer = ei.run_eim(ei.export_eim(bare, tmp_path / "bare.eim"), [0.5] * 7)
    assert answer["model_info"]["model_parameters"]["labels"] == [f"class_{i}" for i in range(4)]
    assert sum(answer["result"]["classification"].values()) == pytest.approx(1, abs=0.02)

    (bare.parent / "report.json").write_text(json.dumps({"task": "regression"}))
    answer = ei.run_eim(ei.export_eim(bare, tmp_path / "free.eim"), [0.5] * 7)
    assert answer["model_info"]["model_parameters"]["model_type"] == "freeform"
    assert len(answer["result"]["freeform"]) == 1 and len(answer["result"]["freeform"][0]) == 4


def test_labels_with_braces_survive_the_sdk_brace_counting(wingbeats_run, tmp_path):
    sdk_runner_module()
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(wingbeats_run / "model_int8.tflite", run / "model_int8.tflite")
    labels = ["{a}", "b}", "c{", 'd "quoted" \\']
    report = json.loads((wingbeats_run / "report.json").read_text())
    (run / "report.json").write_text(json.dumps({**report, "classes": labels}))
    answer = ei.run_eim(ei.export_eim(run, tmp_path / "m.eim", inputs="features"), [0.0] * 7)
    assert answer["model_info"]["model_parameters"]["labels"] == labels
    assert list(answer["result"]["classification"]) == labels


def test_an_interpreter_path_with_a_space_still_starts(wingbeats_run, tmp_path):
    sdk_runner_module()
    spaced = tmp_path / "my python"
    spaced.mkdir()
    # A wrapper, not a symlink: a symlinked venv python outside its venv loses the venv's
    # site-packages (Python finds pyvenv.cfg next to the path it was started by).
    wrapper = spaced / "python"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    eim = ei.export_eim(wingbeats_run, tmp_path / "m.eim", inputs="features",
                        python=str(spaced / "python"))
    assert eim.read_text().startswith("#!/bin/sh\n")
    assert ei.run_eim(eim, [0.0] * 7)["result"]["classification"]


def test_a_broken_eim_gives_an_error_instead_of_hanging(wingbeats_run, tmp_path):
    sdk_runner_module()
    dies = tmp_path / "dies.eim"
    dies.write_text("#!/bin/sh\nexit 3\n")
    dies.chmod(0o755)
    started = time.monotonic()
    with pytest.raises(ei.EdgeImpulseError, match="exited with code 3"):
        ei.run_eim(dies, [0.0])
    assert time.monotonic() - started < 20
    import threading

    silent = tmp_path / "silent.eim"
    silent.write_text("#!/bin/sh\nexec sleep 60\n")
    silent.chmod(0o755)
    with pytest.raises(ei.EdgeImpulseError, match="did not answer within 1 s"):
        with ei.open_runner(silent, timeout=1):
            pass
    assert not [t for t in threading.enumerate() if t.name == "eim-init"]  # the SDK let go

    eim = ei.export_eim(wingbeats_run, tmp_path / "bad.eim")
    text = eim.read_text()
    start = text.index("MODEL_B64 = (")
    eim.write_text(text[:start] + 'MODEL_B64 = ("AAAA")\n' + text[text.index("\n)\n", start) + 3:])
    with pytest.raises(ei.EdgeImpulseError, match="bad.eim: .*Error"):
        ei.run_eim(eim, [0.0] * 4000)

    eim.chmod(0o644)
    with pytest.raises(ei.EdgeImpulseError, match="not executable"):
        ei.run_eim(eim, [0.0])


def test_cli_exports_and_runs_like_predict(wingbeats_run, clips, tmp_path, capsys):
    sdk_runner_module()
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    for i, clip in enumerate(clips[:4]):
        soundfile.write(recordings / f"clip_{i}.wav", clip, 8000, subtype="PCM_16")
    eim = tmp_path / "wingbeats.eim"
    assert cli.main(["edge-impulse", "export-eim", str(wingbeats_run), "--out", str(eim)]) == 0
    capsys.readouterr()
    assert cli.main(["edge-impulse", "run", str(eim), str(recordings), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    expected = predict.predict_files(wingbeats_run, [recordings])
    assert [(r["file"], r["label"]) for r in rows] == [(p.file, p.label) for p in expected]
    for row, p in zip(rows, expected, strict=True):
        assert row["score"] == pytest.approx(p.score, abs=1e-3)

    assert cli.main(["edge-impulse", "run", str(tmp_path / "nothing.eim"), str(recordings)]) == 2
    assert "not found" in capsys.readouterr().err


def test_imu_csv_recordings_flatten_sample_by_sample(tmp_path):
    """An IMU model (untrained, so any reordering of the inputs shows in its scores): the .eim
    under the SDK labels CSV recordings exactly as `tinyml-edu predict` does."""
    sdk_runner_module()
    from tinyml_edu import models, train
    from tinyml_edu.projects import gestures

    x, _ = datasets.load("gestures").split("test")
    train.set_seed(0)
    model = models.cnn1d((128, 7), 4, filters=(8,))
    run = tmp_path / "run"
    run.mkdir()
    (run / "model_int8.tflite").write_bytes(
        quantize.convert(model, "int8", representative=gestures.imu_features(x[:100])))
    (run / "report.json").write_text(json.dumps({
        "project": "gestures", "task": "classification", "classes": ["W", "O", "L", "none"],
        "feature_params": gestures.feature_params()}))
    data = tmp_path / "data"
    for i in range(3):
        _imu_recording(data, "W", f"r{i}", np.concatenate(x[2 * i:2 * i + 2]), {"rate": 100})
    eim = ei.export_eim(run, tmp_path / "wand.eim")
    got = ei.classify_recordings(eim, [data])
    expected = predict.predict_files(run, [data])
    assert [(g.file, g.label, g.windows) for g in got] == [
        (e.file, e.label, e.windows) for e in expected]
    assert [g.windows for g in got] == [3, 3, 3]  # 256 samples, windows of 128 every 64
    for g, e in zip(got, expected, strict=True):
        assert g.score == pytest.approx(e.score, abs=1e-5)


# ---------------------------------------------------------------------------------------------
# Without the SDK


def test_missing_sdk_names_the_extra_and_portaudio(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "edge_impulse_linux", None)
    monkeypatch.setitem(sys.modules, "edge_impulse_linux.runner", None)
    with pytest.raises(ei.SDKMissingError, match="linux-board") as err:
        ei.run_eim(tmp_path / "model.eim", [0.0])
    assert "apt-get install portaudio19-dev" in str(err.value)


def test_missing_cv2_exits_inside_the_sdk_and_is_caught(monkeypatch):
    real_import = builtins.__import__

    def sdk_without_cv2(name, *args, **kwargs):
        if name.startswith("edge_impulse_linux"):
            raise SystemExit(1)  # what the SDK's image module does without cv2
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", sdk_without_cv2)
    with pytest.raises(ei.SDKMissingError, match="opencv-python-headless"):
        ei._import_runner()


def _request(conn: socket.socket, payload: bytes, answers: int) -> list[dict]:
    conn.sendall(payload)
    data = b""
    while data.count(b"\0") < answers:
        chunk = conn.recv(65536)
        assert chunk, "the .eim closed the socket"
        data += chunk
    return [json.loads(part) for part in data.split(b"\0")[:answers]]


def test_socket_protocol_without_the_sdk(wingbeats_run, clips, tmp_path):
    """Node-style requests (newline-terminated, two in one write), NUL after each answer,
    errors as answers, and a clean exit when the client goes."""
    eim = ei.export_eim(wingbeats_run, tmp_path / "m.eim")
    folder = tempfile.mkdtemp(prefix="eim")  # short: Unix socket paths are limited to 108 bytes
    path = os.path.join(folder, "runner.sock")
    process = subprocess.Popen([str(eim), path], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(path):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(path)  # never refused: the socket only appears once it listens
        hello, answer = _request(conn, b'{"hello": 1, "id": 1}\n{"classify": '
                                 + json.dumps(clips[0].tolist()).encode() + b', "id": 2}\n', 2)
        assert hello["id"] == 1 and hello["success"] and hello["model_parameters"]["labels"]
        assert answer["id"] == 2 and answer["success"]
        np.testing.assert_allclose(list(answer["result"]["classification"].values()),
                                   reference(wingbeats_run, clips[:1])[0], atol=1e-6)
        wrong, unknown = _request(conn, b'{"classify": [1, 2], "id": 3}{"what": 1, "id": 4}', 2)
        assert not wrong["success"] and "expected 4000 values" in wrong["error"]
        assert not unknown["success"] and unknown["id"] == 4
        conn.close()
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Recordings for Edge Impulse's uploader


def _imu_recording(folder: Path, label: str, stem: str, rows: np.ndarray,
                   sidecar: dict | None) -> Path:
    (folder / label).mkdir(parents=True, exist_ok=True)
    path = folder / label / f"{stem}.csv"
    lines = ["ax,ay,az,gx,gy,gz"] + [",".join(repr(float(v)) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    if sidecar is not None:
        path.with_suffix(".json").write_text(json.dumps(sidecar))
    return path


def test_export_data_writes_acquisition_json_and_wavs(tmp_path, capsys):
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    rows = np.round(rng.normal(size=(50, 6)), 4)
    _imu_recording(data, "W", "W_20250101-120000_1", rows, {
        "rate": 100, "board": "virtual", "columns": ["ax", "ay", "az", "gx", "gy", "gz"],
        "units": ["g", "g", "g", "dps", "dps", "dps"], "started": "2025-01-01T12:00:00.000+00:00"})
    _imu_recording(data, "none", "rest", rows[:10], None)
    (data / "yes").mkdir()
    clip = (rng.normal(size=1600) * 1000).astype(np.int16)
    soundfile.write(data / "yes" / "a.wav", clip, 16000, subtype="PCM_16")
    soundfile.write(data / "yes" / "b.flac", clip, 16000)

    with pytest.raises(datasets.DatasetError, match="no sample rate"):
        ei.export_ei_dataset(data, tmp_path / "fails")  # rest.csv has no sidecar
    out = tmp_path / "ei"
    exported = ei.export_ei_dataset(data, out, rate=50)
    assert exported.per_label == {"W": 1, "none": 1, "yes": 2}

    sample = json.loads((out / "W.W_20250101-120000_1.json").read_text())
    assert sample["protected"] == {"ver": "v1", "alg": "none", "iat": 1735732800}
    assert sample["signature"] == "0" * 64
    payload = sample["payload"]
    assert payload["interval_ms"] == 10 and payload["device_type"] == "VIRTUAL"
    assert payload["sensors"] == [{"name": n, "units": u} for n, u in
                                  zip(["ax", "ay", "az", "gx", "gy", "gz"],
                                      ["g", "g", "g", "dps", "dps", "dps"], strict=True)]
    assert np.array_equal(np.array(payload["values"]), rows)
    rest = json.loads((out / "none.rest.json").read_text())["payload"]
    assert rest["interval_ms"] == 20 and rest["sensors"][0] == {"name": "ax", "units": "N/A"}
    assert len(rest["values"]) == 10

    assert (out / "yes.a.wav").read_bytes() == (data / "yes" / "a.wav").read_bytes()
    audio, rate = soundfile.read(out / "yes.b.wav", dtype="int16")
    assert rate == 16000 and np.array_equal(audio, clip)
    readme = (out / "README.txt").read_text()
    assert "edge-impulse-uploader --category split" in readme

    # Exporting again into our own folder is fine; into someone else's is not.
    assert cli.main(["edge-impulse", "export-data", str(data), "--out", str(out),
                     "--rate", "50"]) == 0
    assert "wrote 4 file(s)" in capsys.readouterr().out
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        ei.export_ei_dataset(data, foreign, rate=50)


def test_export_data_refuses_labels_edge_impulse_cannot_read(tmp_path):
    _imu_recording(tmp_path / "data", "up.down", "x", np.zeros((5, 6)), {"rate": 100})
    with pytest.raises(ValueError, match="letters, digits"):
        ei.export_ei_dataset(tmp_path / "data", tmp_path / "out")
