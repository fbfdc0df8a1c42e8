"""`tinyml-edu predict`: run a trained int8 model on your own recordings.

A recording goes through the same steps as at training time: cut into the windows the model was
trained on, the project's features with the parameters saved in the run's ``report.json``, and
the int8 ``.tflite`` model. A recording longer than one window gets the average of its windows'
scores, so a 3-second gesture recording gives one answer. An audio recording at another
sample rate (a phone's 44.1 kHz, a 22.05 kHz WAV) is resampled to the model's rate first.

A camera model's picture is brought to the model's frame as the board does it
(``camera_input.model_frame``); a counting model (cars) also says where it counted
(``FilePrediction.centroids``, the board's ``C`` line). ``backend``: the runtime, LiteRT by
default; ``"TFLM"`` runs the board's own kernels (tflite-micro), so the answers are the
board's to the last digit (LiteRT rounds a few int8 convolutions one step differently).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyml_edu import camera_input, datasets, quantize, runtime
from tinyml_edu.errors import InputError, MissingFileError
from tinyml_edu.i18n import _
from tinyml_edu.projects import get_project
from tinyml_edu.run_report import RunReport


@dataclass(frozen=True)
class FilePrediction:
    file: str
    label: str
    score: float
    windows: int
    resampled_from: float | None = None  # the file's rate, when it was resampled
    centroids: tuple[tuple[int, int], ...] | None = None  # counting: (row, col) of each one


RATE_TOLERANCE = 0.05  # a rate within 5 % of the model's is used as it is


def resample(audio: np.ndarray, rate: float, target_rate: float) -> np.ndarray:
    """Band-limited resampling of one audio recording (int16 in, int16 out) through its
    spectrum: frequencies above the new Nyquist limit are dropped, not folded back."""
    n_out = max(1, int(round(len(audio) * target_rate / rate)))
    spectrum = np.fft.rfft(audio.astype(np.float64))
    kept = np.zeros(n_out // 2 + 1, dtype=complex)
    n = min(len(kept), len(spectrum))
    kept[:n] = spectrum[:n]
    out = np.fft.irfft(kept, n_out) * (n_out / len(audio))
    return np.clip(np.round(out), -32768, 32767).astype(np.int16)


def _at_model_rate(path: Path, data: np.ndarray, rate: float | None,
                   model_rate: float | None) -> tuple[np.ndarray, float | None]:
    """The recording at the model's rate, and its own rate when it had to be resampled."""
    if not rate or not model_rate or abs(rate - model_rate) <= RATE_TOLERANCE * model_rate:
        return data, None
    if data.ndim == 1:
        return resample(data, rate, model_rate), rate
    raise InputError(_("{path} is {rate} Hz; this model was trained on {model_rate} Hz "
                       "recordings. Record again at {model_rate} Hz (the capture sketch's rate), "
                       "or resample the columns to it before predicting").format(
                           path=path, rate=f"{rate:g}", model_rate=f"{model_rate:g}"))


def _recordings(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix.lower() in datasets.USER_FORMATS)
        elif path.is_file():
            found.append(path)
        else:
            raise MissingFileError(_("{path} not found").format(path=path))
    if not found:
        raise MissingFileError(_("no recordings (.wav, .flac or .csv) in {paths}").format(
            paths=", ".join(map(str, paths))))
    return found


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def _pictures(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            found.append(path)
        else:
            raise MissingFileError(_("{path} not found").format(path=path))
    if not found:
        raise MissingFileError(_("no pictures (.png, .jpg) in {paths}").format(
            paths=", ".join(map(str, paths))))
    return found


def read_frame(path: Path, size: int) -> np.ndarray:
    """A picture as the camera sketch sees it: grayscale, the largest centred square, scaled
    to ``size`` x ``size`` (``camera_input.model_frame``, which the board and the virtual board
    compute alike); uint8 (size, size, 1)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            gray = image.mode in ("L", "1", "I;16", "I", "LA")
            picture = np.asarray(image.convert("L" if gray else "RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as err:
        raise InputError(f"{path} is not a picture tinyml-edu can read ({err}); save it again "
                         "as PNG or JPEG") from err
    return camera_input.model_frame(picture, size)[:, :, None]


def _outputs(model: bytes, x: np.ndarray, backend: str) -> np.ndarray:
    """The model's float outputs for each row of ``x`` on ``backend``."""
    if backend.lower() == "litert":
        return quantize.predict(model, x)
    return runtime.predict(runtime.load(model, backend), x)


def _predict_pictures(report: RunReport, model: bytes, paths: list[Path],
                      backend: str = "LiteRT") -> list[FilePrediction]:
    project = get_project(report.project or "")
    if project.features is None:
        raise InputError(f"project {project.name!r} cannot read pictures")
    size = int(report.params["frame"])
    files = _pictures(paths)
    frames = np.stack([read_frame(path, size) for path in files])
    outputs = _outputs(model, project.features(frames, report.params), backend)
    results = []
    for path, out in zip(files, outputs, strict=True):
        where = None
        if project.describe is not None:  # e.g. counting: "5 cars"
            label, score = project.describe(out, report.params)
            if project.locate is not None:
                where = tuple(project.locate(out, report.params))
        else:
            best = int(np.argmax(out))
            label, score = report.labels[best], float(out[best])
        results.append(FilePrediction(str(path), label, score, 1, centroids=where))
    return results


def predict_files(run_dir: Path | str, paths: list[Path | str],
                  backend: str = "LiteRT") -> list[FilePrediction]:
    """Label each recording in ``paths`` (files or folders) with the int8 model of a run; for
    a camera project, each picture (PNG or JPEG). ``backend``: ``"LiteRT"`` or ``"TFLM"``
    (the board's kernels)."""
    run_dir = Path(run_dir)
    report, model_path = RunReport.load_finished(run_dir)
    if report.params.get("input") == "camera":
        return _predict_pictures(report, model_path.read_bytes(), [Path(p) for p in paths],
                                 backend)
    if report.task != "classification":
        raise InputError(f"predict labels recordings; project {report.project!r} is a "
                         f"{report.task} project")
    project = get_project(report.project or "")
    if project.features is None:
        raise InputError(f"project {project.name!r} cannot compute features for new recordings")
    info = datasets.info(project.dataset)
    window = int(info.input_shape[0])
    stride = int(report.params.get("stride", window))
    model = model_path.read_bytes()
    labels = report.labels

    results = []
    for path in _recordings([Path(p) for p in paths]):
        data, rate = datasets.read_recording(path)
        data, resampled_from = _at_model_rate(path, data, rate, info.sample_rate)
        windows = datasets.cut_windows(data, window, stride)
        if not windows:
            raise InputError(_("{path} is shorter than one window ({window} samples)").format(
                path=path, window=window))
        scores = _outputs(model, project.features(np.stack(windows), report.params), backend)
        mean = scores.mean(axis=0)
        best = int(np.argmax(mean))
        results.append(FilePrediction(str(path), labels[best], float(mean[best]), len(windows),
                                      resampled_from))
    return results
