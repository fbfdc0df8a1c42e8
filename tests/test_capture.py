"""Capture and monitor against the virtual board: a real pty, real pyserial, real files, and
the command line in a subprocess."""

from __future__ import annotations

import csv
import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import serial
import soundfile

from tinyml_edu import capture, datasets, virtual_board
from tinyml_edu.capture import CaptureError
from tinyml_edu.errors import InputError

pytestmark = pytest.mark.skipif(os.name == "nt", reason="the virtual board needs a pty")

SPEED = 40.0


@pytest.fixture(autouse=True)
def _private_flash(flash_dir: Path) -> Path:
    """Every test here gets a private, empty flash: the capture boards run no model."""
    return flash_dir


@pytest.fixture(autouse=True)
def no_board_left_running():
    yield
    assert not [t for t in threading.enumerate() if t.name.startswith("virtual-board")]


def rows_of(path: Path) -> tuple[list[str], np.ndarray]:
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        values = np.array([[float(v) for v in row] for row in reader]).reshape(-1, len(header))
    return header, values


def imu_stream(label: str | None = None) -> np.ndarray:
    ds = datasets.load("gestures")
    x, y = ds.split("test")
    if label is not None:
        x = x[y == ds.info.classes.index(label)]
    return x.reshape(-1, 6)


# ---------------------------------------------------------------------------------------------
# IMU capture


def test_capture_imu_from_the_virtual_board(tmp_path):
    result = capture.capture("virtual", "imu", "W", 2, tmp_path / "data", progress=False,
                             speed=SPEED)
    assert not result.interrupted and result.samples == 200
    assert result.path.parent == tmp_path / "data" / "W" and result.path.suffix == ".csv"
    header, values = rows_of(result.path)
    assert header == ["ax", "ay", "az", "gx", "gy", "gz"]
    meta = json.loads(result.sidecar.read_text())
    assert len(values) == meta["samples"] == 200
    # the virtual board plays the gestures set's W windows: a "W" capture records a W
    np.testing.assert_allclose(values, imu_stream("W")[:200], atol=5.1e-5, rtol=0)
    assert meta["rate"] == 100 and meta["units"] == ["g", "g", "g", "dps", "dps", "dps"]
    assert meta["label"] == "W" and meta["sensor"] == "imu" and meta["board"] == "virtual"
    assert meta["lost_frames"] == 0 and meta["corrupted"] == 0 and meta["interrupted"] is False
    assert meta["port"] == "virtual" and meta["tinyml_edu"]
    assert meta["started"] <= meta["ended"]

    again = capture.capture("virtual", "imu", "W", 1, tmp_path / "data", progress=False,
                            speed=SPEED)
    assert again.path != result.path and again.samples == 100
    assert len(list((tmp_path / "data" / "W").glob("*.csv"))) == 2
    assert rows_of(result.path)[1].shape == (200, 6)  # the first file is untouched


def test_corrupted_lines_are_counted_never_stored(boards, tmp_path):
    board = boards()
    board.inject("corrupt", after=50)  # data line seq 50 arrives with a bad checksum
    result = capture.capture(board.port, "imu", "O", 1, tmp_path, progress=False)
    assert (result.corrupted, result.lost_frames, result.samples) == (1, 1, 99)
    _, values = rows_of(result.path)
    expected = np.delete(imu_stream()[:100], 50, axis=0)
    np.testing.assert_allclose(values, expected, atol=5.1e-5, rtol=0)
    meta = json.loads(result.sidecar.read_text())
    assert (meta["corrupted"], meta["lost_frames"], meta["samples"]) == (1, 1, 99)


def test_unplugged_board_keeps_complete_samples(boards, tmp_path):
    board = boards()
    board.inject("unplug", after=120)
    result = capture.capture(board.port, "imu", "L", 10, tmp_path, progress=False)
    assert result.interrupted and result.samples == 120
    assert "disconnected after 120 samples" in result.reason
    _, values = rows_of(result.path)
    assert len(values) == 120
    meta = json.loads(result.sidecar.read_text())
    assert meta["interrupted"] is True and meta["samples"] == 120 and meta["ended"]


def test_garbage_means_wrong_baud_or_sketch(boards, tmp_path):
    board = boards(mode="garbage", speed=5)
    with pytest.raises(CaptureError, match="garbage: wrong baud rate.*capture_imu"):
        capture.capture(board.port, "imu", "W", 1, tmp_path, progress=False, header_timeout=1)
    assert not list(tmp_path.rglob("*.csv"))


def test_a_silent_board_means_no_sketch(boards, tmp_path):
    board = boards(mode="silent")
    with pytest.raises(CaptureError, match="no data: is the capture sketch uploaded.*reset"):
        capture.capture(board.port, "imu", "W", 1, tmp_path, progress=False, header_timeout=1)


def test_wrong_sensor_is_explained(boards, tmp_path):
    board = boards(sensor="imu")
    with pytest.raises(CaptureError, match="streams imu data, not audio"):
        capture.capture(board.port, "audio", "yes", 1, tmp_path, progress=False)


def test_bad_label_is_refused(tmp_path):
    with pytest.raises(CaptureError, match="label"):
        capture.capture("virtual", "imu", "../up", 1, tmp_path, progress=False)


# ---------------------------------------------------------------------------------------------
# Port errors


def test_missing_port_lists_ports_and_suggests_virtual(tmp_path):
    with pytest.raises(CaptureError) as err:
        capture.capture("/dev/ttyNOPE42", "imu", "W", 1, tmp_path, progress=False)
    message = str(err.value)
    assert "/dev/ttyNOPE42 not found" in message and "--port virtual" in message
    assert "Ports on this computer: " in message


def test_busy_port_says_close_the_serial_monitor(boards):
    board = boards()
    with capture.open_port(board.port):
        with pytest.raises(CaptureError, match="busy.*Serial Monitor"):
            with capture.open_port(board.port):
                pass


def test_permission_denied_message():
    for err in (serial.SerialException(errno.EACCES, "could not open port /dev/ttyACM0: "
                                       "[Errno 13] Permission denied: '/dev/ttyACM0'"),
                PermissionError(errno.EACCES, "Permission denied")):
        message = str(capture.explain_open_error("/dev/ttyACM0", err, platform="linux"))
        assert "permission denied" in message and "sudo usermod -aG dialout $USER" in message
        assert "log out" in message
    # Windows says "Access is denied" when another program holds the port.
    win = serial.SerialException("could not open port 'COM3': PermissionError(13, 'Access is "
                                 "denied.', None, 5)")
    assert "Serial Monitor" in str(capture.explain_open_error("COM3", win, platform="win32"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_permission_denied_on_a_real_pty(boards):
    board = boards()
    os.chmod(board.port, 0)
    with pytest.raises(CaptureError, match="dialout"):
        with capture.open_port(board.port):
            pass


# ---------------------------------------------------------------------------------------------
# Audio


def test_virtual_capture_of_yes_plays_the_kws_sets_yes_clips(tmp_path):
    ds = datasets.load("kws")
    x, y = ds.split("test")
    yes_clips = x[y == ds.info.classes.index("yes")]
    assert np.abs(x[0]).max() < np.abs(yes_clips[0]).max()  # the split starts with silence
    result = capture.capture("virtual", "audio", "yes", 1, tmp_path / "data", progress=False,
                             speed=SPEED)
    assert not result.interrupted and result.samples == 16000 and not result.note
    audio, _ = soundfile.read(result.path, dtype="int16")
    np.testing.assert_array_equal(audio, yes_clips[0])
    assert np.abs(audio.astype(np.int32)).max() > 1000  # a word, not silence
    meta = json.loads(result.sidecar.read_text())
    assert "label 'yes' of the kws test split" in meta["virtual_source"]


def test_virtual_capture_says_when_the_data_set_lacks_the_label(tmp_path):
    result = capture.capture("virtual", "imu", "Z", 1, tmp_path / "data", progress=False,
                             speed=SPEED)
    assert "has no 'Z' recordings" in result.note and "W, O, L, none" in result.note
    assert json.loads(result.sidecar.read_text())["note"] == result.note
    np.testing.assert_allclose(rows_of(result.path)[1], imu_stream()[:100], atol=5.1e-5, rtol=0)


def test_audio_capture_writes_a_16khz_wav(boards, tmp_path):
    rec = tmp_path / "recordings" / "tone"
    rec.mkdir(parents=True)
    t = np.arange(12000) / 16000
    clips = [(8000 * np.sin(2 * np.pi * f * t)).astype(np.int16) for f in (440, 880)]
    for i, clip in enumerate(clips):
        soundfile.write(rec / f"tone_{i}.wav", clip, 16000, subtype="PCM_16")
    board = boards(sensor="audio", source=tmp_path / "recordings", speed=10)
    result = capture.capture(board.port, "audio", "tone", 1, tmp_path / "data", progress=False)
    assert not result.interrupted and result.path.suffix == ".wav"
    info = soundfile.info(result.path)
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (16000, 1, "PCM_16",
                                                                            16000)
    audio, _ = soundfile.read(result.path, dtype="int16")
    np.testing.assert_array_equal(audio, np.concatenate(clips)[:16000])
    meta = json.loads(result.sidecar.read_text())
    assert meta["rate"] == 16000 and meta["samples"] == 16000 and meta["sensor"] == "audio"


# ---------------------------------------------------------------------------------------------
# Monitor (library) and the command line


@pytest.fixture(scope="module")
def flashed_model():
    """A small untrained int8 1-D CNN for (128, 6) windows, with the gestures metadata."""
    from tinyml_edu import models, quantize, train
    from tinyml_edu.projects.gestures import FEATURES

    train.set_seed(0)
    model = models.cnn1d((128, 6), 4, filters=(4,), name="wand")
    rng = np.random.default_rng(0)
    blob = quantize.convert(model, "int8", representative=rng.uniform(-1, 1, (64, 128, 6)),
                            calibration_samples=64)
    # A model on generic IMU features (not the gestures project's own front end).
    meta = {"project": "tiny_wand", "dataset": "gestures", "labels": ["W", "O", "L", "none"],
            "feature_params": FEATURES.to_dict()}
    return blob, meta


def test_monitor_and_predictions(flashed_model, flash_dir):
    virtual_board.flash(*flashed_model, flash_dir=flash_dir)
    seen = []
    events = list(capture.monitor("virtual", seconds=1.0, on_event=seen.append, speed=SPEED))
    assert events == seen
    preds = [e for e in events if isinstance(e, capture.protocol.Prediction)]
    assert len(preds) >= 3 and {p.label for p in preds} <= {"W", "O", "L", "none"}
    assert any(capture.format_event(e).startswith("# model tiny_wand") for e in events)
    assert len(capture.predictions("virtual", 3, timeout=10, speed=SPEED)) == 3


def test_predictions_without_a_model_says_so():
    with pytest.raises(CaptureError, match="0 of 2 predictions.*no model flashed"):
        capture.predictions("virtual", 2, timeout=0.5, speed=SPEED)


def tinyml(*args: str, env: dict | None = None, timeout: float = 60):
    return subprocess.run([sys.executable, "-m", "tinyml_edu", *args], capture_output=True,
                          text=True, env=env, timeout=timeout)


def test_cli_capture_against_the_virtual_board(tmp_path, flash_dir):
    env = {**os.environ, virtual_board.FLASH_ENV_VAR: str(flash_dir)}
    result = tinyml("capture", "--port", "virtual", "--sensor", "imu", "--label", "W",
                    "--seconds", "1.5", "--out", str(tmp_path / "data"), "--speed", "30",
                    "--quiet", env=env)
    assert result.returncode == 0, result.stderr
    assert "saved 150 samples" in result.stdout
    (path,) = (tmp_path / "data" / "W").glob("*.csv")
    assert len(rows_of(path)[1]) == 150

    missing = tinyml("capture", "--port", "/dev/ttyNOPE42", "--sensor", "imu", "--label", "W",
                     "--seconds", "1", "--out", str(tmp_path / "data"), env=env)
    assert missing.returncode == 2 and "--port virtual" in missing.stderr
    wrong = tinyml("capture", "--port", "/dev/ttyNOPE42", "--sensor", "imu", "--label", "W",
                   "--seconds", "1", "--out", str(tmp_path), "--source", "gestures", env=env)
    assert wrong.returncode == 2 and "only apply to --port virtual" in wrong.stderr


def test_cli_capture_ctrl_c_keeps_what_was_saved(tmp_path, flash_dir):
    env = {**os.environ, virtual_board.FLASH_ENV_VAR: str(flash_dir)}
    proc = subprocess.Popen([sys.executable, "-m", "tinyml_edu", "capture", "--port", "virtual",
                             "--sensor", "imu", "--label", "idle", "--seconds", "60", "--out",
                             str(tmp_path), "--speed", "2", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            files = list((tmp_path / "idle").glob("*.csv"))
            if files and len(files[0].read_text().splitlines()) > 20:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    (path,) = (tmp_path / "idle").glob("*.csv")
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["interrupted"] is True and "Ctrl-C" in meta["reason"]
    assert len(rows_of(path)[1]) == meta["samples"] >= 20
    assert f"saved {meta['samples']} samples to {path}" in err


def test_cli_monitor_prints_predictions(flashed_model, flash_dir):
    virtual_board.flash(*flashed_model, flash_dir=flash_dir)
    env = {**os.environ, virtual_board.FLASH_ENV_VAR: str(flash_dir)}
    result = tinyml("monitor", "--port", "virtual", "--seconds", "1.5", "--speed", "20",
                    env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    preds = [line.split() for line in lines if not line.startswith(("#", "E"))]
    assert len(preds) >= 3, result.stdout
    for label, score, ms, unit in preds:
        assert label in {"W", "O", "L", "none"} and 0 <= float(score) <= 1
        assert float(ms) > 0 and unit == "ms"
    assert any(line.startswith("# ") for line in lines)

    missing = tinyml("monitor", "--port", "/dev/ttyNOPE42", "--seconds", "1", env=env)
    assert missing.returncode == 2 and "not found" in missing.stderr


def test_a_stream_cut_mid_line_keeps_every_complete_sample(tmp_path):
    """A hand-made board on a raw pty: five whole samples, half a sixth, then the cable goes."""
    import tty

    from tinyml_edu import protocol

    master, slave = os.openpty()
    tty.setraw(slave)
    port = os.ttyname(slave)
    rows = [[0.1 * i, -0.2, 1.0, 1.5, -2.5, 0.25] for i in range(5)]

    def board():
        command = b""
        while b"START" not in command:  # wait for the host like the firmware does
            command += os.read(master, 64)
        os.write(master, protocol.encode_header("nano33ble_sense_rev2", "imu", 100,
                                                ["ax", "ay", "az", "gx", "gy", "gz"],
                                                ["g", "g", "g", "dps", "dps", "dps"]))
        for seq, row in enumerate(rows):
            os.write(master, protocol.encode_imu_sample(seq, row))
        os.write(master, protocol.encode_imu_sample(5, rows[0])[:12])  # truncated frame
        time.sleep(0.3)
        os.close(master)  # unplugged

    thread = threading.Thread(target=board, daemon=True)
    thread.start()
    try:
        result = capture.capture(port, "imu", "W", 10.0, tmp_path, progress=False,
                                 stall_timeout=2.0)
    finally:
        thread.join(timeout=5)
        os.close(slave)
    assert result.interrupted and result.samples == 5
    saved = np.loadtxt(result.path, delimiter=",", skiprows=1)
    np.testing.assert_allclose(saved, np.round(rows, 4))
    sidecar = json.loads(result.sidecar.read_text())
    assert sidecar["interrupted"] is True and sidecar["samples"] == 5


def test_a_speakers_board_recordings_join_the_class_voices(tmp_path):
    """`capture --speaker`: the pseudonym is the sidecar's group and starts the file name, so
    the recordings split by speaker and `voices delete` removes them with the browser ones."""
    from tinyml_edu import voices

    data = tmp_path / "data"
    for who in ("Blue-Fox", "red-owl", "green-ant"):
        result = capture.capture("virtual", "audio", "yes", 1, data, progress=False,
                                 speed=SPEED, speaker=who)
        assert json.loads(result.sidecar.read_text())["group"] == who.lower()
        assert result.path.name.startswith(f"{who.lower()}_yes_")
    assert voices.speakers(data) == {"blue-fox": 1, "green-ant": 1, "red-owl": 1}
    folder = datasets.load_folder(data, 16000)
    assert sorted(set().union(*(set(folder.groups(s)) for s in datasets.SPLITS))) == [
        "blue-fox", "green-ant", "red-owl"]
    assert [p.name[:8] for p in voices.delete_speaker(data, "blue-fox")] == ["blue-fox"] * 2
    with pytest.raises(InputError, match="pseudonym"):
        capture.capture("virtual", "audio", "yes", 1, data, progress=False, speed=SPEED,
                        speaker="Ana Maria Pérez")
