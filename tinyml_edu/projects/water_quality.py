"""Aquaculture: flag abnormal pond days (sensor faults, night-time oxygen crashes)."""

from tinyml_edu import datasets, models
from tinyml_edu.projects.base import Prepared, Project, prepare_splits
from tinyml_edu.train import TrainConfig


def prepare(ds: datasets.Dataset) -> Prepared:
    # Standardise each sensor with the (normal-only) training statistics, then flatten the day.
    x_train = ds.split("train")[0]
    mean = x_train.mean(axis=(0, 1))
    std = x_train.std(axis=(0, 1)) + 1e-6
    return prepare_splits(ds, lambda x: ((x - mean) / std).reshape(len(x), -1),
                          {"channel_mean": mean.round(5).tolist(),
                           "channel_std": std.round(5).tolist(),
                           "window_samples": int(x_train.shape[1]), "sample_period_s": 600})


PROJECT = Project(
    name="water_quality",
    dataset="water_quality",
    description="Aquaculture anomalies: an autoencoder learns normal pond days (AUC).",
    prepare=prepare,
    build=lambda prep: models.dense_autoencoder(prep.x["train"].shape[1], (32, 8), name="pond"),
    training=TrainConfig(
        loss="mse",
        epochs=150,
        batch_size=32,
        learning_rate=2e-3,
        patience=15,
    ),
)
