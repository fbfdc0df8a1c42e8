"""The shared FLAC writer of the audio generators (kws, wingbeats, elephant_rumbles)."""

import csv
import threading

import numpy as np
import soundfile

from tinyml_edu.generators.clips import write_flac_clips


def _tone(k: int) -> np.ndarray:
    t = np.arange(800) / 8000
    return (3000 * np.sin(2 * np.pi * (200 + 50 * k) * t)).astype(np.int16)


def test_rendered_in_threads_written_in_order(tmp_path):
    threads = set()

    def render(k: int):
        def make() -> np.ndarray:
            threads.add(threading.get_ident())
            return _tone(k)
        return make

    entries = [(f"clips/{'ab'[k % 2]}/c{k}.flac", render(k), [str(k)]) for k in range(12)]
    written = write_flac_clips(tmp_path, entries, ["k"], 8000, compression_level=1.0, workers=3)

    assert threading.get_ident() not in threads  # rendering ran in the worker threads
    with open(tmp_path / "index.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["file", "k"]
    assert rows[1:] == [[rel, k] for rel, _, (k,) in entries]  # plan order, not finish order
    assert written[-1] == tmp_path / "index.csv" and len(written) == 13
    for k in (0, 7):
        samples, rate = soundfile.read(tmp_path / entries[k][0], dtype="int16")
        assert rate == 8000 and np.array_equal(samples, _tone(k))  # lossless


def test_rewriting_removes_stale_clips_and_empty_folders(tmp_path):
    write_flac_clips(tmp_path, [("clips/old/a.flac", _tone(0), []),
                                ("clips/new/b.flac", _tone(1), [])], [], 8000)
    write_flac_clips(tmp_path, [("clips/new/b.flac", _tone(2), [])], [], 8000)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "clips", "clips/new", "clips/new/b.flac", "index.csv"]
    assert np.array_equal(soundfile.read(tmp_path / "clips/new/b.flac", dtype="int16")[0],
                          _tone(2))
