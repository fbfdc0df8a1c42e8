"""report.md explains its figures: the two arena sizes, small-model variants, labelled plots."""

import numpy as np

from tinyml_edu import report

REPORT = {
    "project": "sine", "dataset": "sine", "train_seconds": 7.5, "float_mae": 0.098,
    "int8_mae": 0.1, "variants": {"float32": 3164, "float16": 3880, "dynamic": 3164,
                                  "int8": 2568},
    "arena_bytes": 1504, "arena_source": "tflm", "min_arena_bytes": 1938, "macs": 288,
    "boards": {"virtual": {"fits": True, "flash_bytes": 90000, "ram_bytes": 20000,
                           "latency_ms": 0.01, "latency_source": "measured"}},
    "artifacts": {"training curve": "history.png", "int8 model": "model_int8.tflite"},
}


def test_report_explains_the_two_arena_figures(tmp_path):
    text = report.write_markdown(REPORT, tmp_path / "report.md").read_text()
    assert "Tensor arena: **1,504 bytes** (measured with the real TFLM kernels)" in text
    assert "plus a 10 % margin" in text
    assert "Smallest arena the host's TFLM interpreter accepts: 1,938 bytes" in text
    assert "larger than the figure above, not smaller" in text and "recording allocator" in text
    assert "smallest arena that allocates" not in text  # the old, misleading wording


def test_report_says_why_float16_and_dynamic_are_not_smaller(tmp_path):
    text = report.write_markdown(REPORT, tmp_path / "report.md").read_text()
    assert "float16 is not smaller here" in text and "Dequantize" in text
    assert "dynamic is about the size of float32" in text and "1,024 elements" in text
    bigger = {**REPORT, "variants": {"float32": 40000, "float16": 21000, "dynamic": 11000,
                                     "int8": 10500}}
    text = report.write_markdown(bigger, tmp_path / "report.md").read_text()
    assert "float16 is not smaller" not in text and "dynamic is about" not in text


def test_estimated_arena_has_no_smallest_figure(tmp_path):
    estimated = {**REPORT, "arena_source": "estimate", "min_arena_bytes": None}
    text = report.write_markdown(estimated, tmp_path / "report.md").read_text()
    assert "estimated from tensor sizes" in text and "Smallest arena" not in text


def test_fit_plot_has_labelled_axes(tmp_path, monkeypatch):
    plt = report._pyplot()
    labels = {}
    real_savefig = plt.Figure.savefig

    def record(fig, *args, **kwargs):
        ax = fig.axes[0]
        labels.update(x=ax.get_xlabel(), y=ax.get_ylabel())
        return real_savefig(fig, *args, **kwargs)

    monkeypatch.setattr(plt.Figure, "savefig", record)
    x = np.linspace(0, 6.28, 20)
    report.plot_regression_fit(x, np.sin(x), {"int8": np.sin(x)}, tmp_path / "fit.png")
    assert "input" in labels["x"] and "output" in labels["y"]
    assert (tmp_path / "fit.png").stat().st_size > 0
