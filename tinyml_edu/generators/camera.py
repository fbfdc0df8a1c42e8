"""A small grayscale camera model shared by the image generators (``images``, ``cars``).

Scenes are drawn as *albedo* (how much light a surface reflects, 0-1) at twice the output
resolution and averaged down, which gives anti-aliased edges. ``expose`` then does what a cheap
camera module (OV7675, OV2640) does to the light: uneven illumination and vignetting, defocus
and motion blur, auto-exposure with a gain limit, photon (shot) noise, read noise, row banding,
gamma and 8-bit quantisation. In the dark the gain runs out: frames get dark, noisy and
low in contrast, as real night frames do.

Numpy only; every function takes its randomness from the ``rng`` it is given.
"""

from __future__ import annotations

import numpy as np

SIZE = 96  # output frames are SIZE x SIZE
SUPER = 2  # scenes are drawn at SUPER x SIZE and averaged down

# Light levels, in units where 1.0 is a bright overcast day. A level is drawn log-uniformly
# from the range of its condition.
LIGHT_RANGES = {"day": (0.5, 1.6), "indoor": (0.12, 0.5), "night": (0.002, 0.02)}
FULL_WELL_E = 2500.0  # photo-electrons of a white surface at light 1.0 and base exposure
READ_NOISE_E = 6.0  # electrons rms
MAX_GAIN = 16.0  # auto-exposure limit: beyond it, frames get darker instead of brighter
TARGET_LEVEL = 0.2  # auto-exposure aims the mean (linear) at mid-grey
ROW_NOISE = 0.25  # row banding rms, as a fraction of the read noise


def coords(super_sample: int = SUPER) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (row, column) of the drawing grid, in output pixels."""
    n = SIZE * super_sample
    c = (np.arange(n) + 0.5) / super_sample
    return np.meshgrid(c, c, indexing="ij")


def downsample(a: np.ndarray, factor: int = SUPER) -> np.ndarray:
    """Average ``factor x factor`` blocks."""
    h, w = a.shape
    return a.reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))


def smooth_noise(rng: np.random.Generator, cells: int, n: int = SIZE * SUPER) -> np.ndarray:
    """Value noise in [0, 1]: a random ``(cells+1)^2`` grid, bilinearly interpolated to n x n."""
    grid = rng.random((cells + 1, cells + 1))
    t = np.linspace(0.0, cells, n, endpoint=False)
    i = t.astype(int)
    f = t - i
    f = f * f * (3 - 2 * f)  # smoothstep: no visible grid creases
    rows = grid[i] * (1 - f)[:, None] + grid[i + 1] * f[:, None]
    return rows[:, i] * (1 - f)[None, :] + rows[:, i + 1] * f[None, :]


def fractal_noise(rng: np.random.Generator, base_cells: int, octaves: int = 3,
                  n: int = SIZE * SUPER) -> np.ndarray:
    """Sum of value-noise octaves (each twice as fine, half as strong), rescaled to [0, 1]."""
    total, weight = np.zeros((n, n)), 0.0
    for k in range(octaves):
        total += 0.5**k * smooth_noise(rng, base_cells * 2**k, n)
        weight += 0.5**k
    total /= weight
    return (total - total.min()) / (np.ptp(total) + 1e-9)


def segment_distance(rr: np.ndarray, cc: np.ndarray, p: np.ndarray, q: np.ndarray
                     ) -> np.ndarray:
    """Distance of every grid point to the segment p-q (points as (row, column))."""
    d = q - p
    length2 = float(d @ d) + 1e-12
    t = np.clip(((rr - p[0]) * d[0] + (cc - p[1]) * d[1]) / length2, 0.0, 1.0)
    return np.hypot(rr - (p[0] + t * d[0]), cc - (p[1] + t * d[1]))


def polyline_distance(rr: np.ndarray, cc: np.ndarray, points: np.ndarray,
                      reach: float = 4.0) -> np.ndarray:
    """Distance of every grid point to a polyline through ``points`` (k, 2); exact up to
    ``reach`` pixels from the line, ``1e3`` further away (only near each segment is computed:
    thin strokes stay cheap). ``rr, cc`` must be a grid from ``coords``."""
    out = np.full(rr.shape, 1e3)
    step = rr[1, 0] - rr[0, 0]  # grid spacing in pixels
    first = rr[0, 0]
    n = rr.shape[0]
    for p, q in zip(points[:-1], points[1:], strict=True):
        lo = np.floor((np.minimum(p, q) - reach - first) / step).astype(int).clip(0, n)
        hi = np.ceil((np.maximum(p, q) + reach - first) / step).astype(int).clip(0, n) + 1
        window = (slice(lo[0], hi[0]), slice(lo[1], hi[1]))
        if rr[window].size:
            out[window] = np.minimum(out[window], segment_distance(rr[window], cc[window], p, q))
    return out


def convex_polygon(rr: np.ndarray, cc: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """Boolean mask of the inside of a convex polygon (corners in either order)."""
    inside_pos = np.ones(rr.shape, bool)
    inside_neg = np.ones(rr.shape, bool)
    for p, q in zip(corners, np.roll(corners, -1, axis=0), strict=True):
        cross = (q[0] - p[0]) * (cc - p[1]) - (q[1] - p[1]) * (rr - p[0])
        inside_pos &= cross >= 0
        inside_neg &= cross <= 0
    return inside_pos | inside_neg


def rotation(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def _shift(a: np.ndarray, dr: int, dc: int) -> np.ndarray:
    """``a`` moved by whole pixels; the border repeats the edge (no wrap-around)."""
    pad = max(abs(dr), abs(dc))
    if pad == 0:
        return a
    p = np.pad(a, pad, mode="edge")
    h, w = a.shape
    return p[pad - dr:pad - dr + h, pad - dc:pad - dc + w]


def gaussian_blur(a: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur (edge padding); sigma in pixels, <= 0.3 is a no-op."""
    if sigma <= 0.3:
        return a
    radius = int(np.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    k /= k.sum()
    out = np.zeros_like(a)
    for i, w in enumerate(k):
        out += w * _shift(a, i - radius, 0)
    final = np.zeros_like(a)
    for i, w in enumerate(k):
        final += w * _shift(out, 0, i - radius)
    return final


def motion_blur(a: np.ndarray, length: float, angle: float) -> np.ndarray:
    """Average of copies along a line of ``length`` pixels (camera shake or a moving object)."""
    steps = int(np.ceil(length))
    if steps < 2:
        return a
    offsets = np.linspace(-length / 2, length / 2, steps)
    out = np.zeros_like(a)
    for t in offsets:
        out += _shift(a, int(round(t * np.sin(angle))), int(round(t * np.cos(angle))))
    return out / steps


def draw_light(rng: np.random.Generator, condition: str) -> float:
    lo, hi = LIGHT_RANGES[condition]
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def illumination(rng: np.random.Generator, level: float, n: int = SIZE) -> np.ndarray:
    """Light falling on the scene: the level, a linear gradient (a window or lamp to one side)
    and a soft, low-frequency unevenness."""
    r, c = np.meshgrid(np.linspace(-1, 1, n), np.linspace(-1, 1, n), indexing="ij")
    angle = rng.uniform(0, 2 * np.pi)
    gradient = 1.0 + rng.uniform(0.0, 0.45) * (r * np.cos(angle) + c * np.sin(angle))
    uneven = 1.0 + rng.uniform(0.0, 0.3) * (smooth_noise(rng, 2, n) - 0.5)
    return level * gradient * uneven


def expose(rng: np.random.Generator, albedo: np.ndarray, light: np.ndarray,
           emission: np.ndarray | None = None, defocus: float = 0.0,
           motion: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """What the sensor records of a scene: uint8 frame (SIZE x SIZE).

    ``albedo`` and ``light`` are SIZE x SIZE; ``emission`` adds light sources (lamps, headlights)
    in the same units as ``albedo * light``. ``defocus`` is a Gaussian sigma and ``motion`` a
    (length, angle) blur, both in pixels."""
    radiance = albedo * light + (0.0 if emission is None else emission)
    n = radiance.shape[0]
    r, c = np.meshgrid(np.linspace(-1, 1, n), np.linspace(-1, 1, n), indexing="ij")
    radiance = radiance * (1.0 - rng.uniform(0.15, 0.4) * (r * r + c * c) / 2)  # vignetting
    radiance = gaussian_blur(radiance, defocus)
    radiance = motion_blur(radiance, *motion)
    electrons = np.maximum(radiance, 0.0) * FULL_WELL_E
    # Auto-exposure: scale the mean to TARGET_LEVEL of full scale, within the gain limit.
    # (Exposure time is folded into the gain: both scale the signal, only gain the read noise.)
    mean_e = float(electrons.mean()) + 1e-9
    gain = min(MAX_GAIN, TARGET_LEVEL * FULL_WELL_E / mean_e)
    shot = rng.standard_normal(electrons.shape) * np.sqrt(electrons)
    read = rng.standard_normal(electrons.shape) * READ_NOISE_E
    rows = rng.standard_normal((n, 1)) * READ_NOISE_E * ROW_NOISE
    signal = (electrons + shot + read + rows) * gain / FULL_WELL_E
    signal = np.clip(signal + rng.uniform(0.0, 0.02), 0.0, 1.0)  # black level, then saturation
    return np.round(255.0 * signal ** (1 / 2.2)).astype(np.uint8)
