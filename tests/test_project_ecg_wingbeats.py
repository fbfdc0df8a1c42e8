"""The `ecg` and `wingbeats` projects: feature front ends, their parameters, and full runs."""

import json
import subprocess
import sys

import numpy as np
import pytest

from tinyml_edu import datasets, pipeline
from tinyml_edu.projects import ecg, get_project, wingbeats

# Figures measured with `tinyml-edu run` (seed 0): ecg int8 0.963, wingbeats int8 0.9375. Floors
# sit a few points below so that a change which costs accuracy fails while noise does not.
FLOORS = {"ecg": 0.93, "wingbeats": 0.90}
MAX_MODEL_BYTES = 16 * 1024
MAX_ARENA_BYTES = 30 * 1024
SHAPES = {"ecg": (ecg.NUM_FEATURES,), "wingbeats": (wingbeats.NUM_FEATURES,)}


@pytest.fixture(scope="module", params=["ecg", "wingbeats"])
def prepared(request):
    name = request.param
    return name, get_project(name).prepare(datasets.load(name))


def test_importing_the_projects_does_not_import_tensorflow():
    code = ("import sys, tinyml_edu.projects.ecg, tinyml_edu.projects.wingbeats; "
            "sys.exit('tensorflow' in sys.modules or 'keras' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_prepare_gives_documented_shapes(prepared):
    name, prep = prepared
    ds = datasets.load(name)
    for split in datasets.SPLITS:
        x, y = prep.x[split], prep.y[split]
        assert x.dtype == np.float32 and x.shape == (len(ds.split(split)[1]), *SHAPES[name])
        assert np.all(np.isfinite(x))
        assert np.array_equal(y, ds.split(split)[1])
    clip = prep.feature_params["clip_sd"]
    assert np.abs(prep.x["train"]).max() <= clip
    # standardised on the training split: roughly zero mean, unit spread
    assert np.all(np.abs(prep.x["train"].mean(axis=0)) < 0.2)
    assert prep.labels == list(ds.info.classes)


def test_feature_params_round_trip_through_json(prepared):
    name, prep = prepared
    params = prep.feature_params
    again = json.loads(json.dumps(params))
    assert again == params
    assert len(params["feature_mean"]) == len(params["feature_std"]) == SHAPES[name][0]
    assert params["num_features"] == SHAPES[name][0]
    assert len(params["features"].split(",")) == SHAPES[name][0]
    # What predict and a board do: raw windows + the JSON parameters give the model inputs.
    x_raw = datasets.load(name).split("test")[0][:20]
    assert np.array_equal(get_project(name).features(x_raw, again), prep.x["test"][:20])
    stale = {**again, "fft_size": 4096}
    with pytest.raises(ValueError, match="fft_size"):
        get_project(name).features(x_raw, stale)


def test_ecg_features_one_window_at_a_time():
    x = datasets.load("ecg").split("val")[0][:3]
    batch = ecg.raw_features(x)
    for row, window in zip(batch, x, strict=True):
        assert np.array_equal(ecg.window_features(window), row)
    with pytest.raises(ValueError, match="shape"):
        ecg.raw_features(x[:, :500])
    # a one-column CSV recording cut into windows has a trailing channel axis
    params = {**ecg.SETTINGS, "feature_mean": [0.0] * ecg.NUM_FEATURES,
              "feature_std": [1.0] * ecg.NUM_FEATURES}
    assert np.array_equal(ecg.model_inputs(x[..., None], params),
                          ecg.standardise(batch, params))


def test_ecg_peak_detector_finds_a_plausible_rate():
    x, y = datasets.load("ecg").split("train")
    for window in x[y == 0][:10]:  # sinus rhythm at 50-110 bpm
        peaks = ecg.find_r_peaks(window / 1000.0)
        assert 7 <= len(peaks) <= 20
        assert np.all(np.diff(peaks) >= ecg.REFRACTORY_S * ecg.SAMPLE_RATE)


def test_wingbeats_fundamental_in_species_range():
    from tinyml_edu.generators import wingbeats as gen

    x, y = datasets.load("wingbeats").split("test")
    f0 = wingbeats.raw_features(x[:40])[:, 0]
    for f, label in zip(f0, y[:40], strict=True):
        lo, hi = gen.f0_range_hz(gen.CLASSES[label])
        assert lo * 0.95 <= f <= hi * 1.05
    with pytest.raises(ValueError, match="shape"):
        wingbeats.raw_features(x[:2, :1000])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ecg", "wingbeats"])
def test_end_to_end(name, tmp_path):
    report = pipeline.run(name, tmp_path / name, progress=False, log=lambda m: None)
    assert report["int8_accuracy"] >= FLOORS[name]
    assert abs(report["int8_accuracy"] - report["float_accuracy"]) <= 0.02
    assert report["model_bytes"] <= MAX_MODEL_BYTES
    assert report["arena_bytes"] <= MAX_ARENA_BYTES
    assert report["feature_params"]["num_features"] == SHAPES[name][0]
    assert (tmp_path / name / "export" / "model_settings.h").is_file()
