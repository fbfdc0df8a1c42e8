"""The datasheets' sanity baseline: a nearest-centroid classifier on hand-made features."""

import numpy as np

from tinyml_edu.generators.baseline import nearest_centroid_accuracy


def test_separable_clusters_score_full_marks_and_labels_keep_their_values():
    rng = np.random.default_rng(0)
    centres = {3: (0.0, 0.0), 7: (10.0, 0.0), 9: (0.0, 10.0)}  # labels need not be 0..n-1
    y = np.repeat(list(centres), 50)
    f = np.array([centres[c] for c in y]) + rng.normal(0, 0.5, (len(y), 2))
    assert nearest_centroid_accuracy(f, y, f[::-1], y[::-1]) == 1.0


def test_standardising_stops_one_unit_from_drowning_the_other():
    # Feature 0 is pure noise in large units; feature 1 alone separates the classes.
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], 200)
    f = np.stack([rng.normal(0, 1000, len(y)), y + rng.normal(0, 0.1, len(y))], axis=1)
    assert nearest_centroid_accuracy(f[::2], y[::2], f[1::2], y[1::2]) > 0.7


def test_random_labels_score_near_chance():
    rng = np.random.default_rng(2)
    f, y = rng.normal(size=(2000, 3)), rng.integers(0, 4, 2000)
    assert 0.15 < nearest_centroid_accuracy(f[:1000], y[:1000], f[1000:], y[1000:]) < 0.35
