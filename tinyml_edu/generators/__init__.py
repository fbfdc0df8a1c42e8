"""Seeded generators for the data sets that ship in ``datasets/``.

One module per data set. Each defines ``TASK``, ``DESCRIPTION``, ``CLASSES``, ``SAMPLE_RATE``,
``LICENSE``, ``DEFAULT_SEED`` and ``generate(seed, scale) -> dict`` returning the arrays
``x_train, y_train, x_val, y_val, x_test, y_test``. ``tinyml_edu.datasets.generate`` writes them.
"""
