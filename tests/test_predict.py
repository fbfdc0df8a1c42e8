"""`tinyml-edu predict` and `deploy --port virtual` from the command line, on real runs."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from tinyml_edu import datasets, pipeline


def tinyml(*args, env=None):
    return subprocess.run([sys.executable, "-m", "tinyml_edu", *args], capture_output=True,
                          text=True, env=env, timeout=600)


@pytest.fixture(scope="module")
def wingbeats_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "wingbeats"
    pipeline.run("wingbeats", out, progress=False, log=lambda m: None)
    return out


@pytest.mark.slow
def test_predict_labels_recordings_like_the_test_split(wingbeats_run, tmp_path):
    ds = datasets.load("wingbeats")
    x, y = ds.split("test")
    picks = np.random.default_rng(0).choice(len(y), 24, replace=False)
    for i in picks:
        soundfile.write(tmp_path / f"clip_{i}.wav", x[i], 8000, subtype="PCM_16")
    result = tinyml("predict", str(wingbeats_run), str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(result.stdout)
    assert len(rows) == 24 and all(0 <= r["score"] <= 1 for r in rows)
    truth = {f"clip_{i}.wav": ds.info.classes[y[i]] for i in picks}
    correct = sum(r["label"] == truth[os.path.basename(r["file"])] for r in rows)
    assert correct >= 19  # the model scores ~94 % on this split


@pytest.mark.slow
def test_predict_resamples_audio_at_another_rate(wingbeats_run, tmp_path):
    ds = datasets.load("wingbeats")
    x, y = ds.split("test")
    picks = np.random.default_rng(1).choice(len(y), 12, replace=False)
    for i in picks:  # as a 22.05 kHz WAV (by linear interpolation, not our resampler)
        t_out = np.arange(int(len(x[i]) * 22050 / 8000)) / 22050
        clip = np.interp(t_out, np.arange(len(x[i])) / 8000, x[i].astype(float))
        soundfile.write(tmp_path / f"clip_{i}.wav", clip.astype(np.int16), 22050)
    result = tinyml("predict", str(wingbeats_run), str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "22050 Hz: resampled to the model's rate" in result.stderr
    truth = {f"clip_{i}.wav": ds.info.classes[y[i]] for i in picks}
    rows = json.loads(result.stdout)
    assert sum(r["label"] == truth[os.path.basename(r["file"])] for r in rows) >= 9


def test_resample_keeps_a_tone_and_its_level():
    from tinyml_edu import predict

    t = np.arange(22050) / 22050
    tone = (10000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    out = predict.resample(tone, 22050, 16000)
    assert out.dtype == np.int16 and len(out) == 16000
    spectrum = np.abs(np.fft.rfft(out))
    assert np.argmax(spectrum) == 1000  # 1 Hz bins over one second
    assert abs(np.abs(out[1000:-1000]).max() - 10000) < 300


def test_imu_csv_at_another_rate_says_what_to_do(tmp_path):
    from tinyml_edu import predict

    with pytest.raises(ValueError, match="Record again at 100 Hz"):
        predict._at_model_rate(tmp_path / "a.csv", np.zeros((50, 6)), 50.0, 100.0)


def test_predict_on_a_folder_that_is_not_a_run(tmp_path):
    result = tinyml("predict", str(tmp_path), str(tmp_path))
    assert result.returncode == 2 and "not a finished run" in result.stderr


@pytest.mark.slow
def test_deploy_to_the_virtual_board_and_watch_it(wingbeats_run, tmp_path):
    env = {**os.environ, "TINYML_EDU_VIRTUAL_FLASH": str(tmp_path / "flash")}
    result = tinyml("deploy", str(wingbeats_run / "model_int8.tflite"), "--board",
                    "xiao_esp32s3_sense", "--out", str(tmp_path / "sketches"), "--port",
                    "virtual", env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "deployed to the virtual board" in result.stdout
    flashed = (tmp_path / "flash" / "model.tflite").read_bytes()
    assert flashed == (wingbeats_run / "model_int8.tflite").read_bytes()
    watch = tinyml("monitor", "--port", "virtual", "--seconds", "3", "--speed", "4", env=env)
    labels = set(json.loads((wingbeats_run / "report.json").read_text())["classes"])
    predicted = [line.split()[0] for line in watch.stdout.splitlines()
                 if line and not line.startswith(("#", "E"))]
    assert predicted and set(predicted) <= labels, watch.stdout[-2000:]


def test_deploy_sine_to_the_virtual_board_and_watch_it(sine_models, tmp_path):
    """The sine demo (sensor none) on the virtual board: `monitor` shows y = model(x) for x
    sweeping 0..2pi, one value every 20 ms, which is sin(x) up to the model's error."""
    run = tmp_path / "runs" / "sine"
    run.mkdir(parents=True)
    (run / "model_int8.tflite").write_bytes(sine_models["int8"])
    (run / "report.json").write_text(json.dumps({
        "project": "sine", "task": "regression", "classes": [], "feature_params": {}}))
    env = {**os.environ, "TINYML_EDU_VIRTUAL_FLASH": str(tmp_path / "flash")}
    # --board virtual flashes the virtual board as --port virtual does (nothing to upload)
    result = tinyml("deploy", str(run / "model_int8.tflite"), "--board", "virtual",
                    "--out", str(tmp_path / "sketches"), env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "deployed to the virtual board" in result.stdout
    watch = tinyml("monitor", "--port", "virtual", "--seconds", "3", "--speed", "2", env=env)
    assert watch.returncode == 0 and "no sensor (sine demo), input x" in watch.stdout
    rows = [line.split() for line in watch.stdout.splitlines()
            if line and not line.startswith(("#", "E"))]
    assert len(rows) >= 100 and {row[0] for row in rows} == {"y"}, watch.stdout[-2000:]
    # Consecutive lines are consecutive steps of x = 2pi k / 100: at the right phase they
    # follow sin(x); at any other phase they would not.
    y = np.array([float(row[1]) for row in rows])
    k = np.arange(len(y))
    mae = min(np.mean(np.abs(y - np.sin(2 * np.pi * ((k + s) % 100) / 100))) for s in range(100))
    assert mae < 0.2
