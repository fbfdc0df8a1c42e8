"""Mosquito species from the sound of their wingbeats: 0.5 s clips at 8 kHz, females only.

A synthetic stand-in for optical-sensor wingbeat recordings such as the public "Wingbeats"
database (8 kHz): each clip is a harmonic stack whose fundamental is the wingbeat frequency, with
a species-typical harmonic profile, vibrato and jitter, a temperature shift, a fly-by amplitude
envelope (the insect crosses the sensor), mains/fan hum and background noise at a varied SNR.

Species fundamental ranges overlap on purpose (as they do in nature), and temperature moves all
of them, so one spectral peak cannot separate the classes. The per-species numbers below are
modelling choices, approximately consistent with female wingbeat frequencies reported in the
literature (a few hundred Hz up to ~600 Hz, with heavy overlap); they are not measurements.

Stored as FLAC clips (``write_files``) because int16 noise-heavy audio barely compresses in an
``.npz``; ``generate`` returns the same clips as arrays. ``dominant_frequency``,
``spectral_features`` and ``baseline_accuracy`` are the sanity baseline of the datasheet.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyml_edu.generators.baseline import nearest_centroid_accuracy
from tinyml_edu.generators.clips import write_flac_clips

TASK = "classification"
DESCRIPTION = (
    "Synthetic mosquito wingbeat clips (females of four vector species), 0.5 s at 8 kHz, int16: "
    "harmonic wingbeat tone with temperature shift, fly-by envelope, hum and noise."
)
CLASSES: tuple[str, ...] = (
    "aedes_aegypti", "anopheles_gambiae", "culex_quinquefasciatus", "anopheles_arabiensis")
SAMPLE_RATE = 8000
LICENSE = "CC0-1.0"
DEFAULT_SEED = 4242
CLIP_SAMPLES = 4000  # 0.5 s
CLIPS_PER_CLASS = 300
FRACTIONS = {"train": 0.6, "val": 0.2, "test": 0.2}

# Female wingbeat fundamental at the reference temperature: (mean, sd, low, high) in Hz, a
# truncated normal. Modelling choices, overlapping like the species do.
F0_AT_REF_HZ = {
    "aedes_aegypti": (500.0, 40.0, 420.0, 580.0),
    "anopheles_gambiae": (470.0, 35.0, 400.0, 540.0),
    "culex_quinquefasciatus": (410.0, 35.0, 340.0, 480.0),
    "anopheles_arabiensis": (445.0, 35.0, 380.0, 510.0),
}
# Relative amplitudes of harmonics 1..6 (species "timbre"; modelling choice). The fundamental
# dominates, as it usually does in recordings of females.
HARMONICS = {
    "aedes_aegypti": (1.0, 0.6, 0.35, 0.25, 0.12, 0.08),
    "anopheles_gambiae": (1.0, 0.35, 0.2, 0.08, 0.05, 0.03),
    "culex_quinquefasciatus": (1.0, 0.65, 0.3, 0.2, 0.15, 0.05),
    "anopheles_arabiensis": (1.0, 0.45, 0.15, 0.12, 0.04, 0.03),
}
REF_TEMPERATURE_C = 25.0
TEMPERATURE_RANGE_C = (22.0, 30.0)
# Wingbeat frequency rises with temperature. About 2 % per degree C, linear around 25 C: an
# approximate figure (for Aedes aegypti females an increase of roughly 8-13 Hz per degree has
# been reported, i.e. about 2-3 % at ~450 Hz).
TEMP_COEFF_PER_C = 0.02
SNR_DB_RANGE = (6.0, 30.0)
# Per-clip spread of the harmonic levels (log-normal sigma): individual insects, wing wear and
# sensor angle blur a species' timbre, but less than they shift its fundamental. With these, a
# species is usually recognisable from its harmonics even where the fundamentals overlap.
HARMONIC_SPREAD = 0.18  # each harmonic on its own
TILT_SPREAD = 0.10  # all harmonics alike, growing with harmonic number (sensor colouring)


def temperature_factor(temperature_c: float | np.ndarray) -> float | np.ndarray:
    return 1.0 + TEMP_COEFF_PER_C * (np.asarray(temperature_c) - REF_TEMPERATURE_C)


def f0_range_hz(label: str) -> tuple[float, float]:
    """Range of the clip's mean fundamental over all temperatures in the data set."""
    _, _, lo, hi = F0_AT_REF_HZ[label]
    return (lo * float(temperature_factor(TEMPERATURE_RANGE_C[0])),
            hi * float(temperature_factor(TEMPERATURE_RANGE_C[1])))


EXTRA = {
    "units": "int16 PCM (full scale 32767)",
    "clip_seconds": CLIP_SAMPLES / SAMPLE_RATE,
    "sex": "female only",
    "f0_hz_at_25C": {k: [v[2], v[3]] for k, v in F0_AT_REF_HZ.items()},
    "f0_hz_all_temperatures": {k: [round(v, 1) for v in f0_range_hz(k)] for k in CLASSES},
    "temperature_c": list(TEMPERATURE_RANGE_C),
    "temperature_coeff_per_c": TEMP_COEFF_PER_C,
    "snr_db": list(SNR_DB_RANGE),
    "harmonic_spread_lognormal_sigma": HARMONIC_SPREAD,
    "tilt_spread_lognormal_sigma": TILT_SPREAD,
    "groups": "clip id (unique); per-clip temperature is the index.csv column temperature_c",
}


# ---------------------------------------------------------------------------------------------
# One clip


def _smooth(rng: np.random.Generator, n: int, corner_hz: float) -> np.ndarray:
    """Zero-mean, unit-std noise low-passed at about corner_hz (slow random drift)."""
    k = max(1, int(SAMPLE_RATE / corner_hz))
    box = np.ones(k) / k
    sm = np.convolve(np.convolve(rng.standard_normal(n + 2 * k), box, "same"), box, "same")
    sm = sm[k:k + n] - sm[k:k + n].mean()
    return sm / (sm.std() + 1e-12)


def _clip(rng: np.random.Generator, label: str, temperature_c: float) -> np.ndarray:
    n = CLIP_SAMPLES
    t = np.arange(n) / SAMPLE_RATE
    mean, sd, lo, hi = F0_AT_REF_HZ[label]
    f0 = mean + sd * rng.standard_normal()
    while not lo <= f0 <= hi:  # truncated normal by rejection: keeps the documented range
        f0 = mean + sd * rng.standard_normal()
    f0 *= float(temperature_factor(temperature_c))
    # Vibrato (periodic) plus slow jitter of the wingbeat rate while the insect manoeuvres.
    vib = rng.uniform(0.003, 0.02) * np.sin(2 * np.pi * rng.uniform(3, 15) * t
                                            + rng.uniform(0, 2 * np.pi))
    jitter = rng.uniform(0.002, 0.01) * _smooth(rng, n, 20.0)
    phase = 2 * np.pi * np.cumsum(f0 * (1.0 + vib + jitter)) / SAMPLE_RATE
    tilt = rng.lognormal(0.0, TILT_SPREAD)  # sensor/angle colours all harmonics alike
    tone = np.zeros(n)
    for k, amp in enumerate(HARMONICS[label], start=1):
        if k * f0 * 1.05 >= SAMPLE_RATE / 2:
            break
        a = amp if k == 1 else amp * rng.lognormal(0.0, HARMONIC_SPREAD) * tilt ** (k - 1)
        tone += a * np.sin(k * phase + rng.uniform(0, 2 * np.pi))

    # Fly-by: a flat-topped, slightly asymmetric bump as the insect crosses the beam, with
    # flutter from its changing position and wing angle.
    centre = rng.uniform(0.15, 0.35)
    width = rng.uniform(0.03, 0.15) * np.where(t < centre, rng.uniform(0.7, 1.3), 1.0)
    env = np.exp(-(np.abs(t - centre) / width) ** rng.uniform(2.0, 4.0))
    env *= 1.0 + 0.15 * np.sin(2 * np.pi * rng.uniform(2, 10) * t + rng.uniform(0, 2 * np.pi))
    signal = env * tone
    level = np.exp(rng.uniform(np.log(300), np.log(3000)))  # peak: -40 to -20 dBFS
    signal *= level / (np.abs(signal).max() + 1e-12)
    rms = np.sqrt(np.mean(signal[env > 0.5 * env.max()] ** 2))

    # Background noise at a random SNR (vs the signal while the insect is in the beam): part
    # white (electronics), part low-frequency (air, light flicker).
    snr_db = rng.uniform(*SNR_DB_RANGE)
    sigma = rms / 10 ** (snr_db / 20)
    mix = rng.uniform(0.2, 0.8)
    noise = sigma * (np.sqrt(1 - mix) * rng.standard_normal(n)
                     + np.sqrt(mix) * _smooth(rng, n, rng.uniform(100, 400)))
    # Mains or fan hum locked to 50/60 Hz, with decaying harmonics (some fall in-band).
    mains = 50.0 if rng.random() < 0.5 else 60.0
    hum_amp = rms * 10 ** (rng.uniform(-30, -6) / 20)
    hum = np.zeros(n)
    for k in range(1, 9):
        hum += (hum_amp * 0.55 ** (k - 1) * rng.uniform(0.5, 1.0)
                * np.sin(2 * np.pi * mains * k * t + rng.uniform(0, 2 * np.pi)))
    x = signal + noise + hum
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


# ---------------------------------------------------------------------------------------------
# Whole data set


def _build(seed: int, scale: float) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    per_class = max(10, int(round(CLIPS_PER_CLASS * scale)))
    rows: dict[str, list] = {s: [] for s in FRACTIONS}
    clip_id = 0
    for label_idx, label in enumerate(CLASSES):
        n_train = int(round(FRACTIONS["train"] * per_class))
        n_val = int(round(FRACTIONS["val"] * per_class))
        split_of = (["train"] * n_train + ["val"] * n_val
                    + ["test"] * (per_class - n_train - n_val))
        for i in rng.permutation(per_class):  # stratified: each class split 60/20/20
            # One generator per clip: a clip does not depend on how many come before it.
            crng = np.random.default_rng([seed, label_idx, clip_id])
            temp = float(crng.uniform(*TEMPERATURE_RANGE_C))
            rows[split_of[i]].append((_clip(crng, label, temp), label_idx, clip_id, temp))
            clip_id += 1
    arrays: dict[str, np.ndarray] = {}
    for split, split_rows in rows.items():
        perm = rng.permutation(len(split_rows))  # mix classes within each split
        ordered = [split_rows[i] for i in perm]
        arrays[f"x_{split}"] = np.stack([r[0] for r in ordered])
        arrays[f"y_{split}"] = np.array([r[1] for r in ordered], dtype=np.int64)
        arrays[f"group_{split}"] = np.array([r[2] for r in ordered], dtype=np.int64)
        arrays[f"temperature_{split}"] = np.array([r[3] for r in ordered], dtype=np.float32)
    return arrays


def generate(seed: int = DEFAULT_SEED, scale: float = 1.0) -> dict[str, np.ndarray]:
    """Arrays per split: x (n, 4000) int16, y int64, group (clip id) int64, temperature (deg C)
    float32. ``~300 * scale`` clips per class, split 60/20/20 within each class."""
    return _build(seed, scale)


def write_files(folder: Path, seed: int = DEFAULT_SEED, scale: float = 1.0) -> list[Path]:
    """Write ``clips/<split>/<label>/<label>_<id>.flac`` (16-bit FLAC) into ``clips.zip`` and
    ``index.csv`` (``file,label,split,group,temperature_c``) under ``folder``; return both."""
    arrays = _build(seed, scale)

    def clips():
        for split in FRACTIONS:
            for x, y, g, temp in zip(arrays[f"x_{split}"], arrays[f"y_{split}"],
                                     arrays[f"group_{split}"], arrays[f"temperature_{split}"],
                                     strict=True):
                label = CLASSES[int(y)]
                rel = Path("clips") / split / label / f"{label}_{int(g):05d}.flac"
                yield rel, x, [label, split, str(int(g)), f"{float(temp):.2f}"]

    return write_flac_clips(folder, clips(), ["label", "split", "group", "temperature_c"],
                            SAMPLE_RATE)


# ---------------------------------------------------------------------------------------------
# Sanity baseline: spectral peak -> nearest centroid


def _spectrum(x: np.ndarray, n_fft: int) -> np.ndarray:
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    x = x - x.mean(axis=1, keepdims=True)
    return np.abs(np.fft.rfft(x * np.hanning(x.shape[1]), n=n_fft, axis=1))


def dominant_frequency(x: np.ndarray, sample_rate: float = SAMPLE_RATE, fmin: float = 200.0,
                       n_fft: int = 16384) -> np.ndarray:
    """Frequency (Hz) of the strongest spectral peak above ``fmin`` for each clip (rows of x).

    Hum and its low harmonics live below ~200 Hz, so they are ignored."""
    mag = _spectrum(x, n_fft)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    mag[:, freqs < fmin] = 0.0
    return freqs[np.argmax(mag, axis=1)]


def spectral_features(x: np.ndarray, sample_rate: float = SAMPLE_RATE) -> np.ndarray:
    """Per clip: dominant frequency (Hz) and the level of its 2nd and 3rd harmonic relative to
    it (dB): a crude "timbre" on top of the pitch."""
    n_fft = 16384
    mag = _spectrum(x, n_fft)
    f_peak = dominant_frequency(x, sample_rate, n_fft=n_fft)
    bin_hz = sample_rate / n_fft

    def level(mult: float) -> np.ndarray:  # strongest bin within +-3 % of mult * f_peak
        out = np.empty(len(f_peak))
        for i, f in enumerate(f_peak):
            lo, hi = int(mult * f * 0.97 / bin_hz), int(mult * f * 1.03 / bin_hz) + 1
            seg = mag[i, lo:hi]
            out[i] = seg.max() if seg.size else 0.0
        return out + 1e-9

    base = level(1.0)
    return np.stack([f_peak, 20 * np.log10(level(2.0) / base),
                     20 * np.log10(level(3.0) / base)], axis=1)


def baseline_accuracy(arrays: dict[str, np.ndarray], split: str = "test",
                      columns: tuple[int, ...] = (0,)) -> float:
    """Nearest-centroid accuracy on standardised ``spectral_features`` (fit on train).
    ``columns=(0,)`` uses the spectral-peak frequency alone; ``(0, 1, 2)`` adds harmonics."""
    cols = list(columns)
    f_train, f_test = (spectral_features(arrays[f"x_{s}"])[:, cols] for s in ("train", split))
    return nearest_centroid_accuracy(f_train, arrays["y_train"], f_test, arrays[f"y_{split}"])
