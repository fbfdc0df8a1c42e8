"""The virtual board on a real pseudo-terminal, read with real pyserial: no mocks of the serial
layer. Every board is stopped by a fixture, and each test checks no board thread is left."""

from __future__ import annotations

import json
import os
import re
import time

import numpy as np
import pytest
import serial

from tinyml_edu import datasets, profile, protocol, virtual_board
from tinyml_edu.capture import predictions
from tinyml_edu.virtual_board import VirtualBoard, VirtualBoardError

pytestmark = pytest.mark.skipif(os.name == "nt", reason="the virtual board needs a pty")

SPEED = 40.0


@pytest.fixture()
def port(boards):
    """Open ports, closed afterwards: ``port(board)``."""
    opened: list[serial.Serial] = []

    def open_(board: VirtualBoard) -> serial.Serial:
        ser = serial.Serial(board.port, 115200, timeout=0.05)
        opened.append(ser)
        return ser

    yield open_
    for ser in opened:
        ser.close()
        _PARSERS.pop(id(ser), None)


_PARSERS: dict[int, protocol.StreamParser] = {}


def read_events(ser: serial.Serial, until, timeout: float = 10.0) -> list[protocol.Event]:
    """Parse what arrives (one parser per port, so no line is cut) until ``until(events)``."""
    parser = _PARSERS.setdefault(id(ser), protocol.StreamParser())
    events: list[protocol.Event] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events += parser.feed(ser.read(max(1, ser.in_waiting)))
        if until(events):
            return events
    raise AssertionError(f"timed out; got {events[-5:]}")


def of_type(events, kind) -> list:
    return [e for e in events if isinstance(e, kind)]


def imu_stream() -> np.ndarray:
    return datasets.load("gestures").split("test")[0].reshape(-1, 6)


# ---------------------------------------------------------------------------------------------
# Protocol behaviour


def test_hello_answers_with_the_header(boards, port):
    board = boards()
    assert board.port and board.port.startswith("/dev/")
    ser = port(board)
    ser.write(b"HELLO\n")
    events = read_events(ser, lambda ev: of_type(ev, protocol.Header))
    header = of_type(events, protocol.Header)[0]
    assert header == protocol.Header("virtual", "imu", 100.0, ("ax", "ay", "az", "gx", "gy", "gz"),
                                     ("g", "g", "g", "dps", "dps", "dps"))
    assert not of_type(events, protocol.Corrupted)


def test_start_streams_the_test_split_paced_and_stop_stops(boards, port):
    board = boards()
    ser = port(board)
    n = 300
    ser.write(b"START\n")
    start = time.monotonic()
    events = read_events(ser, lambda ev: len(of_type(ev, protocol.ImuSample)) >= n)
    elapsed = time.monotonic() - start
    samples = of_type(events, protocol.ImuSample)[:n]
    assert [s.seq for s in samples] == list(range(n))
    values = np.array([s.values for s in samples])
    np.testing.assert_allclose(values, imu_stream()[:n], atol=5.1e-5, rtol=0)
    assert elapsed >= 0.7 * n / (100 * SPEED)  # paced, not dumped
    ser.write(b"STOP\n")
    events = read_events(ser, lambda ev: protocol.Comment("stopped") in ev)
    ser.reset_input_buffer()
    time.sleep(0.1)
    assert not ser.read(ser.in_waiting or 1)  # quiet after STOP


def test_unknown_command_is_an_error_line(boards, port):
    ser = port(boards())
    ser.write(b"DANCE\n")
    events = read_events(ser, lambda ev: of_type(ev, protocol.BoardError))
    assert "DANCE" in of_type(events, protocol.BoardError)[0].text


def test_audio_frames_have_the_data_rate_and_values(boards, port):
    board = boards(sensor="audio", speed=10)
    ds = datasets.load("kws" if "kws" in datasets.registry() else "wingbeats")
    ser = port(board)
    ser.write(b"START\n")
    start = time.monotonic()
    events = read_events(ser, lambda ev: len(of_type(ev, protocol.AudioFrame)) >= 20)
    elapsed = time.monotonic() - start
    header = of_type(events, protocol.Header)[-1]
    assert header.sensor == "audio" and header.rate == ds.info.sample_rate
    frames = of_type(events, protocol.AudioFrame)[:20]
    assert [f.seq for f in frames] == list(range(20))
    assert all(len(f.samples) == 512 and f.samples.dtype == np.int16 for f in frames)
    got = np.concatenate([f.samples for f in frames])
    np.testing.assert_array_equal(got, ds.split("test")[0].reshape(-1)[:len(got)])
    assert elapsed >= 0.7 * 20 * 512 / (header.rate * 10)


def test_recordings_folder_is_a_source(boards, port, tmp_path):
    folder = tmp_path / "rec"
    (folder / "up").mkdir(parents=True)
    rows = np.arange(30, dtype=np.float32).reshape(10, 3) / 8
    np.savetxt(folder / "up" / "a.csv", rows, delimiter=",", header="ax,ay,gz", comments="",
               fmt="%.4f")
    ser = port(boards(source=folder))
    ser.write(b"START\n")
    events = read_events(ser, lambda ev: len(of_type(ev, protocol.ImuSample)) >= 15)
    header = of_type(events, protocol.Header)[-1]
    assert header.columns == ("ax", "ay", "gz") and header.units == ("g", "g", "dps")
    values = np.array([s.values for s in of_type(events, protocol.ImuSample)[:15]])
    np.testing.assert_allclose(values, np.concatenate([rows, rows])[:15], atol=1e-6)  # loops


def test_a_recordings_folder_plays_at_its_sidecar_rate_and_a_broken_one_is_ignored(tmp_path):
    from tinyml_edu.virtual_board.streams import load_stream

    folder = tmp_path / "rec"
    (folder / "up").mkdir(parents=True)
    for name in ("a", "b"):
        np.savetxt(folder / "up" / f"{name}.csv", np.zeros((4, 3)), delimiter=",",
                   header="ax,ay,gz", comments="")
    (folder / "up" / "a.json").write_text('{"rate": 50}')
    (folder / "up" / "b.json").write_text("{broken")
    stream = load_stream("imu", folder, None)
    assert stream.rate == 50.0 and stream.data.shape == (8, 3)
    (folder / "up" / "a.json").unlink()
    assert load_stream("imu", folder, None).rate == 100.0  # the IMU sketch's rate


def test_a_data_set_name_is_not_read_as_a_folder_of_that_name(tmp_path, monkeypatch):
    from tinyml_edu.virtual_board.streams import load_stream

    monkeypatch.chdir(tmp_path)
    (tmp_path / "gestures" / "up").mkdir(parents=True)
    np.savetxt(tmp_path / "gestures" / "up" / "a.csv", np.zeros((4, 3)), delimiter=",",
               header="ax,ay,gz", comments="")
    shipped = load_stream("imu", "gestures", None)
    assert shipped.description.startswith("gestures test split")
    assert "give --source ./gestures" in shipped.note
    assert load_stream("imu", "./gestures", None).data.shape == (4, 3)


def test_bad_sources_are_explained(flash_dir):
    with pytest.raises(VirtualBoardError, match="unknown source 'nope'.*gestures"):
        VirtualBoard(source="nope", flash_dir=flash_dir).start()
    with pytest.raises(VirtualBoardError, match="not audio"):
        VirtualBoard(sensor="audio", source="gestures", flash_dir=flash_dir).start()


def test_windows_gets_a_clear_error(monkeypatch, flash_dir):
    monkeypatch.setattr(virtual_board, "has_pty", lambda: False)  # as on Windows
    with pytest.raises(VirtualBoardError, match="Linux or macOS.*WSL"):
        VirtualBoard(flash_dir=flash_dir).start()


# ---------------------------------------------------------------------------------------------
# Faults


def test_injected_faults(boards, port):
    board = boards()
    ser = port(board)
    ser.write(b"START\n")
    events = read_events(ser, lambda ev: len(of_type(ev, protocol.ImuSample)) >= 5)
    board.inject("corrupt")
    events += read_events(ser, lambda ev: of_type(ev, protocol.Corrupted)
                          and isinstance(ev[-1], protocol.ImuSample))
    bad = of_type(events, protocol.Corrupted)
    assert len(bad) == 1 and bad[0].raw.startswith(b"D ")
    i = events.index(bad[0])
    assert events[i + 1].seq == events[i - 1].seq + 2  # its seq is used up: one frame lost

    board.inject("garbage")
    events = read_events(ser, lambda ev: of_type(ev, protocol.Corrupted))
    assert len(of_type(events, protocol.Corrupted)) == 1
    read_events(ser, lambda ev: len(of_type(ev, protocol.ImuSample)) >= 3)  # goes on

    board.inject("unplug", after=10)
    with pytest.raises(serial.SerialException):
        read_events(ser, lambda ev: False, timeout=5)
    assert board.unplugged and not os.path.exists(board.port)


def test_garbage_mode_is_noise_only(boards, port):
    ser = port(boards(mode="garbage", speed=5))
    ser.write(b"START\n")
    events = read_events(ser, lambda ev: len(of_type(ev, protocol.Corrupted)) >= 3)
    assert not of_type(events, protocol.Header) and not of_type(events, protocol.ImuSample)


# ---------------------------------------------------------------------------------------------
# Flash and inference


@pytest.fixture(scope="module")
def gesture_model():
    """A tiny 1-D CNN trained for two epochs on the gestures set: int8 and float32."""
    from tinyml_edu import models, quantize, train
    from tinyml_edu.features import scale_imu
    from tinyml_edu.projects.gestures import FEATURES

    ds = datasets.load("gestures")
    x, y = ds.split("train")
    xs = scale_imu(x, FEATURES)
    train.set_seed(0)
    model = models.cnn1d((128, 6), 4, filters=(4, 8), name="tiny_wand")
    train.fit(model, xs, y, xs[:100], y[:100], loss="sparse_categorical_crossentropy",
              epochs=2, batch_size=64, learning_rate=0.01, progress=False)
    # A model on generic IMU features (not the gestures project's own front end).
    meta = {"project": "tiny_wand", "dataset": "gestures", "labels": list(ds.info.classes),
            "feature_params": FEATURES.to_dict()}
    return {"int8": quantize.convert(model, "int8", representative=xs, calibration_samples=100),
            "float32": quantize.convert(model, "float32"), "meta": meta}


def expected_predictions(model: bytes, seqs: list[int], window=128, stride=64) -> np.ndarray:
    from tinyml_edu import quantize
    from tinyml_edu.features import scale_imu
    from tinyml_edu.projects.gestures import FEATURES

    stream = imu_stream()
    windows = np.stack([stream[k * stride:k * stride + window] for k in seqs])
    return quantize.predict(model, scale_imu(windows, FEATURES))


def test_flashed_int8_model_predicts_like_litert(boards, port, gesture_model, flash_dir):
    labels = gesture_model["meta"]["labels"]
    virtual_board.flash(gesture_model["int8"], gesture_model["meta"], flash_dir)
    meta = virtual_board.read_flash(flash_dir)[1]
    assert meta["sensor"] == "imu" and (meta["window"], meta["stride"]) == (128, 64)
    assert meta["arena_bytes"] > 0 and meta["labels"] == labels

    board = boards()
    ser = port(board)
    ser.write(b"HELLO\n")
    events = read_events(ser, lambda ev: len(of_type(ev, protocol.Prediction)) >= 12)
    assert any("TFLM" in c.text for c in of_type(events, protocol.Comment))
    preds = of_type(events, protocol.Prediction)[:12]
    assert all(p.label in labels and 0 <= p.score <= 1 and p.ms > 0 for p in preds)
    assert [p.seq for p in preds] == list(range(preds[0].seq, preds[0].seq + 12))
    expected = expected_predictions(gesture_model["int8"], [p.seq for p in preds])
    assert [p.label for p in preds] == [labels[i] for i in expected.argmax(axis=1)]
    np.testing.assert_allclose([p.score for p in preds], expected.max(axis=1), atol=6e-4)

    ser.write(b"INFER OFF\n")
    read_events(ser, lambda ev: protocol.Comment("inference off") in ev)
    ser.reset_input_buffer()
    time.sleep(128 / (100 * SPEED) * 3)
    assert not of_type(read_events(ser, lambda ev: True, 1), protocol.Prediction)


def test_float_model_and_custom_model_input(boards, port, gesture_model, flash_dir):
    from tinyml_edu.features import scale_imu
    from tinyml_edu.projects.gestures import FEATURES

    calls = []

    def model_input(window):
        calls.append(window.shape)
        return scale_imu(window, FEATURES)

    virtual_board.flash(gesture_model["float32"], gesture_model["meta"], flash_dir)
    board = boards(model_input=model_input)
    preds = predictions(board.port, 4, timeout=10)
    expected = expected_predictions(gesture_model["float32"], [p.seq for p in preds])
    labels = gesture_model["meta"]["labels"]
    # Float kernels of TFLM and LiteRT differ in the last bits: allow a near-tie to flip.
    for p, row in zip(preds, expected, strict=True):
        assert row[labels.index(p.label)] >= row.max() - 2e-3
        assert abs(p.score - row.max()) < 2e-3
    assert calls and set(calls) == {(128, 6)}


def test_flash_persists_across_boards_and_erase(boards, port, gesture_model, flash_dir):
    first = VirtualBoard(flash_dir=flash_dir)  # not even started: flashing needs no port
    first.flash(gesture_model["int8"], gesture_model["meta"])
    assert (flash_dir / "model.tflite").read_bytes() == gesture_model["int8"]
    assert virtual_board.default_flash_dir() == flash_dir  # the env var

    second = boards()  # a new process would see the same files
    preds = predictions(second.port, 2, timeout=10)
    assert {p.label for p in preds} <= set(gesture_model["meta"]["labels"])

    second.erase()  # reboots without a model
    ser = port(second)
    ser.write(b"INFER ON\n")
    events = read_events(ser, lambda ev: of_type(ev, protocol.BoardError))
    assert "no model" in of_type(events, protocol.BoardError)[0].text
    assert virtual_board.read_flash(flash_dir) is None


def test_a_model_for_another_sensor_is_refused_on_boot(boards, port, gesture_model, flash_dir):
    virtual_board.flash(gesture_model["int8"], gesture_model["meta"], flash_dir)
    ser = port(boards(sensor="audio"))
    ser.write(b"INFER ON\n")
    events = read_events(ser, lambda ev: of_type(ev, protocol.BoardError))
    assert "expects imu input" in of_type(events, protocol.BoardError)[0].text


def test_flash_rejects_what_is_not_a_model(flash_dir):
    with pytest.raises(VirtualBoardError, match="not a .tflite"):
        virtual_board.flash(b"hello world", {"labels": ["a"]}, flash_dir)
    assert virtual_board.read_flash(flash_dir) is None


def test_audio_model_runs_on_clip_windows_every_250ms(boards, flash_dir):
    """An audio model sees clip-long windows every 250 ms, through the default features."""
    from tinyml_edu import features, models, quantize

    FEATURES = features.AudioFeatureParams(  # noqa: N806 - a log-mel front end at 8 kHz
        sample_rate=8000, window_ms=32.0, stride_ms=16.0, clip_ms=500.0, num_channels=32,
        fft_size=256, lower_hz=100.0, upper_hz=3800.0)
    ds = datasets.load("wingbeats")
    clips = ds.split("test")[0]
    model = models.cnn2d(FEATURES.shape, len(ds.info.classes), filters=(4,), name="tiny_ear")
    blob = quantize.convert(model, "int8", calibration_samples=32,
                            representative=features.audio_features_batch(clips[:32], FEATURES))
    # Not the wingbeats project's own front end: a model with generic log-mel features.
    virtual_board.flash(blob, {"project": "tiny_ear", "dataset": "wingbeats",
                               "labels": list(ds.info.classes),
                               "feature_params": FEATURES.to_dict()}, flash_dir)
    meta = virtual_board.read_flash(flash_dir)[1]
    window, stride = FEATURES.clip_samples, FEATURES.sample_rate // 4
    assert (meta["sensor"], meta["window"], meta["stride"]) == ("audio", window, stride)

    board = boards(speed=10)  # sensor and source follow the flashed model: wingbeats audio
    preds = predictions(board.port, 4, timeout=15)
    stream = clips.reshape(-1)
    windows = [stream[p.seq * stride:p.seq * stride + window] for p in preds]
    expected = quantize.predict(blob, features.audio_features_batch(np.stack(windows), FEATURES))
    assert [p.label for p in preds] == [ds.info.classes[i] for i in expected.argmax(axis=1)]
    np.testing.assert_allclose([p.score for p in preds], expected.max(axis=1), atol=6e-4)


def test_without_tflm_it_falls_back_to_litert_and_says_so(boards, port, gesture_model,
                                                          flash_dir, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tflite_micro", None)  # as on Windows and macOS
    virtual_board.flash(gesture_model["int8"], gesture_model["meta"], flash_dir)
    ser = port(boards())
    ser.write(b"HELLO\n")
    events = read_events(ser, lambda ev: len(of_type(ev, protocol.Prediction)) >= 3)
    assert any("LiteRT" in c.text for c in of_type(events, protocol.Comment))
    preds = of_type(events, protocol.Prediction)[:3]
    expected = expected_predictions(gesture_model["int8"], [p.seq for p in preds])
    labels = gesture_model["meta"]["labels"]
    assert [p.label for p in preds] == [labels[i] for i in expected.argmax(axis=1)]


# ---------------------------------------------------------------------------------------------
# The arena a board reports


def arena_comment(events) -> tuple[int, int]:
    """(used, reserved) from the "arena U of R bytes used" the board says about its model."""
    texts = [c.text for c in of_type(events, protocol.Comment) if "arena" in c.text]
    match = re.search(r"arena (\d+) of (\d+) bytes used", texts[-1] if texts else "")
    assert match, texts
    return int(match[1]), int(match[2])


@pytest.mark.skipif(not profile.tflm_available(), reason="the arena is measured with tflite-micro")
def test_the_board_reports_the_arena_tflm_uses_as_the_profiler_does(boards, port,
                                                                    gesture_model, flash_dir):
    model = gesture_model["int8"]
    used = profile.tflm_arena_bytes(model)
    deployed = int(used * (1 + profile.ARENA_MARGIN))  # deploy.json's arena_bytes, not /16
    virtual_board.flash(model, {**gesture_model["meta"], "arena_bytes": deployed}, flash_dir)
    ser = port(boards())
    ser.write(b"HELLO\n")
    events = read_events(ser, lambda ev: any("inference on" in c.text and "arena" in c.text
                                             for c in of_type(ev, protocol.Comment)))
    # As the sketch: what TFLM allocates, of kTensorArenaSize (deploy's figure rounded to 16);
    # not the bigger arena the board hands the runtime for safety.
    assert arena_comment(events) == (used, (deployed + 15) // 16 * 16)


@pytest.mark.skipif(not profile.tflm_available(), reason="the arena is measured with tflite-micro")
def test_an_arena_too_small_for_the_model_fails_as_on_a_board(boards, port, gesture_model,
                                                              flash_dir):
    model = gesture_model["int8"]
    virtual_board.flash(model, {**gesture_model["meta"], "arena_bytes": 1024}, flash_dir)
    ser = port(boards())
    ser.write(b"HELLO\n")
    events = read_events(ser, lambda ev: of_type(ev, protocol.BoardError))
    error = of_type(events, protocol.BoardError)[0].text
    # The sketch's own line, after TFLM's (tests/test_board_bugs.py checks those)
    assert error == ("AllocateTensors() failed: raise kTensorArenaSize in model_settings.h (now "
                     "1024 bytes), or an op of the model is not registered")
    assert not of_type(read_events(ser, lambda ev: True, 0.5), protocol.Prediction)


# ---------------------------------------------------------------------------------------------
# The sine demo (sensor none)


@pytest.fixture()
def sine_deployed(sine_models, flash_dir, tmp_path) -> bytes:
    """The sine int8 model, deployed as `tinyml-edu deploy ... --port virtual` does it."""
    from tinyml_edu import deploy

    run = tmp_path / "runs" / "sine"
    run.mkdir(parents=True)
    (run / "model_int8.tflite").write_bytes(sine_models["int8"])
    (run / "report.json").write_text(json.dumps({
        "project": "sine", "task": "regression", "classes": [], "feature_params": {}}))
    result = deploy.build_sketch(run / "model_int8.tflite", "nano33ble_sense_rev2",
                                 tmp_path / "sketches")
    deploy.flash_virtual(result.sketch_dir, flash_dir)
    return sine_models["int8"]


def sketch_x(seqs) -> np.ndarray:
    """The x the sketch feeds for prediction seq k: 2*pi * (k mod 100) / 100, in float32."""
    steps = np.asarray(seqs, dtype=np.int64) % 100
    return np.float32(6.2831853) * steps.astype(np.float32) / np.float32(100)


def model_y(model: bytes, x: np.ndarray) -> np.ndarray:
    from tinyml_edu import quantize

    return quantize.predict(model, x.reshape(-1, 1)).reshape(-1)


def test_sine_demo_prints_the_models_sin_x_like_the_sketch(boards, port, sine_deployed):
    n, speed = 150, 10.0
    start = time.monotonic()
    ser = port(boards(speed=speed))  # sensor none, from the flashed deploy.json
    ser.write(b"HELLO\n")
    events = read_events(ser, lambda ev: len(of_type(ev, protocol.Prediction)) >= n)
    elapsed = time.monotonic() - start
    assert of_type(events, protocol.Header)[-1] == protocol.Header("virtual", "none", 0.0,
                                                                   ("x",), ("rad",))
    assert any("score = predicted sin(x)" in c.text for c in of_type(events, protocol.Comment))
    assert not of_type(events, protocol.Corrupted) and not of_type(events, protocol.BoardError)
    assert not of_type(events, protocol.ImuSample) and not of_type(events, protocol.AudioFrame)

    preds = of_type(events, protocol.Prediction)[:n]
    seqs = [p.seq for p in preds]
    assert seqs == list(range(seqs[0], seqs[0] + n))
    assert {p.label for p in preds} == {"y"} and all(p.ms >= 0 for p in preds)
    assert elapsed >= 0.7 * n * virtual_board.SINE_PERIOD_S / speed  # paced, 20 ms each

    # The int8 model's own output for the x of each seq (printed with 3 decimals) ...
    x, y = sketch_x(seqs), np.array([p.score for p in preds])
    np.testing.assert_allclose(y, model_y(sine_deployed, x), atol=6e-4, rtol=0)
    # ... which is sin(x) within the model's error, over more than a whole cycle.
    assert np.mean(np.abs(y - np.sin(x))) < 0.2
    assert y.max() > 0.7 and y.min() < -0.7


def test_sine_demo_streams_nothing_and_infer_off_on_keeps_its_place(boards, port,
                                                                     sine_deployed):
    ser = port(boards())
    ser.write(b"START\n")
    events = read_events(ser, lambda ev: any("no sensor to stream" in c.text
                                             for c in of_type(ev, protocol.Comment)))
    assert of_type(events, protocol.Header)[-1].sensor == "none"
    events += read_events(ser, lambda ev: len(of_type(ev, protocol.Prediction)) >= 20)
    assert not of_type(events, protocol.ImuSample) and not of_type(events, protocol.Corrupted)

    ser.write(b"INFER OFF\n")
    events += read_events(ser, lambda ev: protocol.Comment("inference off") in ev)
    last = of_type(events, protocol.Prediction)[-1].seq
    time.sleep(0.2)
    assert not of_type(read_events(ser, lambda ev: True, 0.2), protocol.Prediction)

    ser.write(b"INFER ON\n")
    events = read_events(ser, lambda ev: len(of_type(ev, protocol.Prediction)) >= 10)
    preds = of_type(events, protocol.Prediction)[:10]
    # Like the sketch's step counter, x goes on from where it stopped.
    assert [p.seq for p in preds] == list(range(last + 1, last + 11))
    np.testing.assert_allclose([p.score for p in preds],
                               model_y(sine_deployed, sketch_x([p.seq for p in preds])),
                               atol=6e-4, rtol=0)


def test_sine_demo_refuses_a_model_that_does_not_take_one_x(boards, port, conv_int8,
                                                            flash_dir):
    virtual_board.flash(conv_int8, {"project": "tabular"}, flash_dir)  # no features: none
    assert virtual_board.read_flash(flash_dir)[1]["sensor"] == "none"
    ser = port(boards())
    ser.write(b"INFER ON\n")
    events = read_events(ser, lambda ev: of_type(ev, protocol.BoardError))
    assert "sine demo" in of_type(events, protocol.BoardError)[0].text


# ---------------------------------------------------------------------------------------------
# Camera models: what the board says about a frame is what the host says about it


def _camera_pictures(folder, dataset: str, n: int, colour: bool):
    """``n`` test frames of ``dataset`` as the sketch's camera sees them: 160 x 120, the frame
    scaled into the centred square, a strip of noise on each side; grayscale or tinted RGB."""
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(len(dataset) + colour)
    for i, frame in enumerate(datasets.load(dataset).split("test")[0][:n, :, :, 0]):
        picture = rng.integers(0, 256, (120, 160)).astype(np.uint8)
        picture[:, 20:140] = np.asarray(Image.fromarray(frame).resize((120, 120),
                                                                     Image.Resampling.BICUBIC))
        if colour:
            picture = np.clip(picture[..., None] * np.array([1.0, 0.85, 0.6]) + 20, 0, 255)
        Image.fromarray(picture.astype(np.uint8)).save(folder / f"frame_{i:02d}.png")
    return folder


def _frames_and_their_lines(ser, n: int):
    """START, then the first ``n`` camera frames, each with the P line (and C line) the board
    sends right after it: the inference on that very frame."""
    ser.write(b"START\n")
    events = read_events(ser, lambda ev: sum(isinstance(e, protocol.CameraFrame) for e in ev)
                         > n, timeout=60)
    assert not of_type(events, protocol.Corrupted) and not of_type(events, protocol.BoardError)
    pairs = []
    for i, event in enumerate(events):
        if isinstance(event, protocol.CameraFrame) and len(pairs) < n:
            after = events[i + 1:i + 3]
            assert isinstance(after[0], protocol.Prediction), after
            where = after[1] if isinstance(after[1], protocol.Centroids) else None
            pairs.append((event, after[0], where))
    ser.write(b"STOP\n")
    return pairs


def _host_predictions(run, frames, folder, capsys):
    """The frames the board sent, saved as the capture saves them (PNG); then `tinyml-edu
    predict RUN PICTURES --json` (LiteRT) and `--runtime tflm` (the board's kernels)."""
    from PIL import Image

    from tinyml_edu import cli

    folder.mkdir()
    for k, frame in enumerate(frames):
        Image.fromarray(frame.image()).save(folder / f"frame_{k:02d}.png")
    answers = {}
    for runtime in ("litert", "tflm"):
        capsys.readouterr()
        assert cli.main(["predict", str(run), str(folder), "--json", "--runtime", runtime]) == 0
        answers[runtime] = json.loads(capsys.readouterr().out)
    return answers


def _same_as_printed(board: float, host: float) -> bool:
    """The P line's score is the host's, printed with 3 decimals (as the sketch prints it)."""
    return board == float(f"{host:.3f}")


@pytest.mark.skipif(not profile.tflm_available(), reason="the board runs TFLM (tflite-micro)")
def test_an_images_model_on_the_board_says_what_the_host_says(boards, port, camera_runs,
                                                              tmp_path, capsys):
    """`tinyml-edu deploy RUN --port virtual`, the board's camera showing 160 x 120 grayscale
    pictures: each P line (TFLM on the board's own model frame) is what `tinyml-edu predict`
    says about the frame the host received: the same label and score."""
    from tinyml_edu import cli

    run = camera_runs["images"]
    assert cli.main(["deploy", str(run), "--board", "nano33ble_sense_rev2", "--out",
                     str(tmp_path / "sketches"), "--port", "virtual"]) == 0
    source = _camera_pictures(tmp_path / "pictures", "images", 12, colour=False)
    ser = port(boards(source=source, speed=20))
    pairs = _frames_and_their_lines(ser, 12)
    frames = [frame for frame, _, _ in pairs]
    assert {(f.width, f.height, f.pixel_format) for f in frames} == {(160, 120, "grayscale8")}
    host = _host_predictions(run, frames, tmp_path / "received", capsys)
    board = [prediction for _, prediction, _ in pairs]
    for runtime in ("tflm", "litert"):  # the same int8 answers on both runtimes here
        assert [p.label for p in board] == [h["label"] for h in host[runtime]]
        np.testing.assert_allclose([p.score for p in board],
                                   [h["score"] for h in host[runtime]], atol=6e-4)
    assert len({p.label for p in board}) > 1  # the frames differ, and so do the answers
    assert all(where is None for _, _, where in pairs)  # a classifier says no "where"


@pytest.mark.skipif(not profile.tflm_available(), reason="the board runs TFLM (tflite-micro)")
def test_a_counting_model_on_the_board_counts_what_the_host_counts(boards, port, camera_runs,
                                                                   tmp_path, capsys):
    """cars on colour pictures (RGB565 frames): the count and the lowest probability of each
    P line, and the centres of its C line, are `tinyml-edu predict --runtime tflm`'s for the
    frame the board sent, to the last printed digit; LiteRT (predict's default) counts the same
    cars here, with probabilities a few 1/256 steps off: its int8 convolution rounds this
    hand-made network's 1 x 1 convolution one step differently from TFLM's in about half the
    cells (the projects' own networks: no difference found)."""
    from tinyml_edu import camera_input, cli, predict

    run = camera_runs["cars"]
    assert cli.main(["deploy", str(run), "--board", "nano33ble_sense_rev2", "--out",
                     str(tmp_path / "sketches"), "--port", "virtual"]) == 0
    source = _camera_pictures(tmp_path / "pictures", "cars", 10, colour=True)
    ser = port(boards(source=source, speed=20))
    ser.write(b"HELLO\n")
    said = read_events(ser, lambda ev: any("counts car" in c.text
                                           for c in of_type(ev, protocol.Comment)))
    assert any("model frame 96x96" in c.text for c in of_type(said, protocol.Comment))
    pairs = _frames_and_their_lines(ser, 10)
    frames = [frame for frame, _, _ in pairs]
    assert {(f.width, f.height, f.pixel_format) for f in frames} == {(160, 120, "rgb565")}
    host = _host_predictions(run, frames, tmp_path / "received", capsys)
    for (_, prediction, where), answer in zip(pairs, host["tflm"], strict=True):
        assert prediction.label == answer["label"].replace(" ", "_")  # "3 cars" -> 3_cars
        assert _same_as_printed(prediction.score, answer["score"])
        assert where is not None and where.seq == prediction.seq
        assert [list(point) for point in where.points] == answer["centroids"]
        assert prediction.label == f"{len(where.points)}_car" + "s" * (len(where.points) != 1)
    counts = [len(where.points) for _, _, where in pairs]
    assert len(set(counts)) > 2 and max(counts) > 2  # the frames differ, and so do the counts
    assert [p.label for _, p, _ in pairs] == [h["label"].replace(" ", "_")
                                             for h in host["litert"]]
    np.testing.assert_allclose([p.score for _, p, _ in pairs],
                               [h["score"] for h in host["litert"]], atol=6 / 256)
    # The board's model frame is the host's: the RGB565 pixels it sent, grayscale, cut, scaled.
    pictures = sorted((tmp_path / "received").glob("*.png"))
    np.testing.assert_array_equal(camera_input.model_frame(frames[0].image(), 96),
                                  predict.read_frame(pictures[0], 96)[..., 0])
