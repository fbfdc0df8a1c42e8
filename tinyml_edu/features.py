"""Features stage: raw audio -> log-mel / MFCC spectrograms, raw IMU -> scaled windows.

Audio uses the geometry of TFLM's micro_speech example (30 ms windows every 20 ms over a
1 s clip at 16 kHz -> 49 frames x 40 channels). It computes a plain floating-point log-mel
spectrogram; it does NOT reproduce the fixed-point micro frontend (noise reduction, PCAN gain
control) bit for bit. A model only works on the board if the board computes the same features
it was trained on, so every setting lives in a frozen params object that can be saved next to
the model with ``to_dict`` and loaded back with ``from_dict``.

Per audio frame: periodic Hann window -> zero-pad to ``fft_size`` -> power spectrum |rfft|^2
-> triangular HTK-mel filterbank -> log(max(x, log_floor)) [-> orthonormal DCT-II for MFCC].

Everything here is numpy only and deterministic: the same input always gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from typing import Any

import numpy as np

from tinyml_edu.errors import InputError

__all__ = [
    "AUDIO_KINDS",
    "AudioFeatureParams",
    "ImuFeatureParams",
    "audio_features",
    "audio_features_batch",
    "dct_matrix",
    "fit_clip",
    "frame_signal",
    "hz_to_mel",
    "imu_windows",
    "log_mel_spectrogram",
    "mel_filterbank",
    "mel_to_hz",
    "mfcc",
    "scale_imu",
    "to_float_audio",
]

AUDIO_KINDS = ("log_mel", "mfcc")

# Clips per chunk in audio_features_batch. Float64 frames and spectra for 128 one-second clips
# take under 100 MB; chunking keeps a 10,000-clip dataset from needing gigabytes at once.
_BATCH_CHUNK = 128


# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------


def _fields_from_dict(cls: type, d: dict[str, Any], derived: frozenset[str]) -> dict[str, Any]:
    """Keep only constructor fields of ``cls``; derived keys are dropped, anything else is an error.

    Failing on unknown keys catches typos (``"windo_ms"``) that would otherwise silently fall
    back to a default and produce features the model was not trained on.
    """
    names = {f.name for f in fields(cls)}
    unknown = set(d) - names - derived
    if unknown:
        raise InputError(
            f"unknown {cls.__name__} key(s) {sorted(unknown)}; expected some of {sorted(names)}"
        )
    return {k: v for k, v in d.items() if k in names}


def _ms_to_samples(ms: float, sample_rate: int) -> int:
    # Round rather than truncate: float math can land a hair below a whole number of samples.
    return int(np.rint(sample_rate * ms / 1000.0))


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise InputError(message)


_AUDIO_DERIVED = frozenset(
    {"window_samples", "stride_samples", "clip_samples", "num_frames", "shape"}
)


@dataclass(frozen=True)
class AudioFeatureParams:
    """Settings of the audio front end. Defaults give TFLM micro_speech's frame geometry (49 x 40).

    Frozen (immutable and hashable) so the same object can safely be shared by training and
    export code, and used as a cache key.
    """

    sample_rate: int = 16000
    window_ms: float = 30.0  # 480 samples
    stride_ms: float = 20.0  # 320 samples
    clip_ms: float = 1000.0  # 1 s clip -> 49 frames
    num_channels: int = 40  # mel channels
    fft_size: int = 512  # next power of two >= window
    lower_hz: float = 20.0
    upper_hz: float = 7600.0
    kind: str = "log_mel"  # "log_mel" or "mfcc"
    num_mfcc: int = 13  # used only when kind == "mfcc"
    log_floor: float = 1e-6

    def __post_init__(self) -> None:
        _require(
            self.kind in AUDIO_KINDS,
            f"unknown audio feature kind {self.kind!r}; expected one of {list(AUDIO_KINDS)}",
        )
        _require(self.sample_rate > 0, f"sample_rate must be > 0, got {self.sample_rate}")
        _require(
            self.window_samples >= 1 and self.stride_samples >= 1,
            f"window_ms={self.window_ms} and stride_ms={self.stride_ms} must each be at least "
            f"one sample long at {self.sample_rate} Hz",
        )
        _require(
            self.clip_samples >= self.window_samples,
            f"clip_ms={self.clip_ms} is shorter than one window ({self.window_ms} ms)",
        )
        _require(
            self.fft_size >= self.window_samples,
            f"fft_size={self.fft_size} is smaller than the window ({self.window_samples} "
            "samples); use the next power of two >= the window",
        )
        _require(
            0.0 <= self.lower_hz < self.upper_hz <= self.sample_rate / 2,
            f"need 0 <= lower_hz < upper_hz <= sample_rate / 2 = {self.sample_rate / 2}, "
            f"got lower_hz={self.lower_hz}, upper_hz={self.upper_hz}",
        )
        _require(self.num_channels >= 1, f"num_channels must be >= 1, got {self.num_channels}")
        _require(
            1 <= self.num_mfcc <= self.num_channels,
            f"num_mfcc must be between 1 and num_channels={self.num_channels}, got {self.num_mfcc}",
        )
        _require(self.log_floor > 0, f"log_floor must be > 0, got {self.log_floor}")

    @property
    def window_samples(self) -> int:
        return _ms_to_samples(self.window_ms, self.sample_rate)

    @property
    def stride_samples(self) -> int:
        return _ms_to_samples(self.stride_ms, self.sample_rate)

    @property
    def clip_samples(self) -> int:
        return _ms_to_samples(self.clip_ms, self.sample_rate)

    @property
    def num_frames(self) -> int:
        # Only whole windows count: no padding past the end of the clip.
        return 1 + (self.clip_samples - self.window_samples) // self.stride_samples

    @property
    def shape(self) -> tuple[int, int]:
        """Shape of one clip's features: (num_frames, num_channels or num_mfcc)."""
        width = self.num_mfcc if self.kind == "mfcc" else self.num_channels
        return (self.num_frames, width)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of all settings plus derived sizes (handy for the device code)."""
        d = asdict(self)
        d.update(
            window_samples=self.window_samples,
            stride_samples=self.stride_samples,
            clip_samples=self.clip_samples,
            num_frames=self.num_frames,
            shape=list(self.shape),
        )
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AudioFeatureParams:
        """Inverse of ``to_dict``. Derived keys are ignored (they are recomputed)."""
        return cls(**_fields_from_dict(cls, d, _AUDIO_DERIVED))


_IMU_DERIVED = frozenset({"num_channels", "shape"})


@dataclass(frozen=True)
class ImuFeatureParams:
    """Settings for slicing an IMU stream into windows and scaling it to [-1, 1].

    Accelerometer channels are expected in g and gyroscope channels in degrees per second
    (the units the Arduino LSM9DS1 library reports). A channel's kind comes from the first
    letter of its name: ``a...`` is accelerometer, ``g...`` is gyroscope.
    """

    sample_rate: int = 100  # Hz, what the Nano 33 BLE Sense IMU streams at in our firmware
    window: int = 128  # samples per window
    stride: int = 64
    accel_range_g: float = 4.0  # full-scale, used for scaling to [-1, 1]
    gyro_range_dps: float = 2000.0
    channels: tuple[str, ...] = ("ax", "ay", "az", "gx", "gy", "gz")

    def __post_init__(self) -> None:
        _require(
            not isinstance(self.channels, str),
            f"channels must be a sequence of names like ('ax', 'gx'), not the string "
            f"{self.channels!r}",
        )
        # Accept lists (e.g. from JSON) but store a tuple so the object stays hashable.
        object.__setattr__(self, "channels", tuple(self.channels))
        _require(len(self.channels) >= 1, "channels must name at least one channel")
        _require(
            len(set(self.channels)) == len(self.channels),
            f"channel names must be unique, got {self.channels}",
        )
        for name in self.channels:
            _require(
                isinstance(name, str) and name[:1].lower() in ("a", "g"),
                f"channel name {name!r} must start with 'a' (accelerometer) or 'g' (gyroscope)",
            )
        _require(self.sample_rate > 0, f"sample_rate must be > 0, got {self.sample_rate}")
        _require(
            self.window >= 1 and self.stride >= 1,
            f"window and stride must be >= 1, got window={self.window}, stride={self.stride}",
        )
        _require(
            self.accel_range_g > 0 and self.gyro_range_dps > 0,
            "accel_range_g and gyro_range_dps must be > 0",
        )

    @property
    def num_channels(self) -> int:
        return len(self.channels)

    @property
    def shape(self) -> tuple[int, int]:
        """Shape of one window: (window, num_channels)."""
        return (self.window, self.num_channels)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of all settings plus derived sizes."""
        d = asdict(self)
        d.update(
            channels=list(self.channels), num_channels=self.num_channels, shape=list(self.shape)
        )
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImuFeatureParams:
        """Inverse of ``to_dict``. Derived keys are ignored (they are recomputed)."""
        return cls(**_fields_from_dict(cls, d, _IMU_DERIVED))


# --------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------


def hz_to_mel(hz: float | np.ndarray) -> float | np.ndarray:
    """HTK mel scale: roughly linear below 1 kHz, logarithmic above (1000 Hz ~ 1000 mel)."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel: float | np.ndarray) -> float | np.ndarray:
    """Inverse of ``hz_to_mel``."""
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


@lru_cache(maxsize=16)
def _mel_filterbank64(
    sample_rate: int, fft_size: int, num_channels: int, lower_hz: float, upper_hz: float
) -> np.ndarray:
    # num_channels triangles need num_channels + 2 edges, equally spaced in mel.
    edges = mel_to_hz(np.linspace(hz_to_mel(lower_hz), hz_to_mel(upper_hz), num_channels + 2))
    left, centre, right = edges[:-2], edges[1:-1], edges[2:]
    bin_hz = np.arange(fft_size // 2 + 1)[:, None] * (sample_rate / fft_size)
    # Triangles are evaluated at the exact bin frequencies instead of being snapped to bins,
    # so the narrow low-frequency filters keep a nonzero width.
    rising = (bin_hz - left) / (centre - left)
    falling = (right - bin_hz) / (right - centre)
    fb = np.maximum(0.0, np.minimum(rising, falling))
    empty = np.flatnonzero(fb.max(axis=0) == 0.0)
    if empty.size:
        raise InputError(
            f"mel channels {empty.tolist()} cover no FFT bin; use fewer num_channels, a larger "
            "fft_size or a higher lower_hz"
        )
    fb.setflags(write=False)  # cached and shared: nobody may modify it
    return fb


def _filterbank_for(params: AudioFeatureParams) -> np.ndarray:
    return _mel_filterbank64(
        params.sample_rate, params.fft_size, params.num_channels, params.lower_hz, params.upper_hz
    )


def mel_filterbank(params: AudioFeatureParams) -> np.ndarray:
    """Triangular HTK-mel filters, shape (fft_size // 2 + 1, num_channels), float32.

    Column j is filter j (peak 1 at its centre frequency), so ``power @ fb`` turns a power
    spectrum into mel energies.
    """
    return _filterbank_for(params).astype(np.float32)


def dct_matrix(num_coeffs: int, num_inputs: int) -> np.ndarray:
    """Orthonormal DCT-II basis, shape (num_coeffs, num_inputs), float64: ``coeffs = D @ x``.

    Row k is a cosine with k half-periods across the inputs. Orthonormal scaling means the full
    square matrix is a rotation (D @ D.T == I), and coefficient 0 equals sqrt(N) * mean(x).
    """
    _require(
        1 <= num_coeffs <= num_inputs,
        f"need 1 <= num_coeffs <= num_inputs, got num_coeffs={num_coeffs}, num_inputs={num_inputs}",
    )
    n = np.arange(num_inputs)
    k = np.arange(num_coeffs)[:, None]
    d = np.sqrt(2.0 / num_inputs) * np.cos(np.pi * k * (2 * n + 1) / (2 * num_inputs))
    d[0] /= np.sqrt(2.0)  # the constant row would otherwise have length sqrt(2)
    return d


@lru_cache(maxsize=16)
def _periodic_hann(n: int) -> np.ndarray:
    # Periodic (not symmetric) Hann, like tf.signal.hann_window's default: it tapers frame
    # edges to zero so the FFT does not see a jump where the frame was cut out.
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)
    w.setflags(write=False)
    return w


def _frame_index(n_samples: int, window: int, stride: int) -> np.ndarray:
    """Index array (n_frames, window): row k is k*stride ... k*stride + window - 1."""
    n_frames = 1 + (n_samples - window) // stride
    return np.arange(n_frames)[:, None] * stride + np.arange(window)[None, :]


def frame_signal(signal: np.ndarray, window: int, stride: int) -> np.ndarray:
    """Cut ``signal`` into overlapping frames along its first axis.

    Returns a copy of shape (n_frames, window, *signal.shape[1:]), where frame k is
    ``signal[k*stride : k*stride + window]`` and n_frames = 1 + (len - window) // stride.
    Samples after the last whole frame are dropped; nothing is padded.
    """
    signal = np.asarray(signal)
    _require(
        int(window) == window and int(stride) == stride and window >= 1 and stride >= 1,
        f"window and stride must be positive integers, got window={window}, stride={stride}",
    )
    _require(signal.ndim >= 1, "signal must be an array with at least one dimension")
    n = signal.shape[0]
    _require(
        n >= window,
        f"signal has {n} samples but one frame needs window={window}; pad it first "
        "(e.g. with fit_clip) or use a shorter window",
    )
    return signal[_frame_index(n, int(window), int(stride))]


def fit_clip(audio: np.ndarray, clip_samples: int) -> np.ndarray:
    """Return exactly ``clip_samples`` samples (along the last axis), keeping the dtype.

    Longer audio is cropped around its centre; shorter audio is zero-padded equally on both
    sides (one extra zero at the end if the padding is odd), so a centred word stays centred.
    """
    audio = np.asarray(audio)
    _require(clip_samples >= 1, f"clip_samples must be >= 1, got {clip_samples}")
    _require(audio.ndim >= 1, "audio must be an array with at least one dimension")
    n = audio.shape[-1]
    if n >= clip_samples:
        start = (n - clip_samples) // 2
        return audio[..., start : start + clip_samples].copy()
    pad = clip_samples - n
    widths = [(0, 0)] * (audio.ndim - 1) + [(pad // 2, pad - pad // 2)]
    return np.pad(audio, widths)


def to_float_audio(audio: np.ndarray) -> np.ndarray:
    """int16 PCM -> float32 in [-1, 1); float audio is returned as float32 (no copy if it
    already is float32). Any other dtype raises TypeError rather than guessing its scale."""
    audio = np.asarray(audio)
    if audio.dtype == np.int16:
        # int16 spans [-32768, 32767]; dividing by 2**15 is exact in float32.
        return audio.astype(np.float32) / np.float32(32768.0)
    if np.issubdtype(audio.dtype, np.floating):
        return audio.astype(np.float32, copy=False)
    raise TypeError(
        f"audio has dtype {audio.dtype}; expected int16 PCM samples or floats in [-1, 1]. "
        "Convert first, e.g. int32 WAV data: (x / 2**31).astype(np.float32)"
    )


def _check_finite(x: np.ndarray, what: str) -> None:
    if not np.all(np.isfinite(x)):
        raise InputError(
            f"{what} contains NaN or infinite values; clean it (e.g. np.nan_to_num) or drop "
            "this recording before extracting features"
        )


# --------------------------------------------------------------------------------------------
# Audio features
# --------------------------------------------------------------------------------------------


def _prepare_clip(audio: np.ndarray, params: AudioFeatureParams) -> np.ndarray:
    """Validate one clip and return it as float32 of exactly clip_samples samples."""
    audio = np.asarray(audio)
    _require(
        audio.ndim == 1,
        f"expected 1-D mono audio of shape (n_samples,), got shape {audio.shape}; average "
        "stereo channels first, or use audio_features_batch for many clips",
    )
    _require(
        audio.size > 0,
        f"audio is empty; expected a 1-D clip of about {params.clip_samples} samples",
    )
    x = to_float_audio(audio)
    _check_finite(x, "audio")
    return fit_clip(x, params.clip_samples)


def _log_mel_rows(clips: np.ndarray, params: AudioFeatureParams) -> np.ndarray:
    """(n_clips, clip_samples) float -> (n_clips, num_frames, num_channels) float64."""
    frames = clips.astype(np.float64)[
        :, _frame_index(params.clip_samples, params.window_samples, params.stride_samples)
    ]
    frames *= _periodic_hann(params.window_samples)
    # n=fft_size zero-pads each frame; finer bins, same content.
    spectrum = np.fft.rfft(frames, n=params.fft_size, axis=-1)
    power = spectrum.real**2 + spectrum.imag**2  # |X|^2 without a square root
    mel = power @ _filterbank_for(params)
    # The floor keeps log() finite on silence and limits how much near-silent noise matters.
    return np.log(np.maximum(mel, params.log_floor))


def _features_rows(clips: np.ndarray, params: AudioFeatureParams, kind: str) -> np.ndarray:
    log_mel = _log_mel_rows(clips, params)
    if kind == "mfcc":
        # DCT over channels decorrelates them; the first few coefficients keep the spectral
        # envelope, which is what distinguishes speech sounds.
        return log_mel @ dct_matrix(params.num_mfcc, params.num_channels).T
    return log_mel


def log_mel_spectrogram(
    audio: np.ndarray, params: AudioFeatureParams = AudioFeatureParams()
) -> np.ndarray:
    """Log-mel spectrogram of one clip, shape (num_frames, num_channels), float32.

    ``audio`` is 1-D int16 or float; it is fit to ``params.clip_samples`` with ``fit_clip``
    first, so the output shape never depends on the recording length. ``params.kind`` is
    ignored here.
    """
    clip = _prepare_clip(audio, params)
    return _features_rows(clip[None, :], params, "log_mel")[0].astype(np.float32)


def mfcc(
    audio: np.ndarray, params: AudioFeatureParams = AudioFeatureParams(kind="mfcc")
) -> np.ndarray:
    """MFCCs of one clip, shape (num_frames, num_mfcc), float32.

    Orthonormal DCT-II (see ``dct_matrix``) of the log-mel spectrogram over the channel axis.
    Input handling as in ``log_mel_spectrogram``; ``params.kind`` is ignored here.
    """
    clip = _prepare_clip(audio, params)
    return _features_rows(clip[None, :], params, "mfcc")[0].astype(np.float32)


def audio_features(audio: np.ndarray, params: AudioFeatureParams) -> np.ndarray:
    """Features of one clip as chosen by ``params.kind``; shape ``params.shape``, float32.

    Audio that is not exactly ``params.clip_samples`` long is fit with ``fit_clip`` (centre
    crop or centred zero-padding), the same way at training time and on new recordings.
    """
    clip = _prepare_clip(audio, params)
    return _features_rows(clip[None, :], params, params.kind)[0].astype(np.float32)


def audio_features_batch(
    clips: np.ndarray | Sequence[np.ndarray], params: AudioFeatureParams
) -> np.ndarray:
    """Features of many clips, shape (n_clips, *params.shape), float32.

    ``clips`` is a 2-D array (n_clips, n_samples) or a sequence of 1-D clips of any lengths;
    every clip is fit to ``params.clip_samples`` as in ``audio_features``, so each clip gets
    the same features it would get alone. Work is done in chunks of clips to bound memory.
    """
    if isinstance(clips, np.ndarray):
        _require(
            clips.ndim == 2,
            f"expected a 2-D array of clips (n_clips, n_samples), got shape {clips.shape}; "
            "for a single clip use audio_features",
        )
        _require(
            clips.shape[0] == 0 or clips.shape[1] > 0,
            f"clips are empty (shape {clips.shape}); expected about {params.clip_samples} "
            "samples per clip",
        )
        batch = to_float_audio(clips)
        _check_finite(batch, "audio")
        batch = fit_clip(batch, params.clip_samples)
    else:
        prepared = [_prepare_clip(c, params) for c in clips]
        batch = np.stack(prepared) if prepared else np.zeros((0, params.clip_samples), np.float32)

    out = np.empty((batch.shape[0], *params.shape), dtype=np.float32)
    for start in range(0, batch.shape[0], _BATCH_CHUNK):
        chunk = batch[start : start + _BATCH_CHUNK]
        out[start : start + _BATCH_CHUNK] = _features_rows(chunk, params, params.kind)
    return out


# --------------------------------------------------------------------------------------------
# IMU features
# --------------------------------------------------------------------------------------------


def imu_windows(signal: np.ndarray, params: ImuFeatureParams = ImuFeatureParams()) -> np.ndarray:
    """Slice an IMU recording (n_samples, channels) into (n_windows, window, channels).

    Window k starts at sample k * stride; samples after the last whole window are dropped.
    The dtype is kept (use ``scale_imu`` to get float32 in [-1, 1]).
    """
    signal = np.asarray(signal)
    _require(
        signal.ndim == 2 and signal.shape[1] == params.num_channels,
        f"expected an IMU signal of shape (n_samples, {params.num_channels}) with channels "
        f"{params.channels}, got shape {signal.shape}; if it is (channels, n_samples), "
        "pass signal.T",
    )
    n = signal.shape[0]
    _require(
        n >= params.window,
        f"IMU recording has {n} samples but one window needs {params.window} "
        f"({params.window / params.sample_rate:g} s at {params.sample_rate} Hz); record longer "
        "or use a smaller window",
    )
    return frame_signal(signal, params.window, params.stride)


def scale_imu(windows: np.ndarray, params: ImuFeatureParams = ImuFeatureParams()) -> np.ndarray:
    """Divide accelerometer channels by accel_range_g and gyro channels by gyro_range_dps,
    then clip to [-1, 1]; float32, same shape.

    Works on anything whose last axis is the channels: a recording, one window or a batch.
    Dividing by the sensor's full scale (not by dataset statistics) means the device can do
    the exact same scaling without knowing anything about the training data.
    """
    x = np.asarray(windows)
    _require(
        x.ndim >= 1 and x.shape[-1] == params.num_channels,
        f"expected the last axis to hold the {params.num_channels} channels {params.channels}, "
        f"got shape {x.shape}",
    )
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise TypeError(f"IMU data must be integer or float, got dtype {x.dtype}")
    _check_finite(x, "IMU data")
    full_scale = np.array(
        [
            params.accel_range_g if name[0].lower() == "a" else params.gyro_range_dps
            for name in params.channels
        ]
    )
    return np.clip(x / full_scale, -1.0, 1.0).astype(np.float32)


def sensor_of(feature_params: dict[str, Any]) -> str:
    """The sensor a run's feature parameters belong to: "camera" (``input`` is camera),
    "audio" (they name a feature ``kind``), "imu" (they name ``channels``) or "none" (raw
    numbers, as the sine demo's), the names ``Project.sensor`` uses."""
    if feature_params.get("input") == "camera":
        return "camera"
    if "kind" in feature_params:
        return "audio"
    if "channels" in feature_params:
        return "imu"
    return "none"
