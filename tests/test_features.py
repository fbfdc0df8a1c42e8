"""Tests for tinyml_edu.features (numpy only; scipy is an optional cross-check)."""

import json

import numpy as np
import pytest

from tinyml_edu.features import (
    AudioFeatureParams,
    ImuFeatureParams,
    audio_features,
    audio_features_batch,
    dct_matrix,
    fit_clip,
    frame_signal,
    hz_to_mel,
    imu_windows,
    log_mel_spectrogram,
    mel_filterbank,
    mel_to_hz,
    mfcc,
    scale_imu,
    to_float_audio,
)

P = AudioFeatureParams()
P_MFCC = AudioFeatureParams(kind="mfcc")
SR = P.sample_rate


def tone(freq_hz: float, amplitude: float = 0.5, n: int = SR) -> np.ndarray:
    t = np.arange(n) / SR
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def channel_centres_hz(p: AudioFeatureParams) -> np.ndarray:
    # Written independently of the module: HTK mel, num_channels + 2 equally spaced edges.
    def mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    mels = np.linspace(mel(p.lower_hz), mel(p.upper_hz), p.num_channels + 2)[1:-1]
    return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)


# ---------------------------------------------------------------- params


def test_default_sizes_match_micro_speech():
    assert (P.window_samples, P.stride_samples, P.clip_samples) == (480, 320, 16000)
    assert P.num_frames == 49
    assert P.shape == (49, 40)
    assert P_MFCC.shape == (49, 13)
    assert P.fft_size >= P.window_samples


def test_feature_shapes_and_dtype():
    x = tone(1000.0)
    for fn, params in [
        (log_mel_spectrogram, P),
        (mfcc, P_MFCC),
        (audio_features, P),
        (audio_features, P_MFCC),
    ]:
        out = fn(x, params)
        assert out.shape == params.shape
        assert out.dtype == np.float32


@pytest.mark.parametrize(
    "params",
    [
        P,
        P_MFCC,
        AudioFeatureParams(
            sample_rate=8000,
            window_ms=32,
            stride_ms=16,
            fft_size=256,
            num_channels=20,
            upper_hz=3800,
            kind="mfcc",
            num_mfcc=10,
        ),
    ],
)
def test_audio_params_roundtrip_through_json(params):
    d = json.loads(json.dumps(params.to_dict()))
    assert d["kind"] == params.kind
    assert d["num_frames"] == params.num_frames
    assert d["shape"] == list(params.shape)
    assert AudioFeatureParams.from_dict(d) == params


def test_from_dict_ignores_derived_keys():
    d = P.to_dict()
    d["num_frames"] = 999  # stale derived value must not matter
    assert AudioFeatureParams.from_dict(d).num_frames == 49


def test_from_dict_rejects_unknown_kind_and_keys():
    with pytest.raises(ValueError, match="unknown audio feature kind 'spectrogram'"):
        AudioFeatureParams.from_dict({**P.to_dict(), "kind": "spectrogram"})
    with pytest.raises(ValueError, match="windo_ms"):
        AudioFeatureParams.from_dict({"windo_ms": 25.0})


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"fft_size": 256}, "fft_size=256 is smaller than the window"),
        ({"num_mfcc": 41}, "num_mfcc"),
        ({"upper_hz": 9000.0}, "upper_hz"),
        ({"clip_ms": 10.0}, "shorter than one window"),
        ({"log_floor": 0.0}, "log_floor"),
    ],
)
def test_bad_audio_params(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AudioFeatureParams(**kwargs)


def test_imu_params_roundtrip_and_validation():
    p = ImuFeatureParams(window=50, stride=25, channels=["gz", "ax"])
    assert p.channels == ("gz", "ax")  # lists (e.g. from JSON) become tuples
    d = json.loads(json.dumps(p.to_dict()))
    assert d["num_channels"] == 2
    assert ImuFeatureParams.from_dict(d) == p
    assert ImuFeatureParams.from_dict(ImuFeatureParams().to_dict()) == ImuFeatureParams()
    with pytest.raises(ValueError, match="must start with 'a'"):
        ImuFeatureParams(channels=("ax", "mx"))
    with pytest.raises(ValueError, match="unique"):
        ImuFeatureParams(channels=("ax", "ax"))
    with pytest.raises(ValueError, match="unknown ImuFeatureParams key"):
        ImuFeatureParams.from_dict({"windw": 3})


# ---------------------------------------------------------------- filterbank


def test_hz_mel_conversion():
    assert hz_to_mel(1000.0) == pytest.approx(1000.0, abs=0.1)  # HTK anchor point
    assert hz_to_mel(0.0) == 0.0
    f = np.array([20.0, 440.0, 7600.0])
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(f)), f)


def test_filterbank_shape_and_triangles():
    fb = mel_filterbank(P)
    assert fb.shape == (P.fft_size // 2 + 1, P.num_channels)
    assert fb.dtype == np.float32
    assert np.all(fb >= 0) and np.all(fb <= 1)
    assert np.all(fb.max(axis=0) > 0.5)  # no dead channel
    peaks = fb.argmax(axis=0)
    assert np.all(np.diff(peaks) > 0)  # channels go up in frequency
    bin_hz = np.arange(fb.shape[0]) * SR / P.fft_size
    # Nothing outside [lower_hz, upper_hz].
    assert np.all(fb[(bin_hz <= P.lower_hz) | (bin_hz >= P.upper_hz)] == 0)
    # Neighbouring HTK triangles overlap so they sum to 1 between the first and last centre.
    centres = channel_centres_hz(P)
    inside = (bin_hz >= centres[0]) & (bin_hz <= centres[-1])
    np.testing.assert_allclose(fb[inside].sum(axis=1), 1.0, atol=1e-6)
    # Peak bin of each filter is the FFT bin nearest its centre frequency (within one bin).
    assert np.all(np.abs(bin_hz[peaks] - centres) <= SR / P.fft_size)


def test_filterbank_rejects_channels_without_bins():
    with pytest.raises(ValueError, match="cover no FFT bin"):
        mel_filterbank(AudioFeatureParams(num_channels=200, upper_hz=8000.0))


# ---------------------------------------------------------------- log-mel


@pytest.mark.parametrize("channel", [3, 12, 25, 38])
def test_tone_at_channel_centre_peaks_in_that_channel(channel):
    f = channel_centres_hz(P)[channel]
    lm = log_mel_spectrogram(tone(f), P)
    assert np.all(lm.argmax(axis=1) == channel)  # every frame, not just on average


@pytest.mark.parametrize("freq", [440.0, 1000.0, 3000.0])
def test_tone_peak_next_to_its_mel(freq):
    centre_mels = hz_to_mel(channel_centres_hz(P))
    expected = int(np.argmin(np.abs(centre_mels - hz_to_mel(freq))))
    lm = log_mel_spectrogram(tone(freq), P).mean(axis=0)
    peak = int(lm.argmax())
    assert abs(peak - expected) <= 1
    # The Hann window keeps spectral leakage low: channels 5+ away are far below the peak
    # (about 17-22 log units here; an unwindowed frame only manages about 6-8).
    far = np.r_[lm[: max(peak - 4, 0)], lm[peak + 5 :]]
    assert lm[peak] - far.max() > 12.0


def test_silence_gives_the_floor():
    lm = log_mel_spectrogram(np.zeros(SR, np.float32), P)
    assert np.all(lm == np.float32(np.log(P.log_floor)))
    lm16 = log_mel_spectrogram(np.zeros(SR, np.int16), P)
    assert lm16.tobytes() == lm.tobytes()


def test_power_spectrum_scaling():
    # Power is |X|^2: doubling the amplitude adds log(4) wherever we are above the floor.
    x = tone(1000.0, 0.2)
    diff = log_mel_spectrogram(2 * x, P) - log_mel_spectrogram(x, P)
    loud = log_mel_spectrogram(x, P) > np.log(P.log_floor) + 5
    assert loud.sum() > 100
    np.testing.assert_allclose(diff[loud], np.log(4.0), atol=1e-4)


def test_deterministic():
    x = np.random.default_rng(1).standard_normal(SR).astype(np.float32) * 0.1
    for params in (P, P_MFCC):
        assert audio_features(x, params).tobytes() == audio_features(x.copy(), params).tobytes()


def test_int16_and_float_inputs_match():
    pcm = (tone(700.0, 0.3) * 32767).astype(np.int16)
    as_float = pcm.astype(np.float32) / 32768.0
    for params in (P, P_MFCC):
        assert audio_features(pcm, params).tobytes() == audio_features(as_float, params).tobytes()
    # float64 input is accepted too and treated as float32.
    assert np.array_equal(
        audio_features(as_float.astype(np.float64), P), audio_features(as_float, P)
    )


def test_audio_features_fits_clip_length():
    short = tone(500.0, n=SR // 2)
    long = tone(500.0, n=SR * 2)
    for x in (short, long):
        out = audio_features(x, P)
        assert out.shape == P.shape
        np.testing.assert_array_equal(out, audio_features(fit_clip(x, SR), P))


def test_audio_features_dispatches_on_kind():
    x = tone(1200.0)
    np.testing.assert_array_equal(audio_features(x, P), log_mel_spectrogram(x, P))
    np.testing.assert_array_equal(audio_features(x, P_MFCC), mfcc(x, P_MFCC))


# ---------------------------------------------------------------- MFCC


def test_dct_matrix_is_orthonormal():
    d = dct_matrix(40, 40)
    np.testing.assert_allclose(d @ d.T, np.eye(40), atol=1e-12)
    np.testing.assert_allclose(d.T @ d, np.eye(40), atol=1e-12)  # square -> a rotation
    d13 = dct_matrix(13, 40)
    np.testing.assert_allclose(d13 @ d13.T, np.eye(13), atol=1e-12)
    np.testing.assert_array_equal(d13, d[:13])
    with pytest.raises(ValueError, match="num_coeffs"):
        dct_matrix(41, 40)


def test_dct_matches_scipy():
    fft = pytest.importorskip("scipy.fft")
    x = np.random.default_rng(2).standard_normal((5, 40))
    np.testing.assert_allclose(
        x @ dct_matrix(40, 40).T, fft.dct(x, type=2, norm="ortho"), atol=1e-12
    )


def test_mfcc_is_dct_of_log_mel():
    x = np.random.default_rng(3).standard_normal(SR).astype(np.float32) * 0.05 + tone(900.0)
    lm = log_mel_spectrogram(x, P_MFCC).astype(np.float64)
    m = mfcc(x, P_MFCC)
    # c0 is sqrt(N) * the mean log-mel energy of the frame.
    np.testing.assert_allclose(m[:, 0], np.sqrt(P.num_channels) * lm.mean(axis=1), rtol=1e-4)
    np.testing.assert_allclose(m, lm @ dct_matrix(13, 40).T, rtol=1e-4, atol=1e-3)


def test_mfcc_of_silence_is_only_c0():
    m = mfcc(np.zeros(SR, np.float32), P_MFCC)
    np.testing.assert_allclose(m[:, 0], np.sqrt(40) * np.log(1e-6), rtol=1e-6)
    np.testing.assert_allclose(m[:, 1:], 0.0, atol=1e-4)


# ---------------------------------------------------------------- batch


def test_batch_matches_single_clips():
    rng = np.random.default_rng(4)
    clips = (rng.standard_normal((6, SR)) * 2000).astype(np.int16)
    for params in (P, P_MFCC):
        out = audio_features_batch(clips, params)
        assert out.shape == (6, *params.shape) and out.dtype == np.float32
        singles = np.stack([audio_features(c, params) for c in clips])
        np.testing.assert_allclose(out, singles, rtol=1e-6, atol=1e-6)


def test_batch_accepts_ragged_list_and_empty():
    clips = [tone(300.0, n=12000), tone(300.0, n=SR), tone(300.0, n=20000)]
    out = audio_features_batch(clips, P)
    assert out.shape == (3, 49, 40)
    np.testing.assert_allclose(out[0], audio_features(clips[0], P), rtol=1e-6, atol=1e-6)
    assert audio_features_batch(np.zeros((0, SR), np.float32), P).shape == (0, 49, 40)
    assert audio_features_batch([], P_MFCC).shape == (0, 49, 13)


def test_batch_rejects_bad_input():
    with pytest.raises(ValueError, match="2-D array of clips"):
        audio_features_batch(np.zeros(SR, np.float32), P)
    bad = np.zeros((2, SR), np.float32)
    bad[1, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        audio_features_batch(bad, P)


# ---------------------------------------------------------------- input handling


def test_to_float_audio():
    pcm = np.array([-32768, 0, 16384, 32767], np.int16)
    f = to_float_audio(pcm)
    assert f.dtype == np.float32
    assert f[0] == -1.0 and f[1] == 0.0 and f[2] == 0.5 and f[3] < 1.0
    assert to_float_audio(np.array([0.25], np.float64)).dtype == np.float32
    with pytest.raises(TypeError, match="int32.*expected int16"):
        to_float_audio(np.zeros(4, np.int32))


@pytest.mark.parametrize(
    "audio, error, match",
    [
        (np.zeros((2, SR), np.float32), ValueError, "expected 1-D mono audio"),
        (np.zeros(0, np.float32), ValueError, "audio is empty"),
        (np.array([0.0, np.nan, 0.1], np.float32), ValueError, "NaN"),
        (np.array([0.0, np.inf], np.float64), ValueError, "infinite"),
        (np.zeros(SR, np.int32), TypeError, "int16"),
    ],
)
def test_bad_audio_input(audio, error, match):
    for fn in (log_mel_spectrogram, mfcc, lambda a: audio_features(a, P)):
        with pytest.raises(error, match=match):
            fn(audio)


def test_fit_clip():
    x = np.arange(1, 6, dtype=np.int16)
    np.testing.assert_array_equal(fit_clip(x, 9), [0, 0, 1, 2, 3, 4, 5, 0, 0])
    np.testing.assert_array_equal(fit_clip(x, 8), [0, 1, 2, 3, 4, 5, 0, 0])
    np.testing.assert_array_equal(fit_clip(x, 3), [2, 3, 4])  # centre crop
    np.testing.assert_array_equal(fit_clip(x, 5), x)
    assert fit_clip(x, 9).dtype == np.int16
    assert fit_clip(x, 5) is not x  # always a new array


@pytest.mark.parametrize(
    "length, window, stride",
    [(16000, 480, 320), (480, 480, 320), (799, 480, 320), (800, 480, 320), (10, 3, 1)],
)
def test_frame_signal_counts_and_content(length, window, stride):
    x = np.arange(length)
    frames = frame_signal(x, window, stride)
    n = 1 + (length - window) // stride
    assert frames.shape == (n, window)
    for k in (0, n - 1):
        np.testing.assert_array_equal(frames[k], x[k * stride : k * stride + window])


def test_frame_signal_errors():
    with pytest.raises(ValueError, match="signal has 100 samples but one frame needs window=480"):
        frame_signal(np.zeros(100), 480, 320)
    with pytest.raises(ValueError, match="positive integers"):
        frame_signal(np.zeros(100), 10, 0)


# ---------------------------------------------------------------- IMU


def test_imu_windows_shape_and_content():
    p = ImuFeatureParams()
    sig = np.arange(1000 * 6, dtype=np.float32).reshape(1000, 6)
    w = imu_windows(sig, p)
    assert w.shape == (1 + (1000 - 128) // 64, 128, 6)  # 14 windows, last 40 samples dropped
    for k in range(w.shape[0]):
        np.testing.assert_array_equal(w[k], sig[k * 64 : k * 64 + 128])
    assert imu_windows(sig[:128], p).shape == (1, 128, 6)


def test_imu_windows_errors():
    p = ImuFeatureParams()
    with pytest.raises(ValueError, match=r"shape \(n_samples, 6\).*pass signal\.T"):
        imu_windows(np.zeros((6, 1000)), p)
    with pytest.raises(ValueError, match="has 100 samples but one window needs 128"):
        imu_windows(np.zeros((100, 6)), p)


def test_scale_imu_divides_and_clips():
    p = ImuFeatureParams()
    row = np.array([2.0, -1.0, 5.0, 1000.0, -2000.0, -2500.0])
    out = scale_imu(np.tile(row, (3, 4, 1)), p)
    assert out.shape == (3, 4, 6) and out.dtype == np.float32
    np.testing.assert_allclose(out[0, 0], [0.5, -0.25, 1.0, 0.5, -1.0, -1.0], rtol=1e-7)
    assert out.min() >= -1.0 and out.max() <= 1.0


def test_scale_imu_uses_channel_names():
    p = ImuFeatureParams(channels=("gx", "ax"), accel_range_g=2.0, gyro_range_dps=250.0)
    np.testing.assert_allclose(scale_imu(np.array([[125.0, 1.0]]), p), [[0.5, 0.5]])
    with pytest.raises(ValueError, match="2 channels"):
        scale_imu(np.zeros((4, 6)), p)
    with pytest.raises(ValueError, match="NaN"):
        scale_imu(np.array([[np.nan, 0.0]]), p)
