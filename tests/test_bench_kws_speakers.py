"""The speaker subsets of benchmarks/kws_speakers.py (the datasheet's speaker curve)."""

import importlib.util
from pathlib import Path

import numpy as np

from tinyml_edu import datasets
from tinyml_edu.generators.kws import speaker_of

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "kws_speakers.py"
_spec = importlib.util.spec_from_file_location("kws_speakers", _PATH)
kws_speakers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kws_speakers)


def _speakers(ds, split):
    return [speaker_of(str(g)) for g in ds.groups(split)]


def test_keeps_whole_speakers_and_all_silence():
    full = datasets.load("kws")
    part, kept, total = kws_speakers.keep_speakers(full, 0.25, seed=0)
    assert total == len({s for s in _speakers(full, "train") if not s.startswith("noise_")})
    assert kept == round(0.25 * total)

    before, after = _speakers(full, "train"), _speakers(part, "train")
    voiced = {s for s in after if not s.startswith("noise_")}
    assert len(voiced) == kept
    for speaker in voiced:  # every clip of a kept speaker, none of the others
        assert after.count(speaker) == before.count(speaker)
    assert np.sum(part.arrays["y_train"] == 0) == np.sum(full.arrays["y_train"] == 0)  # silence
    for split in ("val", "test"):
        assert part.arrays[f"x_{split}"] is full.arrays[f"x_{split}"]
    # rows stay aligned: the subset is exactly the full split's rows of those speakers
    rows = np.array([s in voiced or s.startswith("noise_") for s in before])
    for key in ("x_train", "y_train", "group_train"):
        assert np.array_equal(part.arrays[key], np.asarray(full.arrays[key])[rows])


def test_other_seed_draws_other_speakers():
    full = datasets.load("kws")
    a = set(_speakers(kws_speakers.keep_speakers(full, 0.5, seed=0)[0], "train"))
    b = set(_speakers(kws_speakers.keep_speakers(full, 0.5, seed=1)[0], "train"))
    assert a != b
