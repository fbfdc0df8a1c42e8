"""What a project is: a data set, how to turn it into model inputs, and which model to train."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinyml_edu import datasets
from tinyml_edu.errors import InputError
from tinyml_edu.train import TrainConfig


@dataclass
class Prepared:
    """Model-ready arrays per split, the labels, and the feature parameters that travel with
    the model (into ``report.json`` and the sketch's ``model_settings.h``)."""

    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    labels: list[str]
    feature_params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Project:
    name: str
    dataset: str
    description: str
    prepare: Callable[[datasets.Dataset], Prepared]
    build: Callable[[Prepared], Any]  # -> keras.Model
    # How `tinyml-edu run` trains the model (``train.fit``'s settings; the run's seed replaces
    # ``training.seed``).
    training: TrainConfig
    # Per-channel Dense scales compute wrong outputs on the board's TFLM (see quantize.convert).
    per_channel_dense: bool = False
    # Which board sensor feeds the model: "imu", "audio", "camera" or "none" (the sketch's data
    # path).
    sensor: str = "none"
    # Anomaly projects: (inputs, reconstructions) -> one score per example, higher = stranger.
    anomaly_score: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    # Raw windows as the data set stores them + the saved feature parameters -> model inputs.
    # What `tinyml-edu predict` and the virtual board use on new recordings.
    features: Callable[[np.ndarray, dict[str, Any]], np.ndarray] | None = None
    # Projects whose test figures are not plain accuracy (e.g. counting): (outputs of the float
    # and int8 models keyed "float32" / "int8", prepared data) -> ``float_*`` / ``int8_*`` keys.
    evaluate: Callable[[dict[str, np.ndarray], Prepared], dict[str, float]] | None = None
    # RAM the sketch needs besides the arena and the runtime (the camera frame the inference
    # sketch reads, ``camera_input.FRAME_BUFFER_BYTES``): counted in the fit table.
    frame_buffer_bytes: int = 0
    # More figures for report.json, computed after the run (e.g. the same model trained without
    # pre-training, for comparison): (prepared data, seed) -> keys.
    extra_report: Callable[[Prepared, int], dict[str, Any]] | None = None
    # Camera projects: (test inputs, int8 outputs, prepared data, path) -> a picture of a few
    # test frames with what the model said, for report.md.
    examples: Callable[[np.ndarray, np.ndarray, Prepared, Path], Path] | None = None
    # Projects whose output is not one score per class: (one input's model output, feature
    # parameters) -> (what ``predict`` prints, a score), e.g. ("5 cars", 0.93).
    describe: Callable[[np.ndarray, dict[str, Any]], tuple[str, float]] | None = None
    # Counting projects: (one input's model output, feature parameters) -> where the counted
    # objects are, (row, column) in pixels of the model's frame (the board's ``C`` lines).
    locate: Callable[[np.ndarray, dict[str, Any]], list[tuple[int, int]]] | None = None


def prepare_splits(ds: datasets.Dataset, transform: Callable[[np.ndarray], np.ndarray],
                   feature_params: dict[str, Any] | None = None) -> Prepared:
    """Apply ``transform`` to the inputs of every split (float32 out); labels pass through."""
    x, y = {}, {}
    for split in datasets.SPLITS:
        xs, ys = ds.split(split)
        x[split], y[split] = transform(xs).astype(np.float32), ys
    return Prepared(x, y, list(ds.info.classes), dict(feature_params or {}))


# ---------------------------------------------------------------------------------------------
# Hand-made feature vectors, standardised with training statistics (ECG, wingbeats)


def standardise(features: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    """Apply the training-set standardisation stored in ``params`` (as the board does):
    subtract ``feature_mean``, divide by ``feature_std``, clip to ``clip_sd``."""
    mean = np.asarray(params["feature_mean"], dtype=np.float64)
    std = np.asarray(params["feature_std"], dtype=np.float64)
    clip = float(params["clip_sd"])
    return np.clip((features - mean) / std, -clip, clip).astype(np.float32)


def check_settings(params: dict[str, Any], settings: dict[str, Any]) -> None:
    """A run's saved feature settings must be the ones this code computes, or new recordings
    would get different features than the model was trained on."""
    changed = sorted(k for k, v in settings.items() if params.get(k) != v)
    if changed:
        raise InputError(f"this run's feature settings {changed} differ from what this "
                         "version of the project computes; train the run again")


def _round6(values: np.ndarray) -> list[float]:
    # 6 significant digits: what is written to model_settings.h is exactly what training used.
    return [float(f"{v:.6g}") for v in values]


def prepare_standardised(ds: datasets.Dataset, raw_features: Callable[[np.ndarray], np.ndarray],
                         settings: dict[str, Any]) -> Prepared:
    """Feature vectors per split, standardised with the (rounded) training mean and std, which
    travel in ``feature_params`` next to ``settings``."""
    raw = {split: raw_features(ds.split(split)[0]) for split in datasets.SPLITS}
    params: dict[str, Any] = {
        **settings,
        "feature_mean": _round6(raw["train"].mean(axis=0)),
        "feature_std": _round6(raw["train"].std(axis=0) + 1e-6),
    }
    x = {split: standardise(raw[split], params) for split in datasets.SPLITS}
    y = {split: ds.split(split)[1] for split in datasets.SPLITS}
    return Prepared(x, y, list(ds.info.classes), params)
