"""Hand-drawn symbols on paper, seen by a kit camera: 96 x 96 grayscale frames.

Why these classes: a student can make them in a minute with a marker and a sheet of paper, and
hold them in front of the Nano's OV7675 or the XIAO's OV2640; and a generator can draw them
convincingly (dark strokes on a light sheet). Real objects, faces or hands cannot be synthesised
convincingly with numpy, so the course does not pretend to.

Each frame: a background surface (one of several *scene families*), a sheet of paper at a
random position, size, rotation and slight tilt, sometimes a thumb holding it, a symbol drawn in
a wobbly marker stroke, then the camera model of ``camera.expose`` (light level from day to
night, uneven light, shadow, vignetting, defocus, motion blur, shot and read noise, 8 bits).

The target classes are ``circle``, ``cross``, ``triangle`` and ``none`` (blank paper, or no
paper at all). Splits differ in *scene*: train, val and test use different background families,
so test accuracy measures a new desk, not a new seed. ``pretraining`` makes a larger set of
*other* symbols (square, star, arrow, ...) on the training families only, for the backbone we
pre-train for transfer learning; it is regenerated on demand (``python -m
tinyml_edu.generators.images --pretraining``), not shipped.
"""

from __future__ import annotations

import numpy as np

from tinyml_edu.generators import camera

TASK = "classification"
DESCRIPTION = (
    "Hand-drawn symbols on paper (circle, cross, triangle, none) seen by a small camera: 96 x 96 "
    "grayscale uint8 frames with day to night light, blur, noise, pose and clutter; train, val "
    "and test use different scene (background) families."
)
CLASSES: tuple[str, ...] = ("circle", "cross", "triangle", "none")
PRETRAIN_CLASSES: tuple[str, ...] = ("square", "star", "arrow", "heart", "zigzag", "spiral",
                                     "check", "hash")
SAMPLE_RATE = None
LICENSE = "CC0-1.0"
DEFAULT_SEED = 9696
PRETRAIN_SEED = 6969

SIZE = camera.SIZE
PER_CLASS = {"train": 100, "val": 40, "test": 80}  # frames per class at scale 1
PRETRAIN_PER_CLASS = 1000
# Scene families (backgrounds) per split: no test background is seen in training.
FAMILIES = {"train": ("wood", "fabric", "books"), "val": ("tiles",),
            "test": ("newsprint", "stone")}
CONDITIONS = ("day", "indoor", "night")
CONDITION_WEIGHTS = (0.4, 0.4, 0.2)
NONE_NO_PAPER = 0.4  # share of ``none`` frames without any paper in view

EXTRA = {
    "image": "uint8 grayscale, shape (96, 96, 1); 0 black, 255 white",
    "families": {k: list(v) for k, v in FAMILIES.items()},
    "conditions": list(CONDITIONS),
    "light_ranges": {k: list(v) for k, v in camera.LIGHT_RANGES.items()},
    "groups": "group_<split>: scene family of each frame; condition_<split>: day, indoor or "
              "night; light_<split>: light level (1.0 = bright overcast day)",
    "pretraining": {"classes": list(PRETRAIN_CLASSES), "per_class": PRETRAIN_PER_CLASS,
                    "seed": PRETRAIN_SEED, "families": list(FAMILIES["train"]),
                    "command": "python -m tinyml_edu.generators.images --pretraining OUT.npz"},
}


# ---------------------------------------------------------------------------------------------
# Backgrounds (albedo on the 2x drawing grid)


def background(rng: np.random.Generator, family: str) -> np.ndarray:
    rr, cc = camera.coords()
    n = rr.shape[0]
    if family == "wood":
        # Grain: stripes along a random direction, their phase warped by smooth noise.
        a = rng.uniform(0, np.pi)
        u = rr * np.cos(a) + cc * np.sin(a)
        warp = camera.smooth_noise(rng, 3) * rng.uniform(6, 18)
        period = rng.uniform(3, 9)
        grain = 0.5 + 0.5 * np.sin(2 * np.pi * (u + warp) / period)
        base = rng.uniform(0.25, 0.55)
        return base * (0.8 + 0.25 * grain + 0.15 * camera.fractal_noise(rng, 8, 2))
    if family == "fabric":
        # A woven cloth: fine crossing threads and a soft fold.
        period = rng.uniform(1.5, 3.0)
        weave = np.sin(2 * np.pi * rr / period) * np.sin(2 * np.pi * cc / period)
        base = rng.uniform(0.15, 0.75)
        fold = camera.smooth_noise(rng, 2)
        return base * (0.85 + 0.1 * weave + 0.3 * (fold - 0.5))
    if family == "books":
        # A desk with books, a phone and a pen: random dark and light rectangles.
        out = np.full((n, n), rng.uniform(0.3, 0.6)) * (0.9 + 0.2 * camera.smooth_noise(rng, 3))
        for _ in range(rng.integers(2, 6)):
            centre = rng.uniform(0, SIZE, 2)
            half = rng.uniform([4, 10], [14, 40])
            rot = camera.rotation(rng.uniform(-0.4, 0.4) + rng.choice([0, np.pi / 2]))
            corners = centre + (np.array([[-1, -1], [-1, 1], [1, 1], [1, -1]]) * half) @ rot.T
            out[camera.convex_polygon(rr, cc, corners)] = rng.uniform(0.05, 0.9)
        return out
    if family == "tiles":
        size = rng.uniform(12, 30)
        a = rng.uniform(-0.3, 0.3)
        u, v = rr * np.cos(a) + cc * np.sin(a), -rr * np.sin(a) + cc * np.cos(a)
        grout = (np.abs((u % size) - size / 2) > size / 2 - 0.8) | \
                (np.abs((v % size) - size / 2) > size / 2 - 0.8)
        tone = rng.uniform(0.4, 0.85)
        out = tone * (0.92 + 0.12 * camera.fractal_noise(rng, 6, 2))
        out[grout] = tone * rng.uniform(0.3, 0.7)
        return out
    if family == "newsprint":
        # A newspaper under the sheet: rows of small dark "words" on grey paper.
        out = np.full((n, n), rng.uniform(0.55, 0.8))
        line = rng.uniform(2.5, 4.5)
        a = rng.uniform(-0.5, 0.5)
        u, v = rr * np.cos(a) + cc * np.sin(a), -rr * np.sin(a) + cc * np.cos(a)
        words = camera.smooth_noise(rng, 24) > 0.45
        ink = ((u % line) < line * 0.55) & words & (np.sin(v * rng.uniform(2.0, 3.5)) > -0.3)
        out[ink] *= rng.uniform(0.3, 0.6)
        return out
    if family == "stone":
        # Granite or terrazzo: speckles of several sizes.
        base = rng.uniform(0.3, 0.7)
        speck = camera.fractal_noise(rng, 40, 2)
        spots = camera.smooth_noise(rng, 16)
        return base * (0.75 + 0.4 * speck) * np.where(spots > 0.8, 0.5, 1.0)
    raise ValueError(f"unknown scene family {family!r}")


# ---------------------------------------------------------------------------------------------
# Symbols, as polylines in a unit box (coordinates about -1..1), drawn with a wobbly hand


def _circle(rng):
    start = rng.uniform(0, 2 * np.pi)
    turn = rng.uniform(0.9, 1.1) * 2 * np.pi * rng.choice([-1, 1])
    t = start + np.linspace(0, turn, 48)
    aspect = rng.uniform(0.75, 1.25)
    return [np.stack([np.sin(t) * aspect, np.cos(t)], 1)]


def _cross(rng):
    a = rng.uniform(0, np.pi)
    b = a + np.pi / 2 + rng.uniform(-0.3, 0.3)
    return [np.array([[np.sin(x), np.cos(x)], [-np.sin(x), -np.cos(x)]]) * rng.uniform(0.8, 1)
            for x in (a, b)]


def _polygon(rng, k, jitter=0.15):
    t = rng.uniform(0, 2 * np.pi) + np.arange(k + 1) * 2 * np.pi / k
    pts = np.stack([np.sin(t), np.cos(t)], 1)
    pts[:-1] += rng.normal(0, jitter, (k, 2))
    pts[-1] = pts[0] + rng.normal(0, 0.05, 2)  # the pen rarely closes exactly
    return [pts]


def _star(rng):
    t = rng.uniform(0, 2 * np.pi) + np.arange(6) * 4 * np.pi / 5  # a pentagram, one stroke
    return [np.stack([np.sin(t), np.cos(t)], 1) + rng.normal(0, 0.06, (6, 2))]


def _arrow(rng):
    head = rng.uniform(0.3, 0.5)
    pts = [np.array([[0, -1], [0, 1]]), np.array([[head, 1 - head], [0, 1], [-head, 1 - head]])]
    return _rotate(pts, rng.uniform(0, 2 * np.pi))


def _heart(rng):
    t = np.linspace(0, 2 * np.pi, 48)
    x = 16 * np.sin(t) ** 3
    y = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
    return _rotate([np.stack([-y, x], 1) / 16], rng.normal(0, 0.4))


def _zigzag(rng):
    k = int(rng.integers(3, 6))
    x = np.linspace(-1, 1, k + 1)
    y = np.where(np.arange(k + 1) % 2 == 0, -0.5, 0.5)
    return _rotate([np.stack([y, x], 1)], rng.uniform(0, np.pi))


def _spiral(rng):
    t = np.linspace(0, rng.uniform(3.5, 5.5) * np.pi, 80)
    r = t / t[-1]
    return _rotate([np.stack([r * np.sin(t), r * np.cos(t)], 1)], rng.uniform(0, 2 * np.pi))


def _check(rng):
    pts = np.array([[0.0, -0.8], [0.6, -0.2], [-0.9, 0.9]])
    return _rotate([pts + rng.normal(0, 0.08, pts.shape)], rng.normal(0, 0.3))


def _hash(rng):
    s = rng.uniform(0.3, 0.5)
    lines = [np.array([[-1, -s], [1, -s]]), np.array([[-1, s], [1, s]]),
             np.array([[-s, -1], [-s, 1]]), np.array([[s, -1], [s, 1]])]
    return _rotate(lines, rng.uniform(0, np.pi / 2))


def _rotate(strokes, angle):
    rot = camera.rotation(angle)
    return [np.asarray(s, float) @ rot.T for s in strokes]


SYMBOLS = {"circle": _circle, "cross": _cross, "triangle": lambda rng: _polygon(rng, 3),
           "square": lambda rng: _polygon(rng, 4, 0.1), "star": _star, "arrow": _arrow,
           "heart": _heart, "zigzag": _zigzag, "spiral": _spiral, "check": _check,
           "hash": _hash}


def _wobble(rng, pts, amount):
    """Resample a stroke densely and add a smooth hand tremor."""
    seg = np.hypot(*np.diff(pts, axis=0).T)
    s = np.concatenate([[0], np.cumsum(seg)])
    t = np.linspace(0, s[-1], max(8, int(s[-1] * 12)))
    dense = np.stack([np.interp(t, s, pts[:, 0]), np.interp(t, s, pts[:, 1])], 1)
    k = np.linspace(0, 1, len(t))
    for _ in range(2):
        f = rng.uniform(1, 4)
        dense += amount * np.sin(2 * np.pi * (f * k + rng.uniform(0, 1, 2)[:, None])).T
    return dense


# ---------------------------------------------------------------------------------------------
# One frame


def make_frame(rng: np.random.Generator, label: str, family: str,
               condition: str) -> tuple[np.ndarray, float]:
    """One uint8 frame (96, 96) of ``label`` on a ``family`` background; and its light level."""
    rr, cc = camera.coords()
    albedo = background(rng, family)
    paper = not (label == "none" and rng.random() < NONE_NO_PAPER)
    if paper:
        centre = SIZE / 2 + rng.normal(0, 7, 2)
        half = rng.uniform(24, 46) * np.array([1.0, rng.uniform(0.75, 1.35)])
        rot = camera.rotation(rng.uniform(-0.5, 0.5))
        corners = np.array([[-1, -1], [-1, 1], [1, 1], [1, -1]]) * half
        corners = centre + (corners + rng.normal(0, 0.06, (4, 2)) * half) @ rot.T  # tilt
        sheet = camera.convex_polygon(rr, cc, corners)
        tone = rng.uniform(0.72, 0.95) if rng.random() < 0.8 else rng.uniform(0.45, 0.7)
        albedo = np.where(sheet, tone * (0.97 + 0.04 * camera.smooth_noise(rng, 5)), albedo)
        if label != "none":
            size = min(half) * rng.uniform(0.45, 0.8)
            where = centre + rng.normal(0, 0.08, 2) * half
            width = rng.uniform(0.7, 1.8)  # half the stroke width, in pixels
            ink = rng.uniform(0.04, 0.25)
            for stroke in SYMBOLS[label](rng):
                pts = where + _wobble(rng, np.asarray(stroke, float), 0.03) * size
                d = camera.polyline_distance(rr, cc, pts, reach=width + 1)
                albedo = np.where(d < width, ink, albedo)
        if rng.random() < 0.3:  # a thumb holding the sheet at one edge
            k = int(rng.integers(4))
            edge = (corners[k] + corners[(k + 1) % 4]) / 2
            r = rng.uniform(4, 7)
            thumb = np.hypot((rr - edge[0]) / r, (cc - edge[1]) / (1.6 * r)) < 1
            albedo = np.where(thumb, rng.uniform(0.25, 0.6), albedo)
    albedo = camera.downsample(albedo)
    level = camera.draw_light(rng, condition)
    light = camera.illumination(rng, level)
    if rng.random() < 0.35:  # the shadow of the hand or the phone on part of the scene
        shadow = camera.smooth_noise(rng, 2, SIZE) > rng.uniform(0.5, 0.7)
        soft = camera.gaussian_blur(shadow.astype(float), rng.uniform(1.5, 4.0))
        light = light * (1.0 - rng.uniform(0.25, 0.65) * soft)
    defocus = rng.uniform(0.0, 1.6) if rng.random() < 0.6 else 0.0
    motion = (rng.uniform(0, 4), rng.uniform(0, np.pi)) if rng.random() < 0.3 else (0.0, 0.0)
    return camera.expose(rng, albedo, light, defocus=defocus, motion=motion), level


def _frames(seed: int, labels: tuple[str, ...], per_class: int, families: tuple[str, ...],
            stream: int) -> dict[str, np.ndarray]:
    """Frames of every label, ``per_class`` each, spread evenly over ``families``, shuffled."""
    items = [(k, i) for k in range(len(labels)) for i in range(per_class)]
    xs, ys, groups, conditions, lights = [], [], [], [], []
    for k, i in items:
        # One generator per frame: a frame does not depend on how many come before it.
        rng = np.random.default_rng([seed, stream, k, i])
        family = families[(i + k) % len(families)]
        condition = CONDITIONS[rng.choice(len(CONDITIONS), p=CONDITION_WEIGHTS)]
        x, level = make_frame(rng, labels[k], family, condition)
        xs.append(x)
        ys.append(k)
        groups.append(family)
        conditions.append(condition)
        lights.append(level)
    order = np.random.default_rng([seed, stream, 99]).permutation(len(items))
    return {"x": np.stack(xs)[order][..., None], "y": np.array(ys, np.int64)[order],
            "group": np.array(groups)[order], "condition": np.array(conditions)[order],
            "light": np.array(lights, np.float32)[order]}


def split_counts(scale: float = 1.0) -> dict[str, int]:
    """Frames per class in each split."""
    return {s: max(2, int(round(n * scale))) for s, n in PER_CLASS.items()}


def generate(seed: int = DEFAULT_SEED, scale: float = 1.0) -> dict[str, np.ndarray]:
    """``x_<split>`` uint8 (n, 96, 96, 1), ``y_<split>`` int64 class index, and per frame
    ``group_<split>`` (scene family), ``condition_<split>`` and ``light_<split>``."""
    out: dict[str, np.ndarray] = {}
    for stream, (split, per_class) in enumerate(split_counts(scale).items()):
        frames = _frames(seed, CLASSES, per_class, FAMILIES[split], stream)
        out.update({f"{key}_{split}": value for key, value in frames.items()})
    return out


def pretraining(seed: int = PRETRAIN_SEED, per_class: int = PRETRAIN_PER_CLASS
                ) -> dict[str, np.ndarray]:
    """The backbone's pre-training set: ``PRETRAIN_CLASSES`` (none of the target classes) on
    the training families only, so no test scene leaks into the pre-trained weights.
    Keys ``x``, ``y`` (index into ``PRETRAIN_CLASSES``), ``group``, ``condition``, ``light``."""
    return _frames(seed, PRETRAIN_CLASSES, per_class, FAMILIES["train"], stream=7)


def main(argv: list[str] | None = None) -> int:
    import argparse
    from pathlib import Path

    from tinyml_edu.datasets import save_npz_deterministic, sha256_of

    parser = argparse.ArgumentParser(description="Write the images pre-training set.")
    parser.add_argument("--pretraining", type=Path, required=True, metavar="OUT.npz")
    parser.add_argument("--per-class", type=int, default=PRETRAIN_PER_CLASS)
    parser.add_argument("--seed", type=int, default=PRETRAIN_SEED)
    args = parser.parse_args(argv)
    save_npz_deterministic(args.pretraining, pretraining(args.seed, args.per_class))
    print(f"{args.pretraining}: sha256 {sha256_of(args.pretraining)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
