"""Tests for the keyword-spotting generator (tinyml_edu.generators.kws) and the shipped clips.

Generation tests need espeak-ng, flite and sox and are skipped without them; the checks of the
shipped ``datasets/kws`` (index.csv and clips.zip) and the pure signal-processing tests need
neither.
"""

from __future__ import annotations

import csv
import io
import shutil
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tinyml_edu.generators import kws

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "datasets" / "kws"
SCALE = 0.02

needs_tools = pytest.mark.skipif(
    bool(kws.missing_tools()),
    reason=f"needs {', '.join(kws.missing_tools())} to generate clips "
    "(Debian/Ubuntu: apt-get install espeak-ng flite sox)",
)


def read_index(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def clip_bytes(folder: Path) -> dict[str, bytes]:
    """Every FLAC clip of a generated ``clips.zip``, by member name."""
    with zipfile.ZipFile(folder / "clips.zip") as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def frame_db(x: np.ndarray) -> np.ndarray:
    """Level of each 20 ms frame in dB relative to full scale (int16)."""
    frames = x.astype(np.float64)[: len(x) // 320 * 320].reshape(-1, 320) / 32768.0
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)


def check_disjoint(rows: list[dict[str, str]]) -> None:
    groups = {s: {r["group"] for r in rows if r["split"] == s} for s in kws.SPLITS}
    speakers = {s: {kws.speaker_of(g) for g in groups[s]} for s in kws.SPLITS}
    for a, b in [("train", "val"), ("train", "test"), ("val", "test")]:
        assert not groups[a] & groups[b], f"voices shared by {a} and {b}"
        assert not speakers[a] & speakers[b], f"speakers shared by {a} and {b}"


# ---------------------------------------------------------------------------------------------
# No synthesiser needed


def test_missing_tools_error_names_the_install_command(monkeypatch):
    monkeypatch.setattr(kws.shutil, "which", lambda name: None)
    with pytest.raises(kws.ToolsMissing, match="apt-get install espeak-ng flite sox"):
        kws.check_tools()


def test_trim_keeps_a_quiet_final_fricative():
    sr = 16000
    rng = np.random.default_rng(0)
    vowel = 0.5 * np.sin(2 * np.pi * 150 * np.arange(int(0.2 * sr)) / sr)
    fricative = 0.01 * rng.normal(size=int(0.15 * sr))  # ~ -37 dB below the vowel, like /f/
    x = np.concatenate([np.zeros(sr // 4), vowel, fricative, np.zeros(sr // 4)])
    y = kws.trim(x, sr)
    kept = len(vowel) + len(fricative)
    assert kept <= len(y) <= kept + int(2 * kws.TRIM_PAD_S * sr) + sr // 100


def test_trim_removes_a_recorded_noise_floor():
    sr = 16000
    rng = np.random.default_rng(3)
    floor = 10 ** (-50 / 20) * 0.5 * rng.normal(size=sr)  # like flite's natural voices
    word = np.zeros(sr)
    word[sr // 2 : sr // 2 + 4000] = 0.5 * np.sin(2 * np.pi * 200 * np.arange(4000) / sr)
    y = kws.trim(word + floor, sr)
    assert len(y) < 4000 + int(2 * kws.TRIM_PAD_S * sr) + 2 * sr // 100


def test_fade_starts_and_ends_near_zero():
    y = kws.fade(np.ones(1600), 16000)
    assert y[0] < 0.01 and y[-1] < 0.01 and y[800] == 1.0


@pytest.mark.parametrize("kind", ["white", "pink", "brown", "hum", "fan"])
def test_noise_has_unit_rms(kind):
    y = kws.noise(kind, np.random.default_rng(1))
    assert y.shape == (kws.CLIP_SAMPLES,)
    assert np.sqrt(np.mean(y**2)) == pytest.approx(1.0, rel=0.05)


def test_room_impulse_has_the_requested_direct_to_reverberant_ratio():
    h = kws.room_impulse(np.random.default_rng(2), rt60=0.4, drr_db=6.0)
    assert h[0] == 1.0
    assert 10 * np.log10(1.0 / np.sum(h[1:] ** 2)) == pytest.approx(6.0, abs=1e-6)


def test_plan_is_deterministic_balanced_and_voice_disjoint():
    a, b = kws.plan(seed=5, scale=0.1), kws.plan(seed=5, scale=0.1)
    assert a == b
    assert kws.plan(seed=6, scale=0.1) != a
    counts = Counter((c.split, c.label) for c in a)
    for split in kws.SPLITS:
        assert len({counts[(split, label)] for label in kws.CLASSES}) == 1
    rows = [{"split": c.split, "group": c.voice.id if c.voice else f"noise_{c.split}_x"}
            for c in a]
    check_disjoint(rows)
    full = kws.plan()
    for split in kws.SPLITS:  # "unknown" draws on many words, not a few
        words = {c.text for c in full if c.split == split and c.label == "unknown"}
        assert len(words) >= 25


def test_enlarging_the_training_split_leaves_val_and_test_alone(monkeypatch):
    def held_out() -> list[tuple[str, str, dict]]:
        return [(c.file, c.text, c.params) for c in kws.plan(scale=0.1) if c.split != "train"]

    before = held_out()
    monkeypatch.setitem(kws.CLIPS_PER_CLASS, "train", 2 * kws.CLIPS_PER_CLASS["train"])
    assert held_out() == before


def test_training_flite_voices_span_a_grid_and_held_out_ones_keep_five_variants():
    train = {v.variant for v in kws.split_voices("train") if v.name == "slt"}
    assert len(train) == len(kws.FLITE_TRAIN_F0) * len(kws.FLITE_TRAIN_TRACT)
    assert kws.flite_factors("f085t106") == (0.85, 1.06)
    rms = {kws.flite_factors(v.variant) for v in kws.split_voices("train") if v.name == "rms"}
    assert {f0 for f0, _ in rms} == {1.0}  # rms ignores the f0 setting: tract only
    test = {v.variant for v in kws.split_voices("test") if v.engine == "flite"}
    assert test == set(kws.FLITE_VARIANTS)
    assert {kws.flite_factors(v) for v in test} == set(kws.FLITE_VARIANTS.values())


def test_every_accent_is_in_every_split_and_other_languages_only_in_train(monkeypatch):
    monkeypatch.setattr(kws, "TRAIN_LANGUAGES", kws.MORE_ACCENTS)
    for split in kws.SPLITS:
        accents = {v.name for v in kws.split_voices(split) if v.engine == "espeak"}
        extra = set(kws.TRAIN_LANGUAGES) if split == "train" else set()
        assert accents == set(kws.ACCENTS) | extra


def test_training_only_settings_leave_val_and_test_alone(monkeypatch):
    def clips(keep) -> list[tuple[str, str, dict]]:
        return [(c.file, c.text, c.params) for c in kws.plan(scale=0.2) if keep(c.split)]

    held_out, train = clips(lambda s: s != "train"), clips(lambda s: s == "train")
    monkeypatch.setattr(kws, "TRAIN_LANGUAGES", kws.MORE_ACCENTS)
    monkeypatch.setattr(kws, "TRAIN_UNKNOWN_WORDS", kws.MORE_UNKNOWN_WORDS)
    monkeypatch.setattr(kws, "TRAIN_FLITE_SHARE", 0.5)
    assert clips(lambda s: s != "train") == held_out
    assert clips(lambda s: s == "train") != train


def test_training_words_can_be_read_in_other_languages_and_unknown_words_be_many(monkeypatch):
    monkeypatch.setattr(kws, "TRAIN_LANGUAGES", kws.MORE_ACCENTS)
    monkeypatch.setattr(kws, "TRAIN_UNKNOWN_WORDS", kws.MORE_UNKNOWN_WORDS)
    clips = [c for c in kws.plan() if c.split == "train" and c.voice is not None]
    espeak = [c for c in clips if c.voice.engine == "espeak"]
    foreign = [c for c in espeak if c.voice.name in kws.TRAIN_LANGUAGES]
    assert abs(len(foreign) / len(espeak) - kws.LANGUAGE_SHARE) < 0.05
    assert len({c.voice.name for c in foreign}) == len(kws.TRAIN_LANGUAGES)
    flite = [c for c in clips if c.voice.engine == "flite"]
    assert abs(len(flite) / len(clips) - kws.TRAIN_FLITE_SHARE) < 0.05
    words = {c.text for c in clips if c.label == "unknown"}
    assert words & set(kws.TRAIN_UNKNOWN_WORDS) and words & set(kws.UNKNOWN_WORDS)
    assert not set(kws.TRAIN_UNKNOWN_WORDS) & (set(kws.KEYWORDS) | set(kws.UNKNOWN_WORDS))
    # The Festival voices of the unseen-engine benchmark read English with these rules.
    assert not set(kws.TRAIN_LANGUAGES) & {"it", "cs", "sk", "ru", "fi", "ca"}


def test_the_shipped_settings_have_no_other_languages():
    # The shipped clips were made without them (see DATASHEET.md); regenerating must agree.
    assert kws.TRAIN_LANGUAGES == () and kws.TRAIN_UNKNOWN_WORDS == ()
    assert kws.TRAIN_FLITE_SHARE == kws.FLITE_SHARE


# ---------------------------------------------------------------------------------------------
# The shipped clips (never skipped when they exist)


@pytest.mark.skipif(not (SHIPPED / "index.csv").exists(), reason="datasets/kws not generated")
def test_shipped_index_is_voice_disjoint_and_balanced():
    rows = read_index(SHIPPED / "index.csv")
    check_disjoint(rows)
    counts = Counter((r["split"], r["label"]) for r in rows)
    for split in kws.SPLITS:
        per_class = [counts[(split, label)] for label in kws.CLASSES]
        assert min(per_class) > 0 and max(per_class) <= 1.1 * min(per_class), (split, per_class)
    assert len({r["file"] for r in rows}) == len(rows)
    with zipfile.ZipFile(SHIPPED / "clips.zip") as zf:
        assert zf.namelist() == [r["file"] for r in rows]  # one clip per row, in index order
    assert (SHIPPED / "clips.zip").stat().st_size <= 35e6


# ---------------------------------------------------------------------------------------------
# A tiny regeneration (needs espeak-ng, flite and sox)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, list[Path]]:
    folder = tmp_path_factory.mktemp("kws")
    return folder, kws.write_files(folder, scale=SCALE)


@needs_tools
def test_tiny_index_covers_every_class_in_every_split(tiny):
    folder, written = tiny
    rows = read_index(folder / "index.csv")
    assert written == [folder / "clips.zip", folder / "index.csv"]
    with zipfile.ZipFile(folder / "clips.zip") as zf:
        assert zf.namelist() == [r["file"] for r in rows]
    for split in kws.SPLITS:
        assert {r["label"] for r in rows if r["split"] == split} == set(kws.CLASSES)
    check_disjoint(rows)


@needs_tools
def test_tiny_clips_are_one_second_16khz_int16_without_clipping(tiny):
    import soundfile

    folder, _ = tiny
    archive = clip_bytes(folder)
    for r in read_index(folder / "index.csv"):
        info = soundfile.info(io.BytesIO(archive[r["file"]]))
        assert (info.samplerate, info.channels, info.frames) == (16000, 1, 16000)
        assert info.format == "FLAC" and info.subtype == "PCM_16"
        x, _ = soundfile.read(io.BytesIO(archive[r["file"]]), dtype="int16")
        assert np.mean(np.abs(x.astype(np.int32)) >= 32767) < 1e-3


@needs_tools
def test_tiny_word_clips_hold_a_word_and_silence_clips_do_not(tiny):
    import soundfile

    folder, _ = tiny
    contrast = {"word": [], "silence": []}
    archive = clip_bytes(folder)
    for r in read_index(folder / "index.csv"):
        x, _ = soundfile.read(io.BytesIO(archive[r["file"]]), dtype="int16")
        level = frame_db(x)
        kind = "silence" if r["label"] == "silence" else "word"
        if kind == "word":
            assert level.max() > -70, f"{r['file']} is (nearly) silent"
        contrast[kind].append(level.max() - np.median(level))
    # A word stands out of its background (0 dB SNR clips less so); noise alone is steady.
    assert min(contrast["word"]) > 2 and np.median(contrast["word"]) > 10
    assert max(contrast["silence"]) < 10


@needs_tools
@pytest.mark.parametrize("accent", kws.ACCENTS + kws.MORE_ACCENTS)
def test_espeak_ng_applies_the_variant_in_every_accent(accent):
    # espeak-ng 1.51 ignores "en-gb+<variant>": every en-gb "speaker" came out as one voice.
    said = [kws.synthesize(kws.Voice("espeak", accent, variant, variant, g), "water", 160, 50, 1)[0]
            for variant, g in (("f3", "female"), ("m3", "male"))]
    assert len(said[0]) != len(said[1]) or not np.allclose(said[0], said[1])


@needs_tools
def test_render_is_deterministic():
    clips = [c for c in kws.plan(scale=SCALE) if c.label in ("off", "silence")][:3]
    bank = kws._babble_bank(kws.DEFAULT_SEED, "train", 4)
    for clip in clips:
        assert np.array_equal(kws.render(clip, bank), kws.render(clip, bank))


@needs_tools
def test_rewriting_removes_stale_clips(tmp_path):
    kws.write_files(tmp_path, seed=1, scale=SCALE)
    written = kws.write_files(tmp_path, seed=2, scale=SCALE)
    on_disk = set((tmp_path / "clips").rglob("*.flac"))
    assert on_disk == {p for p in written if p.suffix == ".flac"}


@needs_tools
def test_round_trip_through_the_registry(tmp_path):
    from tinyml_edu import datasets

    info = datasets.generate("kws", scale=SCALE, root=tmp_path)
    assert info.classes == kws.CLASSES and info.input_shape == (16000,)
    ds = datasets.load("kws", root=tmp_path)
    for split in kws.SPLITS:
        x, y = ds.split(split)
        assert x.dtype == np.int16 and x.shape[1:] == (16000,)
        assert set(y.tolist()) == set(range(len(kws.CLASSES)))
        assert len(ds.groups(split)) == len(y)
    assert not datasets.verify("kws", root=tmp_path)
    shutil.rmtree(tmp_path / "kws")
