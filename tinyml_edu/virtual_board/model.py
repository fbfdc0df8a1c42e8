"""The flashed model on the virtual board: raw window -> features -> runtime -> top label.

A camera model reads one frame at a time, brought to the model's frame by
``camera_input.model_frame`` (what the inference sketch and ``tinyml-edu predict`` compute,
bit for bit) after the camera's own pixel format (RGB pictures as an RGB565 camera delivers
them). A counting model (a project with ``describe``, e.g. cars) gives the count as its label
("3_cars") and, with ``locate``, where the counted objects are (``centroids``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from tinyml_edu import runtime
from tinyml_edu.virtual_board.errors import VirtualBoardError


def default_model_input(meta: dict[str, Any]) -> Callable[[np.ndarray], np.ndarray]:
    """Raw window -> float model input: the project's own feature function when the model came
    from a known project, else the generic features named by ``feature_params``."""
    from tinyml_edu import features, projects

    if meta.get("sensor") == "none":
        return lambda window: np.asarray(window, np.float32).reshape(-1)  # the sine demo's x
    fp = meta.get("feature_params") or {}
    project = projects.PROJECTS.get(meta.get("project", ""))
    if meta.get("sensor") == "camera":
        return _camera_model_input(project, fp)
    if project is not None and project.features is not None:
        return lambda window: project.features(window[np.newaxis], fp)[0]
    if "kind" in fp:
        audio_params = features.AudioFeatureParams.from_dict(fp)
        return lambda window: features.audio_features(window, audio_params)
    if "channels" in fp:
        imu_params = features.ImuFeatureParams.from_dict(fp)
        return lambda window: features.scale_imu(window, imu_params)
    raise VirtualBoardError("deploy.json has no feature_params, so the board does not know how "
                            "to turn sensor data into model input: deploy from a run folder, or "
                            "give VirtualBoard(model_input=...)")


def _camera_model_input(project: Any, fp: dict[str, Any]) -> Callable[[np.ndarray], np.ndarray]:
    """One camera frame (a window of one) -> the model's input, as the sketch computes it."""
    from tinyml_edu import camera_input

    if not fp.get("frame"):
        raise VirtualBoardError("deploy.json gives no frame size (feature_params frame), so the "
                                "board cannot bring camera frames to the model: deploy from a "
                                "run folder")
    size = int(fp["frame"])
    features = (project.features if project is not None and project.features is not None
                else lambda frames, params: camera_input.pixel_inputs(frames))

    def model_input(window: np.ndarray) -> np.ndarray:
        frames = camera_input.model_frames([camera_input.camera_pixels(window[0])], size)
        return features(frames, fp)[0]

    return model_input


def _roomy_arena(reserved: int) -> int:
    """The arena the runtime gets: not the sketch's, since for some too-small arenas
    tflite-micro crashes the process instead of failing. A multiple of 16, as the sketch's and
    the profiler's are: the used total shifts by a few bytes with the end's alignment."""
    return max(2 * reserved + 4096, 16 * 1024) // 16 * 16


class ArenaTooSmall(VirtualBoardError):
    """The sketch's arena is smaller than the one the model needs: AllocateTensors() fails."""

    def __init__(self, used: int, reserved: int) -> None:
        super().__init__(f"AllocateTensors() failed: the model needs {used} arena bytes but the "
                         f"sketch reserves {reserved} (arena_bytes in deploy.json)")
        self.used, self.reserved = used, reserved


class ModelRunner:
    """Runs a flashed model on raw windows: features, int8 quantization, the board's runtime
    (TFLM where it installs, else LiteRT), top label (or, for the sine demo, label ``y`` and
    the predicted value)."""

    def __init__(self, model_bytes: bytes, meta: dict[str, Any],
                 model_input: Callable[[np.ndarray], np.ndarray] | None = None,
                 backend: str | None = None) -> None:
        self.meta = meta
        self.labels = [str(label).replace(" ", "_") for label in meta.get("labels") or []]
        self.model_input = model_input or default_model_input(meta)
        self.regression = meta.get("sensor") == "none"  # the sine demo reports y = model(x)
        from tinyml_edu import projects

        project = projects.PROJECTS.get(str(meta.get("project", "")))
        self.feature_params = dict(meta.get("feature_params") or {})
        # Counting (cars): the label is the count ("3_cars"), and where they are.
        self.describe = project.describe if project is not None else None
        self.locate = project.locate if project is not None else None
        self.centroids: list[tuple[int, int]] | None = None  # of the last inference
        # What the sketch reserves: deploy's arena_bytes rounded up to 16 (kTensorArenaSize).
        self.arena_reserved = (int(meta.get("arena_bytes") or 0) + 15) // 16 * 16
        self.interp = runtime.load(model_bytes, backend or runtime.board_backend(),
                                   arena_size=_roomy_arena(self.arena_reserved))
        self.backend = self.interp.backend
        self.arena_used = self.interp.arena_used or 0  # 0: a runtime without an arena
        if self.arena_reserved and self.arena_used > self.arena_reserved:
            raise ArenaTooSmall(self.arena_used, self.arena_reserved)
        inp, out = self.interp.input, self.interp.output
        if inp.dtype not in (np.int8, np.float32):
            raise VirtualBoardError(f"model input is {inp.dtype}; the board feeds int8 or "
                                    "float32")
        if self.regression and inp.size != 1:
            raise VirtualBoardError(f"the model takes {inp.size} input values "
                                    "but the sine demo (sensor none) feeds it one, x")
        self.scores = np.zeros(0, np.float32)  # every class's score of the last inference
        # (scale, zero point) the sketch quantizes with, when not the model's (a board bug)
        self.input_quantization: tuple[float, int] | None = None
        if (self.labels and not self.regression and self.describe is None
                and len(self.labels) != out.size):
            raise VirtualBoardError(f"the model has {out.size} outputs but deploy.json "
                                    f"lists {len(self.labels)} labels")

    def __call__(self, window: np.ndarray) -> tuple[str, float, float]:
        """(label, score, invoke milliseconds) for one raw window."""
        inp, out = self.interp.input, self.interp.output
        x = np.asarray(self.model_input(window), np.float32).reshape(inp.shape)
        if self.input_quantization is not None and inp.quantized:
            self.interp.set_input(runtime.quantize_input(x, *self.input_quantization))
        else:
            self.interp.set_input(inp.quantize(x))
        start = time.perf_counter()
        self.interp.invoke()
        ms = (time.perf_counter() - start) * 1000
        y = np.asarray(self.interp.get_output()).reshape(-1)
        if self.regression:
            return "y", float(out.dequantize(y[:1])[0]), ms
        self.scores = np.asarray(out.dequantize(y), np.float32)
        if self.describe is not None:  # e.g. "3 cars" and the lowest probability among them
            output = self.scores.reshape(out.shape[1:])
            text, score = self.describe(output, self.feature_params)
            if self.locate is not None:
                self.centroids = self.locate(output, self.feature_params)
            return text.replace(" ", "_"), float(score), ms
        top = int(np.argmax(y))
        label = self.labels[top] if self.labels else str(top)
        return label, float(self.scores[top]), ms
