"""The sanity baselines the datasheets quote: a nearest-centroid classifier and a softmax
regression on a few hand-made features, to show that a data set is learnable and how far from
trivial it is. Features are standardised with the training mean and standard deviation first,
so that no feature wins only because of its unit."""

from __future__ import annotations

import numpy as np


def _standardise(f_train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    f_train = np.asarray(f_train, np.float64)
    mu, sd = f_train.mean(axis=0), f_train.std(axis=0) + 1e-9
    return [(np.asarray(f, np.float64) - mu) / sd for f in (f_train, *others)]


def nearest_centroid_accuracy(f_train: np.ndarray, y_train: np.ndarray, f_test: np.ndarray,
                              y_test: np.ndarray) -> float:
    """Accuracy on ``f_test`` of a nearest-centroid classifier fitted on ``f_train``.

    One centroid per class found in ``y_train``."""
    train, f = _standardise(f_train, f_test)
    classes = np.unique(y_train)
    centroids = np.stack([train[y_train == c].mean(axis=0) for c in classes])
    pred = classes[np.argmin(((f[:, None, :] - centroids[None]) ** 2).sum(axis=2), axis=1)]
    return float(np.mean(pred == y_test))


def softmax_regression_accuracy(f_train: np.ndarray, y_train: np.ndarray, f_test: np.ndarray,
                                y_test: np.ndarray, n_classes: int, steps: int = 600,
                                lr: float = 0.5, l2: float = 1e-3) -> float:
    """Accuracy on ``f_test`` of a softmax regression fitted on ``f_train`` by full-batch
    gradient descent (``steps`` steps of size ``lr``, L2 penalty ``l2`` on the weights).
    Plain numpy and deterministic: the datasheets' figures reproduce exactly."""
    train, test = _standardise(f_train, f_test)
    w, b = np.zeros((train.shape[1], n_classes)), np.zeros(n_classes)
    onehot = np.eye(n_classes)[y_train]
    for _ in range(steps):
        z = train @ w + b
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        g = (p - onehot) / len(train)
        w -= lr * (train.T @ g + l2 * w)
        b -= lr * g.sum(axis=0)
    return float(np.mean(np.argmax(test @ w + b, axis=1) == y_test))
