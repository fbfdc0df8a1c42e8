"""`tinyml-edu listen RUN --port virtual`: the virtual board listens as the sketch does (its K
lines) and hears on a recording exactly what the host's `tinyml-edu listen` hears on it.

The host's listen runs the model with LiteRT, the virtual board (like the real one) with TFLM
where tflite-micro installs, and the two int8 softmax kernels can differ by one step (1/256) now
and then. So the CLI test puts the virtual board on LiteRT, as on a computer without
tflite-micro, and must then match `Listener.listen` exactly; the protocol test keeps TFLM and
compares the K lines with the host's smoother on TFLM's scores.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile

from tinyml_edu import cli, datasets, deploy, listen, protocol, virtual_board
from tinyml_edu.listen import ListenParams

pytestmark = pytest.mark.skipif(os.name == "nt", reason="the virtual board needs a pty")

LABELS = ["silence", "yes", "no", "up"]
# Not the defaults: a 200 ms hop and a short window, so a random model's scores make several
# detections, with averaging, re-arming and suppression all at work.
PARAMS = ListenParams(hop_ms=200, average_window_ms=600, min_count=2, threshold=0.45,
                      suppression_ms=400)
SPEED = 20.0


@pytest.fixture(scope="module")
def ear_run(tmp_path_factory) -> Path:
    """A kws-shaped run folder with an untrained model whose scores swing with the sound: one
    dense layer of large random weights on the 49x40 features (int8)."""
    import keras

    from tinyml_edu import quantize, train
    from tinyml_edu.projects import kws
    from tinyml_edu.run_report import INT8_MODEL_FILE, RunReport

    train.set_seed(0)
    inputs = keras.Input((49, 40))
    outputs = keras.layers.Dense(len(LABELS), activation="softmax",
                                 kernel_initializer=keras.initializers.RandomNormal(stddev=0.05))(
        keras.layers.Flatten()(inputs))
    clips = datasets.load("kws").split("test")[0]
    representative = kws.model_inputs(clips[:48], kws.feature_params())
    run = tmp_path_factory.mktemp("ear_run")
    (run / INT8_MODEL_FILE).write_bytes(
        quantize.convert(keras.Model(inputs, outputs), "int8", representative=representative))
    RunReport(project="kws", dataset="kws", task="classification", classes=LABELS,
              feature_params=kws.feature_params()).write(run)
    return run


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """Ten spoken words of the kws test split back to back, plus 0.3 s: 10.3 s at 16 kHz."""
    clips = datasets.load("kws").split("test")[0]
    rng = np.random.default_rng(1)
    audio = np.concatenate([clips[rng.choice(len(clips), 10, replace=False)].reshape(-1),
                            clips[0][:4800]])
    path = tmp_path_factory.mktemp("talk") / "talk.wav"
    soundfile.write(path, audio, 16000)
    return path, audio


@pytest.fixture()
def deployed(ear_run, flash_dir, tmp_path) -> Path:
    """The run deployed for the Nano with PARAMS, then onto the virtual board."""
    result = deploy.build_sketch(ear_run / "model_int8.tflite", "nano33ble_sense_rev2",
                                 tmp_path / "sketches", listen_params=PARAMS)
    deploy.flash_virtual(result.sketch_dir, flash_dir)
    return result.sketch_dir


def test_the_virtual_board_hears_on_a_recording_what_the_host_hears(deployed, ear_run,
                                                                    recording, capsys,
                                                                    monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tflite_micro", None)  # the board on LiteRT, as the host
    settings = (deployed / "model_settings.h").read_text()
    assert "#define LISTEN_HOP_MS 200\n" in settings
    assert "#define LISTEN_THRESHOLD 0.45\n" in settings
    assert "kListenIsKeyword[kCategoryCount] = {0, 1, 1, 1};" in settings
    meta = json.loads((deployed / "deploy.json").read_text())
    assert meta["listen"] == PARAMS.to_dict() and meta["stride"] == 3200  # 200 ms at 16 kHz
    path, audio = recording

    assert cli.main(["listen", str(ear_run), "--port", "virtual", "--source", str(path),
                     "--speed", str(SPEED), "--json"]) == 0
    heard = json.loads(capsys.readouterr().out)

    host = listen.Listener.from_run(ear_run).listen(audio, PARAMS)
    expected = [d.to_dict() for d in host]
    assert heard == expected
    assert len(expected) >= 4  # several words, some kept apart only by the smoother's rules
    # ... and without the smoother's rules there would be more.
    times, scores = listen.Listener.from_run(ear_run).scores(audio, PARAMS.hop_ms)
    raw = [t for t, row in zip(times, scores, strict=True) if row.argmax() > 0]
    assert len(raw) > 2 * len(expected)
    assert heard[-1]["time"] <= len(audio) / 16000


def test_k_lines_follow_p_lines_at_the_inferences_sample_count(deployed, boards, recording,
                                                                ear_run, flash_dir):
    """On the line: every K line comes right after the P line of the inference that decided,
    its time is that inference's sample count, K seq counts from 0, and the K lines are the
    host's smoother on the scores of the board's runtime (TFLM where it installs)."""
    import serial

    from tinyml_edu import runtime
    from tinyml_edu.projects import kws

    path, audio = recording
    # The hop of the listen settings wins over a stride in deploy.json, as LISTEN_HOP_MS over
    # the sketch's default quarter second.
    model, meta = virtual_board.read_flash(flash_dir)
    virtual_board.flash(model, {**meta, "stride": 4000}, flash_dir)
    board = boards(source=path, speed=SPEED)
    assert board.stream_description.startswith("talk.wav, once")
    with serial.Serial(board.port, 115200, timeout=0.05) as ser:
        board.reset()
        parser, events = protocol.StreamParser(), []
        quiet = 0
        while quiet < 5:
            over = board.source_ended
            data = ser.read(max(1, ser.in_waiting))
            events += parser.feed(data)
            quiet = quiet + 1 if over and not data else 0
    kinds = [type(e).__name__ for e in events if not isinstance(e, protocol.Comment)]
    assert "Corrupted" not in kinds and kinds[0] == "Header"
    preds = [e for e in events if isinstance(e, protocol.Prediction)]
    # One inference per hop once the first second is in, up to the end of the recording.
    ends = listen.inference_ends(len(audio), 16000, 3200)
    assert [p.seq for p in preds] == list(range(len(ends)))
    keywords = [e for e in events if isinstance(e, protocol.KeywordDetection)]
    assert [k.seq for k in keywords] == list(range(len(keywords))) and keywords
    for k in keywords:
        before = events[events.index(k) - 1]
        assert isinstance(before, protocol.Prediction)
        assert k.time_ms == ends[before.seq] * 1000 // 16000
    assert any("end of talk.wav" in e.text for e in events if isinstance(e, protocol.Comment))

    listener = listen.Listener.from_run(ear_run)
    windows = np.stack([audio[e - 16000:e] for e in ends])
    interp = runtime.load(listener.model, runtime.board_backend())
    scores = runtime.predict(interp, kws.model_inputs(windows, kws.feature_params()))
    expected = listen.smooth(ends * 1000 // 16000, scores, LABELS, PARAMS)
    assert [(k.time_ms / 1000, k.label, k.score) for k in keywords] == [
        (d.time, d.label, round(d.score, 4)) for d in expected]


def test_listening_to_a_board_says_what_is_missing(ear_run, flash_dir, recording, tmp_path,
                                                  capsys, deployed):
    path, _ = recording

    def fails(*args: str) -> str:
        assert cli.main(["listen", str(ear_run), *args]) == 2
        return capsys.readouterr().err

    assert "give --seconds" in fails("--port", "/dev/ttyACM9")
    assert "--port virtual" in fails("--port", "/dev/ttyACM9", "--seconds", "1", "--speed", "2")
    assert "leave out recording" in fails(str(path), "--port", "virtual")
    assert "leave out threshold" in fails("--port", "virtual", "--threshold", "0.3")
    assert "--port" in fails("--source", str(path))
    assert "give --seconds" in fails("--port", "virtual")  # the looping data set never ends
    fast = tmp_path / "fast.wav"
    soundfile.write(fast, np.zeros(48000, np.int16), 48000)
    assert "resample" in fails("--port", "virtual", "--source", str(fast))
    virtual_board.erase(flash_dir)
    assert "deploy the run first" in fails("--port", "virtual", "--source", str(path))
