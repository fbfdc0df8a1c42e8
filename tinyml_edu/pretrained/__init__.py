"""Models trained by the course, shipped so a lesson can start where an earlier one ended.

``pretrained/kws/`` is a finished run folder (``report.json`` and ``model_int8.tflite``) of
``TF_ENABLE_ONEDNN_OPTS=0 tinyml-edu run kws --seed 0`` (its report names the versions it was
made with). Lesson 15 listens with it when the student has no ``runs/kws`` of their own from
lesson 04; ``benchmarks/bench_listen.py`` measures it. Retrain it with that command and copy
those two files here; nothing is downloaded.

``pretrained/cars/`` is the same for ``tinyml-edu run cars --seed 0`` (about three minutes of
training on a 2-core laptop, too long for a lesson), with its ``model_float32.tflite`` too:
lesson 18 counts cars with both and compares them. ``tests/test_project_cars.py`` checks that
they still count as their report says.
"""

from __future__ import annotations

from pathlib import Path

from tinyml_edu.errors import UnknownNameError

_HERE = Path(__file__).resolve().parent


def names() -> list[str]:
    return sorted(p.name for p in _HERE.iterdir() if (p / "report.json").is_file())


def run_dir(name: str) -> Path:
    """The shipped run folder of project ``name`` (e.g. ``"kws"``)."""
    folder = _HERE / name
    if not (folder / "report.json").is_file():
        raise UnknownNameError(f"no pretrained model for {name!r}; shipped: {', '.join(names())}")
    return folder
