"""The shared FLAC writer of the audio generators (kws, wingbeats, elephant_rumbles)."""

import csv
import io
import threading
import zipfile

import numpy as np
import soundfile

from tinyml_edu import datasets
from tinyml_edu.generators.clips import write_flac_clips


def _tone(k: int) -> np.ndarray:
    t = np.arange(800) / 8000
    return (3000 * np.sin(2 * np.pi * (200 + 50 * k) * t)).astype(np.int16)


def test_rendered_in_threads_written_in_order_into_one_archive(tmp_path):
    threads = set()

    def render(k: int):
        def make() -> np.ndarray:
            threads.add(threading.get_ident())
            return _tone(k)
        return make

    entries = [(f"clips/{'ab'[k % 2]}/c{k}.flac", render(k), [str(k)]) for k in range(12)]
    written = write_flac_clips(tmp_path, entries, ["k"], 8000, compression_level=1.0, workers=3)

    assert threading.get_ident() not in threads  # rendering ran in the worker threads
    assert written == [tmp_path / "clips.zip", tmp_path / "index.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clips.zip", "index.csv"]
    with open(tmp_path / "index.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["file", "k"]
    assert rows[1:] == [[rel, k] for rel, _, (k,) in entries]  # plan order, not finish order
    with zipfile.ZipFile(tmp_path / "clips.zip") as zf:
        assert zf.namelist() == [rel for rel, _, _ in entries]
        assert {m.compress_type for m in zf.infolist()} == {zipfile.ZIP_STORED}
        for k in (0, 7):
            samples, rate = soundfile.read(io.BytesIO(zf.read(entries[k][0])), dtype="int16")
            assert rate == 8000 and np.array_equal(samples, _tone(k))  # lossless


def test_archive_is_byte_reproducible(tmp_path):
    entries = [(f"clips/c{k}.flac", _tone(k), []) for k in range(3)]
    a = write_flac_clips(tmp_path / "a", entries, [], 8000)
    b = write_flac_clips(tmp_path / "b", entries, [], 8000, workers=2)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]


def test_rewriting_removes_loose_clips_of_the_old_layout_only(tmp_path):
    old = tmp_path / "clips" / "train" / "yes"
    old.mkdir(parents=True)
    (old / "a.flac").write_bytes(b"old clip")
    (tmp_path / "clips" / "notes.txt").write_text("mine")
    write_flac_clips(tmp_path, [("clips/new/b.flac", _tone(2), [])], [], 8000)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "clips", "clips.zip", "clips/notes.txt", "index.csv"]
    with zipfile.ZipFile(tmp_path / "clips.zip") as zf:
        assert zf.namelist() == ["clips/new/b.flac"]


def test_loader_reads_the_archive_or_an_unpacked_copy(tmp_path):
    entries = [(f"clips/c{k}.flac", _tone(k), ["yes" if k % 2 else "no", split, str(k)])
               for k, split in enumerate(["train", "val", "test", "train"])]
    packed = tmp_path / "packed"
    write_flac_clips(packed, entries, ["label", "split", "group"], 8000)
    from_archive = datasets.read_clip_index(packed / "index.csv", ("no", "yes"))
    assert np.array_equal(from_archive["x_train"], np.stack([_tone(0), _tone(3)]))
    assert from_archive["y_train"].tolist() == [0, 1]
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(packed / "clips.zip") as zf:
        zf.extractall(unpacked)
    (unpacked / "index.csv").write_bytes((packed / "index.csv").read_bytes())
    from_files = datasets.read_clip_index(unpacked / "index.csv", ("no", "yes"))
    assert datasets.arrays_digest(from_files) == datasets.arrays_digest(from_archive)
