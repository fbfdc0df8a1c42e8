"""Aquaculture pond sensors (dissolved oxygen, temperature, pH) for anomaly detection.

Numpy only. Each window is one day, midnight to midnight, sampled every 10 minutes. A small
process model makes the daily cycles: sunlight warms the water and drives photosynthesis, which
raises dissolved oxygen (DO) by day, while respiration by fish, plankton and mud lowers it at
night; wind re-aerates the water towards saturation. pH follows CO2, which photosynthesis removes
and respiration adds, so it rises and falls with DO. Cloud cover, rain and water temperature
change from day to day, and each simulated day starts from the state left by a previous day.

Anomalies are either sensor faults added to the readings (spike, stuck, drift, pH jump) or a
real process event, the night-time oxygen crash that kills fish in ponds after a die-off of the
algae bloom or a string of cloudy days.
"""

from __future__ import annotations

import numpy as np

TASK = "anomaly"
DESCRIPTION = (
    "Aquaculture pond sensors (dissolved oxygen mg/L, temperature degC, pH), one day per window: "
    "144 x 3 at 10-minute sampling; train is normal-only, val/test hold ~30 % anomalies."
)
CLASSES: tuple[str, ...] = ("normal", "anomaly")
SAMPLE_RATE = 1.0 / 600.0  # one reading every 10 minutes
LICENSE = "CC0-1.0"
DEFAULT_SEED = 4242

WINDOW = 144  # 24 h of 10-minute readings, starting at 00:00 local time
CHANNELS = ("do", "temp", "ph")
UNITS = ("mg/L", "degC", "pH")
ANOMALY_KINDS = ("spike", "stuck", "drift", "crash", "ph_jump")
TRAIN_WINDOWS = 800  # at scale 1
EVAL_WINDOWS = 300  # per val/test split at scale 1
ANOMALY_FRACTION = 0.3
# A night DO below this counts as a crash; normal days never fall below NORMAL_MIN_DO_MG_L, so
# the two never overlap (in real ponds, stress starts below ~3-4 mg/L and fish die below ~1-2).
CRASH_DO_MG_L = 2.0
NORMAL_MIN_DO_MG_L = 3.5
NORMAL_MAX_DO_MG_L = 13.0
# Resolution of the readings: 0.01 for DO and pH (what optical DO and pH meters display),
# 1/16 degC as a DS18B20 temperature probe at 12 bits.
RESOLUTION = (0.01, 0.0625, 0.01)

_STEP_H = 10.0 / 60.0
_SUBSTEPS = 4  # Euler sub-steps per reading keep the DO integration stable and accurate
HOURS = np.arange(WINDOW) * _STEP_H


def split_counts(scale: float = 1.0) -> dict[str, dict[str, int]]:
    """Windows of each kind per split; val and test are ~70 % normal, every anomaly present."""
    n_train = max(10, int(round(TRAIN_WINDOWS * scale)))
    n_eval = max(len(ANOMALY_KINDS) + 5, int(round(EVAL_WINDOWS * scale)))
    per_kind = max(1, int(round(n_eval * ANOMALY_FRACTION / len(ANOMALY_KINDS))))
    evaluation = {"normal": n_eval - per_kind * len(ANOMALY_KINDS)}
    evaluation.update({kind: per_kind for kind in ANOMALY_KINDS})
    return {"train": {"normal": n_train}, "val": dict(evaluation), "test": dict(evaluation)}


EXTRA = {
    "channels": list(CHANNELS),
    "units": list(UNITS),
    "sample_period_s": 600,
    "window_start": "00:00 local time; sample i is at i * 10 minutes",
    "anomaly_kinds": list(ANOMALY_KINDS),
    "anomaly_counts_at_scale_1": split_counts(1.0),
    "crash_do_mg_l": CRASH_DO_MG_L,
    "kind_arrays": "anomaly_kind_val, anomaly_kind_test: the kind of each window as a string",
}


# ---------------------------------------------------------------------------------------------
# Process model


def do_saturation(temp_c: np.ndarray) -> np.ndarray:
    """DO at 100 % saturation in fresh water at sea level, mg/L: a cubic fit to the oxygen
    solubility tables, good to ~0.1 mg/L between 20 and 35 degC (about 8.2 at 25 degC)."""
    t = np.asarray(temp_c, dtype=float)
    return 14.652 - 0.41022 * t + 0.007991 * t**2 - 0.000077774 * t**3


def _light(hours: np.ndarray, cloud: np.ndarray) -> np.ndarray:
    """Relative sunlight (1 = clear noon), tropical day 06:00-18:00, dimmed by cloud cover."""
    sun = np.clip(np.sin(np.pi * (hours % 24 - 6.0) / 12.0), 0.0, None) ** 1.3
    return sun * (1.0 - 0.75 * cloud)


def _simulate(rng: np.random.Generator, n: int, crash: bool) -> tuple[np.ndarray, np.ndarray]:
    """True DO (mg/L) and temperature (degC) of ``n`` pond-days, each (n, WINDOW).

    Two days are integrated, the day before the window and the window's own day, so the
    window starts from a state the weather of the previous day produced."""
    days = 2
    steps = days * WINDOW * _SUBSTEPS
    dt = _STEP_H / _SUBSTEPS
    hours = np.arange(steps) * dt  # 0 = midnight at the start of the day before
    day_of = (hours // 24).astype(int)

    # Per pond: respiration, wind re-aeration, heating; per day: clouds and mean temperature.
    resp28 = rng.uniform(0.3, 0.6, n)  # mg/L/h at 28 degC (fish + plankton + sediment)
    reaeration = rng.uniform(0.04, 0.12, n)  # 1/h
    target_mean_do = rng.uniform(6.5, 8.5, n)
    cloud = rng.beta(2.0, 3.0, (n, days))
    temp_eq = rng.uniform(25.0, 29.0, n)[:, None] + rng.normal(0, 0.4, (n, days))
    heating = rng.uniform(0.35, 0.7, n)  # degC/h in full sun
    cooling = rng.uniform(0.08, 0.14, n)  # 1/h, towards the air-driven equilibrium
    # Rain: a dark, cooling few hours on ~20 % of days.
    rain_day = rng.random((n, days)) < 0.2
    rain_start = rng.uniform(0, 24, (n, days))
    rain_len = rng.uniform(1, 4, (n, days))

    cloud_t = np.take_along_axis(cloud, np.broadcast_to(day_of, (n, steps)), axis=1)
    light = _light(hours[None, :], cloud_t)
    # A little passing-cloud flicker within the day.
    flicker = 1 + 0.12 * np.sin(2 * np.pi * hours[None, :] / rng.uniform(0.7, 3.0, (n, 1))
                                + rng.uniform(0, 2 * np.pi, (n, 1)))
    light = light * flicker
    local = hours[None, :] - 24.0 * day_of[None, :]
    raining = np.zeros((n, steps), bool)
    for d in range(days):
        r = rain_day[:, d, None] & (day_of[None, :] == d)
        r &= (local >= rain_start[:, d, None]) & (local < rain_start[:, d, None]
                                                  + rain_len[:, d, None])
        raining |= r
    light = np.where(raining, 0.3 * light, light)
    temp_eq_t = np.take_along_axis(temp_eq, np.broadcast_to(day_of, (n, steps)), axis=1)

    # Production is sized so an average-cloud day keeps DO around its target mean; sunnier
    # days then run higher and cloudier days lower, as in real ponds.
    mean_light = _light(np.arange(0, 24, dt), np.full(1, 0.4)).mean()
    sat_guess = do_saturation(temp_eq.mean(axis=1) + 1.0)
    p_max = (resp28 + reaeration * (target_mean_do - sat_guess)) / mean_light
    p_max = np.maximum(p_max, 0.2)

    # Crash: extra night-time oxygen demand (decaying algae after a bloom die-off), starting
    # in the evening of the day before (a dawn crash) or of the window's day.
    extra_demand = np.zeros(n)
    crash_start = np.full(n, np.inf)
    crash_len = np.zeros(n)
    if crash:
        evening = rng.uniform(18.0, 22.0, n)
        crash_start = np.where(rng.random(n) < 0.6, evening, evening + 24.0)
        crash_len = rng.uniform(8.0, 14.0, n)
        extra_demand = rng.uniform(0.15, 0.5, n)
        p_max *= rng.uniform(0.4, 0.8, n)  # the bloom is dying: less photosynthesis

    temp = np.empty((n, steps))
    do = np.empty((n, steps))
    t_now = temp_eq[:, 0] + 0.5
    do_now = target_mean_do.copy()
    for k in range(steps):
        t_now = t_now + dt * (heating * light[:, k] - cooling * (t_now - temp_eq_t[:, k])
                              - np.where(raining[:, k], 0.3, 0.0))
        resp = resp28 * 1.07 ** (t_now - 28.0)  # respiration speeds up in warm water
        in_crash = (hours[k] >= crash_start) & (hours[k] < crash_start + crash_len)
        demand = resp + np.where(in_crash, extra_demand, 0.0)
        do_now = do_now + dt * (p_max * light[:, k] - demand
                                + reaeration * (do_saturation(t_now) - do_now))
        do_now = np.maximum(do_now, 0.05)  # oxygen cannot go negative; sensors bottom out
        temp[:, k] = t_now
        do[:, k] = do_now
    window = slice(WINDOW * _SUBSTEPS, steps, _SUBSTEPS)  # the second day, one per reading
    return do[:, window], temp[:, window]


def _is_night(hours: np.ndarray) -> np.ndarray:
    return (hours < 7.0) | (hours >= 19.0)


def _simulate_days(rng: np.random.Generator, n: int, crash: bool) -> tuple[np.ndarray, ...]:
    """Simulate pond-days until ``n`` meet their label's definition, then add pH.

    Normal days must stay within [NORMAL_MIN_DO, NORMAL_MAX_DO]; crash days must fall below
    CRASH_DO at night. Rejection keeps the labels clean without distorting the physics."""
    keep_do, keep_temp = [], []
    have = 0
    while have < n:
        batch = max(8, 2 * (n - have))
        do, temp = _simulate(rng, batch, crash)
        if crash:
            ok = np.where(_is_night(HOURS), do, np.inf).min(axis=1) < CRASH_DO_MG_L - 0.2
        else:
            ok = (do.min(axis=1) >= NORMAL_MIN_DO_MG_L) & (do.max(axis=1) <= NORMAL_MAX_DO_MG_L)
        keep_do.append(do[ok])
        keep_temp.append(temp[ok])
        have += int(ok.sum())
    do = np.concatenate(keep_do)[:n]
    temp = np.concatenate(keep_temp)[:n]
    # pH: photosynthesis removes CO2 (pH up), respiration adds it (pH down), so pH tracks DO
    # around a pond-specific level set by alkalinity.
    ph_level = rng.uniform(7.5, 8.1, (n, 1))  # pH when DO is at a typical 7.5 mg/L
    ph_gain = rng.uniform(0.1, 0.18, (n, 1))  # pH units per mg/L of DO
    ph = ph_level + ph_gain * (do - 7.5)
    return do, temp, np.clip(ph, 6.3, 9.4)


# ---------------------------------------------------------------------------------------------
# Sensors and faults


def _read(rng: np.random.Generator, do: np.ndarray, temp: np.ndarray,
          ph: np.ndarray) -> np.ndarray:
    """Sensor readings (n, WINDOW, 3): small offsets, noise; quantised later."""
    n = do.shape[0]
    noise = np.stack([rng.uniform(0.03, 0.08, n), rng.uniform(0.02, 0.05, n),
                      rng.uniform(0.01, 0.03, n)], -1)[:, None, :]
    offset = np.stack([rng.normal(0, 0.1, n), rng.normal(0, 0.15, n),
                       rng.normal(0, 0.05, n)], -1)[:, None, :]  # calibration error
    x = np.stack([do, temp, ph], -1) + offset
    return x + noise * rng.normal(0, 1, x.shape)


def _inject(rng: np.random.Generator, x: np.ndarray, kind: str) -> None:
    """Add one sensor fault of ``kind`` to each window of ``x`` (in place)."""
    n = x.shape[0]
    for i in range(n):
        if kind == "spike":  # one wild reading: a glitch on the wire or a bubble on the probe
            ch = rng.integers(3)
            k = rng.integers(WINDOW)
            size = (rng.uniform(2.0, 6.0), rng.uniform(2.0, 8.0), rng.uniform(0.5, 1.5))[ch]
            if ch == 1 and rng.random() < 0.25:
                x[i, k, 1] = 85.0  # the DS18B20's power-on value, a classic bad reading
            else:
                x[i, k, ch] = max(0.0, x[i, k, ch] + rng.choice([-1.0, 1.0]) * size)
        elif kind == "stuck":  # the logger repeats the last value (frozen sensor or bus)
            ch = rng.choice(3, p=[0.45, 0.2, 0.35])
            length = int(rng.uniform(3, 10) / _STEP_H)
            k = rng.integers(0, WINDOW - length)
            x[i, k:k + length, ch] = x[i, k, ch]
        elif kind == "drift":  # fouling of the membrane or electrode: a slow ramp
            ch = rng.choice(3, p=[0.5, 0.1, 0.4])
            start = rng.integers(0, WINDOW // 2)
            total = (-rng.uniform(1.0, 3.0), rng.choice([-1.0, 1.0]) * rng.uniform(0.8, 2.0),
                     rng.choice([-1.0, 1.0]) * rng.uniform(0.3, 0.8))[ch]
            ramp = np.clip((np.arange(WINDOW) - start) / (WINDOW - start), 0.0, None)
            x[i, :, ch] += total * ramp
        elif kind == "ph_jump":  # a step: probe knocked or re-seated, or lime dumped in
            k = rng.integers(WINDOW // 8, WINDOW - WINDOW // 8)
            x[i, k:, 2] += rng.choice([-1.0, 1.0]) * rng.uniform(0.6, 1.2)
        else:
            raise ValueError(kind)


def _finish(x: np.ndarray) -> np.ndarray:
    x[..., 0] = np.clip(x[..., 0], 0.0, 20.0)  # optical DO probes read 0-20 mg/L
    x[..., 2] = np.clip(x[..., 2], 0.0, 14.0)
    res = np.array(RESOLUTION)
    return (np.round(x / res) * res).astype(np.float32)


def make_windows(rng: np.random.Generator, kind: str, n: int) -> np.ndarray:
    """``n`` windows (n, 144, 3) float32 of one kind: "normal" or one of ANOMALY_KINDS."""
    if n == 0:
        return np.zeros((0, WINDOW, 3), np.float32)
    if kind not in ("normal",) + ANOMALY_KINDS:
        raise ValueError(f"unknown kind {kind!r}; use 'normal' or one of {ANOMALY_KINDS}")
    do, temp, ph = _simulate_days(rng, n, crash=kind == "crash")
    x = _read(rng, do, temp, ph)
    if kind not in ("normal", "crash"):
        _inject(rng, x, kind)
    return _finish(x)


def generate(seed: int = DEFAULT_SEED, scale: float = 1.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    for split, counts in split_counts(scale).items():
        xs = [make_windows(rng, kind, count) for kind, count in counts.items()]
        kinds = np.concatenate([np.full(c, k) for k, c in counts.items()]).astype("<U8")
        order = rng.permutation(len(kinds))
        arrays[f"x_{split}"] = np.concatenate(xs)[order]
        arrays[f"y_{split}"] = (kinds[order] != "normal").astype(np.int64)
        if split != "train":
            arrays[f"anomaly_kind_{split}"] = kinds[order]
    return arrays
