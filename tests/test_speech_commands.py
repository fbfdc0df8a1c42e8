"""`tinyml-edu data import speech-commands`: Speech Commands v2 -> a kws recordings folder."""

import json

import numpy as np
import pytest
import soundfile

from tinyml_edu import datasets, pipeline, speech_commands
from tinyml_edu.cli import main
from tinyml_edu.errors import InputError, MissingFileError, OutDirError

RATE = 16000
# Speech Commands puts a speaker in a split by a hash of the speaker id; here by hand.
SPEAKERS = {"0a1b2c3d": "train", "1f2e3d4c": "train", "2b3c4d5e": "train", "3c4d5e6f": "train",
            "4d5e6f70": "val", "5e6f7081": "test"}
KEYWORDS = ("yes", "no", "up")
OTHERS = ("bed", "happy")  # not keywords: they become "unknown"
SHORT = "up/0a1b2c3d_nohash_1.wav"  # 0.3 s: padded to 1 s
NOISE_SECONDS = 5


def _tone(word: str, n: int, rng) -> np.ndarray:
    freq = 300 + 150 * (KEYWORDS + OTHERS).index(word)
    t = np.arange(n) / RATE
    return (8000 * np.sin(2 * np.pi * freq * t) + rng.normal(0, 300, n)).astype(np.int16)


def make_speech_commands(root, speakers=SPEAKERS, lists=True, noise=True):
    """A tiny Speech Commands v2 in its exact layout."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    listed = {"val": [], "test": []}
    for word in KEYWORDS + OTHERS:
        (root / word).mkdir()
        for speaker, split in speakers.items():
            for n in range(2):
                rel = f"{word}/{speaker}_nohash_{n}.wav"
                length = 4800 if rel == SHORT else RATE if n == 0 else 13000
                soundfile.write(root / rel, _tone(word, length, rng), RATE, subtype="PCM_16")
                if split in listed:
                    listed[split].append(rel)
    if lists:
        (root / "validation_list.txt").write_text("\n".join(listed["val"]) + "\n")
        (root / "testing_list.txt").write_text("\n".join(listed["test"]) + "\n")
    if noise:
        (root / "_background_noise_").mkdir()
        for name, scale in (("white_noise", 0.3), ("running_tap", 0.1)):
            audio = rng.normal(0, scale, NOISE_SECONDS * RATE).clip(-1, 1)
            soundfile.write(root / "_background_noise_" / f"{name}.wav", audio, RATE,
                            subtype="PCM_16")
    return root


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    src = make_speech_commands(tmp_path_factory.mktemp("sc") / "speech_commands_v0.02")
    out = tmp_path_factory.mktemp("out") / "kws_data"
    return src, out, speech_commands.import_speech_commands(src, out, seed=3)


def _sidecars(out):
    return {p.relative_to(out).with_suffix("").as_posix(): json.loads(p.read_text())
            for p in out.glob("*/*.json")}


def test_writes_one_flac_and_sidecar_per_clip_in_kws_class_folders(imported):
    src, out, summary = imported
    kws_classes = datasets.info("kws").classes
    assert {p.name for p in out.iterdir() if p.is_dir()} == {"silence", "unknown", *KEYWORDS}
    assert set(summary.clips) == set(kws_classes)
    flacs = sorted(p.with_suffix("").relative_to(out).as_posix() for p in out.glob("*/*.flac"))
    sidecars = _sidecars(out)
    assert flacs == sorted(sidecars)
    for name, meta in sidecars.items():
        assert meta["rate"] == RATE and meta["split"] in datasets.SPLITS and meta["group"]
        assert meta["label"] == name.split("/")[0]
        audio, rate = soundfile.read(out / f"{name}.flac", dtype="int16")
        assert rate == RATE and audio.shape == (RATE,)
    for label, per_split in summary.clips.items():
        for split, n in per_split.items():
            assert n == sum(m["label"] == label and m["split"] == split
                            for m in sidecars.values())


def test_keyword_clips_keep_their_split_speaker_and_source(imported):
    src, out, summary = imported
    val = set((src / "validation_list.txt").read_text().split())
    test = set((src / "testing_list.txt").read_text().split())
    words = {n: m for n, m in _sidecars(out).items() if m["label"] in KEYWORDS}
    assert len(words) == len(KEYWORDS) * len(SPEAKERS) * 2  # every keyword clip, once
    for meta in words.values():
        expected = "test" if meta["source"] in test else "val" if meta["source"] in val else "train"
        assert meta["split"] == expected == SPEAKERS[meta["group"]]
        assert meta["source"].startswith(meta["label"] + "/")
        assert meta["source"].split("/")[1].startswith(meta["group"] + "_nohash_")
    assert summary.speakers == {"train": 4, "val": 1, "test": 1}
    assert summary.shared_speakers == () and summary.listed_missing == 0


def test_a_short_clip_is_zero_padded_around_its_centre(imported):
    src, out, _ = imported
    original, _ = soundfile.read(src / SHORT, dtype="int16")
    padded, _ = soundfile.read(out / SHORT.replace(".wav", ".flac"), dtype="int16")
    start = (RATE - len(original)) // 2
    np.testing.assert_array_equal(padded[start:start + len(original)], original)
    assert not padded[:start].any() and not padded[start + len(original):].any()


def test_other_words_become_a_seeded_share_of_unknown(imported):
    src, out, summary = imported
    unknown = {n: m for n, m in _sidecars(out).items() if m["label"] == "unknown"}
    assert {m["word"] for m in unknown.values()} <= set(OTHERS)
    for meta in unknown.values():
        assert meta["split"] == SPEAKERS[meta["group"]]
        assert meta["source"].split("/")[0] == meta["word"]
    # 24 train keyword clips are 80 % of the split: 10 % unknown is 3 clips; val/test get 1
    assert summary.clips["unknown"] == {"train": 3, "val": 1, "test": 1}
    assert summary.unknown_available == {"train": 16, "val": 4, "test": 4}
    again = speech_commands.import_speech_commands(src, out.parent / "again", seed=3)
    assert again.clips == summary.clips
    assert sorted(p.name for p in (out.parent / "again" / "unknown").iterdir()) == sorted(
        p.name for p in (out / "unknown").iterdir())


def test_silence_is_gained_noise_from_disjoint_time_ranges_per_split(imported):
    src, out, summary = imported
    silence = {n: m for n, m in _sidecars(out).items() if m["label"] == "silence"}
    assert summary.clips["silence"] == {"train": 3, "val": 1, "test": 1}
    length = NOISE_SECONDS * RATE
    ranges = {"train": (0, 0.6 * length), "val": (0.6 * length, 0.8 * length),
              "test": (0.8 * length, length)}
    for name, meta in silence.items():
        noise_file = meta["source"].split("/")[1]
        assert meta["group"] == f"noise_{meta['split']}_{noise_file.removesuffix('.wav')}"
        lo, hi = ranges[meta["split"]]
        assert lo <= meta["start_sample"] and meta["start_sample"] + RATE <= hi
        noise, _ = soundfile.read(src / meta["source"], dtype="float64")
        expected = noise[meta["start_sample"]:meta["start_sample"] + RATE] * 32768 * 10 ** (
            meta["gain_db"] / 20)
        clip, _ = soundfile.read(out / f"{name}.flac", dtype="int16")
        assert np.abs(clip - expected).max() <= 2  # the gain is stored rounded
        assert np.abs(clip).max() > 0


def test_the_kws_project_loads_it_with_speaker_disjoint_splits(imported):
    _, out, summary = imported
    ds = pipeline.load_data("kws", out)
    classes = datasets.info("kws").classes
    assert ds.info.classes == classes
    groups = {s: set(ds.groups(s)) for s in datasets.SPLITS}
    assert not (groups["train"] & groups["val"] or groups["train"] & groups["test"]
                or groups["val"] & groups["test"])
    assert groups["test"] - {g for g in groups["test"] if g.startswith("noise_")} == {"5e6f7081"}
    for split in datasets.SPLITS:
        x, y = ds.split(split)
        assert x.shape == (sum(c[split] for c in summary.clips.values()), RATE)
        assert x.dtype == np.int16
        for label, per_split in summary.clips.items():
            assert np.sum(y == classes.index(label)) == per_split[split]
    from tinyml_edu.projects import kws

    small = datasets.Dataset(ds.info, dict(ds.arrays))
    prep = kws.prepare(small)  # augments train with its silence and unknown clips
    assert prep.x["test"].shape == (len(ds.split("test")[1]), 49, 40)
    assert prep.x["train"].shape[0] == len(ds.split("train")[1]) * (kws.AUG_COPIES + 1)


def test_the_command_line_prints_a_summary_and_replaces_only_its_own_import(tmp_path, capsys):
    src = make_speech_commands(tmp_path / "sc")
    out = tmp_path / "mine"
    argv = ["data", "import", "speech-commands", str(src), "--out", str(out), "--quiet"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "speakers" in printed and f"tinyml-edu run kws --data {out}" in printed
    rows = {line.split()[0]: line.split()[1:] for line in printed.splitlines() if line.strip()}
    assert rows["yes"] == ["8", "2", "2"] and rows["speakers"] == ["4", "1", "1"]
    assert main(argv + ["--unknown-share", "0.2"]) == 0  # an earlier import is replaced
    assert len(list((out / "unknown").glob("*.flac"))) > 5
    (out / "yes" / "my_own.wav").write_bytes(b"RIFF")  # someone's recording: keep it safe
    assert main(argv) == 2
    assert "not a Speech Commands import" in capsys.readouterr().err
    assert (out / "yes" / "my_own.wav").read_bytes() == b"RIFF"


def test_a_non_empty_out_folder_of_other_files_is_refused(tmp_path):
    src = make_speech_commands(tmp_path / "sc")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("mine")
    with pytest.raises(OutDirError, match="choose another --out"):
        speech_commands.import_speech_commands(src, tmp_path / "notes")
    assert (tmp_path / "notes" / "a.txt").read_text() == "mine"


def test_a_folder_in_another_layout_says_what_is_expected(tmp_path, capsys):
    with pytest.raises(MissingFileError, match="not found.*validation_list.txt"):
        speech_commands.import_speech_commands(tmp_path / "nowhere", tmp_path / "o1")
    no_lists = make_speech_commands(tmp_path / "nolists", lists=False)
    with pytest.raises(MissingFileError, match="no validation_list.txt or testing_list.txt"):
        speech_commands.import_speech_commands(no_lists, tmp_path / "o2")
    no_noise = make_speech_commands(tmp_path / "nonoise", noise=False)
    with pytest.raises(MissingFileError, match="_background_noise_ has no .wav"):
        speech_commands.import_speech_commands(no_noise, tmp_path / "o3")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "cats").mkdir()
    for name in ("validation_list.txt", "testing_list.txt"):
        (tmp_path / "other" / name).write_text("")
    with pytest.raises(InputError, match="none of the keyword folders"):
        speech_commands.import_speech_commands(tmp_path / "other", tmp_path / "o4")
    assert main(["data", "import", "speech-commands", str(tmp_path / "nowhere"),
                 "--out", str(tmp_path / "o5")]) == 2
    assert "speech_commands_v0.02.tar.gz" in capsys.readouterr().err
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 6))


def test_shares_must_leave_room_for_the_keywords(tmp_path):
    with pytest.raises(InputError, match="sum to less than 1"):
        speech_commands.import_speech_commands(tmp_path, tmp_path / "o", unknown_share=0.5,
                                               silence_share=0.5)


def test_a_speaker_in_two_lists_is_reported(tmp_path, capsys):
    src = make_speech_commands(tmp_path / "sc")
    (src / "testing_list.txt").write_text((src / "testing_list.txt").read_text()
                                          + "yes/0a1b2c3d_nohash_0.wav\n")  # a train speaker
    assert main(["data", "import", "speech-commands", str(src), "--out", str(tmp_path / "o"),
                 "--quiet"]) == 0
    assert "1 speaker(s) are in more than one" in capsys.readouterr().err
    summary = speech_commands.import_speech_commands(src, tmp_path / "o")
    assert summary.shared_speakers == ("0a1b2c3d",)


def test_speaker_of_reads_the_hash_before_nohash():
    assert speech_commands.speaker_of("0a1b2c3d_nohash_4.wav") == "0a1b2c3d"
    assert speech_commands.speaker_of("clip.wav") == "clip"


@pytest.mark.slow
def test_run_kws_trains_on_the_import(imported, tmp_path):  # about 40 s on 2 cores
    _, out, _ = imported
    assert main(["run", "kws", "--data", str(out), "--out", str(tmp_path / "run"),
                 "--quiet"]) == 0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["dataset"] == str(out) and report["classes"] == list(
        datasets.info("kws").classes)
    assert report["int8_accuracy"] > 0.5  # 8 test clips of 5 tones + noise: far above chance
