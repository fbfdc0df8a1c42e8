"""`tinyml-edu listen`: a keyword spotter that listens all the time, as the board does.

On the board (``firmware/inference_template``, sensor ``audio``) the microphone fills a ring
with the last second of sound. Every ``hop_ms`` the sketch computes that second's features,
runs the int8 model and gives the scores to a *posterior smoother*. The smoother decides when
a keyword was heard. This module does the same steps on a recording of any length, so a
student can tune the smoother on a laptop and get the same detections on the board.

The posterior smoother follows the idea of TFLM micro_speech's command recognizer. A single
inference is noisy: one second of a fan can look like "go" for 250 ms. So the smoother

1. keeps the score vectors of the last ``average_window_ms`` (those with time > now - window),
2. averages them, class by class (oldest first, in double precision, so the C copy in
   ``tinyml_edu_listen.c`` gives the same bits),
3. waits until it holds at least ``min_count`` of them,
4. takes the top class of the average (the first one on a tie). When that class is a keyword
   (not ``silence`` or ``unknown``), its average is at least ``threshold`` and the last
   detection is at least ``suppression_ms`` ago, it reports a detection,
5. but only once per word: after a detection the smoother is *disarmed* until the average
   drops below the threshold, or its top becomes a non-keyword or another keyword. A word
   stays in the one-second window for more than a second, and without this it would be
   reported twice.

Times are integer milliseconds from the start of the recording (``sample * 1000 // rate``), on
the host and on the board alike. The first inference ends at one clip (1 s), as on the board,
whose ring is full only then.

How good is a setting? Play a long recording with keywords at known times
(``tinyml-edu data stream``), count **hits** (a keyword detected with its own label between
its start and ``late_s`` after its end) and **false alarms** (any other detection). Report
them per hour, as the field does.
"""

from __future__ import annotations

import csv
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from tinyml_edu import datasets, quantize
from tinyml_edu.errors import InputError, MissingFileError
from tinyml_edu.projects import get_project
from tinyml_edu.run_report import RunReport

# Class names that are never reported as keywords.
NOT_KEYWORDS = frozenset({"silence", "unknown", "_silence_", "_unknown_", "background", "noise"})
# The most score vectors the smoother keeps; the sketch keeps as many (TME_LISTEN_MAX_HISTORY).
MAX_HISTORY = 32


@dataclass(frozen=True)
class ListenParams:
    """How the board listens: how often it runs the model and how it smooths the scores."""

    # Defaults: the best trade-off on the test stream for the shipped kws model (a sweep with
    # `python benchmarks/bench_listen.py --sweep`): a longer window or a higher threshold
    # trades hits for fewer false alarms.
    hop_ms: int = 250  # run the model every hop (the sketch's default: a quarter second)
    average_window_ms: int = 750  # average the scores of the inferences in this window
    min_count: int = 3  # no decision before the window holds this many inferences
    threshold: float = 0.5  # lowest averaged score of a detection
    suppression_ms: int = 1000  # after a detection, stay quiet this long

    def __post_init__(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise InputError(message)

        for name in ("hop_ms", "average_window_ms", "suppression_ms", "min_count"):
            value = getattr(self, name)
            need(isinstance(value, int | np.integer) and not isinstance(value, bool),
                 f"{name} must be a whole number, got {value!r}")
        need(10 <= self.hop_ms <= 1000,
             f"hop_ms={self.hop_ms}: use 10 to 1000 ms (the board needs time for each inference)")
        need(self.average_window_ms >= self.hop_ms,
             f"average_window_ms={self.average_window_ms} is shorter than hop_ms={self.hop_ms}: "
             "the window would never hold more than one inference; make it at least one hop")
        most = self.average_window_ms // self.hop_ms
        need(1 <= self.min_count <= min(most, MAX_HISTORY),
             f"min_count={self.min_count}: a {self.average_window_ms} ms window holds at most "
             f"{most} inferences at hop_ms={self.hop_ms}; use 1 to {min(most, MAX_HISTORY)}")
        need(most <= MAX_HISTORY,
             f"a {self.average_window_ms} ms window at hop_ms={self.hop_ms} holds {most} "
             f"inferences; the board keeps at most {MAX_HISTORY}: widen the hop or shorten it")
        need(0.0 < float(self.threshold) <= 1.0,
             f"threshold={self.threshold!r}: use a score between 0 and 1 (e.g. 0.6)")
        need(self.suppression_ms >= 0, f"suppression_ms={self.suppression_ms} must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ListenParams:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError(f"unknown listen setting(s) {unknown}; known: {sorted(known)}")
        return cls(**d)


@dataclass(frozen=True)
class Detection:
    time: float  # seconds from the start of the recording to the inference that decided
    label: str
    score: float  # the averaged score of the label

    def to_dict(self) -> dict[str, Any]:
        return {"time": round(self.time, 3), "label": self.label, "score": round(self.score, 4)}


def keyword_mask(labels: Sequence[str]) -> np.ndarray:
    """True for each class that is a keyword (not silence, unknown or background)."""
    return np.array([label.lower() not in NOT_KEYWORDS for label in labels], dtype=bool)


class PosteriorSmoother:
    """Turns a stream of score vectors into detections (see the module's docstring).

    ``update(time_ms, scores)`` is called once per inference, with strictly increasing times.
    """

    def __init__(self, labels: Sequence[str], params: ListenParams = ListenParams()) -> None:
        if not labels:
            raise InputError("the smoother needs the model's class names")
        self.labels = list(labels)
        self.is_keyword = keyword_mask(self.labels)
        if not self.is_keyword.any():
            raise InputError(f"none of the classes {self.labels} is a keyword")
        self.params = params
        self.reset()

    def reset(self) -> None:
        self._history: deque[tuple[int, np.ndarray]] = deque()
        self._last_detection_ms: int | None = None
        self._last_label: int | None = None  # of the last detection
        self._armed = True
        self._last_time_ms: int | None = None

    def update(self, time_ms: int, scores: np.ndarray) -> Detection | None:
        p = self.params
        time_ms = int(time_ms)
        if self._last_time_ms is not None and time_ms <= self._last_time_ms:
            raise InputError(f"time {time_ms} ms is not after the previous {self._last_time_ms} ms")
        self._last_time_ms = time_ms
        scores = np.asarray(scores, np.float32).reshape(-1)
        if scores.size != len(self.labels):
            raise InputError(f"{scores.size} scores for {len(self.labels)} classes")
        self._history.append((time_ms, scores))
        while self._history and (self._history[0][0] <= time_ms - p.average_window_ms
                                 or len(self._history) > MAX_HISTORY):
            self._history.popleft()
        if len(self._history) < p.min_count:
            return None
        total = np.zeros(len(self.labels), np.float64)
        for _, row in self._history:  # oldest first, one addition at a time, as the C copy
            total += row
        average = total / len(self._history)
        top = int(np.argmax(average))
        if not self.is_keyword[top] or average[top] < p.threshold:
            self._armed = True  # the word is over
            return None
        if top != self._last_label:
            self._armed = True  # another keyword leads
        if not self._armed or (self._last_detection_ms is not None
                               and time_ms - self._last_detection_ms < p.suppression_ms):
            return None
        self._armed = False
        self._last_detection_ms, self._last_label = time_ms, top
        return Detection(time_ms / 1000.0, self.labels[top], float(average[top]))


def smooth(times_ms: Iterable[int], scores: np.ndarray, labels: Sequence[str],
           params: ListenParams = ListenParams()) -> list[Detection]:
    """Every detection a fresh smoother makes on a whole sequence of score vectors."""
    smoother = PosteriorSmoother(labels, params)
    found = (smoother.update(t, row) for t, row in zip(times_ms, scores, strict=True))
    return [d for d in found if d is not None]


# --------------------------------------------------------------------------------------------
# The board's loop on a recording


def inference_ends(n_samples: int, clip_samples: int, hop_samples: int) -> np.ndarray:
    """The sample at which each inference happens: one clip in, then every hop."""
    if n_samples < clip_samples:
        return np.zeros(0, np.int64)
    return np.arange(clip_samples, n_samples + 1, hop_samples, dtype=np.int64)


WINDOWS_PER_CHUNK = 256  # one-second windows featurised at a time (bounds memory)


def stream_scores(model: bytes, audio: np.ndarray, rate: int,
                  model_inputs: Callable[[np.ndarray], np.ndarray], clip_samples: int,
                  hop_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """(times in ms, float scores per inference) of an int8 model listening to ``audio``.

    ``model_inputs`` turns raw one-second windows (n, clip_samples) into model inputs (the
    project's feature function with the run's parameters)."""
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise InputError(f"expected mono audio (n_samples,), got shape {audio.shape}")
    hop = rate * hop_ms // 1000
    ends = inference_ends(len(audio), clip_samples, hop)
    if not len(ends):  # shorter than one clip: the board's ring never fills
        return ends, np.zeros((0, 0), np.float32)
    windows = np.lib.stride_tricks.sliding_window_view(audio, clip_samples)
    outputs = []
    for start in range(0, len(ends), WINDOWS_PER_CHUNK):
        chunk = ends[start:start + WINDOWS_PER_CHUNK] - clip_samples
        outputs.append(quantize.predict(model, model_inputs(np.ascontiguousarray(windows[chunk]))))
    return ends * 1000 // rate, np.concatenate(outputs)


@dataclass(frozen=True)
class Listener:
    """A finished run's int8 keyword model, ready to listen to recordings."""

    model: bytes
    labels: list[str]
    rate: int
    clip_samples: int
    model_inputs: Callable[[np.ndarray], np.ndarray]

    @classmethod
    def from_run(cls, run_dir: Path | str) -> Listener:
        report, model_path = RunReport.load_finished(run_dir)
        project = get_project(report.project or "")
        if project.sensor != "audio" or project.features is None:
            raise InputError(f"listen needs an audio classification run; {run_dir} is project "
                             f"{report.project!r} ({project.sensor} sensor)")
        keyword_mask(report.labels)  # fails early on a run without class names
        info = datasets.info(project.dataset)
        params = report.params
        return cls(model_path.read_bytes(), report.labels, int(info.sample_rate or 16000),
                   int(info.input_shape[0]), lambda x: project.features(x, params))

    def scores(self, audio: np.ndarray, hop_ms: int) -> tuple[np.ndarray, np.ndarray]:
        return stream_scores(self.model, audio, self.rate, self.model_inputs,
                             self.clip_samples, hop_ms)

    def listen(self, audio: np.ndarray, params: ListenParams = ListenParams()) -> list[Detection]:
        times, scores = self.scores(audio, params.hop_ms)
        return smooth(times, scores, self.labels, params)

    def read(self, path: Path | str) -> np.ndarray:
        """A recording at the model's rate (resampled when it is not), as int16 mono."""
        from tinyml_edu.predict import RATE_TOLERANCE, resample

        path = Path(path)
        if not path.is_file():
            raise MissingFileError(f"{path} not found; give a WAV or FLAC recording")
        if path.suffix.lower() not in (".wav", ".flac"):
            raise InputError(f"{path}: listen reads .wav or .flac recordings")
        audio, rate = datasets.read_recording(path)
        if rate and abs(rate - self.rate) > RATE_TOLERANCE * self.rate:
            audio = resample(audio, rate, self.rate)
        return audio


def listen_file(run_dir: Path | str, recording: Path | str,
                params: ListenParams = ListenParams()) -> list[Detection]:
    """The detections of a run's int8 model listening to one recording, as the board would."""
    listener = Listener.from_run(run_dir)
    return listener.listen(listener.read(recording), params)


# --------------------------------------------------------------------------------------------
# Hits and false alarms


@dataclass(frozen=True)
class KeywordEvent:
    label: str
    start: float  # seconds
    end: float


TRUTH_COLUMNS = ("label", "start", "end")


def read_truth(path: Path | str) -> list[KeywordEvent]:
    """Keyword times of a recording: a CSV with a header row ``label,start,end`` (seconds)."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path} not found; expected a CSV with columns label,start,end")
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    events = []
    for i, row in enumerate(rows, start=2):
        try:
            events.append(KeywordEvent(row["label"], float(row["start"]), float(row["end"])))
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(f"{path} line {i}: expected label,start,end with times in seconds "
                             f"({err!r})") from err
    return events


def truth_csv(events: Iterable[KeywordEvent]) -> str:
    """The truth as ``read_truth`` reads it: a header row, then ``label,start,end``."""
    rows = [",".join(TRUTH_COLUMNS)] + [f"{e.label},{e.start:.6f},{e.end:.6f}" for e in events]
    return "\n".join(rows) + "\n"


def write_truth(path: Path | str, events: Iterable[KeywordEvent]) -> None:
    Path(path).write_text(truth_csv(events), encoding="utf-8")


@dataclass(frozen=True)
class StreamScore:
    keywords: int  # keyword events in the recording
    hits: int
    false_alarms: int
    hours: float
    per_label: dict[str, dict[str, int]] = field(default_factory=dict)  # keywords, hits, f.a.

    @property
    def hit_rate(self) -> float:
        return self.hits / self.keywords if self.keywords else 0.0

    @property
    def false_alarms_per_hour(self) -> float:
        return self.false_alarms / self.hours if self.hours else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"keywords": self.keywords, "hits": self.hits, "hit_rate": round(self.hit_rate, 4),
                "false_alarms": self.false_alarms,
                "false_alarms_per_hour": round(self.false_alarms_per_hour, 2),
                "hours": round(self.hours, 4), "per_label": self.per_label}


LATE_S = 1.0  # a detection up to this long after the word's end still counts as a hit


def score_detections(detections: Sequence[Detection], events: Sequence[KeywordEvent],
                     duration_s: float, late_s: float = LATE_S) -> StreamScore:
    """Hits and false alarms: a detection is a hit when a not-yet-found keyword of its label
    lies between ``start`` and ``end + late_s`` of it; every other detection is a false alarm
    (a wrong label, a second report of one word, a word that was not a keyword)."""
    if duration_s <= 0:
        raise InputError("the recording's duration must be positive")
    found = [False] * len(events)
    per_label: dict[str, dict[str, int]] = {}
    for e in events:
        per_label.setdefault(e.label, {"keywords": 0, "hits": 0, "false_alarms": 0})
        per_label[e.label]["keywords"] += 1
    hits = false_alarms = 0
    for d in sorted(detections, key=lambda d: d.time):
        match = next((i for i, e in enumerate(events) if not found[i] and e.label == d.label
                      and e.start <= d.time <= e.end + late_s), None)
        counts = per_label.setdefault(d.label, {"keywords": 0, "hits": 0, "false_alarms": 0})
        if match is None:
            false_alarms += 1
            counts["false_alarms"] += 1
        else:
            found[match] = True
            hits += 1
            counts["hits"] += 1
    return StreamScore(len(events), hits, false_alarms, duration_s / 3600.0,
                       dict(sorted(per_label.items())))
