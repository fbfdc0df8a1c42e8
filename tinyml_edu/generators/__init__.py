"""Seeded generators for the data sets that ship in ``datasets/``.

One module per data set. Each defines ``TASK``, ``DESCRIPTION``, ``CLASSES``, ``SAMPLE_RATE``,
``LICENSE`` and ``DEFAULT_SEED``, and one of two ways to make the data:

- ``write_files(folder, seed, scale) -> list[Path]``: clip data sets (audio) write their own
  ``index.csv`` and ``clips.zip``, which ``tinyml_edu.datasets`` reads back. A clip module may
  also define ``generate`` (its tests use the arrays), but ``write_files`` is what ships.
- ``generate(seed, scale) -> dict``: every other data set returns the arrays
  ``x_train, y_train, x_val, y_val, x_test, y_test`` (and optional extras), saved as one
  ``<name>.npz``.

``tinyml_edu.datasets.generator_module`` checks this contract when it loads a module. Modules
that are not data sets hold shared code: ``baseline`` (the datasheets' sanity baselines),
``clips`` (FLAC archives), ``camera`` (the camera model of the image sets ``images`` and
``cars``) and ``kws_stream``.
"""
