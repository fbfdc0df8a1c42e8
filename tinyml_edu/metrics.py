"""How good a model is: the figures `tinyml-edu run` reports and the lessons compute.

Plain NumPy, no TensorFlow: a lesson or a test can import it for a number without building a
model.
"""

from __future__ import annotations

import numpy as np


def roc_auc(scores: np.ndarray, is_positive: np.ndarray) -> float:
    """Area under the ROC curve via the rank-sum (Mann-Whitney) statistic, ties averaged."""
    scores, is_positive = np.asarray(scores, float), np.asarray(is_positive, bool)
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):  # average the ranks of tied scores
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    n_pos, n_neg = is_positive.sum(), (~is_positive).sum()
    if not n_pos or not n_neg:
        raise ValueError("AUC needs both normal and anomalous examples")
    return float((ranks[is_positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts: row = true class, column = predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()), 1)
    return matrix


def mean_squared_error(x: np.ndarray, reconstruction: np.ndarray) -> np.ndarray:
    """The default anomaly score: mean squared reconstruction error per example."""
    flat = x.reshape(len(x), -1)
    return np.mean((reconstruction.reshape(len(flat), -1) - flat) ** 2, axis=1)
