"""Magic wand: recognise W, O and L drawn in the air from the board's IMU.

Features (what the sketch must compute for every sample of a 128-sample window):

- channels 0-5: ``ax, ay, az`` divided by ``accel_range_g`` (4 g) and ``gx, gy, gz`` divided by
  ``gyro_range_dps`` (500 dps), each clipped to [-1, 1]. 500 dps, not the firmware's 2000 dps
  full scale: the fastest gestures reach about 420 dps, so dividing by 2000 would leave the
  gyroscope only a fifth of the int8 input range (about 15 dps per step);
- channel 6: the accelerometer magnitude ``(sqrt(ax² + ay² + az²) - 1 g) / accel_range_g``,
  clipped to [-1, 1]. It does not depend on how the board is held, so it carries the hand's
  acceleration without the grip; one square root per sample on the board.

Training windows are augmented (four times as many: the originals plus three seeded copies) with
what the data sheet says varies between people: the grip (a random rotation of the sensor, the
same for accelerometer and gyroscope), the size and speed of the letter (a gain) and where in the
window it is drawn (a time shift). The model is a 1-D CNN with batch norm (folded into the
convolutions by the converter), which trains faster and steadier than the plain ``cnn1d``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from tinyml_edu import datasets, features, models
from tinyml_edu.projects.base import Prepared, Project
from tinyml_edu.train import TrainConfig

if TYPE_CHECKING:  # keep importing this module free of TensorFlow
    import keras

FEATURES = features.ImuFeatureParams(sample_rate=100, window=128, stride=64,
                                     accel_range_g=4.0, gyro_range_dps=500.0)
DERIVED_CHANNELS = ("amag",)  # appended after FEATURES.channels
NUM_CHANNELS = FEATURES.num_channels + len(DERIVED_CHANNELS)
AMAG_OFFSET_G = 1.0  # |a| at rest, subtracted so that the channel is about 0 when still

# Augmentation of the training split only; validation and test windows are left as recorded.
AUG_COPIES = 3  # augmented copies per training window, added to the originals
AUG_SEED = 1
AUG_ROTATION_DEG = 20.0  # sigma per axis of the grip rotation (the generator's grip spread)
AUG_GAIN = 0.05  # sigma of a multiplicative gain (letter size and speed)
AUG_SHIFT = 8  # largest time shift, samples, either way

FILTERS = (8, 16, 16)  # 8 in the first layer keeps the TFLM arena under 8 KB
KERNEL_SIZE = 5


def feature_params() -> dict[str, Any]:
    """What travels to the sketch: FEATURES plus the derived channel and the real input shape.

    ``ImuFeatureParams.from_dict`` takes the FEATURES part back once ``derived_channels`` and
    ``amag_offset_g`` are removed (``num_channels`` and ``shape`` are recomputed there)."""
    d = FEATURES.to_dict()
    d.update(derived_channels=list(DERIVED_CHANNELS), amag_offset_g=AMAG_OFFSET_G,
             num_channels=NUM_CHANNELS, shape=[FEATURES.window, NUM_CHANNELS])
    return d


def imu_features(windows: np.ndarray) -> np.ndarray:
    """Raw windows (..., 6) in g and dps -> model inputs (..., 7) in [-1, 1], float32."""
    x = np.asarray(windows, dtype=np.float32)
    scaled = features.scale_imu(x, FEATURES)
    accel = x[..., :3].astype(np.float64)
    amag = np.sqrt(np.sum(accel**2, axis=-1, keepdims=True)) - AMAG_OFFSET_G
    amag /= FEATURES.accel_range_g
    return np.concatenate([scaled, np.clip(amag, -1.0, 1.0)], axis=-1).astype(np.float32)


def _rotations(rotvec: np.ndarray) -> np.ndarray:
    """(n, 3) rotation vectors (axis * angle, rad) -> (n, 3, 3) matrices (Rodrigues)."""
    angle = np.linalg.norm(rotvec, axis=-1)[:, None, None]
    axis = rotvec / np.maximum(angle[:, :, 0], 1e-12)
    zero = np.zeros(len(axis))
    cross = np.stack([np.stack([zero, -axis[:, 2], axis[:, 1]], -1),
                      np.stack([axis[:, 2], zero, -axis[:, 0]], -1),
                      np.stack([-axis[:, 1], axis[:, 0], zero], -1)], -2)
    return np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * (cross @ cross)


def augment(windows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One augmented copy of raw windows (n, 128, 6) in g and dps, same shape, float32.

    Per window: rotate accelerometer and gyroscope by the same random grip rotation, scale by a
    random gain, then shift in time (holding the first or last reading), and clip to the
    sensor's full scale (±4 g, ±2000 dps) as the generator does."""
    x = np.asarray(windows, dtype=np.float64)
    n, length = x.shape[0], x.shape[1]
    rot = _rotations(np.radians(rng.normal(0.0, AUG_ROTATION_DEG, (n, 3))))
    out = np.concatenate([np.einsum("nij,ntj->nti", rot, x[..., :3]),
                          np.einsum("nij,ntj->nti", rot, x[..., 3:6])], axis=-1)
    out *= 1.0 + rng.normal(0.0, AUG_GAIN, (n, 1, 1))
    shift = rng.integers(-AUG_SHIFT, AUG_SHIFT + 1, n)
    index = np.clip(np.arange(length)[None, :] - shift[:, None], 0, length - 1)
    out = np.take_along_axis(out, index[:, :, None], axis=1)
    limit = np.array([4.0] * 3 + [2000.0] * 3)
    return np.clip(out, -limit, limit).astype(np.float32)


def augment_train(x: np.ndarray, y: np.ndarray, copies: int = AUG_COPIES,
                  seed: int = AUG_SEED) -> tuple[np.ndarray, np.ndarray]:
    """The originals followed by ``copies`` augmented copies (seeded: same input, same output)."""
    rng = np.random.default_rng(seed)
    xs = [np.asarray(x, np.float32)] + [augment(x, rng) for _ in range(copies)]
    return np.concatenate(xs), np.concatenate([y] * (copies + 1))


def prepare(ds: datasets.Dataset) -> Prepared:
    x, y = {}, {}
    for split in datasets.SPLITS:
        xs, ys = ds.split(split)
        if split == "train":
            xs, ys = augment_train(xs, ys, AUG_COPIES, AUG_SEED)
        x[split], y[split] = imu_features(xs), ys
    return Prepared(x, y, list(ds.info.classes), feature_params())


def build(prep: Prepared) -> keras.Model:
    """``models.cnn1d_bn``: conv (no bias) -> batch norm -> ReLU -> max-pool 2, three times;
    global average; softmax."""
    return models.cnn1d_bn(prep.x["train"].shape[1:], len(prep.labels), FILTERS, KERNEL_SIZE,
                           name="wand")


PROJECT = Project(
    name="gestures",
    dataset="gestures",
    description="Magic wand: a 1-D CNN reads 1.28 s of accelerometer, gyroscope and |a|.",
    prepare=prepare,
    build=build,
    training=TrainConfig(
        loss="sparse_categorical_crossentropy",
        epochs=80,
        batch_size=64,
        learning_rate=5e-3,
        patience=20,
    ),
    features=lambda windows, params: imu_features(windows),
    sensor="imu",
)
