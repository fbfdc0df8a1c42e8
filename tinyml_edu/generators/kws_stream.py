"""A long recording for testing a keyword spotter that listens all the time.

It is built from the shipped ``kws`` data set, so nothing more ships and nothing is downloaded:
every word clip of the **test** split (voices that no model heard in training) is placed once on
a continuous background, with pauses between the clips. The words keep their own room and
noise. Under and between them runs the split's ``silence`` clips (fan, hum, traffic-like and
quiet rooms), one second after another, and from time to time a long pause of background
only, as in a classroom between two speakers. The keyword clips give the truth,
``label,start,end`` (seconds, the clip's bounds). The ``unknown`` clips and the pauses are where
false alarms happen.

The same seed gives the same samples on every computer (numpy only, in a fixed order);
``STREAM_SHA256`` is the digest of the default stream, which a test checks, so a figure
measured on it means the same stream everywhere.

    tinyml-edu data stream --out kws_stream.wav   # also writes kws_stream.csv, the truth
"""

from __future__ import annotations

import hashlib

import numpy as np

from tinyml_edu import datasets
from tinyml_edu.generators import kws
from tinyml_edu.listen import KeywordEvent, truth_csv

SEED = 20261203
GAP_S = (0.5, 3.0)  # silence between the end of one clip and the start of the next
LONG_PAUSE_EVERY = 40  # clips between two long pauses of background only
LONG_PAUSE_S = (15.0, 30.0)
BACKGROUND_GAIN_DB = (-12.0, 0.0)  # each second of background, re its recorded level
FADE_S = 0.01  # clips fade in and out over this, so their edges do not click
STREAM_SHA256 = "66745d3e58c83b2011eacc6f868a66faa6477cae2539cb99149eee2083a68786"


def _fade(n: int, sr: int) -> np.ndarray:
    ramp = np.ones(n)
    k = min(int(FADE_S * sr), n // 2)
    ramp[:k] = np.linspace(0.0, 1.0, k, endpoint=False)
    ramp[n - k:] = ramp[:k][::-1]
    return ramp


def _background(rng: np.random.Generator, noise: np.ndarray, n: int, sr: int) -> np.ndarray:
    """The split's silence clips (real noise recordings of the data set) one after another in a
    random order and level, cross-faded. Only element-wise arithmetic: an FFT's last bits may
    differ between numpy builds, and the stream's digest must not."""
    fade = int(FADE_S * sr)
    step = noise.shape[1] - fade
    ramp = _fade(noise.shape[1], sr)
    out = np.zeros(n + noise.shape[1])
    for start in range(0, n, step):
        gain = 10 ** (rng.uniform(*BACKGROUND_GAIN_DB) / 20)
        piece = noise[int(rng.integers(len(noise)))].astype(np.float64) / 32768.0
        out[start:start + len(piece)] += gain * piece * ramp
    return out[:n]


def build(seed: int = SEED, split: str = "test") -> tuple[np.ndarray, list[KeywordEvent]]:
    """The long stream (int16 mono at the data set's rate) and its keyword events."""
    ds = datasets.load("kws")
    clips, labels = ds.split(split)
    classes = ds.info.classes
    sr = int(ds.info.sample_rate or kws.SAMPLE_RATE)
    rng = np.random.default_rng(seed)
    silence = np.array([classes[y] == "silence" for y in labels])
    order = [int(i) for i in rng.permutation(len(clips)) if not silence[i]]

    starts, cursor = [], 0.0
    for k, _ in enumerate(order):
        if k and k % LONG_PAUSE_EVERY == 0:
            cursor += rng.uniform(*LONG_PAUSE_S)
        cursor += rng.uniform(*GAP_S)
        starts.append(int(round(cursor * sr)))
        cursor = starts[-1] / sr + clips.shape[1] / sr
    n = starts[-1] + clips.shape[1] + int(GAP_S[1] * sr) if starts else 0

    audio = _background(rng, clips[silence], n, sr)
    events = []
    ramp = _fade(clips.shape[1], sr)
    for i, start in zip(order, starts, strict=True):
        clip = clips[i].astype(np.float64) / 32768.0
        audio[start:start + len(clip)] += clip * ramp
        label = classes[labels[i]]
        if label not in ("silence", "unknown"):
            events.append(KeywordEvent(label, start / sr, (start + len(clip)) / sr))
    return kws.to_int16(audio), events


def digest(audio: np.ndarray, events: list[KeywordEvent]) -> str:
    """sha256 of the samples and the truth CSV: what ``STREAM_SHA256`` pins (and what a
    ``tinyml-edu data stream`` file and its .csv give when read back)."""
    h = hashlib.sha256(np.ascontiguousarray(audio, "<i2").tobytes())
    h.update(truth_csv(events).encode())
    return h.hexdigest()
