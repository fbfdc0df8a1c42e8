"""A camera frame -> the frame a camera model reads, the same way everywhere.

The inference sketch on the Nano 33 BLE Sense (``tinyml_edu_image.c``, set up by
``tinyml_edu_camera_input.h``), the virtual board and ``tinyml-edu predict`` on pictures all
bring a frame to the model this way, bit for bit (``tests/test_firmware.py`` compiles the C with
g++ and compares):

1. **Grayscale.** A grayscale8 frame stays as it is. An RGB one (an RGB565 camera's pixels,
   each channel widened to 8 bits as ``protocol.rgb565_to_rgb`` does) becomes ITU-R 601-2 luma
   in 16-bit fixed point, as Pillow's ``convert("L")``: ``(19595 R + 38470 G + 7471 B + 32768)
   >> 16``.
2. **The largest centred square**: ``side = min(w, h)``, from ``left = (w - side) // 2``,
   ``top = (h - side) // 2``.
3. **Scaled to size x size** with Pillow's ``BILINEAR`` resize, in Pillow's own integer
   arithmetic: a triangle filter, widened by the scale when the picture shrinks (so every
   camera pixel counts, no aliasing), weights in 22-bit fixed point, the rows first, each pass
   rounded to 8 bits.

Then the project's features (``pixel / 255``) and the model's input quantization.

The sketch's camera (``CAMERA_*``): the OV7675 of the Tiny Machine Learning Kit through
``Arduino_OV767X``, 160 x 120 (QQVGA, its smallest size) grayscale, one byte a pixel. Its frame
buffer, ``FRAME_BUFFER_BYTES``, is what the camera projects count against the board's RAM in
the fit table: the sketch writes the 96 x 96 model frame straight into the model's input
tensor, so it holds no other picture.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinyml_edu import protocol

CAMERA_WIDTH, CAMERA_HEIGHT = 160, 120  # QQVGA: the sketch's camera frame
CAMERA_PIXEL_FORMAT = "grayscale8"
CAMERA_FPS = 5  # what Arduino_OV767X runs the OV7675 at on the Nano (1 or 5)
FRAME_BUFFER_BYTES = (CAMERA_WIDTH * CAMERA_HEIGHT
                      * protocol.BYTES_PER_PIXEL[CAMERA_PIXEL_FORMAT])  # 19,200
PIXEL_DIVISOR = 255.0  # the camera projects' features: pixel / 255
PRECISION_BITS = 22  # Pillow's fixed-point weights for 8-bit pictures (Resample.c)


def to_gray(image: np.ndarray) -> np.ndarray:
    """uint8 (h, w) as it is; (h, w, 3) RGB -> Pillow's ``convert("L")`` (16-bit fixed point)."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"camera frames are uint8, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        return image
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"a camera frame is (height, width) or (height, width, 3), got "
                         f"{image.shape}")
    rgb = image.astype(np.uint32)
    luma = rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 0x8000
    return (luma >> 16).astype(np.uint8)


def centred_square(height: int, width: int) -> tuple[int, int, int]:
    """(top, left, side) of the largest centred square of a height x width frame."""
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side


def _triangle(x: float) -> float:
    x = -x if x < 0.0 else x
    return 1.0 - x if x < 1.0 else 0.0


def resize_weights(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pillow's bilinear weights from ``in_size`` pixels to ``out_size``: for each output
    pixel the first input pixel, how many it reads, and their weights in fixed point (sum
    about ``2**PRECISION_BITS``); (first, count, weights (out_size, taps)).

    Computed in double precision in Pillow's order (``precompute_coeffs`` and
    ``normalize_coeffs_8bpc`` of libImaging/Resample.c); the sketch's C does the same."""
    if in_size < 1 or out_size < 1:
        raise ValueError(f"sizes must be positive, got {in_size} -> {out_size}")
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale
    taps = int(math.ceil(support)) * 2 + 1
    ss = 1.0 / filterscale
    first = np.zeros(out_size, np.int64)
    count = np.zeros(out_size, np.int64)
    weights = np.zeros((out_size, taps), np.int64)
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)  # int(): truncation, as C's cast
        xmax = min(int(center + support + 0.5), in_size) - xmin
        k = [_triangle(((x + xmin) - center + 0.5) * ss) for x in range(xmax)]
        ww = 0.0
        for w in k:  # summed in order, as the C loop
            ww += w
        for x, w in enumerate(k):
            w = w / ww if ww != 0.0 else w
            weights[xx, x] = (int(0.5 + w * (1 << PRECISION_BITS)) if w >= 0
                              else int(-0.5 + w * (1 << PRECISION_BITS)))
        first[xx], count[xx] = xmin, xmax
    return first, count, weights


def _resample_matrix(in_size: int, out_size: int) -> np.ndarray:
    first, count, weights = resize_weights(in_size, out_size)
    matrix = np.zeros((out_size, in_size), np.int64)
    for xx in range(out_size):
        matrix[xx, first[xx]:first[xx] + count[xx]] = weights[xx, :count[xx]]
    return matrix


def _clip8(acc: np.ndarray) -> np.ndarray:
    """A fixed-point sum (with its rounding half added) -> 0..255, as Pillow's clip8."""
    return np.clip(acc >> PRECISION_BITS, 0, 255).astype(np.uint8)


def resize_square(gray: np.ndarray, size: int) -> np.ndarray:
    """A square grayscale picture scaled to size x size: Pillow's ``resize((size, size),
    BILINEAR)``, rows then columns, each pass rounded to 8 bits."""
    gray = np.asarray(gray, np.uint8)
    side = gray.shape[0]
    if gray.ndim != 2 or gray.shape[1] != side:
        raise ValueError(f"resize_square takes a square grayscale picture, got {gray.shape}")
    if side == size:
        return gray.copy()
    matrix = _resample_matrix(side, size)
    half = 1 << (PRECISION_BITS - 1)
    rows = _clip8(gray.astype(np.int64) @ matrix.T + half)  # (side, size): each row scaled
    return _clip8(matrix @ rows.astype(np.int64) + half)


def model_frame(image: np.ndarray, size: int) -> np.ndarray:
    """One camera frame, (h, w) grayscale or (h, w, 3) RGB uint8 -> the model's (size, size)
    uint8 frame: grayscale, the centred square, scaled."""
    gray = to_gray(image)
    top, left, side = centred_square(*gray.shape)
    return resize_square(gray[top:top + side, left:left + side], size)


def model_frames(images: Any, size: int) -> np.ndarray:
    """Camera frames -> uint8 (n, size, size, 1), what the camera projects' ``features``
    take."""
    return np.stack([model_frame(image, size) for image in images])[..., None]


def camera_pixels(image: np.ndarray) -> np.ndarray:
    """A picture as a camera delivers it: grayscale unchanged, RGB through RGB565 and back
    (the low bits of each channel lost), i.e. what the host receives in a camera frame."""
    image = np.asarray(image, np.uint8)
    if image.ndim == 3 and image.shape[2] == 3:
        height, width = image.shape[:2]
        return protocol.rgb565_to_rgb(protocol.rgb_to_rgb565(image), width, height)
    return image


def pixel_inputs(frames: np.ndarray) -> np.ndarray:
    """uint8 model frames -> float32 ``pixel / 255``: the camera projects' model input."""
    return (np.asarray(frames).astype(np.float32) / PIXEL_DIVISOR).astype(np.float32)


def sketch_problem(feature_params: dict[str, Any]) -> str | None:
    """Why the inference sketch cannot compute this camera model's input, or None."""
    if feature_params.get("input") != "camera":
        return "the run's feature parameters do not say input=camera"
    if int(feature_params.get("channels", 1)) != 1:
        return "the sketch feeds grayscale frames (channels 1)"
    frame = int(feature_params.get("frame") or 0)
    if not 1 <= frame <= min(CAMERA_WIDTH, CAMERA_HEIGHT):
        return f"frame {frame} is not a size the sketch can cut from its camera frame"
    if abs(float(feature_params.get("scale", 0.0)) * PIXEL_DIVISOR - 1.0) > 1e-9:
        return "the sketch's model input is pixel / 255 (feature parameter scale = 1/255)"
    return None


def sketch_settings(feature_params: dict[str, Any]) -> dict[str, Any]:
    """What ``model_settings.h`` tells the sketch's camera code (``export.settings_header``):
    the camera frame and, for a counting model (``cells``), the grid and the peak threshold."""
    return {"width": CAMERA_WIDTH, "height": CAMERA_HEIGHT,
            "pixel_format": CAMERA_PIXEL_FORMAT, "fps": CAMERA_FPS,
            "frame_buffer_bytes": FRAME_BUFFER_BYTES,
            "count_cells": int(feature_params.get("cells") or 0),
            "peak_threshold": float(feature_params.get("peak_threshold") or 0.0)}
