"""A run folder's contract: ``report.json`` as a typed :class:`RunReport`, and its file names.

`tinyml-edu run` (:mod:`tinyml_edu.pipeline`) writes the report; ``predict``, ``deploy``,
``edge-impulse`` and the CLI read it through :meth:`RunReport.load`. The keys on disk stay what
they always were: a metric is a top-level key (``int8_accuracy``), and keys this class does not
know (``cortex_m4``, which ``tinyml-edu verify`` adds) survive a load and a write unchanged.

A folder with only a model and a hand-written report (``{"project": ..., "task": ...}``) is a
run too, so every field may be absent; absent fields are not written back.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from tinyml_edu._fs import write_atomic
from tinyml_edu.errors import MissingFileError, TinyMLEduError
from tinyml_edu.i18n import _

# What a run folder holds. (``virtual_board.MODEL_FILE`` is another thing: the model file in
# the virtual board's flash.)
REPORT_FILE = "report.json"
REPORT_MD_FILE = "report.md"
EXPORT_DIR = "export"  # the C sources for a sketch
TRAINING_PLOT = "training.png"
CONFUSION_PLOT = "confusion.png"
FIT_PLOT = "fit.png"
EXAMPLES_PLOT = "examples.png"  # camera projects: test frames with predictions
TASKS = ("classification", "regression", "anomaly", "counting")
# float_accuracy, int8_mae, int8_auc, ...: the test-split figures, one top-level key each.
METRIC_KEY = re.compile(r"(float|int8)_(accuracy|mae|auc|count_mae|centroid_precision|"
                        r"centroid_recall)")


def model_file(mode: str) -> str:
    """The file of one quantization variant: ``model_int8.tflite``, ``model_float32.tflite``."""
    return f"model_{mode}.tflite"


INT8_MODEL_FILE = model_file("int8")  # what predict, deploy and the boards run


class RunReportError(TinyMLEduError):
    """A run folder's report.json is missing or unusable; the message says to run again."""


@dataclass(frozen=True)
class RunReport:
    """``report.json`` of a run. ``None`` means the key is absent from the file."""

    project: str | None = None
    dataset: str | None = None
    task: str | None = None
    classes: list[str] | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # written as top-level keys
    model_bytes: int | None = None
    arena_bytes: int | None = None
    arena_source: str | None = None
    min_arena_bytes: int | None = None
    macs: int | None = None
    ops: dict[str, int] | None = None
    train_seconds: float | None = None
    epochs: int | None = None
    boards: dict[str, dict[str, Any]] | None = None
    variants: dict[str, int] | None = None
    feature_params: dict[str, Any] | None = None
    seed: int | None = None
    versions: dict[str, str] | None = None
    artifacts: dict[str, str] | None = None
    total_seconds: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # keys of other writers, kept as is

    def __post_init__(self) -> None:
        for name, kind in (("project", str), ("dataset", str), ("task", str), ("classes", list),
                           ("feature_params", dict), ("boards", dict), ("artifacts", dict)):
            value = getattr(self, name)
            if value is not None and not isinstance(value, kind):
                raise RunReportError(f"{name} must be a {kind.__name__}, not {value!r}")
        if self.task is not None and self.task not in TASKS:
            raise RunReportError(f"task {self.task!r} is none of {', '.join(TASKS)}")
        if self.classes is not None and not all(isinstance(c, str) for c in self.classes):
            raise RunReportError(f"classes must be names (strings), not {self.classes!r}")
        for key, value in self.metrics.items():
            if not METRIC_KEY.fullmatch(key) or not isinstance(value, int | float):
                raise RunReportError(f"metric {key}={value!r} is not a float_/int8_ figure")

    @property
    def labels(self) -> list[str]:
        return list(self.classes or [])

    @property
    def params(self) -> dict[str, Any]:
        """The feature parameters (empty when the report names none)."""
        return dict(self.feature_params or {})

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunReport:
        known = {f.name for f in fields(cls)} - {"metrics", "extra"}
        return cls(**{k: v for k, v in d.items() if k in known},
                   metrics={k: v for k, v in d.items() if METRIC_KEY.fullmatch(k)},
                   extra={k: v for k, v in d.items()
                          if k not in known and not METRIC_KEY.fullmatch(k)})

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, keys in the order the pipeline has always written them."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("metrics", "extra"):
                out.update(value)
            elif value is not None:
                out[f.name] = value
            if f.name == "classes":  # the metrics follow the classes
                out.update(self.metrics)
        return out

    @classmethod
    def load(cls, run_dir: Path | str) -> RunReport:
        """``run_dir/report.json``; a missing or broken one says to run the project again."""
        path = Path(run_dir) / REPORT_FILE
        again = f"run the project again (`tinyml-edu run PROJECT --out {run_dir}`)"
        if not path.is_file():
            raise RunReportError(f"{run_dir} has no {REPORT_FILE}, so it is not a finished "
                                 f"run; {again}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise RunReportError(f"{path} is not readable JSON ({err}); {again}") from err
        if not isinstance(data, dict):
            raise RunReportError(f"{path} holds no JSON object; {again}")
        try:
            return cls.from_dict(data)
        except RunReportError as err:
            raise RunReportError(f"{path}: {err}; {again}") from err

    @classmethod
    def load_finished(cls, run_dir: Path | str) -> tuple[RunReport, Path]:
        """The report of a finished run and the path of its int8 model; a folder without both
        says how to make one."""
        run_dir = Path(run_dir)
        model_path = run_dir / INT8_MODEL_FILE
        if not (run_dir / REPORT_FILE).is_file() or not model_path.is_file():
            raise MissingFileError(_("{run_dir} is not a finished run (needs {report} and "
                                     "{model}); make one with `tinyml-edu run PROJECT --out "
                                     "{run_dir}`").format(run_dir=run_dir, report=REPORT_FILE,
                                                          model=INT8_MODEL_FILE))
        return cls.load(run_dir), model_path

    @classmethod
    def beside(cls, model_path: Path | str) -> RunReport:
        """The report of the run folder a model file sits in; an empty one for a lone model."""
        folder = Path(model_path).parent
        return cls.load(folder) if (folder / REPORT_FILE).is_file() else cls()

    def write(self, run_dir: Path | str) -> Path:
        text = json.dumps(self.to_dict(), indent=2) + "\n"
        return write_atomic(Path(run_dir) / REPORT_FILE, text)
