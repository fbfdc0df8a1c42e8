"""The human side of a run: plots and ``report.md`` (``report.json`` is written by the pipeline).

Matplotlib runs on the Agg backend so this works with no screen (a classroom server, CI).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

# The lessons call report.confusion_matrix: re-exported.
from tinyml_edu.metrics import confusion_matrix as confusion_matrix


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_history(history: dict[str, list[float]], path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for key in ("loss", "val_loss"):
        if key in history:
            ax.plot(range(1, len(history[key]) + 1), history[key], label=key)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title("Training curve")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


EXAMPLE_FRAMES = 8  # frames shown per run of a camera project


def plot_frames(frames: np.ndarray, titles: list[str], path: Path,
                heatmaps: np.ndarray | None = None, marks: np.ndarray | None = None) -> Path:
    """Camera frames (n, h, w, 1) in [0, 1] in a row of panels with a title each; optionally a
    coarse heatmap (n, rows, cols) in [0, 1] drawn over each frame in red, and cells (n, rows,
    cols, bool) marked with a circle (e.g. the cars counted)."""
    plt = _pyplot()
    n = len(frames)
    cols = min(n, 4)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    size = frames.shape[1]
    for i, ax in enumerate(axes.ravel()[:n]):
        ax.imshow(frames[i, :, :, 0], cmap="gray", vmin=0, vmax=1, extent=(0, size, size, 0))
        if heatmaps is not None:
            ax.imshow(heatmaps[i], cmap="Reds", vmin=0, vmax=1, alpha=0.45,
                      extent=(0, size, size, 0))
        if marks is not None:
            cell = size / marks.shape[1]
            r, c = np.nonzero(marks[i])
            ax.scatter((c + 0.5) * cell, (r + 0.5) * cell, s=40, facecolors="none",
                       edgecolors="cyan", linewidths=1.2)
        ax.set_title(titles[i], fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_regression_fit(x: np.ndarray, y: np.ndarray, predictions: dict[str, np.ndarray],
                        path: Path) -> Path:
    plt = _pyplot()
    order = np.argsort(x.ravel())
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.scatter(x.ravel(), y.ravel(), s=6, c="lightgray", label="test data")
    for label, pred in predictions.items():
        ax.plot(x.ravel()[order], pred.ravel()[order], label=label)
    ax.set_xlabel("x: the model's input")
    ax.set_ylabel("y: the model's output")
    ax.legend()
    ax.set_title("Model fit on the test split")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_confusion(matrices: dict[str, np.ndarray], labels: list[str], path: Path) -> Path:
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(matrices), figsize=(4.5 * len(matrices), 4.2))
    for ax, (title, matrix) in zip(np.atleast_1d(axes), matrices.items(), strict=True):
        ax.imshow(matrix, cmap="Blues")
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title)
        for (i, j), count in np.ndenumerate(matrix):
            if count:
                ax.text(j, i, str(count), ha="center", va="center", fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# TFLite's dynamic-range quantization leaves weight tensors smaller than this in float32 (the
# converter's kWeightsMinNumElementsDefault).
DYNAMIC_MIN_ELEMENTS = 1024


def _variant_notes(variants: dict[str, int]) -> list[str]:
    """Why a variant is not smaller than float32, when it is not: small models surprise."""
    float32 = variants.get("float32")
    notes = []
    if float32 and variants.get("float16", 0) >= float32:
        notes.append("float16 is not smaller here: it halves the weights but adds a "
                     "Dequantize op (and its tensors) per weight array to turn them back into "
                     "float32 at load time; in a model this small that costs more than it saves.")
    if float32 and abs(variants.get("dynamic", 0) - float32) <= 0.02 * float32:
        notes.append(f"dynamic is about the size of float32: dynamic-range quantization stores "
                     f"only weight arrays of {DYNAMIC_MIN_ELEMENTS:,} elements or more in int8, "
                     "and this model has (almost) none that large.")
    return [""] + [f"- {note}" for note in notes] if notes else []


def _arena_lines(report: dict[str, Any]) -> list[str]:
    """The tensor arena and, when measured, the smallest arena: two different figures."""
    from tinyml_edu.profile import ARENA_MARGIN

    source = ("measured with the real TFLM kernels" if report["arena_source"] == "tflm"
              else "estimated from tensor sizes (no TFLM on this computer)")
    lines = [f"Tensor arena: **{report['arena_bytes']:,} bytes** ({source}): what TFLM "
             "allocates for this model's tensors and its own bookkeeping. This is the figure for "
             f"a board: the sketch reserves it plus a {ARENA_MARGIN * 100:g} % margin "
             "(`kTensorArenaSize`)."]
    min_arena = report.get("min_arena_bytes")
    if min_arena:
        lines += ["", f"Smallest arena the host's TFLM interpreter accepts: {min_arena:,} bytes. "
                  "It is larger than the figure above, not smaller, because the interpreter "
                  "that measures (Python's TFLM, with a recording allocator) keeps its own "
                  "records in the arena too; a board's sketch does not."]
    return lines + ["", f"{report['macs']:,} multiply-accumulates per inference."]


def write_markdown(report: dict[str, Any], path: Path) -> Path:
    """A one-page summary a student can open next to the plots."""
    lines = [f"# tinyml-edu run: {report['project']}", "",
             f"Data set `{report['dataset']}`; trained in {report['train_seconds']:.1f} s.", ""]
    if "float_mae" in report:
        lines += ["| model | MAE on test |", "| --- | ---: |",
                  f"| float32 | {report['float_mae']:.4f} |",
                  f"| int8 | {report['int8_mae']:.4f} |"]
    elif "float_count_mae" in report:
        lines += ["| model | count MAE per frame | centre precision | centre recall |",
                  "| --- | ---: | ---: | ---: |"]
        lines += [f"| {label} | {report[f'{m}_count_mae']:.3f} "
                  f"| {report[f'{m}_centroid_precision']:.3f} "
                  f"| {report[f'{m}_centroid_recall']:.3f} |"
                  for label, m in (("float32", "float"), ("int8", "int8"))]
    else:
        key = "auc" if "float_auc" in report else "accuracy"
        lines += [f"| model | {key} on test |", "| --- | ---: |",
                  f"| float32 | {report[f'float_{key}']:.4f} |",
                  f"| int8 | {report[f'int8_{key}']:.4f} |"]
    lines += ["", "## Size", "",
              "| variant | bytes |", "| --- | ---: |"]
    lines += [f"| {name} | {size:,} |" for name, size in report["variants"].items()]
    lines += _variant_notes(report["variants"])
    lines += ["", *_arena_lines(report), "",
              "## Boards", "",
              "| board | fits | flash bytes | RAM bytes | latency ms | latency source |",
              "| --- | --- | ---: | ---: | ---: | --- |"]
    for board_id, fit in report["boards"].items():
        fits = "yes" if fit["fits"] else "NO"
        lines.append(f"| {board_id} | {fits} | {fit['flash_bytes']:,} | {fit['ram_bytes']:,} "
                     f"| {fit['latency_ms']:.3f} | {fit['latency_source']} |")
    lines += ["", "Flash and RAM include the board's runtime (core + TFLM) as estimated in the "
              "board catalog; RAM includes a margin on the arena."]
    if report.get("frame_buffer_bytes"):
        lines += ["", f"RAM also holds the camera frame buffer: {report['frame_buffer_bytes']:,} "
                  "bytes (the model's 96 x 96 grayscale frame, 1 byte a pixel, after the sketch "
                  "crops and scales the camera's image). A sketch that also keeps the camera's "
                  "whole capture needs more: 160 x 120 is 19,200 bytes in grayscale, 38,400 in "
                  "RGB565."]
    lines += ["", "## Plots", ""]
    lines += [f"![{name}]({rel})" for name, rel in report["artifacts"].items()
              if rel.endswith(".png")]
    lines += ["", "## Files", ""]
    lines += [f"- `{rel}`: {name}" for name, rel in report["artifacts"].items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
