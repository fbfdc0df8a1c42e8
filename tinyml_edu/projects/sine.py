"""Hello TinyML: a 1-16-16-1 MLP learns sin(x), as TFLM's hello_world."""

from tinyml_edu import models
from tinyml_edu.projects.base import Project, prepare_splits
from tinyml_edu.train import TrainConfig

PROJECT = Project(
    name="sine",
    dataset="sine",
    description="Hello TinyML: a 1-16-16-1 MLP learns sin(x); int8; 3 KB of flash.",
    prepare=lambda ds: prepare_splits(ds, lambda x: x),
    build=lambda prep: models.mlp(1, (16, 16), 1, name="sine"),
    training=TrainConfig(
        loss="mse",
        epochs=400,
        batch_size=32,
        learning_rate=0.01,
        patience=40,
    ),
    per_channel_dense=False,  # per-tensor scales keep the model under 3,000 bytes
)
