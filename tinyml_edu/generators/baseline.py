"""The sanity baseline several datasheets quote: a nearest-centroid classifier on a few
hand-made features, to show that a data set is learnable and how far from trivial it is."""

from __future__ import annotations

import numpy as np


def nearest_centroid_accuracy(f_train: np.ndarray, y_train: np.ndarray, f_test: np.ndarray,
                              y_test: np.ndarray) -> float:
    """Accuracy on ``f_test`` of a nearest-centroid classifier fitted on ``f_train``.

    Features are standardised with the training mean and standard deviation first, so that no
    feature wins only because of its unit. One centroid per class found in ``y_train``."""
    f_train = np.asarray(f_train, np.float64)
    mu, sd = f_train.mean(axis=0), f_train.std(axis=0) + 1e-9
    classes = np.unique(y_train)
    centroids = np.stack([((f_train - mu) / sd)[y_train == c].mean(axis=0) for c in classes])
    f = (np.asarray(f_test, np.float64) - mu) / sd
    pred = classes[np.argmin(((f[:, None, :] - centroids[None]) ** 2).sum(axis=2), axis=1)]
    return float(np.mean(pred == y_test))
