"""Image classification with transfer learning: circle, cross, triangle or none, at 96 x 96.

A class captures only a few dozen frames per symbol, too few to train a convolutional network
from nothing. So the network starts from a small **backbone** that we pre-trained on eight
*other* symbols (square, star, arrow, heart, zigzag, spiral, check, hash; 8,000 generated frames
on the training desks only, see ``benchmarks/pretrain_images_backbone.py``). Its first layers
already find strokes, corners and curves. ``tinyml-edu run images`` keeps the backbone's first
convolution (the stem) frozen, fine-tunes its ``FINE_TUNE_BLOCKS`` blocks (all four: the test
desks differ from the training desks, and fine-tuning only the last blocks gave 3-4 points
less) and trains a new head (global average + softmax) on the ``train`` split, 100 frames per
class. The report also gives the accuracy of the same network trained without pre-training
(``scratch_float_accuracy``), for comparison.

Input: the camera frame in grayscale, its centred square scaled to 96 x 96
(``camera_input.model_frame``: the inference sketch, the virtual board and ``tinyml-edu
predict`` compute it bit for bit alike), 1 byte a pixel, divided by 255 (the int8 input then is
``pixel - 128``). The sketch's camera frame (``FRAME_BUFFER_BYTES``, 160 x 120 grayscale) is
counted against the board's RAM in the fit table.

Training frames are augmented with the eight flips and quarter turns of the frame: a symbol
drawn on a sheet keeps its class when the sheet is turned or seen from behind.

The backbone's weights ship in the package (``BACKBONE_FILE``, checked against
``BACKBONE_SHA256``); nothing is downloaded.

Figures (``tinyml-edu run images --seed S``, S = 0, 1, 2; medians): test accuracy (held-out
desks) 0.778 float, 0.769 int8; the same network without pre-training 0.681. Baseline of
``benchmarks/bench_vision_baselines.py --sets images``: a 4-block CNN with max pooling trained
from scratch for 40 epochs, 0.728. int8 model 36,512 bytes, TFLM arena 53,200 bytes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tinyml_edu import camera_input, datasets
from tinyml_edu.errors import MissingFileError, TinyMLEduError
from tinyml_edu.projects.base import Prepared, Project
from tinyml_edu.train import TrainConfig

if TYPE_CHECKING:  # keep importing this module free of TensorFlow
    import keras

FRAME = 96  # pixels a side
# The inference sketch's camera frame (160 x 120 grayscale, 19,200 bytes), which it cuts and
# scales to FRAME x FRAME straight into the model's input: what the fit table counts.
FRAME_BUFFER_BYTES = camera_input.FRAME_BUFFER_BYTES

# Backbone: a 3x3 convolution with stride 2, then depthwise-separable blocks (depthwise 3x3 +
# pointwise 1x1, each with batch norm and ReLU). Four strides of 2: 96 -> 6 pixels.
STEM_FILTERS = 16
BLOCKS = ((32, 2), (64, 2), (64, 2), (96, 1))  # (pointwise filters, stride)
FINE_TUNE_BLOCKS = 4  # the last blocks trained again (all four: only the stem stays frozen)
DROPOUT = 0.2  # before the new head: 400 frames are few

BACKBONE_FILE = Path(__file__).resolve().parents[1] / "pretrained" / "images_backbone.npz"
BACKBONE_SHA256 = "3901aebaa1d1ced4b59af036ebda53dfe732ee4eae497c70345cd9fad6aea400"
AUG_TRANSFORMS = 8  # the four quarter turns, each also mirrored


def frames_to_inputs(frames: np.ndarray) -> np.ndarray:
    """uint8 frames (n, 96, 96, 1) -> float32 in [0, 1]."""
    x = np.asarray(frames)
    if x.ndim != 4 or x.shape[1:] != (FRAME, FRAME, 1):
        raise ValueError(f"images expects grayscale frames of shape (n, {FRAME}, {FRAME}, 1), "
                         f"not {x.shape}; crop and scale the camera image to {FRAME} x {FRAME}")
    return camera_input.pixel_inputs(x)


def dihedral(x: np.ndarray, k: int) -> np.ndarray:
    """Transform ``k`` (0-7) of images (n, h, w, c): ``k % 4`` quarter turns, mirrored when
    ``k >= 4``."""
    out = np.rot90(x, k % 4, axes=(1, 2))
    return np.flip(out, axis=2) if k >= 4 else out


def augment_train(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All eight flips and quarter turns of every frame (labels repeated)."""
    xs = np.concatenate([dihedral(x, k) for k in range(AUG_TRANSFORMS)])
    return np.ascontiguousarray(xs), np.concatenate([y] * AUG_TRANSFORMS)


def prepare(ds: datasets.Dataset) -> Prepared:
    x, y = {}, {}
    for split in datasets.SPLITS:
        frames, labels = ds.split(split)
        xs = frames_to_inputs(frames)
        if split == "train":
            xs, labels = augment_train(xs, labels)
        x[split], y[split] = xs, labels
    params: dict[str, Any] = {"input": "camera", "frame": FRAME, "channels": 1,
                              "scale": 1 / 255, "backbone_sha256": BACKBONE_SHA256}
    return Prepared(x, y, list(ds.info.classes), params)


def backbone() -> keras.Model:
    """The feature extractor (96 x 96 x 1 -> 6 x 6 x 96), randomly initialised."""
    import keras

    inputs = keras.Input((FRAME, FRAME, 1))
    x = keras.layers.Conv2D(STEM_FILTERS, 3, strides=2, padding="same", use_bias=False,
                            name="stem")(inputs)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization(name="stem_bn")(x))
    for i, (filters, stride) in enumerate(BLOCKS):
        # Equal strides (2, 2): TF's default CPU DepthwiseConv2D refuses unequal ones.
        x = keras.layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False,
                                         name=f"block{i}_dw")(x)
        x = keras.layers.ReLU()(keras.layers.BatchNormalization(name=f"block{i}_dw_bn")(x))
        x = keras.layers.Conv2D(filters, 1, use_bias=False, name=f"block{i}_pw")(x)
        x = keras.layers.ReLU()(keras.layers.BatchNormalization(name=f"block{i}_pw_bn")(x))
    return keras.Model(inputs, x, name="backbone")


def classifier(base: keras.Model, classes: int) -> keras.Model:
    """``base`` + global average + dropout + softmax."""
    import keras

    x = keras.layers.GlobalAveragePooling2D()(base.output)
    x = keras.layers.Dropout(DROPOUT)(x)
    outputs = keras.layers.Dense(classes, activation="softmax", name="head")(x)
    return keras.Model(base.input, outputs, name="symbols")


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_backbone_weights(base: keras.Model, path: Path = BACKBONE_FILE,
                          sha256: str | None = BACKBONE_SHA256) -> None:
    """Set ``base``'s weights from the shipped file, after checking its sha256."""
    if not path.is_file():
        raise MissingFileError(f"the pre-trained backbone {path} is missing; reinstall tinyml-edu "
                           "or rebuild it with benchmarks/pretrain_images_backbone.py")
    if sha256 is not None and file_sha256(path) != sha256:
        raise TinyMLEduError(f"the pre-trained backbone {path} is damaged (its sha256 differs); "
                           "reinstall tinyml-edu or rebuild it with "
                           "benchmarks/pretrain_images_backbone.py")
    with np.load(path) as saved:
        weights = [saved[f"w{i}"] for i in range(len(saved.files))]
    base.set_weights(weights)


def save_backbone_weights(base: keras.Model, path: Path) -> str:
    """Write ``base``'s weights (npz, compressed); return the file's sha256."""
    np.savez_compressed(path, **{f"w{i}": w for i, w in enumerate(base.get_weights())})
    return file_sha256(path)


def _freeze_early_blocks(base: keras.Model) -> None:
    """Freeze the stem and all but the last ``FINE_TUNE_BLOCKS`` blocks (frozen batch norms keep
    the pre-trained statistics: Keras runs a non-trainable BatchNormalization in inference
    mode)."""
    trainable = {f"block{i}" for i in range(len(BLOCKS) - FINE_TUNE_BLOCKS, len(BLOCKS))}
    for layer in base.layers:
        layer.trainable = layer.name.split("_")[0] in trainable


def build(prep: Prepared) -> keras.Model:
    base = backbone()
    load_backbone_weights(base)
    _freeze_early_blocks(base)
    return classifier(base, len(prep.labels))


def build_scratch(prep: Prepared) -> keras.Model:
    """The same network, all of it trained, from random weights: the comparison."""
    return classifier(backbone(), len(prep.labels))


TRAINING = TrainConfig(
    loss="sparse_categorical_crossentropy",
    metrics=("accuracy",),
    epochs=15,
    batch_size=32,
    learning_rate=3e-3,
    patience=15,  # no early stop: the cosine schedule ends the run
    monitor="val_accuracy",
    lr_schedule="cosine",
)


def scratch_report(prep: Prepared, seed: int) -> dict[str, Any]:
    """Train ``build_scratch`` with the same settings; its float test accuracy."""
    from tinyml_edu import train

    train.set_seed(seed)
    model = build_scratch(prep)
    result = train.fit(model, prep.x["train"], prep.y["train"], prep.x["val"], prep.y["val"],
                       config=TRAINING, seed=seed, progress=False)
    predicted = model.predict(prep.x["test"], verbose=0).argmax(axis=-1)
    return {"scratch_float_accuracy": float(np.mean(predicted == prep.y["test"])),
            "scratch_train_seconds": round(result.seconds, 3)}


def examples(x_test: np.ndarray, outputs: np.ndarray, prep: Prepared, path: Path) -> Path:
    """Two test frames of every class with the int8 model's answer and the truth: the first
    the model got wrong (when there is one) and the first it got right."""
    from tinyml_edu import report

    y = np.asarray(prep.y["test"])
    right = np.asarray(outputs).argmax(axis=-1) == y
    picks = []
    for c in range(len(prep.labels)):
        wrong_c, right_c = np.flatnonzero((y == c) & ~right), np.flatnonzero((y == c) & right)
        picks += [*wrong_c[:1], *right_c[:2 - min(len(wrong_c), 1)]]
    picks = np.asarray(picks[:report.EXAMPLE_FRAMES], dtype=int)
    titles = [f"{prep.labels[int(outputs[i].argmax())]} ({outputs[i].max():.0%}); "
              f"true {prep.labels[int(y[i])]}" for i in picks]
    return report.plot_frames(x_test[picks], titles, path)


PROJECT = Project(
    name="images",
    dataset="images",
    description="Symbols on paper: a pre-trained backbone fine-tuned on 96 x 96 frames.",
    prepare=prepare,
    build=build,
    training=TRAINING,
    features=lambda frames, params: frames_to_inputs(frames),
    sensor="camera",
    frame_buffer_bytes=FRAME_BUFFER_BYTES,
    extra_report=scratch_report,
    examples=examples,
)
