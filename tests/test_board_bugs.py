"""Board bugs of the virtual board (issue #20): each shows its symptom as the real firmware
would, on a real pseudo-terminal read with pyserial, and a board flashed without it does not."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import numpy as np
import pytest
import serial

from tinyml_edu import capture, datasets, deploy, profile, protocol, virtual_board
from tinyml_edu.virtual_board import BUGS, VirtualBoardError, bugs

pytestmark = pytest.mark.skipif(os.name == "nt", reason="the virtual board needs a pty")

WINDOW, STRIDE = 128, 64  # the gesture model's, in samples


@pytest.fixture(scope="module")
def wand() -> dict:
    """A small gesture model, trained well enough that a bug visibly changes its answers."""
    from tinyml_edu import models, quantize, train
    from tinyml_edu.projects import gestures

    ds = datasets.load("gestures")
    (x, y), (xv, yv) = ds.split("train"), ds.split("val")
    train.set_seed(0)
    model = models.cnn1d((128, 7), 4, filters=(8, 16), name="wand")
    train.fit(model, gestures.imu_features(x), y, gestures.imu_features(xv), yv,
              loss="sparse_categorical_crossentropy", epochs=12, batch_size=64,
              learning_rate=5e-3, progress=False)
    blob = quantize.convert(model, "int8", representative=gestures.imu_features(x))
    meta = {"project": "gestures", "labels": list(ds.info.classes),
            "feature_params": gestures.feature_params()}
    return {"int8": blob, "meta": meta, "labels": list(ds.info.classes)}


def boot_lines(board: virtual_board.VirtualBoard, predictions: int = 0,
               seconds: float = 3.0, command: bytes = b"") -> tuple[list[bytes], list]:
    """Press reset with the port open, as a serial monitor sees a board boot: the raw lines
    and the parsed events, until ``predictions`` P lines (or ``seconds``)."""
    with serial.Serial(board.port, 115200, timeout=0.05) as ser:
        board.reset()
        if command:
            ser.write(command + b"\n")
        data, deadline = b"", time.monotonic() + seconds
        while time.monotonic() < deadline:
            data += ser.read(max(1, ser.in_waiting))
            if predictions and data.count(b"\nP ") >= predictions:
                break
    events = list(protocol.StreamParser().feed(data))
    return data.splitlines(), events


def of_type(events, kind) -> list:
    return [e for e in events if isinstance(e, kind)]


def plain_text(events) -> list[str]:
    return [e.text for e in of_type(events, protocol.Corrupted) if e.reason == protocol.PLAIN_TEXT]


def host_labels(model: bytes, seqs, stream: np.ndarray, labels, zero_shift: int = 0) -> list:
    """The labels the model gives the windows of those predictions, on the computer."""
    from tinyml_edu import runtime
    from tinyml_edu.projects import gestures

    interp = runtime.load(model, "LiteRT")
    out = []
    for k in seqs:
        x = gestures.imu_features(stream[k * STRIDE:k * STRIDE + WINDOW][np.newaxis])
        inp = interp.input
        interp.set_input(runtime.quantize_input(x, inp.scale, inp.zero_point + zero_shift))
        interp.invoke()
        out.append(labels[int(np.argmax(interp.get_output()))])
    return out


def gesture_stream() -> np.ndarray:
    """What the board's sensor plays: the gestures test split end to end."""
    return datasets.load("gestures").split("test")[0].reshape(-1, 6)


def predictions_of(board, n: int = 24) -> list[protocol.Prediction]:
    return capture.predictions(board.port, n, timeout=20)


# ---------------------------------------------------------------------------------------------
# Flashing a bug


def test_an_unknown_bug_is_refused_with_the_known_ones(wand, flash_dir):
    with pytest.raises(VirtualBoardError) as err:
        virtual_board.flash(wand["int8"], wand["meta"], flash_dir, bug="arena_to_small")
    assert "arena_to_small" in str(err.value)
    assert all(name in str(err.value) for name in BUGS)
    assert virtual_board.read_flash(flash_dir) is None  # nothing half-flashed


def test_a_bug_the_model_cannot_have_is_refused(flash_dir, sine_models):
    from tinyml_edu import pretrained

    kws = (pretrained.run_dir("kws") / "model_int8.tflite").read_bytes()
    audio_meta = {"project": "kws", "labels": ["a"] * 12,
                  "feature_params": {"kind": "log_mel", "sample_rate": 16000}}
    with pytest.raises(VirtualBoardError, match="swapped_axes is a bug of an IMU sketch"):
        virtual_board.flash(kws, audio_meta, flash_dir, bug="swapped_axes")
    with pytest.raises(VirtualBoardError, match="sample_rate needs a sensor"):
        virtual_board.flash(sine_models["int8"], {"project": "sine"}, flash_dir,
                            bug="sample_rate")
    with pytest.raises(VirtualBoardError, match="takes float input"):
        virtual_board.flash(sine_models["float32"], {"project": "sine"}, flash_dir,
                            bug="wrong_input_scale")


def test_the_bug_is_in_the_flash_and_flashing_again_without_it_fixes_it(wand, flash_dir):
    virtual_board.flash(wand["int8"], wand["meta"], flash_dir, bug="missing_op")
    assert virtual_board.read_flash(flash_dir)[1]["bug"] == "missing_op"
    virtual_board.flash(wand["int8"], wand["meta"], flash_dir)
    assert "bug" not in virtual_board.read_flash(flash_dir)[1]


# ---------------------------------------------------------------------------------------------
# A healthy board


def test_a_healthy_board_boots_with_no_plain_text_and_predicts_like_the_host(
        boards, wand, flash_dir):
    virtual_board.flash(wand["int8"], wand["meta"], flash_dir)
    board = boards()
    _, events = boot_lines(board, predictions=12)
    assert not plain_text(events) and not of_type(events, protocol.BoardError)
    assert of_type(events, protocol.Header)[0].rate == 100
    preds = of_type(events, protocol.Prediction)[:12]
    assert len(preds) == 12
    assert [p.label for p in preds] == host_labels(wand["int8"], [p.seq for p in preds],
                                                  gesture_stream(), wand["labels"])


# ---------------------------------------------------------------------------------------------
# The bugs that stop the model loading


def test_missing_op_prints_tflms_own_lines_and_no_predictions(boards, wand, flash_dir):
    virtual_board.flash(wand["int8"], wand["meta"], flash_dir, bug="missing_op")
    op, version = bugs.dropped_op(wand["int8"])
    assert op == "CONV_2D"  # a Conv1D model: EXPAND_DIMS first, then the convolution
    board = boards()
    lines, events = boot_lines(board, seconds=1.0, command=b"INFER ON")
    # Word for word, with TFLM's "\n" and DebugLog's "\r\n" after each message.
    assert (f"Didn't find op for builtin opcode 'CONV_2D' version '{version}'. An older version "
            "of this builtin might be supported. Are you using an old TFLite binary with a "
            "newer model?").encode() in lines
    assert b"Failed to get registration from op code CONV_2D" in lines
    arena = (virtual_board.read_flash(flash_dir)[1]["arena_bytes"] + 15) // 16 * 16
    errors = [e.text for e in of_type(events, protocol.BoardError)]
    assert errors[0] == (f"AllocateTensors() failed: raise kTensorArenaSize in model_settings.h "
                         f"(now {arena} bytes), or an op of the model is not registered")
    assert not of_type(events, protocol.Prediction)
    assert "CONV_2D" in " ".join(capture.format_event(e) or "" for e in events)  # monitor shows it


@pytest.mark.skipif(not profile.tflm_available(), reason="TFLM's messages need tflite-micro")
def test_arena_too_small_prints_tflms_allocation_failure_and_no_predictions(
        boards, wand, flash_dir):
    virtual_board.flash(wand["int8"], wand["meta"], flash_dir, bug="arena_too_small")
    needed = profile.tflm_arena_bytes(wand["int8"])
    arena = bugs.too_small_arena(needed)
    assert arena % 16 == 0 and arena < needed
    _, events = boot_lines(boards(), seconds=1.0)
    said = plain_text(events)
    # The real lines of a TFLM allocation that runs out of arena, e.g. "Failed to resize buffer.
    # Requested: 3936, available 3064, missing: 872" (figures from TFLM itself).
    assert said and any(re.match(r"Failed to (resize buffer|allocate \w+\.? ?memory)", line)
                        for line in said), said
    assert f"(now {arena} bytes)" in of_type(events, protocol.BoardError)[0].text
    assert not of_type(events, protocol.Prediction)


@pytest.mark.skipif(not profile.tflm_available(), reason="TFLM's messages need tflite-micro")
def test_an_arena_too_small_in_deploy_json_fails_the_same_way(boards, wand, flash_dir):
    needed = profile.tflm_arena_bytes(wand["int8"])
    virtual_board.flash(wand["int8"], {**wand["meta"], "arena_bytes": needed - 16}, flash_dir)
    _, events = boot_lines(boards(), seconds=1.0)
    assert plain_text(events)
    assert f"(now {needed - 16} bytes)" in of_type(events, protocol.BoardError)[0].text
    virtual_board.flash(wand["int8"], {**wand["meta"], "arena_bytes": needed}, flash_dir)
    _, events = boot_lines(boards(), predictions=1)
    assert of_type(events, protocol.Prediction)  # the smallest arena that works: what TFLM uses


# ---------------------------------------------------------------------------------------------
# The bugs that let the model run, wrongly


def test_swapped_axes_swaps_x_and_y_in_the_data_and_the_model_input(boards, wand, flash_dir):
    virtual_board.flash(wand["int8"], wand["meta"], flash_dir, bug="swapped_axes")
    board = boards()
    stream = gesture_stream()
    swapped = stream[:, [1, 0, 2, 4, 3, 5]]
    preds = predictions_of(board)
    seqs = [p.seq for p in preds]
    board_labels = [p.label for p in preds]
    assert board_labels == host_labels(wand["int8"], seqs, swapped, wand["labels"])
    healthy = host_labels(wand["int8"], seqs, stream, wand["labels"])
    assert sum(b != h for b, h in zip(board_labels, healthy, strict=True)) >= 3
    assert len(set(board_labels)) > 1  # plausible: not stuck on one class
    # The D lines carry the swap too: the sketch reads its IMU that way.
    with serial.Serial(board.port, 115200, timeout=0.05) as ser:
        ser.write(b"INFER OFF\nSTART\n")
        parser, samples, deadline = protocol.StreamParser(), [], time.monotonic() + 10
        while len(samples) < 50 and time.monotonic() < deadline:
            samples += of_type(parser.feed(ser.read(max(1, ser.in_waiting))),
                               protocol.ImuSample)
    got = np.array([s.values for s in samples[:50]])
    # The sensor has played on since boot: find where these samples start.
    start = int(np.argmin(np.abs(swapped[:len(swapped) - 50] - got[0]).sum(axis=1)))
    np.testing.assert_allclose(got, swapped[start:start + 50], atol=5.1e-5, rtol=0)
    assert not np.allclose(got, stream[start:start + 50], atol=1e-3)


def test_wrong_input_scale_is_stuck_on_one_class(boards, wand, flash_dir):
    virtual_board.flash(wand["int8"], wand["meta"], flash_dir, bug="wrong_input_scale")
    preds = predictions_of(boards())
    assert len({p.label for p in preds}) == 1
    assert [p.label for p in preds] == host_labels(
        wand["int8"], [p.seq for p in preds], gesture_stream(), wand["labels"],
        zero_shift=bugs.UINT8_SHIFT)


def test_sample_rate_says_so_in_the_header_and_the_predictions_degrade(boards, wand, flash_dir):
    virtual_board.flash(wand["int8"], wand["meta"], flash_dir, bug="sample_rate")
    board = boards()
    _, events = boot_lines(board, predictions=24)
    assert of_type(events, protocol.Header)[0].rate == 50  # the model's is 100
    assert not of_type(events, protocol.BoardError)  # the sketch does not check the rate
    preds = of_type(events, protocol.Prediction)[:24]
    stream = gesture_stream()
    slow = stream[:len(stream) // 2 * 2].reshape(-1, 2, 6).mean(axis=1)
    seqs = [p.seq for p in preds]
    assert [p.label for p in preds] == host_labels(wand["int8"], seqs, slow, wand["labels"])
    healthy = host_labels(wand["int8"], seqs, stream, wand["labels"])
    assert sum(p.label != h for p, h in zip(preds, healthy, strict=True)) >= 3


# ---------------------------------------------------------------------------------------------
# The messages are the real ones


def joined_literals(c_source: str) -> str:
    """C source with adjacent string literals joined, as the compiler joins them."""
    return re.sub(r'"\s*\n\s*"', "", c_source)


def test_the_sketchs_message_is_the_templates():
    template = joined_literals((deploy.firmware_dir() / "inference_template" /
                                "inference_template.ino").read_text())
    before, after = bugs.ALLOCATE_FAILED.split("{arena}")
    assert f'.add("{before}")' in template and f'.add("{after}")' in template


# The compile-only kit of the Nano's core and libraries, as tests/test_firmware.py finds it.
KIT = Path(os.environ.get(deploy.KIT_ENV_VAR) or Path(__file__).resolve().parents[2] / "shared"
           / "third_party" / "arduino-nano33ble")


@pytest.mark.skipif(not (KIT / "libraries").is_dir(), reason="the Arduino kit is not here")
def test_tflms_messages_are_the_librarys():
    """The format strings, as they are in the TFLM library the Nano's sketch is compiled with."""
    src = KIT / "libraries" / "Chirale_TensorFlowLite" / "src" / "tensorflow" / "lite"
    resolver = (src / "core" / "api" / "op_resolver.cpp").read_text()
    interpreter = (src / "micro" / "micro_interpreter.cpp").read_text()
    log = (src / "micro" / "micro_log.cpp").read_text()
    assert (bugs.DIDNT_FIND_OP.format(op="%s", version="%d").replace("\n", "\\n")
            in joined_literals(resolver))
    assert bugs.NO_REGISTRATION.format(op="%s").replace("\n", "\\n") in interpreter
    assert 'DebugLog("\\r\\n");' in log


def test_deploy_flashes_a_bug_from_the_command_line(wand, flash_dir, tmp_path, monkeypatch,
                                                    capsys):
    """`tinyml-edu deploy MODEL --board virtual --bug B`: the drill without Python."""
    from tinyml_edu.cli import main

    monkeypatch.setenv("TINYML_EDU_VIRTUAL_FLASH", str(flash_dir))
    model = tmp_path / "model_int8.tflite"
    model.write_bytes(wand["int8"])
    deploy_args = ["deploy", str(model), "--board", "virtual", "--out", str(tmp_path / "s"),
                   "--labels", ",".join(wand["labels"])]
    assert main([*deploy_args, "--bug", "missing_op"]) == 0
    assert "with the bug 'missing_op'" in capsys.readouterr().out
    assert virtual_board.read_flash(flash_dir)[1]["bug"] == "missing_op"
    assert main(deploy_args) == 0  # deploying again without it fixes it
    assert "bug" not in virtual_board.read_flash(flash_dir)[1]
    assert main([*deploy_args, "--bug", "arena_to_small"]) == 2
    assert "arena_too_small" in capsys.readouterr().err
    assert main([*deploy_args[:3], "nano33ble_sense_rev2", *deploy_args[4:],
                 "--bug", "missing_op"]) == 2
    assert "--port virtual" in capsys.readouterr().err
