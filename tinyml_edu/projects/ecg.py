"""Heart rhythm: tell normal sinus rhythm, atrial fibrillation and ectopic beats apart."""

import numpy as np

from tinyml_edu import datasets, models
from tinyml_edu.projects.base import Prepared, Project, prepare_splits


def prepare(ds: datasets.Dataset) -> Prepared:
    # int16 microvolts -> millivolts, one channel over time
    return prepare_splits(ds, lambda x: (x.astype(np.float32) / 1000.0)[..., np.newaxis],
                          {"sample_rate": 100, "window_samples": 1000, "units": "mV",
                           "scale": "int16 microvolts / 1000"})


PROJECT = Project(
    name="ecg",
    dataset="ecg",
    description="Heart rhythm: a 1-D CNN tells sinus rhythm, AF and ectopic beats apart.",
    prepare=prepare,
    build=lambda prep: models.cnn1d(prep.x["train"].shape[1:], len(prep.labels),
                                    filters=(8, 16, 16, 24), kernel_size=7, name="ecg"),
    loss="sparse_categorical_crossentropy",
    epochs=80,
    batch_size=32,
    learning_rate=3e-3,
    patience=12,
)
