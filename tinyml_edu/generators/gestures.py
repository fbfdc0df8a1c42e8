"""Magic-wand IMU gestures (as TFLM's magic_wand): letters W, O, L drawn in the air, or "none".

A small physics simulation, numpy only. The arm pivots at the elbow; the wand tip draws the
letter in a plane in front of the user with minimum-jerk strokes between waypoints. The board
sits in the hand on the wand axis, so the tip path fixes the wand's direction, its angular rate
(gyroscope) and the hand's linear acceleration (accelerometer, plus gravity). A random grip
rotates the sensor relative to the wand, then come sensor gain error, bias, noise, 16-bit
quantisation and clipping to the full scale used by the course firmware (±4 g, ±2000 dps).
"""

from __future__ import annotations

import numpy as np

TASK = "classification"
DESCRIPTION = (
    "Magic-wand IMU gestures (W, O, L, none): 128 x 6 windows at 100 Hz, accelerometer in g and "
    "gyroscope in deg/s, from a physics-based simulation of a hand drawing letters in the air."
)
CLASSES: tuple[str, ...] = ("W", "O", "L", "none")
SAMPLE_RATE = 100
LICENSE = "CC0-1.0"
DEFAULT_SEED = 2024

WINDOW = 128  # samples per window (1.28 s)
CHANNELS = ("ax", "ay", "az", "gx", "gy", "gz")
ACCEL_RANGE_G = 4.0
GYRO_RANGE_DPS = 2000.0
PER_CLASS = 500  # windows per class at scale 1
FRACTIONS = {"train": 0.6, "val": 0.2, "test": 0.2}
NONE_KINDS = ("idle", "wobble", "walking", "partial_stroke")
NONE_WEIGHTS = (0.25, 0.2, 0.2, 0.35)  # partial strokes are the hard negatives, so most of them

# Simulate at 4x the output rate, then average blocks of 4: a crude version of the IMU's own
# low-pass filter and decimation, and it keeps numerical derivatives accurate.
OVERSAMPLE = 4
# Output is quantised to 16-bit steps at the course's full scale (±4 g -> 1/8192 g exactly);
# gyro to 1/16 dps (close to the ~0.061-0.07 dps LSB at ±2000 dps). Power-of-two steps are exact
# in float32, which also lets the npz compress well.
ACCEL_LSB_G = 1.0 / 8192.0
GYRO_LSB_DPS = 1.0 / 16.0
G = 9.80665  # m/s^2

EXTRA = {
    "channels": list(CHANNELS),
    "units": ["g", "g", "g", "deg/s", "deg/s", "deg/s"],
    "window": WINDOW,
    "accel_range_g": ACCEL_RANGE_G,
    "gyro_range_dps": GYRO_RANGE_DPS,
    "frame": "sensor (board) frame; at rest the accelerometer reads +1 g pointing up",
    "none_kinds": list(NONE_KINDS),
}

_UP = np.array([0.0, 0.0, 1.0])  # world frame: x right, y forward (away from user), z up


# ---------------------------------------------------------------------------------------------
# Small geometry helpers


def _rot_x(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1.0, 0, 0], [0, c, -s], [0, s, c]])


def _rot_y(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1.0, 0], [-s, 0, c]])


def _rot_z(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def _rodrigues(v: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) from rotation vectors (..., 3) (axis * angle in rad)."""
    angle = np.linalg.norm(v, axis=-1, keepdims=True)
    k = v / np.maximum(angle, 1e-12)
    kx, ky, kz = k[..., 0], k[..., 1], k[..., 2]
    zero = np.zeros_like(kx)
    kmat = np.stack([np.stack([zero, -kz, ky], -1), np.stack([kz, zero, -kx], -1),
                     np.stack([-ky, kx, zero], -1)], -2)
    a = angle[..., None]
    eye = np.broadcast_to(np.eye(3), kmat.shape)
    return eye + np.sin(a) * kmat + (1 - np.cos(a)) * (kmat @ kmat)


def _min_jerk(s: np.ndarray) -> np.ndarray:
    """Minimum-jerk profile 0 -> 1 (Flash & Hogan): smooth start and stop, as human reaching."""
    s = np.clip(s, 0.0, 1.0)
    return s**3 * (10 - 15 * s + 6 * s**2)


def _smooth_noise(rng: np.random.Generator, t: np.ndarray, dims: int, f_lo: float,
                  f_hi: float, amp: float, parts: int = 3) -> np.ndarray:
    """Sum of a few random sinusoids: cheap band-limited sway, amplitude ~``amp`` per dim."""
    out = np.zeros((t.size, dims))
    for _ in range(parts):
        f = rng.uniform(f_lo, f_hi, dims)
        ph = rng.uniform(0, 2 * np.pi, dims)
        out += rng.uniform(0.3, 1.0, dims) * np.sin(2 * np.pi * f * t[:, None] + ph)
    return out * amp / np.sqrt(parts / 2)


# ---------------------------------------------------------------------------------------------
# Tip paths in the drawing plane (metres; h to the right, v up)


def _waypoint_path(t: np.ndarray, waypoints: np.ndarray, t0: float, durations: np.ndarray,
                   dwells: np.ndarray) -> np.ndarray:
    """Minimum-jerk strokes between waypoints, one after the other, resting at each corner.

    Each stroke adds its displacement times the min-jerk profile, so the sum is the path."""
    starts = t0 + np.concatenate([[0.0], np.cumsum(durations + dwells)[:-1]])
    s = (t[:, None] - starts[None, :]) / durations[None, :]
    return waypoints[0] + _min_jerk(s) @ np.diff(waypoints, axis=0)


def _stroke_times(rng: np.random.Generator, waypoints: np.ndarray,
                  total: float) -> tuple[np.ndarray, np.ndarray]:
    """Split ``total`` seconds over the strokes: longer strokes take longer, but sublinearly."""
    lengths = np.linalg.norm(np.diff(waypoints, axis=0), axis=1)
    weights = np.sqrt(lengths + 1e-3) * rng.uniform(0.85, 1.15, lengths.size)
    dwells = rng.uniform(0.0, 0.05, lengths.size)
    durations = (total - dwells.sum()) * weights / weights.sum()
    return durations, dwells


def _letter_waypoints(letter: str, rng: np.random.Generator, height: float) -> np.ndarray:
    if letter == "W":
        width = height * rng.uniform(0.8, 1.5)
        mid = rng.uniform(0.35, 1.0)  # height of the middle peak, as a fraction
        pts = np.array([[0, 1], [0.25, 0], [0.5, mid], [0.75, 0], [1, 1]], float)
        pts[:, 0] *= width / height
    elif letter == "L":
        width = rng.uniform(0.45, 1.0)
        pts = np.array([[0, 1], [0, 0], [width, 0]], float)
    else:
        raise ValueError(letter)
    pts = pts + rng.normal(0, 0.05, pts.shape)  # nobody draws the same letter twice
    return (pts - pts.mean(axis=0)) * height


def _circle_path(rng: np.random.Generator, t: np.ndarray, t0: float, duration: float,
                 height: float, sweep: float | None = None) -> np.ndarray:
    """An O (or, with a short ``sweep``, an arc): min-jerk progress along an ellipse."""
    if sweep is None:
        sweep = 2 * np.pi * rng.uniform(0.9, 1.12)  # under- or over-closed O
    direction = 1.0 if rng.random() < 0.7 else -1.0  # most people draw O counter-clockwise
    start = np.pi / 2 + rng.normal(0, 0.3)  # start near the top
    theta = start + direction * sweep * _min_jerk((t - t0) / duration)
    rx = 0.5 * height * rng.uniform(0.7, 1.25)
    ry = 0.5 * height
    wobble = 1 + 0.06 * np.sin(rng.uniform(1, 3) * theta + rng.uniform(0, 2 * np.pi))
    return np.stack([rx * np.cos(theta), ry * np.sin(theta)], -1) * wobble[:, None]


def _gesture_path(letter: str, rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    height = rng.uniform(0.12, 0.35)  # letter height at the tip, m
    span = t[-1] + t[1] - t[0]
    lo, hi = {"W": (0.8, 1.2), "O": (0.65, 1.15), "L": (0.5, 0.95)}[letter]
    total = rng.uniform(lo, hi)
    t0 = rng.uniform(0.04, span - total - 0.04)  # random place in the window
    if letter == "O":
        return _circle_path(rng, t, t0, total, height)
    pts = _letter_waypoints(letter, rng, height)
    durations, dwells = _stroke_times(rng, pts, total)
    return _waypoint_path(t, pts, t0, durations, dwells)


def _partial_stroke_path(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """Hard negatives: pieces of letters (a line, an arc, a V) that must not count as a letter."""
    height = rng.uniform(0.1, 0.35)
    span = t[-1] + t[1] - t[0]
    choice = rng.integers(3)
    if choice == 0:  # one straight stroke in any direction
        total = rng.uniform(0.2, 0.6)
        angle = rng.uniform(0, 2 * np.pi)
        pts = np.array([[0.0, 0.0], [np.cos(angle), np.sin(angle)]]) * height
    elif choice == 1:  # an arc: part of an O
        total = rng.uniform(0.3, 0.7)
        t0 = rng.uniform(0.04, span - total - 0.04)
        return _circle_path(rng, t, t0, total, height, sweep=rng.uniform(0.6, 1.2) * np.pi)
    else:  # a V (half a W) or a zig-zag of two strokes
        total = rng.uniform(0.35, 0.75)
        pts = np.array([[0, 1], [0.5, 0], [1, rng.uniform(0.3, 1.1)]], float) * height
        pts[:, 0] *= rng.uniform(0.4, 1.0)
        pts += rng.normal(0, 0.05 * height, pts.shape)
    t0 = rng.uniform(0.04, span - total - 0.04)
    durations, dwells = _stroke_times(rng, pts, total)
    return _waypoint_path(t, pts, t0, durations, dwells)


# ---------------------------------------------------------------------------------------------
# From a tip path to IMU readings


def _render(rng: np.random.Generator, t: np.ndarray, tip_plane: np.ndarray,
            pivot_motion: np.ndarray | None = None, pose_spread: float = 1.0,
            sway: float = 1.0) -> np.ndarray:
    """Turn a tip path in the drawing plane into (len(t), 6) ideal IMU readings in g and dps."""
    n = t.size
    forearm = rng.uniform(0.25, 0.38)  # elbow to the board in the hand, m
    reach = forearm + rng.uniform(0.12, 0.3)  # elbow to the wand tip, m
    # Where the arm points and how the drawing plane is tilted (yaw, pitch, in-plane slant).
    plane = (_rot_z(np.radians(rng.normal(0, 15 * pose_spread)))
             @ _rot_x(np.radians(rng.uniform(-30, 20) * pose_spread))
             @ _rot_y(np.radians(rng.normal(0, 10))))
    # Slow sway of the arm (mm at 0.1-1 Hz) and physiological tremor (tens of um at 8-12 Hz):
    # each adds only ~0.01-0.02 g, as a hand holding still.
    tip_plane = tip_plane + _smooth_noise(rng, t, 2, 0.1, 1.0, sway * rng.uniform(0.002, 0.008))
    tip_plane = tip_plane + _smooth_noise(rng, t, 2, 8, 12, sway * rng.uniform(1e-5, 5e-5),
                                          parts=2)
    tip_local = np.column_stack([tip_plane[:, 0], np.full(n, reach), tip_plane[:, 1]])
    tip = tip_local @ plane.T
    # The elbow is not fixed: part of the drawing comes from moving the upper arm.
    pivot = rng.uniform(0.0, 0.35) * (tip - tip.mean(axis=0))
    pivot[:, 1] *= 0.3  # mostly sideways and up/down, little forward
    if pivot_motion is not None:
        pivot = pivot + pivot_motion
    direction = tip - pivot
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    position = pivot + forearm * direction  # the board, in the hand

    # Wand frame: board y along the wand, board z as close to "up" as possible (board flat).
    z_axis = _UP - (direction @ _UP)[:, None] * direction
    z_axis /= np.linalg.norm(z_axis, axis=1, keepdims=True)
    x_axis = np.cross(direction, z_axis)
    wand = np.stack([x_axis, direction, z_axis], axis=-1)  # columns are the board axes
    # Forearm roll: a constant offset, coupling to sideways motion, and a slow wobble.
    roll = (np.radians(rng.normal(0, 10))
            + rng.normal(0, 1.0) * tip_plane[:, 0]
            + _smooth_noise(rng, t, 1, 0.2, 1.5, sway * np.radians(rng.uniform(0.5, 3)))[:, 0])
    roll_rot = _rodrigues(np.column_stack([np.zeros(n), roll, np.zeros(n)]))
    # The grip: the board sits a few tens of degrees off the wand frame, differently each time.
    grip = _rodrigues(np.radians(rng.normal(0, 20, 3)))
    sensor = wand @ roll_rot @ grip  # (n, 3, 3): sensor axes in world coordinates

    dt = t[1] - t[0]
    accel_world = np.gradient(np.gradient(position, dt, axis=0), dt, axis=0) / G
    specific_force = accel_world + _UP  # an accelerometer at rest reads +1 g upwards
    accel = np.einsum("nji,nj->ni", sensor, specific_force)
    # Angular rate in the body frame: the skew part of R^T dR/dt.
    omega = np.swapaxes(sensor, 1, 2) @ np.gradient(sensor, dt, axis=0)
    gyro = 0.5 * np.stack([omega[:, 2, 1] - omega[:, 1, 2], omega[:, 0, 2] - omega[:, 2, 0],
                           omega[:, 1, 0] - omega[:, 0, 1]], -1)
    return np.column_stack([accel, np.degrees(gyro)])


def _sensor_model(rng: np.random.Generator, ideal: np.ndarray) -> np.ndarray:
    """Gain error, bias, white noise, 16-bit quantisation and clipping of a MEMS IMU."""
    gain = 1 + rng.normal(0, 0.01, 6)
    bias = np.concatenate([rng.normal(0, 0.02, 3), rng.normal(0, 1.5, 3)])  # g, dps
    noise = np.concatenate([np.full(3, rng.uniform(0.002, 0.008)),
                            np.full(3, rng.uniform(0.05, 0.4))])
    x = ideal * gain + bias + rng.normal(0, 1, ideal.shape) * noise
    lsb = np.array([ACCEL_LSB_G] * 3 + [GYRO_LSB_DPS] * 3)
    x = np.round(x / lsb) * lsb
    limit = np.array([ACCEL_RANGE_G] * 3 + [GYRO_RANGE_DPS] * 3)
    return np.clip(x, -limit, limit)


def simulate_window(label: str, rng: np.random.Generator, kind: str | None = None) -> np.ndarray:
    """One (128, 6) float32 window of ``label`` (a class name); for "none", ``kind`` picks one of
    NONE_KINDS (random if None). Public so lessons and tests can draw single examples."""
    t = np.arange(WINDOW * OVERSAMPLE) / (SAMPLE_RATE * OVERSAMPLE)
    n = t.size
    pivot_motion = None
    pose_spread = 1.0
    if label in ("W", "O", "L"):
        tip = _gesture_path(label, rng, t)
    elif label == "none":
        if kind is None:
            kind = NONE_KINDS[rng.choice(len(NONE_KINDS), p=NONE_WEIGHTS)]
        pose_spread = 2.0  # resting poses vary more than drawing poses
        if kind == "idle":  # holding still, maybe slowly re-positioning the arm
            tip = np.zeros((n, 2)) + rng.normal(0, 0.03, 2) * _min_jerk(
                (t - rng.uniform(0, 1.0)) / rng.uniform(0.5, 1.5))[:, None]
        elif kind == "wobble":  # fidgeting: random smooth motion, a few cm
            tip = _smooth_noise(rng, t, 2, 0.5, 3.0, rng.uniform(0.01, 0.06))
        elif kind == "walking":  # steps: vertical bumps at ~2 Hz, sideways sway at half of it
            step_hz = rng.uniform(1.6, 2.2)
            phase = rng.uniform(0, 2 * np.pi)
            bump = (np.sin(2 * np.pi * step_hz * t + phase)
                    + 0.35 * np.sin(4 * np.pi * step_hz * t + 2 * phase))
            sway = np.sin(np.pi * step_hz * t + phase / 2)
            pivot_motion = np.column_stack([rng.uniform(0.005, 0.02) * sway, np.zeros(n),
                                            rng.uniform(0.006, 0.02) * bump])
            tip = _smooth_noise(rng, t, 2, 0.5, 2.5, rng.uniform(0.005, 0.03))
        elif kind == "partial_stroke":
            tip = _partial_stroke_path(rng, t)
        else:
            raise ValueError(f"unknown kind {kind!r}; use one of {NONE_KINDS}")
    else:
        raise ValueError(f"unknown label {label!r}; use one of {CLASSES}")
    ideal = _render(rng, t, tip, pivot_motion, pose_spread)
    ideal = ideal.reshape(WINDOW, OVERSAMPLE, 6).mean(axis=1)
    return _sensor_model(rng, ideal).astype(np.float32)


def split_counts(scale: float = 1.0) -> dict[str, int]:
    """Windows per class in each split (stratified: every class has the same counts)."""
    n = max(5, int(round(PER_CLASS * scale)))
    n_train = int(round(n * FRACTIONS["train"]))
    n_val = int(round(n * FRACTIONS["val"]))
    return {"train": n_train, "val": n_val, "test": n - n_train - n_val}


def generate(seed: int = DEFAULT_SEED, scale: float = 1.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    counts = split_counts(scale)
    parts: dict[str, list[tuple[np.ndarray, int]]] = {s: [] for s in counts}
    for label_index, label in enumerate(CLASSES):
        for split, count in counts.items():
            parts[split] += [(simulate_window(label, rng), label_index) for _ in range(count)]
    arrays: dict[str, np.ndarray] = {}
    for split, items in parts.items():
        order = rng.permutation(len(items))  # mix the classes within each split
        arrays[f"x_{split}"] = np.stack([items[i][0] for i in order]).astype(np.float32)
        arrays[f"y_{split}"] = np.array([items[i][1] for i in order], dtype=np.int64)
    return arrays
