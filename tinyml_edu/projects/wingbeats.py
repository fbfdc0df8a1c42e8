"""Listening for mosquitoes: species from the sound of their wingbeats."""

from tinyml_edu import datasets, features, models
from tinyml_edu.projects.base import Prepared, Project, prepare_splits

FEATURES = features.AudioFeatureParams(
    sample_rate=8000, window_ms=32.0, stride_ms=16.0, clip_ms=500.0, num_channels=32,
    fft_size=256, lower_hz=100.0, upper_hz=3800.0)


def prepare(ds: datasets.Dataset) -> Prepared:
    return prepare_splits(ds, lambda x: features.audio_features_batch(x, FEATURES),
                          FEATURES.to_dict())


PROJECT = Project(
    name="wingbeats",
    dataset="wingbeats",
    description="Mosquito species from wingbeat sound: log-mel spectrogram + 2-D CNN.",
    prepare=prepare,
    build=lambda prep: models.cnn2d(prep.x["train"].shape[1:], len(prep.labels),
                                    filters=(16, 32), name="wingbeats"),
    loss="sparse_categorical_crossentropy",
    epochs=80,
    batch_size=32,
    learning_rate=3e-3,
    patience=12,
)
