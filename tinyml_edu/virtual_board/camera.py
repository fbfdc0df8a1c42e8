"""The virtual board's camera: a folder of pictures, a shipped image data set, or a small test
card made here, played as camera frames (``protocol.encode_camera_frame``) at ``CAMERA_FPS``.

A real camera has one frame size, so the pictures are brought to one: kept as they are when
they all share a size of QVGA (320x240) or less, else scaled to cover ``CAMERA_SIZE``
(160x120, what ``firmware/capture_camera_nano`` sends by default) and cut to it around their
centre. Grayscale pictures are sent as grayscale8 frames, all others as rgb565.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyml_edu import protocol
from tinyml_edu.virtual_board.errors import VirtualBoardError

CAMERA_FPS = 5.0  # capture_camera_nano's default frame rate
CAMERA_SIZE = (160, 120)  # (width, height): capture_camera_nano's default, QQVGA
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
MAX_IMAGES = 300  # a student's folder of phone photos: enough to play, little memory
TEST_CARD = "test-card"  # --source test-card: the built-in frames
TEST_CARD_LABELS = ("bars", "circle", "square")
TEST_CARD_FRAMES = 4  # per label


def camera_stream(source: str | Path | None, label: str | None = None):  # -> SensorStream
    """The frames the virtual camera plays: ``source`` a folder of pictures (``<label>/*.png``,
    or pictures straight in it), one picture, a shipped image data set or ``test-card``; None:
    the shipped image set if installed, else the test card. A data set's name or ``test-card``
    means that even where a folder has the name (``./cars`` for the folder). ``label``: only
    that class when the source has it (else all, and ``note`` says so)."""
    from tinyml_edu import datasets
    from tinyml_edu.virtual_board.streams import source_path, with_note

    known = datasets.registry()
    path, shadowed = source_path(source, [*known, TEST_CARD])
    if path is not None and path.is_dir():
        return _folder(path, label)
    if path is not None and path.is_file():
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise VirtualBoardError(f"{path}: the virtual camera plays pictures "
                                    f"({', '.join(IMAGE_SUFFIXES)}), a folder of them, a shipped "
                                    f"image data set or {TEST_CARD}")
        frames = _fit([_read_image(path)])
        return _stream(frames, f"{path.name}, shown again and again", "")
    if source is None:
        from tinyml_edu.virtual_board.streams import DEFAULT_SOURCES

        source = next((n for n in DEFAULT_SOURCES["camera"] if n in known), TEST_CARD)
    name = str(source)
    if name == TEST_CARD:
        return with_note(_test_card_stream(label), shadowed)
    if name not in known:
        raise VirtualBoardError(f"unknown source {name!r}: give a folder of pictures "
                                f"(<label>/*.png or .jpg), a picture, {TEST_CARD} or a shipped "
                                f"data set ({', '.join(known)})")
    return with_note(_dataset(name, label), shadowed)


def _stream(frames: np.ndarray, description: str, note: str):
    from tinyml_edu.virtual_board.streams import SensorStream

    height, width = frames.shape[1:3]
    pixel_format = "grayscale8" if frames.ndim == 3 else "rgb565"
    return SensorStream("camera", CAMERA_FPS, (f"{width}x{height}",), (pixel_format,), frames,
                        description, note)


# ---------------------------------------------------------------------------------------------
# Pictures to frames of one size


def _read_image(path: Path) -> np.ndarray:
    """uint8 (h, w) for a grayscale picture, (h, w, 3) RGB for any other."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            gray = image.mode in ("L", "1", "I;16", "I", "LA")
            return np.asarray(image.convert("L" if gray else "RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as err:
        raise VirtualBoardError(f"{path} is not a picture the virtual camera can read ({err}); "
                                "remove it or save it again as PNG or JPEG") from err


def _cover(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale ``image`` to cover width x height, then cut that much around its centre."""
    from PIL import Image

    h, w = image.shape[:2]
    scale = max(width / w, height / h)
    size = (max(width, round(w * scale)), max(height, round(h * scale)))
    scaled = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
    top, left = (size[1] - height) // 2, (size[0] - width) // 2
    return scaled[top:top + height, left:left + width]


def _fit(images: list[np.ndarray]) -> np.ndarray:
    """The pictures as frames of one size and one pixel format: (n, h, w) or (n, h, w, 3)."""
    if all(image.ndim == 2 for image in images):
        pictures = images
    else:
        pictures = [np.repeat(i[..., None], 3, axis=2) if i.ndim == 2 else i for i in images]
    sizes = {p.shape[:2] for p in pictures}
    height, width = sizes.pop() if len(sizes) == 1 else CAMERA_SIZE[::-1]
    if width > protocol.MAX_CAMERA_WIDTH or height > protocol.MAX_CAMERA_HEIGHT:
        width, height = CAMERA_SIZE
    return np.stack([p if p.shape[:2] == (height, width) else _cover(p, width, height)
                     for p in pictures])


def _folder(folder: Path, label: str | None):
    labels = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    note = ""
    if label and label in labels:
        files = _pictures(folder / label)
    else:
        if label:
            note = (f"{folder} has no {label}/ folder (it has {', '.join(labels) or 'none'}): "
                    "the virtual camera shows all its pictures")
        files = _pictures(folder) + [f for name in labels for f in _pictures(folder / name)]
    if not files:
        raise VirtualBoardError(f"no pictures ({', '.join(IMAGE_SUFFIXES)}) in {folder} or its "
                                "label folders: capture some with `tinyml-edu capture --sensor "
                                f"camera`, or use --source {TEST_CARD}")
    more = len(files) - MAX_IMAGES
    if more > 0:
        files = files[:MAX_IMAGES]
        note = (note + "; " if note else "") + (f"{folder} has {more} more pictures than the "
                                                f"{MAX_IMAGES} the virtual camera shows")
    frames = _fit([_read_image(f) for f in files])
    which = f"{label}/ of " if label and label in labels else ""
    return _stream(frames, f"{which}{folder} ({len(files)} pictures, "
                           f"{frames.shape[2]}x{frames.shape[1]})", note)


def _pictures(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _dataset(name: str, label: str | None):
    from tinyml_edu import datasets
    from tinyml_edu.virtual_board.streams import _only_label

    ds = datasets.load(name)
    x, y = ds.split("test")
    x, note = _only_label(x, y, ds.info.classes, label, f"data set {name!r}")
    if x.ndim == 4 and x.shape[3] == 1:
        x = x[..., 0]
    if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[3] != 3) or len(x) == 0:
        raise VirtualBoardError(f"data set {name!r} does not hold pictures (its test split is "
                                f"{x.shape}); give the camera a folder of pictures")
    if x.dtype != np.uint8:  # float pictures: [0, 1] or [0, 255]
        top = 1.0 if float(np.max(x)) <= 1.0 else 255.0
        x = np.clip(np.round(x.astype(np.float32) * (255.0 / top)), 0, 255).astype(np.uint8)
    frames = _fit(list(x[:MAX_IMAGES]))
    which = f"label {label!r} of the " if label and not note else ""
    return _stream(frames, f"{which}{name} test split ({len(frames)} pictures, "
                           f"{frames.shape[2]}x{frames.shape[1]})", note)


# ---------------------------------------------------------------------------------------------
# The test card: a few frames made here, so the camera works before any picture exists


def make_test_card(label: str | None = None) -> tuple[np.ndarray, list[str]]:
    """``TEST_CARD_FRAMES`` frames of each of ``TEST_CARD_LABELS`` (colour bars, a disc, a
    square, each shifted a little from frame to frame), 160x120 RGB; the same every time."""
    width, height = CAMERA_SIZE
    rows, cols = np.mgrid[0:height, 0:width]
    palette = np.array([[235, 235, 235], [235, 235, 16], [16, 235, 235], [16, 235, 16],
                        [235, 16, 235], [235, 16, 16], [16, 16, 235], [16, 16, 16]], np.uint8)
    frames, labels = [], []
    for name in TEST_CARD_LABELS if label is None else (label,):
        for k in range(TEST_CARD_FRAMES):
            frame = np.empty((height, width, 3), np.uint8)
            frame[...] = (np.clip(60 + rows * 0.6 + k * 10, 0, 255)).astype(np.uint8)[..., None]
            cx, cy = 50 + 20 * k, 45 + 10 * (k % 2)
            if name == "bars":
                frame[...] = palette[((cols + 7 * k) * len(palette) // width) % len(palette)]
            elif name == "circle":
                frame[(cols - cx) ** 2 + (rows - cy) ** 2 <= 22 ** 2] = (200, 40, 40)
            else:
                frame[(abs(cols - cx) <= 20) & (abs(rows - cy) <= 20)] = (40, 40, 200)
            frames.append(frame)
            labels.append(name)
    return np.stack(frames), labels


def _test_card_stream(label: str | None):
    note = ""
    if label and label not in TEST_CARD_LABELS:
        note = (f"the test card has no {label!r} frames (it has {', '.join(TEST_CARD_LABELS)}): "
                "the virtual camera shows all of them")
        label = None
    frames, _ = make_test_card(label)
    which = f"label {label!r} of the " if label else "the "
    return _stream(frames, f"{which}built-in test card ({len(frames)} frames, "
                           f"{CAMERA_SIZE[0]}x{CAMERA_SIZE[1]})", note)
