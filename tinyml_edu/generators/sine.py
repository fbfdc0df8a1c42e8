"""The "hello world" of TinyML: learn y = sin(x) from noisy samples (as TFLM's hello_world)."""

from __future__ import annotations

import numpy as np

TASK = "regression"
DESCRIPTION = "Noisy samples of y = sin(x) for x in [0, 2*pi): the TinyML hello world."
CLASSES: tuple[str, ...] = ()
SAMPLE_RATE = None
LICENSE = "CC0-1.0"
DEFAULT_SEED = 1337
NOISE_STD = 0.1
EXAMPLES = 1000
FRACTIONS = {"train": 0.6, "val": 0.2, "test": 0.2}


def generate(seed: int = DEFAULT_SEED, scale: float = 1.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = max(10, int(EXAMPLES * scale))
    x = rng.uniform(0.0, 2 * np.pi, size=(n, 1)).astype(np.float32)
    y = (np.sin(x) + rng.normal(0.0, NOISE_STD, size=(n, 1))).astype(np.float32)
    n_train = int(n * FRACTIONS["train"])
    n_val = int(n * FRACTIONS["val"])
    cuts = {"train": slice(0, n_train), "val": slice(n_train, n_train + n_val),
            "test": slice(n_train + n_val, n)}
    arrays: dict[str, np.ndarray] = {}
    for split, cut in cuts.items():
        arrays[f"x_{split}"] = x[cut]
        arrays[f"y_{split}"] = y[cut]
    return arrays
