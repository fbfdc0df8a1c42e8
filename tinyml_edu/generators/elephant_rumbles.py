"""Elephant rumbles against the low-frequency sounds that mask them: 5 s clips at 1 kHz.

A synthetic stand-in for the autonomous recorders used to monitor elephants acoustically.
African elephants keep in touch with *rumbles*: long, harmonic calls whose fundamental lies
around or below the lower limit of human hearing, with a contour that glides up and down over
the call. A detector has to tell them from three other sources of low-frequency energy:

- ``engine``: generators, pumps and vehicles. Harmonic too, with a "fundamental" (half the
  crankshaft rate, for a four-stroke engine) inside the rumble band, but steady or ramping
  in pitch instead of arched, and with the harmonics of the firing rate standing out;
- ``thunder``: impulsive onsets followed by rolling, broadband low-frequency noise;
- ``wind``: turbulence at the microphone, a steep red spectrum with slow gusts.

Every clip also holds the recording site's ambient noise and, often, a little wind. Sources are
placed at a distance: higher frequencies fade faster, so far calls keep only their lowest
harmonics. Clips are grouped by *recording site*; each site has its own elephants, engines and
noise, and whole sites are assigned to train, val or test (no test elephant or site is heard in
training).

All numbers are modelling choices, roughly in line with published descriptions of rumbles (see
``datasets/elephant_rumbles/DATASHEET.md``); none is a measurement. Stored as FLAC clips
(``write_files``) like ``wingbeats``; ``generate`` returns the same clips as arrays.
``dominant_frequency``, ``simple_features`` and ``baseline_accuracy`` are the datasheet's sanity
baseline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyml_edu.generators.baseline import nearest_centroid_accuracy
from tinyml_edu.generators.clips import write_flac_clips

TASK = "classification"
DESCRIPTION = (
    "Synthetic infrasonic elephant rumbles vs engines, thunder and wind, 5 s at 1 kHz, int16: "
    "harmonic calls with gliding pitch and formants, distance filtering, site noise; split by "
    "recording site."
)
CLASSES: tuple[str, ...] = ("rumble", "engine", "thunder", "wind")
SAMPLE_RATE = 1000
LICENSE = "CC0-1.0"
DEFAULT_SEED = 1988
CLIP_SAMPLES = 5000  # 5 s
CLIPS_PER_CLASS = 300
FRACTIONS = {"train": 0.6, "val": 0.2, "test": 0.2}

# Recording sites: each has its own ambient noise, resident elephants and engines. Whole sites
# go to one split (9 / 3 / 3).
NUM_SITES = 15
SITES_PER_SPLIT = {"train": 9, "val": 3, "test": 3}
ELEPHANTS_PER_SITE = 4

# Rumbles. Per individual: mean fundamental (log-uniform) and a vocal-tract scale that moves
# its formants. Per call: the fundamental varies around the individual's, the contour rises
# by 5-30 % and falls again, and the call lasts 1.5-6 s (of which at least 1.5 s is in the clip).
RUMBLE_F0_HZ = (12.0, 28.0)
RUMBLE_CALL_SPREAD = 0.07  # log-normal sigma of a call's f0 around the individual's mean
RUMBLE_RISE = (0.05, 0.30)
RUMBLE_DURATION_S = (1.5, 6.0)
RUMBLE_MIN_IN_CLIP_S = 1.5
# Formants (centre Hz, bandwidth Hz) by production type: through the trunk (long tract, low
# formants) or the mouth (short tract, higher formants). Modelling choices.
FORMANTS_HZ = {"nasal": ((40.0, 25.0), (170.0, 60.0)), "oral": ((130.0, 60.0), (420.0, 120.0))}
NASAL_SHARE = 0.7
TRACT_SCALE = (0.85, 1.15)  # per individual: multiplies the formant centres
RUMBLE_H1_LEVEL = (0.3, 0.9)  # per individual: the fundamental's level re the source slope
RUMBLE_DISTANCE_KM = (0.1, 2.5)

# Engines: harmonics of the half-order rate rpm / 120 (a four-stroke engine fires each cylinder
# once every two turns); the harmonics at multiples of the firing rate (cylinders x half-order)
# stand out. Gensets and pumps run at a steady speed, vehicles speed up or slow down.
GENSET_RPM = (1500.0, 1800.0, 3000.0, 3600.0)  # 4- and 2-pole alternators, 50 / 60 Hz
PUMP_RPM = (1100.0, 2000.0)
VEHICLE_RPM = (1200.0, 3400.0)
CYLINDERS = (1, 2, 3, 4, 6)
VEHICLE_RAMP = 0.15  # the rate changes by up to +-15 % over a clip
ENGINE_DISTANCE_KM = (0.05, 2.0)

# Thunder: 1-4 claps, each a sharp onset and a rolling decay of band-limited noise.
THUNDER_CLAPS = (1, 4)
THUNDER_PEAK_HZ = (25.0, 120.0)
THUNDER_DECAY_S = (0.4, 2.5)
THUNDER_DISTANCE_KM = (1.0, 12.0)

# Wind: red noise (power ~ f^-slope above a corner) with slow gusts.
WIND_SLOPE = (1.6, 2.6)
WIND_CORNER_HZ = (1.0, 8.0)
WIND_GUST_HZ = (0.1, 0.8)
WIND_GUSTINESS = (0.3, 1.0)  # sigma of the log-amplitude gust envelope

# Propagation: extra attenuation in dB = ATTEN_DB_AT_100HZ_PER_KM * (f / 100 Hz)^1.5 * km.
ATTEN_DB_AT_100HZ_PER_KM = 4.0
RECORDER_HIGHPASS_HZ = 3.0  # an infrasound-capable recorder still blocks DC and drift
AMBIENT_RMS = (6.0, 24.0)  # int16 LSB, per site (about -75 to -63 dBFS)
AMBIENT_SLOPE = (0.6, 1.6)  # power ~ f^-slope, per site
SNR_DB = {"rumble": (0.0, 24.0), "engine": (0.0, 24.0), "thunder": (3.0, 30.0),
          "wind": (3.0, 24.0)}
BACKGROUND_WIND_SHARE = 0.5  # clips of any class with some wind underneath
BACKGROUND_WIND_DB = (-12.0, 3.0)  # its level relative to the ambient noise
BAND_HZ = (5.0, 450.0)  # where SNR and the baseline's spectra are measured

EXTRA = {
    "units": "int16 PCM (full scale 32767)",
    "clip_seconds": CLIP_SAMPLES / SAMPLE_RATE,
    "groups": "recording site (int); whole sites are in one split. index.csv also gives "
              "individual (elephant id, rumbles only), source, distance_km, snr_db and "
              "f0_hz (rumble: mean fundamental in the clip; engine: rpm / 120)",
    "sites": NUM_SITES,
    "sites_per_split": SITES_PER_SPLIT,
    "elephants": NUM_SITES * ELEPHANTS_PER_SITE,
    "rumble_f0_hz": list(RUMBLE_F0_HZ),
    "rumble_duration_s": list(RUMBLE_DURATION_S),
    "snr_db": {k: list(v) for k, v in SNR_DB.items()},
    "distance_km": {"rumble": list(RUMBLE_DISTANCE_KM), "engine": list(ENGINE_DISTANCE_KM),
                    "thunder": list(THUNDER_DISTANCE_KM)},
}


# ---------------------------------------------------------------------------------------------
# Building blocks (all in the frequency domain: clips are short, so whole-clip FFTs are cheap)

_FREQS = np.fft.rfftfreq(CLIP_SAMPLES, 1.0 / SAMPLE_RATE)


def _shaped_noise(rng: np.random.Generator, gain: np.ndarray) -> np.ndarray:
    """White noise coloured by an amplitude response over ``_FREQS``; unit std."""
    spec = np.fft.rfft(rng.standard_normal(CLIP_SAMPLES)) * gain
    x = np.fft.irfft(spec, CLIP_SAMPLES)
    return x / (x.std() + 1e-12)


def _red_gain(slope: float, corner_hz: float) -> np.ndarray:
    """Amplitude response of power ~ f^-slope above corner_hz, flat below."""
    return (1.0 + (_FREQS / corner_hz) ** 2) ** (-slope / 4.0)


def _slow(rng: np.random.Generator, corner_hz: float) -> np.ndarray:
    """A slow random wiggle (zero mean, unit std) with energy below about corner_hz."""
    return _shaped_noise(rng, np.exp(-0.5 * (_FREQS / corner_hz) ** 2) * (_FREQS > 0))


def _filter(x: np.ndarray, gain: np.ndarray) -> np.ndarray:
    return np.fft.irfft(np.fft.rfft(x) * gain, len(x))


def distance_gain(distance_km: float) -> np.ndarray:
    """Amplitude response of the path: higher frequencies fade faster with distance."""
    atten_db = ATTEN_DB_AT_100HZ_PER_KM * (_FREQS / 100.0) ** 1.5 * distance_km
    return 10.0 ** (-atten_db / 20.0)


def _recorder_gain() -> np.ndarray:
    # Second-order high-pass: |H| = f^2 / sqrt(f^4 + fc^4).
    f2 = _FREQS**2
    return f2 / np.sqrt(f2**2 + RECORDER_HIGHPASS_HZ**4)


def _band_rms(x: np.ndarray, mask: np.ndarray | None = None) -> float:
    band = (_FREQS >= BAND_HZ[0]) & (_FREQS <= BAND_HZ[1])
    y = _filter(x, band.astype(float))
    if mask is not None and mask.any():
        y = y[mask]
    return float(np.sqrt(np.mean(y**2)) + 1e-12)


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


# ---------------------------------------------------------------------------------------------
# Sites and their residents


def site_profile(seed: int, site: int) -> dict:
    """Everything fixed for one recording site: ambient noise, elephants and engines.

    Drawn from its own generator, so a site does not change with the data set's scale."""
    rng = np.random.default_rng([seed, 7, site])
    elephants = [{
        "id": site * ELEPHANTS_PER_SITE + i,
        "f0": _log_uniform(rng, *RUMBLE_F0_HZ),
        "tract": float(rng.uniform(*TRACT_SCALE)),
        "tilt": float(rng.uniform(0.4, 1.1)),  # source roll-off: harmonic k ~ k^-tilt
        # A weakened fundamental: in about half of the calls the 2nd harmonic is the stronger.
        "h1": float(rng.uniform(*RUMBLE_H1_LEVEL)),
    } for i in range(ELEPHANTS_PER_SITE)]
    engines = [{
        "kind": "genset", "rpm": float(rng.choice(GENSET_RPM)),
        "cylinders": int(rng.choice(CYLINDERS[1:4])), "orders": rng.lognormal(0.0, 0.3, 48),
    }, {
        "kind": "pump", "rpm": float(rng.uniform(*PUMP_RPM)),
        "cylinders": int(rng.choice(CYLINDERS[:3])), "orders": rng.lognormal(0.0, 0.3, 48),
    }]
    return {
        "ambient_rms": float(rng.uniform(*AMBIENT_RMS)),
        "ambient_slope": float(rng.uniform(*AMBIENT_SLOPE)),
        "elephants": elephants,
        "engines": engines,
    }


def split_sites(seed: int) -> dict[str, list[int]]:
    """Which sites belong to which split (a seeded permutation)."""
    order = np.random.default_rng([seed, 3]).permutation(NUM_SITES).tolist()
    out, start = {}, 0
    for split, count in SITES_PER_SPLIT.items():
        out[split] = sorted(order[start:start + count])
        start += count
    return out


# ---------------------------------------------------------------------------------------------
# Sources (each returns a clean signal of unit-ish level and the mask of where it is active)


def rumble(rng: np.random.Generator, elephant: dict
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One call: an arched harmonic glide through two formants, within a smooth envelope.
    Returns the signal, where it is loud, and the fundamental (Hz; NaN outside the call)."""
    n, fs = CLIP_SAMPLES, SAMPLE_RATE
    duration = rng.uniform(*RUMBLE_DURATION_S)
    # The clip is a 5 s window on a longer recording: the call may start before it or end
    # after it, but at least RUMBLE_MIN_IN_CLIP_S of it is inside.
    start = rng.uniform(RUMBLE_MIN_IN_CLIP_S - duration, n / fs - RUMBLE_MIN_IN_CLIP_S)
    t = np.arange(n) / fs
    u = np.clip((t - start) / duration, 0.0, 1.0)  # progress through the call
    base = elephant["f0"] * rng.lognormal(0.0, RUMBLE_CALL_SPREAD)
    peak = rng.uniform(0.25, 0.6)  # where in the call the pitch is highest
    arch = np.sin(np.pi * u ** (np.log(0.5) / np.log(peak)))
    f0 = base * (1.0 + rng.uniform(*RUMBLE_RISE) * arch - rng.uniform(0.0, 0.08) * u)
    f0 *= 1.0 + 0.01 * _slow(rng, 3.0)  # jitter
    phase = 2 * np.pi * np.cumsum(f0) / fs
    kind = "nasal" if rng.random() < NASAL_SHARE else "oral"
    formants = [(c * elephant["tract"], b) for c, b in FORMANTS_HZ[kind]]
    x = np.zeros(n)
    f_mean = float(f0[(u > 0) & (u < 1)].mean()) if np.any((u > 0) & (u < 1)) else base
    # 30 % headroom for the glide above the mean pitch: no harmonic reaches Nyquist.
    for k in range(1, int(0.95 * (fs / 2) / (f_mean * 1.3)) + 1):
        fk = k * f_mean
        # Resonances shape the harmonic levels (evaluated at each harmonic's mean frequency).
        res = sum(1.0 / np.sqrt(1.0 + ((fk - c) / (0.5 * b)) ** 2) for c, b in formants)
        amp = k ** -elephant["tilt"] * (0.15 + res) * rng.lognormal(0.0, 0.15)
        amp *= elephant["h1"] if k == 1 else 1.0
        x += amp * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    # Smooth onset and offset, and a little amplitude wobble along the call.
    rise, fall = rng.uniform(0.15, 0.5) / duration, rng.uniform(0.3, 0.9) / duration
    env = np.minimum(np.clip(u / rise, 0, 1), np.clip((1 - u) / fall, 0, 1))
    env = np.sin(0.5 * np.pi * env) ** 2 * (1.0 + 0.1 * _slow(rng, 1.5))
    outside = (t < start) | (t > start + duration)
    env[outside] = 0.0
    return x * env, env > 0.5 * env.max(), np.where(outside, np.nan, f0)


def engine(rng: np.random.Generator, site: dict
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """A genset or pump of the site (steady), or a passing vehicle (ramping, with a pass-by).
    Returns the signal, where it is loud, the half-order rate rpm / 120 (Hz) and the kind."""
    n, fs = CLIP_SAMPLES, SAMPLE_RATE
    t = np.arange(n) / fs
    roll = rng.random()
    if roll < 0.5:
        src = site["engines"][0 if roll < 0.3 else 1]
        kind, cylinders, orders = src["kind"], src["cylinders"], src["orders"]
        rpm = src["rpm"] * rng.uniform(0.98, 1.02)  # load and governor droop
        rate = 1.0 + 0.003 * _slow(rng, 0.5)
        env = np.ones(n)
    else:
        kind, cylinders = "vehicle", int(rng.choice(CYLINDERS[2:]))
        orders = rng.lognormal(0.0, 0.3, 48)
        rpm = rng.uniform(*VEHICLE_RPM)
        rate = 1.0 + rng.uniform(-VEHICLE_RAMP, VEHICLE_RAMP) * (t / t[-1] - 0.5) \
            + 0.004 * _slow(rng, 1.0)
        closest, width = rng.uniform(-1.0, 6.0), rng.uniform(1.5, 6.0)
        env = 1.0 / np.sqrt(1.0 + ((t - closest) / width) ** 2)
    f_half = rpm / 120.0 * rate
    phase = 2 * np.pi * np.cumsum(f_half) / fs
    x = np.zeros(n)
    top = float(f_half.max())
    firing_boost = rng.uniform(2.0, 5.0)
    for k in range(1, min(len(orders), int(0.95 * (fs / 2) / top)) + 1):
        amp = k**-0.6 * orders[k - 1] * (firing_boost if k % cylinders == 0 else 1.0)
        x += amp * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    # Exhaust, intake and tyre noise: broadband, 8-20 dB under the harmonics.
    noise = _shaped_noise(rng, _red_gain(1.0, 40.0))
    x = x / (x.std() + 1e-12) + 10 ** (-rng.uniform(8, 20) / 20) * noise
    return x * env, env > 0.5 * env.max(), f_half, kind


def thunder(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """1-4 claps: sharp onsets with rolling, decaying low-frequency noise."""
    n, fs = CLIP_SAMPLES, SAMPLE_RATE
    t = np.arange(n) / fs
    peak_hz = _log_uniform(rng, *THUNDER_PEAK_HZ)
    # A broad hump around peak_hz on a log-frequency axis, with some infrasound below it.
    logf = np.log(np.maximum(_FREQS, 0.5) / peak_hz)
    gain = np.exp(-0.5 * (logf / 0.8) ** 2) + 0.3 * (_FREQS < peak_hz)
    x = np.zeros(n)
    env_total = np.zeros(n)
    first = rng.uniform(-1.5, 3.5)
    for i in range(rng.integers(THUNDER_CLAPS[0], THUNDER_CLAPS[1] + 1)):
        onset = first if i == 0 else rng.uniform(first, 4.8)
        decay = rng.uniform(*THUNDER_DECAY_S)
        attack = rng.uniform(0.005, 0.06)
        age = t - onset
        env = np.where(age < 0, 0.0, (1 - np.exp(-np.maximum(age, 0) / attack))
                       * np.exp(-np.maximum(age, 0) / decay))
        # Rolling: the sound arrives from different parts of the channel at once.
        env *= np.exp(0.5 * _slow(rng, rng.uniform(1.0, 4.0)))
        env *= rng.uniform(0.3, 1.0) if i else 1.0
        x += env * _shaped_noise(rng, gain)
        env_total += env
    return x, env_total > 0.3 * env_total.max()


def wind(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Microphone wind noise: red noise with slow gusts (gusts also brighten it a little)."""
    slope, corner = rng.uniform(*WIND_SLOPE), rng.uniform(*WIND_CORNER_HZ)
    gust = _slow(rng, rng.uniform(*WIND_GUST_HZ))
    g = rng.uniform(*WIND_GUSTINESS)
    low = _shaped_noise(rng, _red_gain(slope, corner))
    high = _shaped_noise(rng, _red_gain(slope - 0.6, corner * 3))
    env = np.exp(g * gust)
    x = env * low + 0.3 * env**2 * high
    return x, env > np.median(env)


# ---------------------------------------------------------------------------------------------
# One clip


def make_clip(rng: np.random.Generator, label: str, site: dict) -> tuple[np.ndarray, dict]:
    """A clip of class ``label`` recorded at ``site``: int16 samples and what went into it."""
    meta: dict = {"individual": "", "source": label, "distance_km": "", "f0_hz": ""}
    if label == "rumble":
        elephant = site["elephants"][int(rng.integers(len(site["elephants"])))]
        signal, active, f0 = rumble(rng, elephant)
        meta["individual"] = str(elephant["id"])
        meta["f0_hz"] = f"{np.nanmean(f0):.2f}"  # over the part of the call in the clip
        distance = _log_uniform(rng, *RUMBLE_DISTANCE_KM)
    elif label == "engine":
        signal, active, f0, meta["source"] = engine(rng, site)
        meta["f0_hz"] = f"{f0.mean():.2f}"
        distance = _log_uniform(rng, *ENGINE_DISTANCE_KM)
    elif label == "thunder":
        signal, active = thunder(rng)
        distance = _log_uniform(rng, *THUNDER_DISTANCE_KM)
    elif label == "wind":
        signal, active = wind(rng)
        distance = 0.0  # at the microphone
    else:
        raise ValueError(f"unknown class {label!r}")
    if distance:
        signal = _filter(signal, distance_gain(distance))
        meta["distance_km"] = f"{distance:.2f}"

    ambient_rms = site["ambient_rms"] * 10 ** (rng.uniform(-3, 3) / 20)
    ambient = _shaped_noise(rng, _red_gain(site["ambient_slope"], 2.0))
    background = _band_rms(ambient) ** -1 * ambient_rms * ambient
    if label != "wind" and rng.random() < BACKGROUND_WIND_SHARE:
        breeze, _ = wind(rng)
        level = ambient_rms * 10 ** (rng.uniform(*BACKGROUND_WIND_DB) / 20)
        background = background + breeze * level / _band_rms(breeze)
    snr_db = rng.uniform(*SNR_DB[label])
    # SNR: the source's level while active against the background, both in the 5-450 Hz band.
    signal = signal * (_band_rms(background) * 10 ** (snr_db / 20) / _band_rms(signal, active))
    meta["snr_db"] = f"{snr_db:.1f}"
    x = _filter(signal + background, _recorder_gain())
    return np.clip(np.round(x), -32768, 32767).astype(np.int16), meta


# ---------------------------------------------------------------------------------------------
# Whole data set


def _build(seed: int, scale: float) -> tuple[dict[str, np.ndarray], dict[str, list[dict]]]:
    rng = np.random.default_rng(seed)
    per_class = max(10, int(round(CLIPS_PER_CLASS * scale)))
    sites_of = split_sites(seed)
    profiles = {s: site_profile(seed, s) for s in range(NUM_SITES)}
    rows: dict[str, list] = {s: [] for s in FRACTIONS}
    clip_id = 0
    for label_idx, label in enumerate(CLASSES):
        n_train = int(round(FRACTIONS["train"] * per_class))
        n_val = int(round(FRACTIONS["val"] * per_class))
        counts = {"train": n_train, "val": n_val, "test": per_class - n_train - n_val}
        for split, count in counts.items():
            # Spread the split's clips of this class evenly over its sites.
            sites = sites_of[split]
            offset = int(rng.integers(len(sites)))
            for i in range(count):
                site = sites[(i + offset) % len(sites)]
                # One generator per clip: a clip does not depend on how many come before it.
                crng = np.random.default_rng([seed, label_idx, clip_id])
                x, meta = make_clip(crng, label, profiles[site])
                rows[split].append((x, label_idx, site, clip_id, meta))
                clip_id += 1
    arrays: dict[str, np.ndarray] = {}
    metas: dict[str, list[dict]] = {}
    for split, split_rows in rows.items():
        ordered = [split_rows[i] for i in rng.permutation(len(split_rows))]  # mix classes
        arrays[f"x_{split}"] = np.stack([r[0] for r in ordered])
        arrays[f"y_{split}"] = np.array([r[1] for r in ordered], dtype=np.int64)
        arrays[f"group_{split}"] = np.array([r[2] for r in ordered], dtype=np.int64)
        metas[split] = [{"clip": r[3], **r[4]} for r in ordered]
    return arrays, metas


def generate(seed: int = DEFAULT_SEED, scale: float = 1.0) -> dict[str, np.ndarray]:
    """Arrays per split: x (n, 5000) int16, y int64, group (recording site) int64.
    ``~300 * scale`` clips per class, 60/20/20 per class, whole sites per split."""
    return _build(seed, scale)[0]


def write_files(folder: Path, seed: int = DEFAULT_SEED, scale: float = 1.0) -> list[Path]:
    """Write ``clips/<split>/<label>/<label>_<clip>.flac`` (16-bit FLAC) into ``clips.zip`` and
    ``index.csv`` (``file,label,split,group,individual,source,distance_km,snr_db,f0_hz``; group
    = site) under ``folder``; return both."""
    arrays, metas = _build(seed, scale)

    def clips():
        for split in FRACTIONS:
            for x, y, g, meta in zip(arrays[f"x_{split}"], arrays[f"y_{split}"],
                                     arrays[f"group_{split}"], metas[split], strict=True):
                label = CLASSES[int(y)]
                rel = Path("clips") / split / label / f"{label}_{meta['clip']:05d}.flac"
                yield rel, x, [label, split, str(int(g)), meta["individual"], meta["source"],
                               meta["distance_km"], meta["snr_db"], meta["f0_hz"]]

    return write_flac_clips(folder, clips(), ["label", "split", "group", "individual", "source",
                                              "distance_km", "snr_db", "f0_hz"], SAMPLE_RATE)


# ---------------------------------------------------------------------------------------------
# Sanity baseline: a few whole-clip numbers -> nearest centroid

_BASE_FFT = 8192


def _power_spectrum(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    x = x - x.mean(axis=1, keepdims=True)
    power = np.abs(np.fft.rfft(x * np.hanning(x.shape[1]), n=_BASE_FFT, axis=1)) ** 2
    freqs = np.fft.rfftfreq(_BASE_FFT, 1.0 / SAMPLE_RATE)
    band = (freqs >= BAND_HZ[0]) & (freqs <= BAND_HZ[1])
    return freqs[band], power[:, band]


def dominant_frequency(x: np.ndarray) -> np.ndarray:
    """Frequency (Hz) of the strongest spectral peak in 5-450 Hz for each clip (rows of x)."""
    freqs, power = _power_spectrum(x)
    return freqs[np.argmax(power, axis=1)]


def simple_features(x: np.ndarray) -> np.ndarray:
    """Per clip: log dominant frequency, spectral flatness (dB; 0 = white, very negative =
    tonal) and the loudest 250 ms frame over the median frame (dB; high = impulsive)."""
    freqs, power = _power_spectrum(x)
    dominant = np.log(freqs[np.argmax(power, axis=1)])
    p = power + 1e-12
    flatness = 10 * np.log10(np.exp(np.mean(np.log(p), axis=1)) / np.mean(p, axis=1))
    xf = np.atleast_2d(np.asarray(x, dtype=np.float64))
    frames = xf[:, : (xf.shape[1] // 250) * 250].reshape(len(xf), -1, 250)
    energy = np.mean((frames - frames.mean(axis=2, keepdims=True)) ** 2, axis=2) + 1e-9
    crest = 10 * np.log10(energy.max(axis=1) / np.median(energy, axis=1))
    return np.stack([dominant, flatness, crest], axis=1)


def baseline_accuracy(arrays: dict[str, np.ndarray], split: str = "test",
                      columns: tuple[int, ...] = (0,)) -> float:
    """Nearest-centroid accuracy on standardised ``simple_features`` (fit on train).
    ``columns=(0,)`` uses the dominant frequency alone; ``(0, 1, 2)`` all three numbers."""
    cols = list(columns)
    f_train, f_test = (simple_features(arrays[f"x_{s}"])[:, cols] for s in ("train", split))
    return nearest_centroid_accuracy(f_train, arrays["y_train"], f_test, arrays[f"y_{split}"])
