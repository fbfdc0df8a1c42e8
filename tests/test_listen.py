"""`tinyml-edu listen`: the posterior smoother, the board's inference schedule, hits and false
alarms, and the long test stream."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile

from tinyml_edu import cli, listen, quantize
from tinyml_edu.errors import InputError, MissingFileError
from tinyml_edu.listen import Detection, KeywordEvent, ListenParams, PosteriorSmoother

LABELS = ["silence", "unknown", "yes", "no"]


def one_hot(label: str, score: float = 0.9) -> np.ndarray:
    rest = (1.0 - score) / (len(LABELS) - 1)
    row = np.full(len(LABELS), rest, np.float32)
    row[LABELS.index(label)] = score
    return row


def feed(smoother: PosteriorSmoother, labels: list[str], hop_ms: int = 250,
         start_ms: int = 1000) -> list[Detection]:
    found = [smoother.update(start_ms + k * hop_ms, one_hot(label))
             for k, label in enumerate(labels)]
    return [d for d in found if d is not None]


def test_a_held_keyword_is_reported_once_when_the_window_holds_min_count():
    params = ListenParams(average_window_ms=1000, min_count=3, threshold=0.6)
    found = feed(PosteriorSmoother(LABELS, params), ["silence"] * 4 + ["yes"] * 8 + ["silence"] * 8)
    assert len(found) == 1
    # The window (1000 ms) averages 4 inferences; "yes" first leads the average on the third.
    assert found[0].label == "yes" and found[0].time == pytest.approx((1000 + 6 * 250) / 1000)
    assert found[0].score == pytest.approx(np.mean([0.9, 0.9, 0.9, 0.1 / 3]), rel=1e-6)


def test_suppression_delays_a_second_word_and_a_held_word_is_reported_once():
    words = ["yes"] * 4 + ["no"] * 4 + ["silence"] * 5 + ["no"] * 10
    params = ListenParams(average_window_ms=1000, threshold=0.6, suppression_ms=1500)
    found = feed(PosteriorSmoother(LABELS, params), words)
    assert [d.label for d in found] == ["yes", "no", "no"]
    assert found[1].time - found[0].time >= 1.5  # "no" waited out the suppression
    quick = feed(PosteriorSmoother(LABELS, replace(params, suppression_ms=0)), words)
    assert [d.label for d in quick] == ["yes", "no", "no"]
    assert quick[1].time < found[1].time  # without suppression it comes as soon as it leads


def test_silence_and_unknown_are_never_reported():
    assert feed(PosteriorSmoother(LABELS), ["unknown"] * 10 + ["silence"] * 10) == []


def test_threshold_and_min_count_gate_a_detection():
    weak = [one_hot("yes", 0.5)] * 8
    smoother = PosteriorSmoother(LABELS, ListenParams(threshold=0.6))
    assert all(smoother.update(1000 + k * 250, row) is None for k, row in enumerate(weak))
    smoother = PosteriorSmoother(LABELS, ListenParams(threshold=0.5))
    assert sum(smoother.update(1000 + k * 250, row) is not None for k, row in enumerate(weak)) == 1
    one = PosteriorSmoother(LABELS, ListenParams(min_count=1))
    assert one.update(1000, one_hot("no")).label == "no"  # at once, with min_count 1


def test_old_scores_leave_the_window():
    smoother = PosteriorSmoother(LABELS, ListenParams(average_window_ms=1000, min_count=1,
                                                      threshold=0.5))
    assert smoother.update(1000, one_hot("yes")) is not None
    # 1000 ms later the first score is out of the window (time > now - window), so a weak "no"
    # alone decides: with the old "yes" still in, the average would be under 0.5.
    assert smoother.update(2000 + 1500, one_hot("no", 0.55)).label == "no"


def test_times_must_increase():
    smoother = PosteriorSmoother(LABELS)
    smoother.update(1000, one_hot("yes"))
    with pytest.raises(InputError, match="not after"):
        smoother.update(1000, one_hot("yes"))


@pytest.mark.parametrize("kwargs, message", [
    ({"hop_ms": 5}, "10 to 1000"),
    ({"average_window_ms": 100}, "shorter than hop_ms"),
    ({"min_count": 4}, "at most 3 inferences"),
    ({"threshold": 1.5}, "between 0 and 1"),
    ({"hop_ms": 20, "average_window_ms": 1000, "min_count": 3}, "keeps at most 32"),
    ({"suppression_ms": 1.5}, "whole number"),
])
def test_bad_settings_say_what_to_use(kwargs, message):
    with pytest.raises(InputError, match=message):
        ListenParams(**kwargs)


def test_params_round_trip_and_reject_unknown_keys():
    params = ListenParams(threshold=0.7, hop_ms=200)
    assert ListenParams.from_dict(params.to_dict()) == params
    with pytest.raises(InputError, match="unknown listen setting"):
        ListenParams.from_dict({"treshold": 0.7})


def test_inference_ends_follow_the_board():
    # The ring is full after one clip; then one inference every hop, while samples last.
    assert listen.inference_ends(15999, 16000, 4000).tolist() == []
    assert listen.inference_ends(16000, 16000, 4000).tolist() == [16000]
    assert listen.inference_ends(27999, 16000, 4000).tolist() == [16000, 20000, 24000]


def test_hits_and_false_alarms():
    events = [KeywordEvent("yes", 1.0, 2.0), KeywordEvent("no", 5.0, 6.0),
              KeywordEvent("yes", 9.0, 10.0)]
    detections = [Detection(2.5, "yes", 0.9),   # hit: within late_s after the end
                  Detection(2.9, "yes", 0.9),   # the same word again: a false alarm
                  Detection(5.5, "yes", 0.9),   # wrong label: a false alarm, "no" missed
                  Detection(11.5, "yes", 0.9)]  # too late for the third word
    score = listen.score_detections(detections, events, duration_s=3600.0, late_s=1.0)
    assert (score.keywords, score.hits, score.false_alarms) == (3, 1, 3)
    assert score.hit_rate == pytest.approx(1 / 3)
    assert score.false_alarms_per_hour == pytest.approx(3.0)
    assert score.per_label["yes"] == {"keywords": 2, "hits": 1, "false_alarms": 3}
    assert score.per_label["no"] == {"keywords": 1, "hits": 0, "false_alarms": 0}


def test_truth_round_trips_and_a_bad_row_is_named(tmp_path):
    events = [KeywordEvent("yes", 1.0625, 2.0625), KeywordEvent("go", 3.5, 4.5)]
    path = tmp_path / "truth.csv"
    listen.write_truth(path, events)
    assert listen.read_truth(path) == events
    path.write_text("label,start,end\nyes,one,2\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 2"):
        listen.read_truth(path)
    with pytest.raises(MissingFileError):
        listen.read_truth(tmp_path / "none.csv")


# --------------------------------------------------------------------------------------------
# A run folder with a small int8 model in the kws shape (untrained: the plumbing, not accuracy;
# the trained model listens in test_project_kws' end-to-end test).


RUN_LABELS = ["silence", "yes", "no", "up"]  # mostly keywords: an untrained model hears some


@pytest.fixture(scope="module")
def kws_like_run(tmp_path_factory, conv_int8) -> Path:
    from tinyml_edu.projects import kws
    from tinyml_edu.run_report import INT8_MODEL_FILE, RunReport

    run = tmp_path_factory.mktemp("run")
    (run / INT8_MODEL_FILE).write_bytes(conv_int8)  # (49, 40) in, 4 classes out
    RunReport(project="kws", dataset="kws", task="classification", classes=RUN_LABELS,
              feature_params=kws.feature_params()).write(run)
    return run


def speech_like(seconds: float, seed: int = 0, rate: int = 16000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    bursts = (np.sin(2 * np.pi * 0.7 * t) > 0.3) * np.sin(2 * np.pi * 300 * t * (1 + 0.2 * t))
    return (3000 * bursts + 200 * rng.normal(size=t.size)).astype(np.int16)


def test_listen_json_matches_the_board_schedule_computed_by_hand(kws_like_run, tmp_path, capsys):
    from tinyml_edu.projects import kws

    audio = speech_like(6.3)
    wav = tmp_path / "talk.wav"
    soundfile.write(wav, audio, 16000)
    # Settings that let single inferences through: the board's schedule shows in the times.
    loose = ["--threshold", "0.01", "--min-count", "1", "--suppression-ms", "0",
             "--average-window-ms", "250"]
    assert cli.main(["listen", str(kws_like_run), str(wav), "--json", *loose]) == 0
    printed = json.loads(capsys.readouterr().out)

    ends = np.arange(16000, len(audio) + 1, 4000)
    windows = np.stack([audio[e - 16000:e] for e in ends])
    model = (kws_like_run / "model_int8.tflite").read_bytes()
    scores = quantize.predict(model, kws.model_inputs(windows, kws.feature_params()))
    params = ListenParams(threshold=0.01, min_count=1, suppression_ms=0, average_window_ms=250)
    expected = [d.to_dict() for d in listen.smooth(ends * 1000 // 16000, scores, RUN_LABELS,
                                                   params)]
    assert printed == expected
    assert 0 < len(printed) < len(ends)  # the untrained model hears a few keywords
    assert all(set(d) == {"time", "label", "score"} for d in printed)


def test_listen_resamples_and_a_too_short_recording_is_silent(kws_like_run, tmp_path):
    listener = listen.Listener.from_run(kws_like_run)
    audio = speech_like(3.0)
    at_48k = tmp_path / "phone.wav"
    soundfile.write(at_48k, np.repeat(audio, 3), 48000)  # the same sound at 48 kHz
    assert len(listener.read(at_48k)) == len(audio)
    short = tmp_path / "short.wav"
    soundfile.write(short, audio[:8000], 16000)
    assert listen.listen_file(kws_like_run, short) == []


def test_listen_errors_say_what_to_do(kws_like_run, tmp_path, capsys):
    assert cli.main(["listen", str(kws_like_run), str(tmp_path / "none.wav")]) == 2
    assert "not found" in capsys.readouterr().err
    (tmp_path / "imu.csv").write_text("ax\n1\n", encoding="utf-8")
    assert cli.main(["listen", str(kws_like_run), str(tmp_path / "imu.csv")]) == 2
    assert ".wav or .flac" in capsys.readouterr().err
    assert cli.main(["listen", str(tmp_path), str(tmp_path / "imu.csv")]) == 2
    assert "tinyml-edu run" in capsys.readouterr().err
    wav = tmp_path / "a.wav"
    soundfile.write(wav, speech_like(2.0), 16000)
    assert cli.main(["listen", str(kws_like_run), str(wav), "--threshold", "2"]) == 2
    assert "between 0 and 1" in capsys.readouterr().err


def test_the_test_stream_is_the_pinned_one_and_reads_back(tmp_path, capsys):
    from tinyml_edu.generators import kws_stream

    out = tmp_path / "stream.wav"
    assert cli.main(["data", "stream", "--out", str(out)]) == 0
    audio, rate = soundfile.read(out, dtype="int16")
    events = listen.read_truth(out.with_suffix(".csv"))
    assert rate == 16000 and len(events) == 350
    assert kws_stream.digest(audio, events) == kws_stream.STREAM_SHA256
    assert {e.label for e in events} == set(LABELS_ALL[2:])
    assert all(0 < e.start < e.end <= len(audio) / rate for e in events)
    starts = np.array([e.start for e in events])
    assert np.all(np.diff(starts) >= 1.0)  # words never overlap


LABELS_ALL = ["silence", "unknown", "yes", "no", "up", "down", "left", "right", "on", "off",
              "stop", "go"]


def test_the_pretrained_kws_run_is_the_shipped_data_sets_model():
    """The shipped model scores what its report says on the shipped test split, with the
    features of today's code: a change to either would make lesson 15 listen with a stale
    model."""
    from tinyml_edu import datasets, pretrained
    from tinyml_edu.projects import kws
    from tinyml_edu.run_report import RunReport

    report, model = RunReport.load_finished(pretrained.run_dir("kws"))
    clips, labels = datasets.load("kws").split("test")
    scores = quantize.predict(model.read_bytes(), kws.model_inputs(clips, report.params))
    accuracy = float(np.mean(scores.argmax(axis=1) == labels))
    assert accuracy == pytest.approx(report.metrics["int8_accuracy"], abs=0.005)
    assert report.labels == list(datasets.info("kws").classes)
    with pytest.raises(KeyError, match="shipped: cars, kws"):
        pretrained.run_dir("sine")


def test_listen_with_truth_scores_the_detections(kws_like_run, tmp_path, capsys):
    audio = speech_like(6.3)
    wav = tmp_path / "talk.wav"
    soundfile.write(wav, audio, 16000)
    loose = ["--threshold", "0.01", "--min-count", "1", "--suppression-ms", "0",
             "--average-window-ms", "250"]
    assert cli.main(["listen", str(kws_like_run), str(wav), "--json", *loose]) == 0
    detections = [Detection(**d) for d in json.loads(capsys.readouterr().out)]
    first = detections[0]
    truth = tmp_path / "truth.csv"
    listen.write_truth(truth, [KeywordEvent(first.label, first.time - 0.5, first.time - 0.2)])
    assert cli.main(["listen", str(kws_like_run), str(wav), "--json", "--truth", str(truth),
                     *loose]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["detections"] == [d.to_dict() for d in detections]
    assert printed["score"]["hits"] == 1 and printed["score"]["keywords"] == 1
    assert printed["score"]["false_alarms"] == len(detections) - 1
    assert printed["score"]["hours"] == pytest.approx(len(audio) / 16000 / 3600, abs=1e-4)


def test_the_help_names_the_real_defaults(capsys):
    with pytest.raises(SystemExit):
        cli.main(["listen", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    p = ListenParams()
    for option, value in (("--hop-ms", p.hop_ms), ("--average-window-ms", p.average_window_ms),
                          ("--min-count", p.min_count), ("--threshold", p.threshold),
                          ("--suppression-ms", p.suppression_ms)):
        assert f"{option} " in text and f"(default {value})" in text, option
