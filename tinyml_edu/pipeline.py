"""`tinyml-edu run PROJECT`: the whole path for one project, data -> board-ready files.

    load data -> features -> build + train (float) -> int8 -> evaluate both -> profile -> export

Everything lands in one folder: ``report.json`` (what other tools read), ``report.md`` with plots,
the ``.tflite`` variants and the C sources for a sketch. The run is written to a staging folder
first and moved into place only when it succeeded, so a failed run never destroys the results
of an earlier one.
"""

from __future__ import annotations

import dataclasses
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tinyml_edu import __version__, datasets, report
from tinyml_edu._fs import check_out_dir, staged_dir
from tinyml_edu.metrics import confusion_matrix, mean_squared_error, roc_auc
from tinyml_edu.projects import PROJECTS, get_project
from tinyml_edu.projects.base import Prepared, Project
from tinyml_edu.run_report import (
    CONFUSION_PLOT,
    EXAMPLES_PLOT,
    EXPORT_DIR,
    FIT_PLOT,
    REPORT_FILE,
    REPORT_MD_FILE,
    TRAINING_PLOT,
    RunReport,
    model_file,
)

if TYPE_CHECKING:  # keep importing this module free of TensorFlow
    import keras

    from tinyml_edu.train import TrainResult

Log = Callable[[str], None]


def load_data(project_name: str, data: Path | str | None = None) -> datasets.Dataset:
    """The project's shipped data set, or your own recordings in its shape (see
    ``datasets.load_folder``): same classes, window length and sample rate."""
    project = get_project(project_name)
    if data is None:
        return datasets.load(project.dataset)
    shipped = datasets.info(project.dataset)
    window = int(shipped.input_shape[0])
    is_imu = len(shipped.input_shape) == 2
    return datasets.load_folder(data, window=window, stride=window // 2 if is_imu else window,
                                sample_rate=shipped.sample_rate, classes=shipped.classes,
                                channels=shipped.input_shape[1] if is_imu else None)


def train_model(project: Project, prep: Prepared, task: str, seed: int = 0,
                progress: bool = True) -> tuple[keras.Model, TrainResult]:
    """Build the project's model from ``seed`` and train it with the project's settings."""
    from tinyml_edu import train

    train.set_seed(seed)  # before building: the initial weights come from this seed too
    model = project.build(prep)
    fit_x, fit_y = prep.x["train"], prep.y["train"]
    val_x, val_y = prep.x["val"], prep.y["val"]
    if task == "anomaly":  # an autoencoder learns to reproduce normal windows
        fit_y, val_x = fit_x, val_x[prep.y["val"] == 0]
        val_y = val_x
    result = train.fit(model, fit_x, fit_y, val_x, val_y, config=project.training, seed=seed,
                       progress=progress)
    return model, result


SMOKE_EXAMPLES = 16  # per split: enough for one batch of every project's model


def _few_of_each_class(labels: np.ndarray, task: str) -> np.ndarray:
    if task == "regression":
        return np.arange(min(SMOKE_EXAMPLES, len(labels)))
    return np.concatenate([np.flatnonzero(labels == c)[:2] for c in np.unique(labels)])


def train_one_step(project_name: str, seed: int = 0) -> float:
    """Build the project's model and train it for one step on a few examples of its shipped
    data; return the loss. The cheap way to learn that this machine's TensorFlow kernels can
    train the model at all (TF's default CPU kernels refuse some ops that oneDNN's accept)."""
    from tinyml_edu import train

    project = get_project(project_name)
    ds = datasets.load(project.dataset)
    small = datasets.Dataset(ds.info, {})
    for split in datasets.SPLITS:  # every class appears: some prepare steps pick by class
        keep = _few_of_each_class(ds.arrays[f"y_{split}"], ds.info.task)
        small.arrays.update({key: array[keep] for key, array in ds.arrays.items()
                             if key.endswith(f"_{split}")})
    prep = project.prepare(small)
    train.set_seed(seed)
    model = project.build(prep)
    x = prep.x["train"][:SMOKE_EXAMPLES]
    y = x if ds.info.task == "anomaly" else prep.y["train"][:SMOKE_EXAMPLES]
    import keras

    model.compile(optimizer=keras.optimizers.Adam(project.training.learning_rate),
                  loss=project.training.loss)
    return float(model.train_on_batch(x, y))


def run(project_name: str, out_dir: Path | str, seed: int = 0, progress: bool = True,
        log: Log = print, data: Path | str | None = None) -> dict[str, Any]:
    """Run one project end to end; return the report (also written to ``out_dir``).

    ``data``: a folder of your own recordings to train on instead of the shipped data set."""
    from tinyml_edu import export, profile, quantize

    project = get_project(project_name)
    out_dir = Path(out_dir)
    check_out_dir(out_dir, lambda d: (d / REPORT_FILE).exists(), "a tinyml-edu run",
                  " (an earlier run's folder is replaced)")
    started = time.perf_counter()
    with staged_dir(out_dir) as stage:  # an earlier run of ours (checked above) is replaced
        log(f"[1/6] data: loading and checking {str(data or project.dataset)!r}")
        ds = load_data(project.name, data)
        prep = project.prepare(ds)
        task = ds.info.task

        log(f"[2/6] train: {project.description}")
        model, result = train_model(project, prep, task, seed=seed, progress=progress)
        log(f"      {result.epochs_run} epochs in {result.seconds:.1f} s "
            f"(best epoch {result.best_epoch})")

        log("[3/6] quantize: float32, float16, dynamic range and full int8")
        variants = {mode: quantize.convert(model, mode, representative=prep.x["train"],
                                           per_channel_dense=project.per_channel_dense)
                    for mode in ("float32", "float16", "dynamic", "int8")}
        artifacts: dict[str, str] = {}
        for mode, blob in variants.items():
            (stage / model_file(mode)).write_bytes(blob)
            artifacts[f"{mode} model"] = model_file(mode)

        log("[4/6] evaluate: float32 and int8 on the test split")
        x_test, y_test = prep.x["test"], prep.y["test"]
        metrics: dict[str, Any] = {}
        preds = {mode: quantize.predict(variants[mode], x_test) for mode in ("float32", "int8")}
        if project.evaluate is not None:  # counting: peaks of the heatmap, not argmax
            metrics.update(project.evaluate(preds, prep))
        elif task == "regression":
            for mode, name in (("float32", "float"), ("int8", "int8")):
                metrics[f"{name}_mae"] = float(np.mean(np.abs(preds[mode] - y_test)))
            report.plot_regression_fit(x_test, y_test, preds, stage / FIT_PLOT)
            artifacts["fit plot"] = FIT_PLOT
        elif task == "classification":
            matrices = {}
            for mode, name in (("float32", "float"), ("int8", "int8")):
                predicted = preds[mode].argmax(axis=-1)
                metrics[f"{name}_accuracy"] = float(np.mean(predicted == y_test))
                matrices[f"{name} ({metrics[f'{name}_accuracy']:.1%})"] = confusion_matrix(
                    y_test, predicted, len(prep.labels))
            report.plot_confusion(matrices, prep.labels, stage / CONFUSION_PLOT)
            artifacts["confusion matrices"] = CONFUSION_PLOT
        else:  # anomaly: how badly the autoencoder reproduces a window is its score
            score = project.anomaly_score or mean_squared_error
            for mode, name in (("float32", "float"), ("int8", "int8")):
                metrics[f"{name}_auc"] = roc_auc(score(x_test, preds[mode]), y_test != 0)
        if project.examples is not None:
            project.examples(x_test, preds["int8"], prep, stage / EXAMPLES_PLOT)
            artifacts["example frames"] = EXAMPLES_PLOT
        report.plot_history(result.history, stage / TRAINING_PLOT)
        artifacts["training curve"] = TRAINING_PLOT
        log("      " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))

        log("[5/6] profile: TFLM arena, ops, fit on each board")
        prof = profile.profile(variants["int8"], extra_ram_bytes=project.frame_buffer_bytes)
        extra: dict[str, Any] = {}
        if project.frame_buffer_bytes:
            extra["frame_buffer_bytes"] = project.frame_buffer_bytes
        if project.extra_report is not None:
            log("      comparison: " + project.name)
            extra.update(project.extra_report(prep, seed))

        log("[6/6] export: C array and settings for the sketch")
        interp = quantize.interpreter(variants["int8"])
        in_scale, in_zero = interp.get_input_details()[0]["quantization"]
        arena_for_sketch = int(prof.arena_bytes * (1 + profile.ARENA_MARGIN))
        for path in export.write_sketch_sources(stage / EXPORT_DIR, variants["int8"],
                                                prep.labels, arena_for_sketch,
                                                prep.feature_params, float(in_scale),
                                                int(in_zero), export.listen_settings(
                                                    prep.labels, prep.feature_params, task)):
            artifacts[path.name] = f"{EXPORT_DIR}/{path.name}"

        rep = RunReport(
            project=project.name,
            dataset=str(data) if data else project.dataset,
            task=task,
            classes=prep.labels,
            metrics=metrics,
            model_bytes=len(variants["int8"]),
            arena_bytes=prof.arena_bytes,
            arena_source=prof.arena_source,
            min_arena_bytes=prof.min_arena_bytes,
            macs=prof.macs,
            ops=prof.op_counts(),
            train_seconds=round(result.seconds, 3),
            epochs=result.epochs_run,
            boards={bid: {"fits": fit.fits, "flash_bytes": fit.flash_bytes,
                          "ram_bytes": fit.ram_bytes, "latency_ms": fit.latency_ms,
                          "latency_source": fit.latency_source}
                    for bid, fit in prof.boards.items()},
            variants={mode: len(blob) for mode, blob in variants.items()},
            feature_params=prep.feature_params,
            seed=seed,
            versions=_versions(),
            artifacts={**artifacts, "report": REPORT_MD_FILE},
            extra=extra,
        )
        report.write_markdown(rep.to_dict(), stage / REPORT_MD_FILE)
        rep = dataclasses.replace(rep, total_seconds=round(time.perf_counter() - started, 3))
        rep.write(stage)

    log(f"done in {rep.total_seconds:.1f} s: {out_dir / REPORT_MD_FILE}")
    return rep.to_dict()


def _versions() -> dict[str, str]:
    from importlib import metadata

    found = {"tinyml-edu": __version__, "python": platform.python_version()}
    for dist in ("tensorflow-cpu", "tensorflow", "ai-edge-litert", "tflite-micro", "numpy"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return found


# roc_auc stays importable from here: notebooks handed out before tinyml_edu.metrics call
# pipeline.roc_auc.
__all__ = ["PROJECTS", "get_project", "roc_auc", "run", "train_one_step"]
