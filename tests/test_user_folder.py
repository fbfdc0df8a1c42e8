"""Record-your-own: a folder per label of CSV or WAV recordings loads like a shipped data set."""

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
