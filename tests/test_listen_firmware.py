"""The board's posterior smoother (firmware/.../tinyml_edu_listen.c) against the host's
(tinyml_edu.listen.PosteriorSmoother), and the K line the board prints for a detection.

The C file is compiled with the host's gcc into a shared library and driven through ctypes with
the same score sequences as the Python smoother: random ones (several seeds and settings, with
scores of very different sizes so that the order of the additions shows in the bits) and tricky
ones (ties, an average exactly at the threshold, scores exactly at the window's edge, the
suppression's edge, more scores in the window than the board keeps, NaN). Every detection must
agree in time, class and the averaged score's exact bits.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tinyml_edu import listen, protocol
from tinyml_edu.listen import ListenParams, PosteriorSmoother

SRC = (Path(__file__).resolve().parent.parent / "firmware" / "libraries" / "tinyml_edu_protocol"
       / "src")
GCC = shutil.which("gcc")
MAX_CLASSES = 32  # TME_LISTEN_MAX_CLASSES


class _Params(ctypes.Structure):  # tme_listen_params_t
    _fields_ = [("average_window_ms", ctypes.c_uint32), ("min_count", ctypes.c_uint32),
                ("threshold", ctypes.c_double), ("suppression_ms", ctypes.c_uint32)]


@pytest.fixture(scope="module")
def clib(tmp_path_factory) -> ctypes.CDLL:
    if GCC is None:
        pytest.skip("gcc is not installed")
    out = tmp_path_factory.mktemp("listen_c") / "libtme_listen.so"
    subprocess.run([GCC, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
                    str(SRC / "tinyml_edu_listen.c"), str(SRC / "tinyml_edu_protocol.c"),
                    "-o", str(out)], check=True, capture_output=True)
    lib = ctypes.CDLL(str(out))
    lib.tme_smoother_init.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Params),
                                      ctypes.POINTER(ctypes.c_uint8), ctypes.c_uint32]
    lib.tme_smoother_update.argtypes = [ctypes.c_void_p, ctypes.c_uint32,
                                        ctypes.POINTER(ctypes.c_float),
                                        ctypes.POINTER(ctypes.c_double)]
    lib.tme_smoother_reset.argtypes = [ctypes.c_void_p]
    lib.tme_format_keyword.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint32,
                                       ctypes.c_char_p, ctypes.c_double, ctypes.c_uint32]
    lib.tme_format_keyword.restype = ctypes.c_size_t
    return lib


class CSmoother:
    """The C smoother, one instance in a buffer larger than tme_smoother_t."""

    def __init__(self, lib: ctypes.CDLL, labels: list[str], params: ListenParams) -> None:
        self.lib = lib
        self.state = ctypes.create_string_buffer(1 << 16)
        c_params = _Params(params.average_window_ms, params.min_count, float(params.threshold),
                           params.suppression_ms)
        mask = (ctypes.c_uint8 * len(labels))(*listen.keyword_mask(labels).astype(np.uint8))
        self.status = lib.tme_smoother_init(self.state, ctypes.byref(c_params), mask, len(labels))
        self.n = len(labels)

    def update(self, time_ms: int, scores: np.ndarray) -> tuple[int, float] | None:
        row = np.ascontiguousarray(scores, np.float32)
        assert row.size == self.n
        average = ctypes.c_double(-1.0)
        top = self.lib.tme_smoother_update(self.state, time_ms,
                                           row.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
                                           ctypes.byref(average))
        return None if top < 0 else (top, average.value)


def _bits(x: float) -> int:
    return int(np.float64(x).view(np.uint64))


def both(clib, labels, params, times, scores) -> tuple[list, list]:
    """(Python's, C's) detections as (time_ms, class, bits of the average)."""
    py, c = PosteriorSmoother(labels, params), CSmoother(clib, labels, params)
    assert c.status == 0
    got_py, got_c = [], []
    for t, row in zip(times, scores, strict=True):
        d = py.update(int(t), row)
        if d is not None:
            got_py.append((int(t), labels.index(d.label), _bits(d.score)))
        r = c.update(int(t), row)
        if r is not None:
            got_c.append((int(t), r[0], _bits(r[1])))
    return got_py, got_c


LABELS = ["silence", "unknown", "yes", "no", "up", "down"]


def _random_scores(rng: np.random.Generator, n: int, classes: int) -> np.ndarray:
    """Softmax-like rows in runs (a "word" holds a class for a while), with some scores tiny,
    of any size down to 2**-60 (next to 0.9 that needs more than a double's 53 bits, so the
    order of the additions decides the last bits), and some exactly equal."""
    rows = np.empty((n, classes), np.float32)
    k = 0
    while k < n:
        length = int(rng.integers(1, 9))
        lead = int(rng.integers(0, classes))
        for _ in range(min(length, n - k)):
            row = rng.dirichlet(np.full(classes, 0.3))
            row[lead] += rng.uniform(0.0, 3.0)
            row /= row.sum()
            tiny = rng.random(classes) < 0.3
            row[tiny] = (rng.uniform(1.0, 2.0, int(tiny.sum()))
                         * 2.0 ** -rng.integers(20, 60, int(tiny.sum())))
            if rng.random() < 0.1:  # int8-like quantized scores: exact ties happen
                row = np.round(row * 256) / 256
            rows[k] = row
            k += 1
    return rows


def _random_times(rng: np.random.Generator, n: int, hop: int, start: int = 1000) -> np.ndarray:
    """Mostly every hop, sometimes a late or early inference or a long gap."""
    steps = np.full(n, hop, np.int64)
    jitter = rng.random(n)
    steps[jitter < 0.15] = rng.integers(1, hop + 1, int((jitter < 0.15).sum()))
    steps[jitter > 0.95] = rng.integers(hop, 8 * hop, int((jitter > 0.95).sum()))
    return start + np.cumsum(steps) - steps[0]


PARAMS = [
    ListenParams(),
    ListenParams(hop_ms=250, average_window_ms=1000, min_count=3, threshold=0.6,
                 suppression_ms=1500),
    ListenParams(hop_ms=100, average_window_ms=500, min_count=1, threshold=0.3, suppression_ms=0),
    ListenParams(hop_ms=20, average_window_ms=640, min_count=5, threshold=0.25,
                 suppression_ms=250),
    ListenParams(hop_ms=250, average_window_ms=250, min_count=1, threshold=0.45,
                 suppression_ms=1000),
]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("params", PARAMS, ids=lambda p: f"w{p.average_window_ms}m{p.min_count}")
def test_random_sequences_give_identical_detections(clib, seed, params):
    rng = np.random.default_rng(seed)
    n = 600
    times = _random_times(rng, n, params.hop_ms)
    scores = _random_scores(rng, n, len(LABELS))
    py, c = both(clib, LABELS, params, times, scores)
    assert len(py) >= 5  # the sequences do make the smoother decide
    assert c == py


def test_the_order_of_the_additions_shows_in_the_bits():
    """The random sequences can tell the sequential oldest-first sum from another order."""
    rng = np.random.default_rng(0)
    rows = _random_scores(rng, 400, len(LABELS)).astype(np.float64)
    differ = 0
    for k in range(3, len(rows)):
        forward, backward = np.zeros(len(LABELS)), np.zeros(len(LABELS))
        for row in rows[k - 3:k + 1]:
            forward += row
        for row in rows[k - 3:k + 1][::-1]:
            backward += row
        differ += int(np.sum(forward != backward))
    assert differ > 50  # of 2382 averages


def _held(label: str, score: float, labels=LABELS) -> np.ndarray:
    rest = (1.0 - score) / (len(labels) - 1)
    row = np.full(len(labels), rest, np.float32)
    row[labels.index(label)] = score
    return row


def _check(clib, params, times, rows, labels=LABELS) -> list:
    py, c = both(clib, labels, params, times, np.asarray(rows, np.float32))
    assert c == py
    return py


def test_ties_go_to_the_first_class(clib):
    params = ListenParams(min_count=1, average_window_ms=250, threshold=0.3, suppression_ms=0)
    yes_no = np.array([0.0, 0.1, 0.45, 0.45, 0.0, 0.0], np.float32)  # keywords tie: "yes"
    unknown_yes = np.array([0.0, 0.45, 0.45, 0.1, 0.0, 0.0], np.float32)  # "unknown" first
    no_up = np.array([0.0, 0.0, 0.1, 0.45, 0.45, 0.0], np.float32)  # "no"
    found = _check(clib, params, [1000, 1250, 1500, 1750, 2000],
                   [yes_no, unknown_yes, yes_no, yes_no, no_up])
    assert [(t, k) for t, k, _ in found] == [(1000, 2), (1500, 2), (2000, 3)]


def test_an_average_exactly_at_the_threshold_is_a_detection(clib):
    at = ListenParams(min_count=2, average_window_ms=500, threshold=0.5, suppression_ms=0)
    rows = [_held("up", 0.25), _held("up", 0.75)]  # (0.25 + 0.75) / 2 == 0.5 exactly
    assert [k for _, k, _ in _check(clib, at, [1000, 1250], rows)] == [4]
    above = ListenParams(min_count=2, average_window_ms=500, threshold=0.5000001,
                         suppression_ms=0)
    assert _check(clib, above, [1000, 1250], rows) == []


def test_a_score_exactly_one_window_old_is_out(clib):
    params = ListenParams(hop_ms=250, average_window_ms=500, min_count=1, threshold=0.6,
                          suppression_ms=0)
    no, yes = _held("no", 1.0), _held("yes", 0.7)
    # At 1500 the "no" of 1000 is exactly one window old: out, and "yes" alone is heard; at
    # 1499 it is still in, and the average of both is "no" at 0.53, under the threshold.
    out = _check(clib, params, [1000, 1500], [no, yes])
    assert out == [(1000, 3, _bits(1.0)), (1500, 2, _bits(np.float32(0.7)))]
    still_in = _check(clib, params, [1000, 1499], [no, yes])
    assert [(t, k) for t, k, _ in still_in] == [(1000, 3)]


def test_suppression_ends_exactly_after_suppression_ms(clib):
    params = ListenParams(hop_ms=250, average_window_ms=250, min_count=1, threshold=0.5,
                          suppression_ms=1000)
    yes, no = _held("yes", 0.9), _held("no", 0.9)
    found = _check(clib, params, [1000, 1999, 2000], [yes, no, no])
    assert [(t, k) for t, k, _ in found] == [(1000, 2), (2000, 3)]


def test_rearming_after_the_word_and_for_another_keyword(clib):
    params = ListenParams(hop_ms=250, average_window_ms=250, min_count=1, threshold=0.5,
                          suppression_ms=0)
    words = ["yes", "yes", "silence", "yes", "no", "yes", "yes"]
    rows = [_held(w, 0.9) for w in words]
    rows.insert(3, _held("yes", 0.4))  # below the threshold: re-arms too
    found = _check(clib, params, 1000 + 250 * np.arange(len(rows)), rows)
    assert [k for _, k, _ in found] == [2, 2, 3, 2]


def test_more_scores_in_the_window_than_the_board_keeps(clib):
    """hop_ms 10, a 320 ms window, but inferences 1 ms apart: the oldest go beyond 32."""
    params = ListenParams(hop_ms=10, average_window_ms=320, min_count=32, threshold=0.5,
                          suppression_ms=0)
    rows = [_held("silence", 1.0)] * 8 + [_held("down", 0.6)] * 40
    found = _check(clib, params, 1000 + np.arange(len(rows)), rows)
    # Only the last 32 count: from the 35th inference on (5 silences, 27 "down" at 0.6) the
    # average of "down" is 0.506; with all 35 it would be 0.463.
    assert found[0][:2] == (1034, 5)


def test_nan_scores_are_treated_as_numpy_treats_them(clib):
    params = ListenParams(hop_ms=250, average_window_ms=250, min_count=1, threshold=0.5,
                          suppression_ms=0)
    row = _held("no", 0.9)
    row[4] = np.nan  # argmax stops at the first NaN: "up", never below the threshold
    found = _check(clib, params, [1000], [row])
    py = PosteriorSmoother(LABELS, params).update(1000, row)
    assert py is not None and py.label == "up"
    assert [k for _, k, _ in found] == [4]
    first = row.copy()
    first[0] = np.nan  # the first NaN is "silence": nothing
    assert _check(clib, params, [1000], [first]) == []


def test_a_restart_after_time_went_back_and_bad_settings(clib):
    params = ListenParams(min_count=1, average_window_ms=250, threshold=0.5, suppression_ms=5000)
    c = CSmoother(clib, LABELS, params)
    assert c.update(1000, _held("yes", 0.9)) is not None
    assert c.update(1250, _held("yes", 0.9)) is None  # suppressed
    assert c.update(500, _held("yes", 0.9)) is not None  # the clock wrapped: a fresh start
    assert CSmoother(clib, ["silence", "unknown"], params).status == -2  # no keyword
    assert CSmoother(clib, ["x"] * 33, params).status == -1  # too many classes
    bad = CSmoother(clib, LABELS, params)
    bad_params = _Params(250, 0, 0.5, 0)
    mask = (ctypes.c_uint8 * len(LABELS))(0, 0, 1, 1, 1, 1)
    assert clib.tme_smoother_init(bad.state, ctypes.byref(bad_params), mask, len(LABELS)) == -3
    assert bad.update(1000, _held("yes", 1.0)) is None  # a failed init never detects


KEYWORD_LINES = [(0, "yes", 0.81234, 1250), (65537, "no", 0.00005, 4294967295),
                 (3, "on off", 0.99995, 0), (4, "", 1.0, 61750), (5, "up", 0.123450001, 7)]


def test_k_lines_are_byte_identical_to_python_and_parse_back(clib):
    line = ctypes.create_string_buffer(512)
    stream = b""
    for seq, label, score, time_ms in KEYWORD_LINES:
        n = clib.tme_format_keyword(line, 512, seq, label.encode(), score, time_ms)
        made = line.raw[:n]
        expected_label = label.replace(" ", "_") or "?"
        assert made == protocol.encode_keyword(seq, expected_label, score, time_ms)
        stream += made
    events = list(protocol.StreamParser().feed(stream))
    assert events == [protocol.KeywordDetection(seq % 65536, label.replace(" ", "_") or "?",
                                                float(f"{score:.4f}"), time_ms)
                      for seq, label, score, time_ms in KEYWORD_LINES]
    assert events[0] == protocol.KeywordDetection(0, "yes", 0.8123, 1250)
    assert clib.tme_format_keyword(line, 10, 0, b"yes", 0.5, 1000) == 0  # does not fit


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                    reason="arm-none-eabi-gcc is not installed")
def test_the_smoother_builds_for_the_cortex_m4f_without_the_c_library(tmp_path):
    obj = tmp_path / "listen.o"
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=softfp",
                    "-mfpu=fpv4-sp-d16", "-Os", "-ffreestanding", "-std=c99", "-Wall", "-Wextra",
                    "-Werror", "-c", str(SRC / "tinyml_edu_listen.c"), "-o", str(obj)],
                   check=True, capture_output=True)
    nm = shutil.which("arm-none-eabi-nm")
    if nm is None:
        pytest.skip("arm-none-eabi-nm is not installed")
    undefined = subprocess.run([nm, "-u", str(obj)], capture_output=True, text=True,
                               check=True).stdout.split()
    assert [s for s in undefined if s != "U" and not s.startswith("__aeabi")] == []
