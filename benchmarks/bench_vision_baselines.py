"""Baselines of the two shipped image sets, for the vision projects to beat (issue 19).

    python benchmarks/bench_vision_baselines.py                  # both sets, seeds 0 1 2
    python benchmarks/bench_vision_baselines.py --sets cars --seeds 0 1 2 3 4 --json out.json

``images`` (4 classes; test = scene families never seen in training):

- ``majority``: always the most common training class;
- ``nearest_centroid``: standardised 24 x 24 pixels, nearest class mean (numpy, no seed);
- ``tiny_cnn``: four blocks of 3x3 convolution, batch normalisation, ReLU and 2x2 max pooling
  (16-32-32-64 filters), global max pooling, softmax (about 33 k parameters); trained from
  scratch on the 400 training frames for 40 epochs, no augmentation, no pre-training. Float
  accuracy on the test scenes per seed, by light condition, and the median.
- ``--reference``: the same network trained on 1,600 more frames of the training families
  (seed 9697), for 15 epochs: what more data, or a good pre-trained backbone, can reach.

``cars`` (count per frame; test = street families never seen in training):

- ``constant``: always the median training count (the best constant for the absolute error);
- ``tiny_fomo``: three 3x3 convolutions with stride 2 (8-16-32 filters) to a 12 x 12 grid,
  one more 3x3 convolution, then a 1x1 convolution to a per-cell car probability (FOMO's
  shape); the target is ``centroid_grid > 0``, car cells weighted 3x. The count is the number of
  cells above 0.5 that are also the highest of their 3 x 3 neighbourhood (a car's blob spreads
  over neighbouring cells; counting every cell over 0.5 doubles the error); count MAE per frame,
  and cell precision / recall of those peak cells (a predicted cell is right if a true centre
  lies in it or in one of its 8 neighbours).

Medians over ``--seeds``. Times are wall-clock on whatever machine runs this (on a shared
2-core machine they are inflated).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tinyml_edu import datasets  # noqa: E402
from tinyml_edu.generators.baseline import nearest_centroid_accuracy  # noqa: E402


def _pool(x: np.ndarray, factor: int = 4) -> np.ndarray:
    n, h, w, _ = x.shape
    return x.reshape(n, h // factor, factor, w // factor, factor).mean(axis=(2, 4)).reshape(n, -1)


def _classifier(keras, classes: int):
    layers = [keras.Input((96, 96, 1)), keras.layers.Rescaling(1 / 127.5, offset=-1)]
    for filters in (16, 32, 32, 64):
        layers += [keras.layers.Conv2D(filters, 3, padding="same", use_bias=False),
                   keras.layers.BatchNormalization(), keras.layers.ReLU(),
                   keras.layers.MaxPooling2D()]
    layers += [keras.layers.GlobalMaxPooling2D(),
               keras.layers.Dense(classes, activation="softmax")]
    model = keras.Sequential(layers)
    model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def images_baselines(seeds: list[int], epochs: int, reference: bool) -> dict:
    ds = datasets.load("images")
    (xtr, ytr), (xva, yva), (xte, yte) = (ds.split(s) for s in datasets.SPLITS)
    out: dict = {"majority": float(np.mean(yte == np.bincount(ytr).argmax())),
                 "nearest_centroid": nearest_centroid_accuracy(_pool(xtr), ytr, _pool(xte), yte)}
    import keras

    cond = ds.arrays["condition_test"]

    def train_and_score(seed: int, x: np.ndarray, y: np.ndarray, epochs: int) -> dict:
        keras.utils.set_random_seed(seed)
        model = _classifier(keras, len(ds.info.classes))
        start = time.perf_counter()
        model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
        seconds = time.perf_counter() - start
        pred = model.predict(xte, verbose=0).argmax(axis=1)
        return {"seed": seed, "test_accuracy": float(np.mean(pred == yte)),
                "val_accuracy": float(np.mean(model.predict(xva, verbose=0).argmax(1) == yva)),
                "test_accuracy_by_condition": {c: float(np.mean((pred == yte)[cond == c]))
                                               for c in np.unique(cond)},
                "params": int(model.count_params()), "train_s": round(seconds, 1)}

    runs = [train_and_score(seed, xtr, ytr, epochs) for seed in seeds]
    out["tiny_cnn"] = {"runs": runs, "epochs": epochs,
                       "median_test_accuracy": statistics.median(r["test_accuracy"]
                                                                 for r in runs)}
    if reference:
        from tinyml_edu.generators import images

        more = images._frames(ds.info.seed + 1, images.CLASSES, 400, images.FAMILIES["train"],
                              stream=11)
        x, y = np.concatenate([xtr, more["x"]]), np.concatenate([ytr, more["y"]])
        runs = [train_and_score(seed, x, y, 15) for seed in seeds]
        out["tiny_cnn_2000_frames"] = {
            "runs": runs, "epochs": 15,
            "median_test_accuracy": statistics.median(r["test_accuracy"] for r in runs)}
    return out


def _peaks(prob: np.ndarray) -> np.ndarray:
    """``prob`` where a cell is the highest of its 3 x 3 neighbourhood, else 0."""
    n, h, w = prob.shape
    padded = np.pad(prob, ((0, 0), (1, 1), (1, 1)), constant_values=-1.0)
    top = np.max([padded[:, dr:dr + h, dc:dc + w] for dr in range(3) for dc in range(3)], axis=0)
    return np.where(prob >= top, prob, 0.0)


def _cell_scores(prob: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Precision and recall of predicted cells (prob > 0.5) against true centre cells, a
    neighbouring cell counting as a hit."""
    pred = prob > 0.5
    grow = np.zeros_like(truth, bool)
    padded = np.pad(truth > 0, ((0, 0), (1, 1), (1, 1)))
    for dr in range(3):
        for dc in range(3):
            grow |= padded[:, dr:dr + truth.shape[1], dc:dc + truth.shape[2]]
    precision = float((pred & grow).sum() / max(pred.sum(), 1))
    hit = np.zeros_like(pred)
    padded = np.pad(pred, ((0, 0), (1, 1), (1, 1)))
    for dr in range(3):
        for dc in range(3):
            hit |= padded[:, dr:dr + pred.shape[1], dc:dc + pred.shape[2]]
    recall = float(((truth > 0) & hit).sum() / max((truth > 0).sum(), 1))
    return precision, recall


def cars_baselines(seeds: list[int], epochs: int) -> dict:
    ds = datasets.load("cars")
    (xtr, ytr), (xva, yva), (xte, yte) = (ds.split(s) for s in datasets.SPLITS)
    constant = float(np.median(ytr))
    out: dict = {"constant": {"value": constant,
                              "test_count_mae": float(np.mean(np.abs(yte - constant))),
                              "val_count_mae": float(np.mean(np.abs(yva - constant)))},
                 "test_mean_count": float(yte.mean()), "train_mean_count": float(ytr.mean())}
    import keras

    grid_tr = (datasets.centroid_grid(ds.centroids("train")) > 0).astype("float32")[..., None]
    grid_te = datasets.centroid_grid(ds.centroids("test"))
    runs = []
    for seed in seeds:
        keras.utils.set_random_seed(seed)
        layers = [keras.Input((96, 96, 1)), keras.layers.Rescaling(1 / 255)]
        for filters in (8, 16, 32):
            layers.append(keras.layers.Conv2D(filters, 3, strides=2, padding="same",
                                              activation="relu"))
        layers += [keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
                   keras.layers.Conv2D(1, 1, activation="sigmoid")]
        model = keras.Sequential(layers)
        weights = 1.0 + 2.0 * grid_tr[..., 0]  # car cells are rare: weight them 3x
        model.compile(keras.optimizers.Adam(3e-3), "binary_crossentropy")
        start = time.perf_counter()
        model.fit(xtr, grid_tr, sample_weight=weights, epochs=epochs, batch_size=32, verbose=0)
        seconds = time.perf_counter() - start
        prob = _peaks(model.predict(xte, verbose=0)[..., 0])
        counts = (prob > 0.5).sum(axis=(1, 2))
        precision, recall = _cell_scores(prob, grid_te)
        cond = ds.arrays["condition_test"]
        runs.append({"seed": seed, "test_count_mae": float(np.mean(np.abs(counts - yte))),
                     "test_count_mae_by_condition": {
                         c: float(np.mean(np.abs(counts - yte)[cond == c]))
                         for c in np.unique(cond)},
                     "cell_precision": precision, "cell_recall": recall,
                     "params": int(model.count_params()), "train_s": round(seconds, 1)})
    out["tiny_fomo"] = {"runs": runs, "epochs": epochs,
                        "median_test_count_mae": statistics.median(r["test_count_mae"]
                                                                   for r in runs)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=["images", "cars"],
                        choices=["images", "cars"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--reference", action="store_true",
                        help="also train images' CNN on 2,000 frames (slow)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    results = {}
    if "images" in args.sets:
        results["images"] = images_baselines(args.seeds, args.epochs, args.reference)
    if "cars" in args.sets:
        results["cars"] = cars_baselines(args.seeds, args.epochs)
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
