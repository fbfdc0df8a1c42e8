"""Record-your-own: a folder per label of CSV or WAV recordings loads like a shipped data set."""

import json

import numpy as np
import pytest
import soundfile

from tinyml_edu import datasets


def _imu_folder(root, labels=("W", "O"), recordings=5, samples=300):
    rng = np.random.default_rng(0)
    for k, label in enumerate(labels):
        (root / label).mkdir(parents=True)
        for i in range(recordings):
            data = rng.normal(k, 0.1, size=(samples, 6))
            np.savetxt(root / label / f"{label}_{i}.csv", data, delimiter=",", fmt="%.4f",
                       header="ax,ay,az,gx,gy,gz", comments="")
            (root / label / f"{label}_{i}.json").write_text('{"rate": 100}')
    return root


def test_imu_folder_loads_windows_split_by_recording(tmp_path):
    ds = datasets.load_folder(_imu_folder(tmp_path / "mine"), window=128, stride=64,
                              sample_rate=100, channels=6)
    assert ds.info.classes == ("O", "W")  # sorted folder names
    x, y = ds.split("train")
    assert x.shape[1:] == (128, 6) and x.dtype == np.float32
    per_recording = 1 + (300 - 128) // 64
    assert len(y) == 2 * 3 * per_recording  # 3 of 5 recordings per label go to train
    assert np.allclose(x[y == 1].mean(), 0, atol=0.05) and np.allclose(x[y == 0].mean(), 1,
                                                                         atol=0.05)
    groups = {s: set(ds.groups(s)) for s in datasets.SPLITS}
    assert not groups["train"] & groups["test"] and not groups["val"] & groups["test"]


def test_project_classes_fix_the_label_order_and_reject_strangers(tmp_path):
    folder = _imu_folder(tmp_path / "mine", labels=("O", "W"))
    ds = datasets.load_folder(folder, window=128, classes=("W", "O", "L", "none"))
    assert set(ds.split("train")[1]) == {0, 1}
    (folder / "Z").mkdir()
    with pytest.raises(datasets.DatasetError, match="not classes of this project"):
        datasets.load_folder(folder, window=128, classes=("W", "O"))


def test_audio_folder_pads_short_words_and_checks_the_rate(tmp_path):
    rng = np.random.default_rng(1)
    for label in ("yes", "no"):
        (tmp_path / label).mkdir()
        for i in range(3):
            clip = (rng.normal(0, 3000, 12000)).astype(np.int16)  # 0.75 s word
            soundfile.write(tmp_path / label / f"{i}.wav", clip, 16000, subtype="PCM_16")
    ds = datasets.load_folder(tmp_path, window=16000, sample_rate=16000)
    assert ds.split("train")[0].shape == (2, 16000) and ds.split("test")[0].dtype == np.int16
    with pytest.raises(datasets.DatasetError, match="recorded at 16000 Hz but this project needs"):
        datasets.load_folder(tmp_path, window=8000, sample_rate=8000)


def test_too_few_recordings_says_how_many_to_make(tmp_path):
    _imu_folder(tmp_path, labels=("W",), recordings=2)
    with pytest.raises(datasets.DatasetError, match="record at least 3"):
        datasets.load_folder(tmp_path, window=128)


def test_bad_csv_names_the_file(tmp_path):
    _imu_folder(tmp_path, labels=("W",), recordings=3)
    (tmp_path / "W" / "W_1.csv").write_text("ax,ay\n1,oops\n")
    with pytest.raises(datasets.DatasetError, match="W_1.csv"):
        datasets.load_folder(tmp_path, window=128)


def test_one_reader_gives_data_rate_columns_and_the_whole_sidecar(tmp_path):
    folder = _imu_folder(tmp_path, labels=("W",), recordings=1, samples=10)
    (folder / "W" / "W_0.json").write_text('{"rate": 50, "units": ["g", "g", "g", "dps", "dps", '
                                           '"dps"], "board": "nano"}')
    rec = datasets.load_recording(folder / "W" / "W_0.csv")
    assert rec.data.shape == (10, 6) and rec.data.dtype == np.float32 and rec.rate == 50.0
    assert rec.columns == ("ax", "ay", "az", "gx", "gy", "gz") and rec.sidecar["board"] == "nano"
    data, rate = datasets.read_recording(folder / "W" / "W_0.csv")  # the lessons' short form
    np.testing.assert_array_equal(data, rec.data)
    assert rate == 50.0


@pytest.mark.parametrize("sidecar", ["{not json", "[1, 2]", '{"rate": [100]}', '{"rate": 0}'])
def test_a_broken_sidecar_leaves_the_recording_usable_without_a_rate(tmp_path, sidecar):
    folder = _imu_folder(tmp_path, labels=("W",), recordings=1, samples=10)
    (folder / "W" / "W_0.json").write_text(sidecar)
    rec = datasets.load_recording(folder / "W" / "W_0.csv")
    assert rec.rate is None and rec.data.shape == (10, 6)
    assert rec.sidecar == ({"rate": [100]} if "[100]" in sidecar else
                           {"rate": 0} if "0}" in sidecar else {})


def test_a_header_that_does_not_match_the_rows_is_named(tmp_path):
    (tmp_path / "a.csv").write_text("ax,ay,az\n1,2\n3,4\n")
    with pytest.raises(datasets.DatasetError, match=r"a\.csv: the header names 3 columns"):
        datasets.load_recording(tmp_path / "a.csv")


def test_a_wav_reads_as_int16_mono_at_its_own_rate(tmp_path):
    clip = (np.arange(800) % 200 * 100 - 10000).astype(np.int16)
    soundfile.write(tmp_path / "a.wav", clip, 8000, subtype="PCM_16")
    (tmp_path / "a.json").write_text('{"rate": 16000, "label": "yes"}')  # the file's rate wins
    rec = datasets.load_recording(tmp_path / "a.wav")
    np.testing.assert_array_equal(rec.data, clip)
    assert rec.rate == 8000.0 and rec.columns == ("audio",) and rec.sidecar["label"] == "yes"


def _speaker_folder(root, speakers, labels=("yes", "no"), per_speaker=2, key="group",
                    extra=None):
    """Audio recordings whose sidecars name the speaker (and ``extra`` keys per file name)."""
    rng = np.random.default_rng(2)
    for label in labels:
        (root / label).mkdir(parents=True, exist_ok=True)
        for speaker in speakers:
            for i in range(per_speaker):
                name = f"{speaker}_{i}"
                clip = rng.normal(0, 3000, 16000).astype(np.int16)
                soundfile.write(root / label / f"{name}.wav", clip, 16000, subtype="PCM_16")
                sidecar = {"rate": 16000, key: speaker, **(extra or {}).get(name, {})}
                (root / label / f"{name}.json").write_text(json.dumps(sidecar))
    return root


def _groups(ds):
    return {s: set(ds.groups(s)) for s in datasets.SPLITS}


@pytest.mark.parametrize("key", ["group", "speaker"])
def test_sidecars_naming_speakers_split_whole_speakers(tmp_path, key):
    speakers = [f"student{i}" for i in range(10)]
    ds = datasets.load_folder(_speaker_folder(tmp_path, speakers, key=key), window=16000,
                              sample_rate=16000)
    groups = _groups(ds)
    assert set().union(*groups.values()) == set(speakers)  # the speaker, not the file name
    assert all(groups.values())
    assert not (groups["train"] & groups["val"] or groups["train"] & groups["test"]
                or groups["val"] & groups["test"])
    assert {s: len(g) for s, g in groups.items()} == {"train": 6, "val": 2, "test": 2}
    expected = datasets.split_groups(speakers)
    for split in datasets.SPLITS:
        assert {expected[g] for g in ds.groups(split)} == {split}
        assert len(ds.split(split)[1]) == 2 * 2 * len(groups[split])  # 2 labels x 2 each


def test_split_groups_is_stable_and_fills_every_split():
    for n in range(3, 40):
        names = [f"speaker-{i}" for i in range(n)]
        assigned = datasets.split_groups(names)
        assert datasets.split_groups(reversed(names)) == assigned
        counts = {s: list(assigned.values()).count(s) for s in datasets.SPLITS}
        assert min(counts.values()) >= 1 and sum(counts.values()) == n
        assert abs(counts["test"] - 0.2 * n) <= 1 and abs(counts["val"] - 0.2 * n) <= 1
    with pytest.raises(datasets.DatasetError, match="at least 3"):
        datasets.split_groups(["a", "b"])


def test_fewer_than_three_speakers_says_what_to_do(tmp_path):
    _speaker_folder(tmp_path, ["ana", "ben"], per_speaker=3)
    with pytest.raises(datasets.DatasetError, match=r"2 speaker\(s\)/group\(s\) \(ana, ben\).*"
                       r"at least 3.*\"split\".*delete their \"group\""):
        datasets.load_folder(tmp_path, window=16000)


def test_a_sidecar_split_is_honoured_and_its_speaker_follows_it(tmp_path):
    # ana names test in one sidecar: her other recordings follow her there; the rest are named
    extra = {"ana_0": {"split": "test"}, "ben_0": {"split": "val"}, "ben_1": {"split": "val"},
             "cai_0": {"split": "train"}, "cai_1": {"split": "train"}}
    _speaker_folder(tmp_path, ["ana", "ben", "cai"], extra=extra)
    ds = datasets.load_folder(tmp_path, window=16000)
    assert _groups(ds) == {"train": {"cai"}, "val": {"ben"}, "test": {"ana"}}
    (tmp_path / "no" / "ana_1.json").write_text('{"split": "validation", "group": "ana"}')
    with pytest.raises(datasets.DatasetError, match=r"ana_1\.json: \"split\" is 'validation'"):
        datasets.load_folder(tmp_path, window=16000)


def test_explicit_splits_without_speakers_and_plain_recordings_mix(tmp_path):
    _speaker_folder(tmp_path, ["r0", "r1", "r2", "r3", "r4"], labels=("yes",), per_speaker=1,
                    key="note")  # no group: the index rule, by file name
    (tmp_path / "yes" / "r0_0.json").write_text('{"split": "test"}')
    ds = datasets.load_folder(tmp_path, window=16000)
    # r0 is forced to test; the other four take the 2nd-to-test, 3rd-to-val rule among themselves
    assert _groups(ds) == {"train": {"r1_0.wav", "r4_0.wav"}, "val": {"r3_0.wav"},
                           "test": {"r0_0.wav", "r2_0.wav"}}


def test_a_label_with_no_train_recordings_is_named(tmp_path):
    extra = {f"{s}_{i}": {"split": "val" if s == "ana" else "train"}
             for s in ("ana", "ben", "cai") for i in range(2)}
    _speaker_folder(tmp_path, ["ana", "ben", "cai"], labels=("yes",), extra=extra)
    _speaker_folder(tmp_path, ["ana", "dan", "eve"], labels=("no",),
                    extra={f"{s}_{i}": {"split": "test" if s == "eve" else "val"}
                           for s in ("ana", "dan", "eve") for i in range(2)})
    with pytest.raises(datasets.DatasetError, match="no train windows of 16000 samples for no;"):
        datasets.load_folder(tmp_path, window=16000)
