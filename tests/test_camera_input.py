"""camera_input: a camera frame -> the model's frame, as Pillow computes it (the reference the
board's C code and the virtual board follow; tests/test_firmware.py checks the C against it)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tinyml_edu import camera_input, protocol
from tinyml_edu.projects import cars, images


def pillow_frame(image: np.ndarray, size: int) -> np.ndarray:
    """What `tinyml-edu predict` computed with Pillow before camera_input existed."""
    gray = Image.fromarray(image).convert("L")
    w, h = gray.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    square = gray.crop((left, top, left + side, top + side))
    return np.asarray(square.resize((size, size), Image.Resampling.BILINEAR))


SHAPES = [(120, 160), (144, 176), (240, 320), (96, 96), (95, 95), (48, 64), (100, 50),
          (97, 131), (5, 7), (1, 1)]


@pytest.mark.parametrize(("height", "width"), SHAPES)
@pytest.mark.parametrize("colour", [False, True])
def test_model_frame_is_pillows_bilinear_resize_bit_for_bit(height, width, colour):
    rng = np.random.default_rng(height * 1000 + width)
    image = rng.integers(0, 256, (height, width, 3) if colour else (height, width), np.uint8)
    for size in (96, 12, 33):
        np.testing.assert_array_equal(camera_input.model_frame(image, size),
                                      pillow_frame(image, size))


def test_smooth_pictures_and_extremes_too():
    rows, cols = np.mgrid[0:120, 0:160]
    ramp = ((rows * 2 + cols) % 256).astype(np.uint8)
    for image in (ramp, np.zeros((120, 160), np.uint8), np.full((120, 160), 255, np.uint8),
                  np.stack([ramp, 255 - ramp, ramp // 2], axis=-1)):
        np.testing.assert_array_equal(camera_input.model_frame(image, 96),
                                      pillow_frame(image, 96))


def test_gray_is_pillows_convert_l():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (64, 64, 3), np.uint8)
    np.testing.assert_array_equal(camera_input.to_gray(rgb),
                                  np.asarray(Image.fromarray(rgb).convert("L")))
    gray = rgb[..., 0]
    assert camera_input.to_gray(gray) is gray and camera_input.to_gray(gray[..., None]).ndim == 2
    with pytest.raises(ValueError, match="uint8"):
        camera_input.to_gray(gray.astype(np.float32))


def test_a_frame_of_the_models_size_passes_unchanged():
    frame = np.random.default_rng(2).integers(0, 256, (96, 96), np.uint8)
    np.testing.assert_array_equal(camera_input.model_frame(frame, 96), frame)
    weights = camera_input.resize_weights(96, 96)[2]
    assert set(weights[:, 0]) == {1 << camera_input.PRECISION_BITS}  # weight 1, then 0s
    assert not weights[:, 1:].any()


def test_the_weights_of_each_model_pixel_sum_to_one():
    for in_size, out_size in ((120, 96), (240, 96), (48, 96), (7, 3)):
        first, count, weights = camera_input.resize_weights(in_size, out_size)
        sums = weights.sum(axis=1)
        assert np.all(np.abs(sums - (1 << camera_input.PRECISION_BITS)) <= weights.shape[1])
        assert np.all(first + count <= in_size) and np.all(first >= 0)
        assert weights.shape[1] == (-(-in_size // out_size) * 2 + 1 if in_size > out_size else 3)


def test_camera_pixels_are_what_an_rgb565_camera_delivers():
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (12, 16, 3), np.uint8)
    delivered = camera_input.camera_pixels(rgb)
    frame = protocol.encode_camera_frame(0, rgb)
    (event,) = protocol.StreamParser().feed(frame)
    np.testing.assert_array_equal(delivered, event.image())  # what the host receives
    np.testing.assert_array_equal(camera_input.camera_pixels(delivered), delivered)
    gray = rgb[..., 0]
    np.testing.assert_array_equal(camera_input.camera_pixels(gray), gray)


def test_the_projects_count_the_sketchs_camera_frame_and_feed_pixel_over_255():
    assert camera_input.FRAME_BUFFER_BYTES == 160 * 120
    for project in (images, cars):
        assert project.PROJECT.frame_buffer_bytes == camera_input.FRAME_BUFFER_BYTES
        frames = np.arange(256, dtype=np.uint8).repeat(36).reshape(1, 96, 96, 1)
        np.testing.assert_array_equal(project.frames_to_inputs(frames),
                                      frames.astype(np.float32) / 255.0)


def test_what_the_sketch_can_and_cannot_feed():
    good = {"input": "camera", "frame": 96, "channels": 1, "scale": 1 / 255}
    assert camera_input.sketch_problem(good) is None
    assert "channels" in camera_input.sketch_problem({**good, "channels": 3})
    assert "255" in camera_input.sketch_problem({**good, "scale": 1 / 127.5})
    assert "frame" in camera_input.sketch_problem({**good, "frame": 128})
    settings = camera_input.sketch_settings({**good, "cells": 12, "peak_threshold": 0.5})
    assert (settings["width"], settings["height"], settings["pixel_format"]) == (
        160, 120, "grayscale8")
    assert (settings["count_cells"], settings["peak_threshold"]) == (12, 0.5)
    assert camera_input.sketch_settings(good)["count_cells"] == 0


def test_cars_centroids_are_the_centres_of_the_counted_cells():
    heat = np.zeros((12, 12, 2), np.float32)
    heat[2, 3, 1], heat[2, 4, 1], heat[9, 0, 1] = 0.9, 0.7, 0.6  # one blob over two cells
    params = {"frame": 96, "peak_threshold": 0.5}
    assert cars.describe(heat, params) == ("2 cars", pytest.approx(0.6))
    assert cars.centroids(heat, params) == [(2 * 8 + 4, 3 * 8 + 4), (9 * 8 + 4, 4)]
