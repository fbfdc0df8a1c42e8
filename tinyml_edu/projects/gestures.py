"""Magic wand: recognise W, O and L drawn in the air from the board's IMU."""

from tinyml_edu import datasets, features, models
from tinyml_edu.projects.base import Prepared, Project, prepare_splits

FEATURES = features.ImuFeatureParams(sample_rate=100, window=128, stride=64)


def prepare(ds: datasets.Dataset) -> Prepared:
    return prepare_splits(ds, lambda x: features.scale_imu(x, FEATURES), FEATURES.to_dict())


PROJECT = Project(
    name="gestures",
    dataset="gestures",
    description="Magic wand: a 1-D CNN reads 1.28 s of accelerometer + gyroscope.",
    prepare=prepare,
    build=lambda prep: models.cnn1d(prep.x["train"].shape[1:], len(prep.labels),
                                    filters=(8, 16, 16), kernel_size=5, name="wand"),
    loss="sparse_categorical_crossentropy",
    epochs=80,
    batch_size=32,
    learning_rate=3e-3,
    patience=12,
)
