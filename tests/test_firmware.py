"""The firmware in firmware/: its protocol library against tinyml_edu.protocol, its log-mel
front end against tinyml_edu.features, and checks of the sketches that need no board.

arduino-cli and the board cores cannot be installed here, so the sketches are compiled on the
host against small stand-in headers for Arduino, Wire, PDM, ESP_I2S, the BMI270 library and
TFLM: that catches C++ errors in our code, not mistakes about the real libraries' APIs.
"""

from __future__ import annotations

import random
import re
import shutil
import struct
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from tinyml_edu import export, features
from tinyml_edu import protocol as p
from tinyml_edu.projects import elephant_rumbles

FIRMWARE = Path(__file__).resolve().parent.parent / "firmware"
LIBRARY = FIRMWARE / "libraries" / "tinyml_edu_protocol"
SRC = LIBRARY / "src"
SKETCHES = ("capture_imu", "capture_audio_nano", "capture_audio_xiao", "inference_template")
PLACEHOLDERS = ("{{PROJECT}}", "{{BOARD_ID}}", "{{SENSOR}}", "{{OP_COUNT}}",
                "{{OP_RESOLVER_ADDS}}")

GXX = shutil.which("g++")
needs_gxx = pytest.mark.skipif(GXX is None, reason="g++ is not installed")


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, **kwargs)
    assert result.returncode == 0, (cmd, result.stdout, result.stderr)
    return result


def _double_bits(v: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", v))[0]


def _f32(v: float) -> float:
    return float(np.float32(v))


# ---------------------------------------------------------------------------------------------
# (a) the protocol library on the host, byte for byte against tinyml_edu.protocol

HEADERS = [
    ("nano33ble_sense_rev2", "imu", 100, "ax,ay,az,gx,gy,gz", "g,g,g,dps,dps,dps"),
    ("nano33ble_sense_rev1", "imu", 119, "ax,gz", "g,dps"),
    ("xiao_esp32s3_sense", "audio", 16000, "mic", "int16"),
]
IMU_ROWS = [
    (0, [0.00005, -0.00004, 1.23456, 100.0, -0.0, 0.0]),
    (1, [-1.5, 2.25, -3.99995, 1e-5, -123.45675, 0.03125]),
    (65535, [0.00015, -0.00025, 0.99995, -0.99995, 1999.99999, -2000.0]),
    (65536, [0.1, -0.1, 1.0 / 3.0, -2.0 / 3.0, 4.0, -4.0]),
    (70001, [12345.678951, -0.5, 0.0001, -0.0001, 0.00049999, 7.77777]),
]
PREDICTIONS = [
    (0, "W", 0.953, 4.21),
    (1, "O", 0.0005, 0.005),
    (65536, "y", -0.9995, 12.345),
    (7, "L", 1.0, 1234.5),
    (8, "no_class", 0.0625, 0.125),
]


def _audio_frames() -> list[tuple[int, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [
        (0, np.array([0, 1, -1, 32767, -32768], dtype=np.int16)),
        (65537, (np.arange(-256, 256) * 97).astype(np.int16)),
        (3, rng.integers(-32768, 32768, size=p.MAX_AUDIO_SAMPLES).astype(np.int16)),
        (4, np.zeros(0, dtype=np.int16)),
    ]


def _fixed_cases() -> list[tuple[float, int]]:
    rng = random.Random(42)
    values = [0.00005, -0.00004, 1.23456, 100.0, 0.03125, -0.03125, 2.5, 0.5, -0.0, 0.0,
              1e20, 5e-324, -1.7976931348623157e308, 0.99995, 9.99995, float("nan"),
              float("inf"), float("-inf")]
    for _ in range(400):
        kind = rng.random()
        if kind < 0.4:
            values.append(rng.uniform(-2000.0, 2000.0))
        elif kind < 0.7:  # ties in decimal that are not ties in binary, and real ties
            values.append(rng.randint(-400000, 400000) / 20000.0)
        else:  # anything a double can hold
            values.append(struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0])
    return [(v, d) for v in values for d in (0, 2, 3, 4)]


def _c_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _host_program(fixed: list[tuple[float, int]]) -> str:
    """C++ that formats every case and prints `<tag> <hex of the bytes>` per case."""
    out = ["#include <cstdio>", "#include <cstring>", "#include <cstdint>",
           '#include "tinyml_edu_protocol.h"',
           "static char line[TME_LINE_MAX];",
           "static uint8_t frame[TME_AUDIO_FRAME_MAX + 16];",
           "static void hex(const char* tag, const void* data, size_t n) {",
           "  const unsigned char* b = static_cast<const unsigned char*>(data);",
           '  std::printf("%s %zu ", tag, n);',
           '  for (size_t i = 0; i < n; ++i) std::printf("%02x", b[i]);',
           '  std::printf("\\n");', "}",
           "static double from_bits(uint64_t u) { double d; std::memcpy(&d, &u, 8); return d; }",
           "int main() {", "  size_t n;"]
    out.append('  std::printf("crc %04X\\n", tme_crc16((const uint8_t*)"123456789", 9));')
    for board, sensor, rate, columns, units in HEADERS:
        out.append(f"  n = tme_format_header(line, sizeof line, {_c_string(board)}, "
                   f"{_c_string(sensor)}, {rate}u, {_c_string(columns)}, {_c_string(units)});")
        out.append('  hex("header", line, n);')
    for seq, values in IMU_ROWS:
        doubles = ", ".join(f"from_bits({_double_bits(v)}ull)" for v in values)
        out.append(f"  {{ double v[] = {{{doubles}}};")
        out.append(f"    n = tme_format_imu_double(line, sizeof line, {seq}u, v, {len(values)});")
        out.append('    hex("imu_double", line, n);')
        out.append(f"    float f[{len(values)}]; for (int i = 0; i < {len(values)}; ++i) "
                   "f[i] = (float)v[i];")
        out.append(f"    n = tme_format_imu(line, sizeof line, {seq}u, f, {len(values)});")
        out.append('    hex("imu_float", line, n); }')
    for seq, label, score, ms in PREDICTIONS:
        out.append(f"  n = tme_format_prediction(line, sizeof line, {seq}u, {_c_string(label)}, "
                   f"from_bits({_double_bits(score)}ull), from_bits({_double_bits(ms)}ull));")
        out.append('  hex("prediction", line, n);')
    for seq, samples in _audio_frames():
        body = ", ".join(str(int(s)) for s in samples) or "0"
        out.append(f"  {{ static const int16_t s[] = {{{body}}};")
        out.append(f"    n = tme_format_audio_frame(frame, sizeof frame, {seq}u, s, "
                   f"{len(samples)});")
        out.append('    hex("audio", frame, n); }')
    out.append("  { static int16_t big[TME_AUDIO_MAX_SAMPLES + 1];")
    out.append("    n = tme_format_audio_frame(frame, sizeof frame, 0, big, "
               "TME_AUDIO_MAX_SAMPLES + 1);")
    out.append('    hex("audio_too_big", frame, n); }')
    out.append('  n = tme_format_comment(line, sizeof line, "tinyml-edu capture_imu 1.0, '
               'IMU: BMI270+BMM150 (Rev2)"); hex("comment", line, n);')
    out.append('  n = tme_format_error(line, sizeof line, "no IMU found"); hex("error", line, n);')
    out.append('  n = tme_format_header(line, 20, "nano33ble_sense_rev2", "imu", 100, "ax", "g");')
    out.append('  hex("small_buffer", line, n);')
    for value, decimals in fixed:
        out.append(f"  n = tme_format_fixed(line, sizeof line, from_bits({_double_bits(value)}ull),"
                   f" {decimals}); hex(\"fixed\", line, n);")
    commands = ["hello\r\n", "  infer   on \n", "INFER OFF\n", "start\n", "STOP\r", "bogus\n",
                "\n", "x" * 40 + "\n", "Hello\n"]
    out.append("  { tme_command_reader_t r; tme_command_reader_init(&r);")
    for text in commands:
        escaped = text.replace("\r", "\\r").replace("\n", "\\n")
        out.append(f'    for (const char* c = "{escaped}"; *c; ++c) {{')
        out.append("      tme_command_t cmd = tme_command_reader_feed(&r, (uint8_t)*c);")
        out.append('      if (cmd != TME_CMD_NONE) std::printf("command %s|%s\\n", '
                   "tme_command_name(cmd), r.line); }")
    out.append("  }")
    out.append("  return 0;")
    out.append("}")
    return "\n".join(out) + "\n"


@pytest.fixture(scope="module")
def host_output(tmp_path_factory) -> dict:
    if GXX is None:
        pytest.skip("g++ is not installed")
    work = tmp_path_factory.mktemp("host_protocol")
    fixed = _fixed_cases()
    (work / "check.cpp").write_text(_host_program(fixed))
    exe = work / "check"
    _run([GXX, "-std=c++17", "-O1", "-Wall", "-Wextra", "-Werror", "-I", str(SRC),
          "-x", "c++", str(SRC / "tinyml_edu_protocol.c"), "-x", "c++", str(work / "check.cpp"),
          "-o", str(exe)])
    lines = _run([str(exe)], text=True).stdout.splitlines()
    records: dict[str, list] = {}
    for line in lines:
        tag, rest = line.split(" ", 1)
        if tag == "command" or tag == "crc":
            records.setdefault(tag, []).append(rest)
            continue
        size, _, data = rest.partition(" ")
        raw = bytes.fromhex(data)
        assert len(raw) == int(size)
        records.setdefault(tag, []).append(raw)
    records["fixed_cases"] = fixed
    return records


def test_crc_check_value(host_output):
    assert host_output["crc"] == ["29B1"]


def test_header_lines_match_python(host_output):
    expected = [p.encode_header(b, s, r, c.split(","), u.split(",")) for b, s, r, c, u in HEADERS]
    assert host_output["header"] == expected


def test_imu_lines_match_python_including_rounding_and_negative_zero(host_output):
    doubles = [p.encode_imu_sample(seq, values) for seq, values in IMU_ROWS]
    assert host_output["imu_double"] == doubles
    # Floats widen exactly to double: the text is Python's for float(np.float32(v)).
    floats = [p.encode_imu_sample(seq, [_f32(v) for v in values]) for seq, values in IMU_ROWS]
    assert host_output["imu_float"] == floats
    first = doubles[0].decode()
    assert first.startswith("D 0 0.0001,-0.0000,1.2346,100.0000,-0.0000,0.0000 *")


def test_fixed_point_formatting_is_pythons_for_any_double(host_output):
    expected = [f"{v:.{d}f}".encode() for v, d in host_output["fixed_cases"]]
    assert len(host_output["fixed"]) == len(expected)
    cases = zip(host_output["fixed_cases"], host_output["fixed"], expected, strict=True)
    mismatches = [(v, d, got, want) for (v, d), got, want in cases if got != want]
    assert not mismatches[:5]


def test_prediction_lines_match_python(host_output):
    expected = [p.encode_prediction(*row) for row in PREDICTIONS]
    assert host_output["prediction"] == expected


def test_audio_frames_match_python_and_oversized_frames_are_refused(host_output):
    expected = [p.encode_audio_frame(seq, samples) for seq, samples in _audio_frames()]
    assert host_output["audio"] == expected
    assert host_output["audio_too_big"] == [b""]
    assert host_output["small_buffer"] == [b""]


def test_comment_and_error_lines_match_python(host_output):
    assert host_output["comment"] == [
        p.encode_comment("tinyml-edu capture_imu 1.0, IMU: BMI270+BMM150 (Rev2)")]
    assert host_output["error"] == [p.encode_error("no IMU found")]


def test_command_reader(host_output):
    assert host_output["command"] == [
        "HELLO|HELLO", "INFER ON|INFER ON", "INFER OFF|INFER OFF", "START|START", "STOP|STOP",
        "?|BOGUS", "?|" + "X" * 32, "HELLO|HELLO"]


def test_the_stream_parser_reads_everything_the_board_sends(host_output):
    stream = b"".join(host_output["comment"] + host_output["header"] + host_output["imu_float"]
                      + host_output["audio"] + host_output["prediction"] + host_output["error"])
    rng = random.Random(7)
    parser = p.StreamParser()
    events, pos = [], 0
    while pos < len(stream):
        step = rng.randint(1, 97)
        events += list(parser.feed(stream[pos:pos + step]))
        pos += step
    kinds = [type(e).__name__ for e in events]
    assert "Corrupted" not in kinds
    assert kinds == (["Comment"] + ["Header"] * len(HEADERS) + ["ImuSample"] * len(IMU_ROWS)
                     + ["AudioFrame"] * len(_audio_frames()) + ["Prediction"] * len(PREDICTIONS)
                     + ["BoardError"])
    header = events[1]
    assert header == p.Header("nano33ble_sense_rev2", "imu", 100.0,
                              ("ax", "ay", "az", "gx", "gy", "gz"), ("g", "g", "g", "dps", "dps",
                                                                      "dps"))
    imu = [e for e in events if isinstance(e, p.ImuSample)]
    assert [e.seq for e in imu] == [seq % 65536 for seq, _ in IMU_ROWS]
    for event, (_, values) in zip(imu, IMU_ROWS, strict=True):
        assert event.values == tuple(float(f"{_f32(v):.4f}") for v in values)
    audio = [e for e in events if isinstance(e, p.AudioFrame)]
    for event, (seq, samples) in zip(audio, _audio_frames(), strict=True):
        assert event.seq == seq % 65536 and np.array_equal(event.samples, samples)
    predictions = [e for e in events if isinstance(e, p.Prediction)]
    assert predictions[0] == p.Prediction(0, "W", 0.953, 4.21)
    assert predictions[2].score == -1.0 and predictions[2].seq == 0  # -0.9995 -> -1.000


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")
def test_the_library_is_warning_free_c99(tmp_path):
    for name in ("tinyml_edu_protocol.c", "tinyml_edu_dsp.c"):
        _run(["gcc", "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Wconversion", "-Wshadow",
              "-Werror", "-c", str(SRC / name), "-o", str(tmp_path / "x.o")])


# ---------------------------------------------------------------------------------------------
# The audio front end (tinyml_edu_dsp) against tinyml_edu.features

LOGMEL_PROGRAM = r"""
#include <cstdio>
#include <cstdlib>
#include <vector>
#include "tinyml_edu_dsp.h"
int main(int argc, char** argv) {
  (void)argc;
  tme_logmel_t m;
  m.sample_rate = std::atoi(argv[1]);
  m.window_samples = std::atoi(argv[2]);
  const unsigned stride = std::atoi(argv[3]);
  m.fft_size = std::atoi(argv[4]);
  m.num_channels = std::atoi(argv[5]);
  m.lower_hz = std::atof(argv[6]);
  m.upper_hz = std::atof(argv[7]);
  const unsigned clip = std::atoi(argv[8]);
  const unsigned rotate = std::atoi(argv[9]);
  const unsigned mfcc = std::atoi(argv[10]);
  m.log_floor = 1e-6f;
  std::vector<float> hann(m.window_samples), tw(m.fft_size), fft(m.fft_size),
      power(m.fft_size / 2 + 1), weights(TME_MEL_WEIGHTS_MAX(m.fft_size)),
      row(m.num_channels), dct(13 * m.num_channels), coeffs(13);
  std::vector<uint16_t> first(m.num_channels), count(m.num_channels);
  m.hann = hann.data(); m.twiddle = tw.data(); m.fft = fft.data(); m.power = power.data();
  m.weights = weights.data(); m.weights_capacity = weights.size();
  m.first_bin = first.data(); m.bin_count = count.data();
  if (tme_logmel_init(&m) != TME_DSP_OK) return 2;
  tme_dct_init(dct.data(), 13, m.num_channels);
  std::vector<int16_t> audio(clip), ring(clip);
  if (std::fread(audio.data(), 2, clip, stdin) != clip) return 3;
  for (unsigned i = 0; i < clip; ++i) ring[(i + rotate) % clip] = audio[i];  // wrap-around
  const unsigned frames = 1 + (clip - m.window_samples) / stride;
  for (unsigned f = 0; f < frames; ++f) {
    tme_logmel_frame(&m, ring.data(), clip, rotate + f * stride, row.data());
    const float* out = row.data();
    unsigned width = m.num_channels;
    if (mfcc) {
      tme_dct_apply(dct.data(), 13, m.num_channels, row.data(), coeffs.data());
      out = coeffs.data();
      width = 13;
    }
    for (unsigned c = 0; c < width; ++c) std::printf("%.9g ", out[c]);
    std::printf("\n");
  }
  return 0;
}
"""


@pytest.fixture(scope="module")
def logmel_exe(tmp_path_factory) -> Path:
    if GXX is None:
        pytest.skip("g++ is not installed")
    work = tmp_path_factory.mktemp("host_dsp")
    (work / "logmel.cpp").write_text(LOGMEL_PROGRAM)
    exe = work / "logmel"
    _run([GXX, "-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", "-I", str(SRC),
          "-x", "c++", str(SRC / "tinyml_edu_dsp.c"), "-x", "c++", str(work / "logmel.cpp"),
          "-o", str(exe)])
    return exe


@pytest.mark.parametrize("params", [
    features.AudioFeatureParams(),  # micro_speech geometry: 49 x 40
    features.AudioFeatureParams(sample_rate=8000, window_ms=32.0, stride_ms=16.0, clip_ms=500.0,
                                num_channels=32, fft_size=256, lower_hz=100.0, upper_hz=3800.0),
    features.AudioFeatureParams(kind="mfcc"),
    elephant_rumbles.FEATURES,  # 1 kHz, 0.5 s windows, narrow mel channels over 5-400 Hz
], ids=["micro_speech", "wingbeats", "mfcc", "elephant_rumbles"])
def test_board_log_mel_matches_features_py(logmel_exe, params):
    n = params.clip_samples
    t = np.arange(n) / params.sample_rate
    rng = np.random.default_rng(3)
    clip = (3000 * np.sin(2 * np.pi * 440 * t) + 1500 * np.sin(2 * np.pi * 1700 * t) * (t > 0.3)
            + rng.normal(0, 300, n))
    clip = clip.astype(np.int16)
    clip[:700] = 0  # silence: the log floor
    expected = features.audio_features(clip, params)
    args = [params.sample_rate, params.window_samples, params.stride_samples, params.fft_size,
            params.num_channels, params.lower_hz, params.upper_hz, n, 1234 % n,
            int(params.kind == "mfcc")]
    out = _run([str(logmel_exe), *map(str, args)], input=clip.tobytes()).stdout.decode()
    got = np.array([[float(v) for v in line.split()] for line in out.splitlines()])
    assert got.shape == expected.shape == params.shape
    assert np.abs(got - expected).max() < 1e-3  # float32 on the board, float64 in numpy


DSP_PROGRAM = r"""
#include <cmath>
#include <cstdio>
#include "tinyml_edu_dsp.h"
int main() {
  static float taps[TME_DECIMATOR_TAPS(2)], history[TME_DECIMATOR_TAPS(2)];
  tme_decimator_t dec;
  if (tme_decimator_init(&dec, taps, history, TME_DECIMATOR_TAPS(2), 2) != 0) return 2;
  // 16 kHz in: a 1 kHz tone passes, a 6 kHz tone (above the new 4 kHz Nyquist) is stopped.
  double pass = 0, stop = 0; int outputs = 0;
  for (int i = 0; i < 16000; ++i) {
    int16_t a = (int16_t)std::lround(10000 * std::sin(2 * M_PI * 1000.0 * i / 16000.0));
    int16_t b = (int16_t)std::lround(10000 * std::sin(2 * M_PI * 6000.0 * i / 16000.0));
    int16_t y;
    if (tme_decimator_push(&dec, (int16_t)(a + b), &y)) {
      ++outputs;
      if (i > 1000) { pass += (double)y * y; }
    }
  }
  tme_decimator_t dec2;
  static float taps2[TME_DECIMATOR_TAPS(2)], history2[TME_DECIMATOR_TAPS(2)];
  tme_decimator_init(&dec2, taps2, history2, TME_DECIMATOR_TAPS(2), 2);
  for (int i = 0; i < 16000; ++i) {
    int16_t b = (int16_t)std::lround(10000 * std::sin(2 * M_PI * 6000.0 * i / 16000.0));
    int16_t y;
    if (tme_decimator_push(&dec2, b, &y) && i > 1000) stop += (double)y * y;
  }
  std::printf("outputs %d pass_rms %.1f stop_rms %.1f\n", outputs,
              std::sqrt(pass / 7500), std::sqrt(stop / 7500));
  // SPSC ring: capacity 8, writes beyond are dropped and counted.
  static int16_t storage[8];
  tme_ring16_t ring;
  if (tme_ring16_init(&ring, storage, 6) != -1) return 3;
  tme_ring16_init(&ring, storage, 8);
  int16_t in[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, out[12];
  unsigned w = tme_ring16_write(&ring, in, 12);
  unsigned r1 = tme_ring16_read(&ring, out, 3);
  unsigned w2 = tme_ring16_write(&ring, in + 8, 4);
  unsigned r2 = tme_ring16_read(&ring, out + 3, 12);
  std::printf("ring %u %u %u %u %u", w, r1, w2, r2, (unsigned)ring.dropped);
  for (unsigned i = 0; i < r1 + r2; ++i) std::printf(" %d", out[i]);
  std::printf("\n");
  return 0;
}
"""


@needs_gxx
def test_decimator_and_sample_ring(tmp_path):
    (tmp_path / "dsp.cpp").write_text(DSP_PROGRAM)
    exe = tmp_path / "dsp"
    _run([GXX, "-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", "-I", str(SRC),
          "-x", "c++", str(SRC / "tinyml_edu_dsp.c"), "-x", "c++", str(tmp_path / "dsp.cpp"),
          "-o", str(exe)])
    decimator, ring = _run([str(exe)], text=True).stdout.splitlines()
    numbers = [float(x) for x in re.findall(r"[\d.]+", decimator)]
    outputs, pass_rms, stop_rms = numbers
    assert outputs == 8000
    assert 10000 / np.sqrt(2) * 0.97 < pass_rms < 10000 / np.sqrt(2) * 1.03
    assert stop_rms < 10000 / np.sqrt(2) * 0.01  # at least 40 dB down
    assert ring.split() == ["ring", "8", "3", "3", "8", "5",
                            "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"]


# ---------------------------------------------------------------------------------------------
# (b) the library builds for the Nano's Cortex-M4F

ARM_GCC = shutil.which("arm-none-eabi-gcc")


@pytest.mark.skipif(ARM_GCC is None, reason="arm-none-eabi-gcc is not installed")
@pytest.mark.parametrize("name", ["tinyml_edu_protocol.c", "tinyml_edu_dsp.c"])
def test_library_builds_for_cortex_m4f(tmp_path, name):
    obj = tmp_path / (name + ".o")
    _run([ARM_GCC, "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-Os",
          "-ffreestanding", "-std=c99", "-Wall", "-Wextra", "-Werror", "-c", str(SRC / name),
          "-o", str(obj)])
    assert obj.stat().st_size > 0


@pytest.mark.skipif(ARM_GCC is None, reason="arm-none-eabi-gcc is not installed")
def test_protocol_core_needs_no_c_library(tmp_path):
    """No printf, no malloc, nothing from libc: the object file has no undefined symbols
    except compiler helpers."""
    obj = tmp_path / "p.o"
    _run([ARM_GCC, "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-Os",
          "-ffreestanding", "-c", str(SRC / "tinyml_edu_protocol.c"), "-o", str(obj)])
    nm = shutil.which("arm-none-eabi-nm")
    if nm is None:
        pytest.skip("arm-none-eabi-nm is not installed")
    undefined = _run([nm, "-u", str(obj)], text=True).stdout.split()
    undefined = [s for s in undefined if s not in ("U",) and not s.startswith("__aeabi")]
    assert undefined == []


# ---------------------------------------------------------------------------------------------
# (c) static checks of the sketches


def _ino(name: str) -> str:
    return (FIRMWARE / name / f"{name}.ino").read_text(encoding="utf-8")


def _sources() -> list[Path]:
    return sorted(q for q in FIRMWARE.rglob("*")
                  if q.suffix in (".ino", ".c", ".cpp", ".h") and q.is_file())


def test_every_sketch_folder_has_its_ino():
    folders = [d for d in FIRMWARE.iterdir() if d.is_dir() and d.name != "libraries"]
    assert sorted(d.name for d in folders) == sorted(SKETCHES)
    for folder in folders:
        assert (folder / f"{folder.name}.ino").is_file(), folder


def test_the_library_is_an_arduino_library():
    props = dict(line.split("=", 1) for line in
                 (LIBRARY / "library.properties").read_text().splitlines() if "=" in line)
    assert props["name"] == "tinyml_edu_protocol"
    assert re.fullmatch(r"\d+\.\d+\.\d+", props["version"])
    for key in ("author", "maintainer", "sentence", "paragraph", "category", "url",
                "architectures"):
        assert props[key]
    assert (SRC / "tinyml_edu_protocol.h").is_file()
    header = (SRC / "tinyml_edu_protocol.h").read_text()
    assert "#define TME_BAUD_RATE 115200UL" in header
    core = (SRC / "tinyml_edu_protocol.c").read_text() + (SRC / "tinyml_edu_dsp.c").read_text()
    assert not re.search(r"\b(malloc|calloc|realloc|free|new|printf|sprintf)\s*\(", core)
    assert "Arduino.h" not in core


def test_every_sketch_speaks_the_protocol_at_115200():
    for name in SKETCHES:
        text = _ino(name)
        assert "#include <tinyml_edu_protocol.h>" in text, name
        assert "Serial.begin(TME_BAUD_RATE)" in text, name
        assert "TME_CMD_HELLO" in text and "TME_CMD_START" in text and "TME_CMD_STOP" in text
        assert re.search(r"void setup\(\) \{.*sendHeader\(\);", text, re.S), name


def test_the_template_has_exactly_the_placeholders():
    text = _ino("inference_template")
    for placeholder in PLACEHOLDERS:
        assert placeholder in text, placeholder
    assert set(re.findall(r"\{\{\w+\}\}", text)) == set(PLACEHOLDERS)
    assert re.search(r"^\{\{OP_RESOLVER_ADDS\}\}$", text, re.M)  # its own line
    assert "tflite::MicroMutableOpResolver<{{OP_COUNT}}> op_resolver;" in text
    for needed in ("alignas(16)", "kTensorArenaSize", "GetModel(g_model_data)",
                   "AllocateTensors()", "raise kTensorArenaSize",
                   "#include <Chirale_TensorFlowLite.h>",
                   "#include <TensorFlowLite_ESP32.h>", "defined(ARDUINO_ARCH_ESP32)",
                   "kInputScale", "kInputZeroPoint", "FEATURE_WINDOW", "FEATURE_STRIDE",
                   "FEATURE_ACCEL_RANGE_G", "FEATURE_GYRO_RANGE_DPS", "FEATURE_FFT_SIZE",
                   "FEATURE_LOWER_HZ", "FEATURE_UPPER_HZ", "FEATURE_LOG_FLOOR",
                   "TME_CMD_INFER_ON", "TME_CMD_INFER_OFF", "tme_logmel_frame",
                   "tme_format_prediction"):
        assert needed in text, needed


def test_capture_imu_detects_rev1_and_rev2():
    text = _ino("capture_imu") + (SRC / "tinyml_edu_imu.h").read_text()
    nano33 = (SRC / "tinyml_edu_nano33.h").read_text()
    assert "0x6B" in text and "0x68" in text and "BMI270" in text
    assert "#include <Arduino_BMI270_BMM150.h>" in _ino("capture_imu")
    assert "Arduino_LSM9DS1.h>" not in text.replace("<Arduino_LSM9DS1.h>, whose", "")
    for register in ("kLsm9ds1Address = 0x6B", "kWhoAmI = 0x0F", "kWhoAmIValue = 0x68",
                     "kOutXLG = 0x18", "kOutXLXL = 0x28"):
        assert register in nano33, register
    assert "Wire1" in nano33 and "IMU.begin()" in text
    assert '"nano33ble_sense_rev1"' in text and '"nano33ble_sense_rev2"' in text
    assert "no IMU found" in text and "micros()" in _ino("capture_imu")


def test_audio_sketches_send_binary_frames_through_the_library():
    nano, xiao = _ino("capture_audio_nano"), _ino("capture_audio_xiao")
    for text in (nano, xiao):
        assert "tme_format_audio_frame(" in text and "Serial.write(g_frame" in text
        assert "kSampleRate = 16000" in text
    assert "#include <PDM.h>" in nano and "onReceive" in nano
    assert "#include <ESP_I2S.h>" in xiao and "I2S_MODE_PDM_RX" in xiao
    assert "kPdmClockPin = 42" in xiao and "kPdmDataPin = 41" in xiao
    assert "REMOVED the old `I2S.h`" in xiao


def test_no_float_printf_anywhere():
    """newlib-nano has no float printf by default: no "%f" (nor %e, %g) in any string, and no
    printf-family call at all in the firmware."""
    for path in _sources():
        text = re.sub(r"/\*.*?\*/|//[^\n]*", "", path.read_text(encoding="utf-8"), flags=re.S)
        for literal in re.findall(r'"(?:[^"\\\n]|\\.)*"', text):
            assert not re.search(r"%[-+ #0]*\d*(\.\d+)?l?[fFeEgGaA]", literal), (path, literal)
        assert not re.search(r"\b(v?s?n?printf|Serial\.printf|dtostrf)\s*\(", text), path


# ---------------------------------------------------------------------------------------------
# (d) the sketches compile on the host against stand-in headers

STUBS = {
    "Arduino.h": """
#pragma once
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include <math.h>
struct SerialStub {
  void begin(unsigned long) {}
  explicit operator bool() const { return true; }
  int available() { return 0; }
  int read() { return -1; }
  size_t write(const uint8_t*, size_t n) { return n; }
};
extern SerialStub Serial;
inline uint32_t millis() { return 0; }
inline uint32_t micros() { return 0; }
inline void delay(uint32_t) {}
inline void noInterrupts() {}
inline void interrupts() {}
#if defined(ARDUINO_ARCH_ESP32)
#define ESP_ARDUINO_VERSION_MAJOR 3
typedef void (*TaskFunction_t)(void*);
inline int xTaskCreatePinnedToCore(TaskFunction_t, const char*, uint32_t, void*, unsigned,
                                   void*, int) { return 1; }
#endif
""",
    "Wire.h": """
#pragma once
#include <Arduino.h>
struct TwoWire {
  void begin() {}
  void end() {}
  void setClock(uint32_t) {}
  void beginTransmission(uint8_t) {}
  size_t write(uint8_t) { return 1; }
  uint8_t endTransmission(bool stop = true) { (void)stop; return 0; }
  uint8_t requestFrom(uint8_t, size_t n) { return (uint8_t)n; }
  int read() { return 0; }
};
extern TwoWire Wire;
extern TwoWire Wire1;
""",
    "Arduino_BMI270_BMM150.h": """
#pragma once
struct BoschSensorClass {
  int begin() { return 1; }
  int readAcceleration(float& x, float& y, float& z) { x = y = z = 0; return 1; }
  int readGyroscope(float& x, float& y, float& z) { x = y = z = 0; return 1; }
};
extern BoschSensorClass IMU;
""",
    "PDM.h": """
#pragma once
struct PDMClass {
  void onReceive(void (*)(void)) {}
  int begin(int, int) { return 1; }
  int available() { return 0; }
  int read(void*, int n) { return n; }
};
extern PDMClass PDM;
""",
    "ESP_I2S.h": """
#pragma once
#include <Arduino.h>
typedef enum { I2S_MODE_STD, I2S_MODE_PDM_RX } i2s_mode_t;
typedef enum { I2S_DATA_BIT_WIDTH_16BIT = 16 } i2s_data_bit_width_t;
typedef enum { I2S_SLOT_MODE_MONO = 1 } i2s_slot_mode_t;
struct I2SClass {
  void setPinsPdmRx(int8_t, int8_t, int8_t = -1, int8_t = -1, int8_t = -1) {}
  bool begin(i2s_mode_t, uint32_t, i2s_data_bit_width_t, i2s_slot_mode_t, int8_t = -1) {
    return true;
  }
  size_t readBytes(char*, size_t n) { return n; }
};
""",
    "Chirale_TensorFlowLite.h": "#pragma once\n",
    "TensorFlowLite_ESP32.h": "#pragma once\n",
    "tensorflow/lite/schema/schema_generated.h": """
#pragma once
#include <stdint.h>
namespace tflite {
struct Model { uint32_t version() const { return 3; } };
inline const Model* GetModel(const void*) { static Model m; return &m; }
}
""",
    "tensorflow/lite/micro/micro_interpreter.h": """
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "tensorflow/lite/schema/schema_generated.h"
#define TFLITE_SCHEMA_VERSION (3)
typedef enum { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;
typedef enum { kTfLiteNoType = 0, kTfLiteFloat32 = 1, kTfLiteInt8 = 9 } TfLiteType;
typedef struct { float scale; int32_t zero_point; } TfLiteQuantizationParams;
typedef union { int8_t* int8; float* f; } TfLitePtrUnion;
typedef struct {
  TfLiteType type; TfLitePtrUnion data; TfLiteQuantizationParams params; size_t bytes;
} TfLiteTensor;
namespace tflite {
struct ErrorReporter {};
struct MicroOpResolver {};
class MicroInterpreter {
 public:
#if __has_include("tensorflow/lite/micro/micro_error_reporter.h")
  MicroInterpreter(const Model*, const MicroOpResolver&, uint8_t*, size_t, ErrorReporter*) {}
#else
  MicroInterpreter(const Model*, const MicroOpResolver&, uint8_t*, size_t) {}
#endif
  TfLiteStatus AllocateTensors() { return kTfLiteOk; }
  TfLiteStatus Invoke() { return kTfLiteOk; }
  TfLiteTensor* input(size_t) { return &tensor_; }
  TfLiteTensor* output(size_t) { return &tensor_; }
  size_t arena_used_bytes() const { return 0; }
 private:
  TfLiteTensor tensor_{};
};
}
""",
    "tensorflow/lite/micro/micro_mutable_op_resolver.h": """
#pragma once
#include "tensorflow/lite/micro/micro_interpreter.h"
namespace tflite {
template <unsigned int N>
class MicroMutableOpResolver : public MicroOpResolver {
 public:
  TfLiteStatus AddFullyConnected() { return kTfLiteOk; }
  TfLiteStatus AddConv2D() { return kTfLiteOk; }
  TfLiteStatus AddMaxPool2D() { return kTfLiteOk; }
  TfLiteStatus AddReshape() { return kTfLiteOk; }
  TfLiteStatus AddSoftmax() { return kTfLiteOk; }
};
}
""",
}
OLD_TFLM_STUBS = {
    "tensorflow/lite/micro/micro_error_reporter.h": """
#pragma once
#include "tensorflow/lite/micro/micro_interpreter.h"
namespace tflite { struct MicroErrorReporter : ErrorReporter {}; }
""",
}

ADDS = "  op_resolver.AddConv2D();\n  op_resolver.AddFullyConnected();\n  op_resolver.AddSoftmax();"


def _deployed(kind: str) -> tuple[str, str]:
    """(template filled in as deploy would, model_settings.h) for a sensor kind."""
    if kind == "imu":
        from tinyml_edu.projects import gestures

        feats = gestures.feature_params()  # 6 sensor channels + the derived |a| channel
        labels, project, board = ["W", "O", "L"], "gestures", "nano33ble_sense_rev1"
    elif kind == "audio":
        from tinyml_edu.projects import kws

        feats = kws.feature_params()  # log-mel 49x40 + clip-mean normalisation and scale
        labels, project, board = ["yes", "no"], "kws", "xiao_esp32s3_sense"
    else:
        feats, labels, project, board = None, [], "sine", "nano33ble_sense_rev2"
    settings = export.settings_header(labels, 4000, feats, 0.0245, -128)
    text = _ino("inference_template")
    for key, value in (("PROJECT", project), ("BOARD_ID", board), ("SENSOR", kind),
                       ("OP_COUNT", "3"), ("OP_RESOLVER_ADDS", ADDS)):
        text = text.replace("{{" + key + "}}", value)
    return text, settings


ARM_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]


def _host_compile(work: Path, name: str, sketch: str, arch: str, settings: str | None,
                  old_tflm: bool = False,
                  compiler: str | None = None) -> subprocess.CompletedProcess:
    folder = work / name
    folder.mkdir()
    (folder / f"{name}.cpp").write_text("#include <Arduino.h>\n" + sketch)
    if settings is not None:
        header, _ = export.c_array_source(b"\x1c\x00\x00\x00TFL3" + bytes(24))
        (folder / "model_data.h").write_text(header)
        (folder / "model_settings.h").write_text(settings)
    includes = ["-I", str(work / "stubs")]
    if old_tflm:
        includes += ["-I", str(work / "old_stubs")]
    compiler = compiler or GXX
    flags = ARM_FLAGS if "arm-none-eabi" in compiler else []
    return subprocess.run(
        [compiler, *flags, "-std=gnu++17", "-fsyntax-only", "-Wall", "-Wextra", "-Werror",
         "-Wno-unused-parameter", "-Wno-unused-function", f"-D{arch}", "-DARDUINO=10819",
         *includes, "-I", str(SRC), "-I", str(folder), str(folder / f"{name}.cpp")],
        capture_output=True, text=True)


@needs_gxx
def test_sketches_compile_on_the_host_against_stand_in_headers(tmp_path):
    for root, files in (("stubs", STUBS), ("old_stubs", OLD_TFLM_STUBS)):
        for rel, text in files.items():
            path = tmp_path / root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    jobs = [
        ("capture_imu", _ino("capture_imu"), "ARDUINO_ARCH_MBED", None, False),
        ("capture_audio_nano", _ino("capture_audio_nano"), "ARDUINO_ARCH_MBED", None, False),
        ("capture_audio_xiao", _ino("capture_audio_xiao"), "ARDUINO_ARCH_ESP32", None, False),
    ]
    for kind, arch, old in (("imu", "ARDUINO_ARCH_MBED", False),
                            ("audio", "ARDUINO_ARCH_MBED", False),
                            ("audio", "ARDUINO_ARCH_ESP32", True),
                            ("none", "ARDUINO_ARCH_MBED", False),
                            ("none", "ARDUINO_ARCH_ESP32", True)):
        text, settings = _deployed(kind)
        tag = f"deployed_{kind}_{arch.rsplit('_', 1)[1].lower()}"
        jobs.append((tag, text, arch, settings, old))
    arm_gxx = shutil.which("arm-none-eabi-g++")
    if arm_gxx:  # the Nano sketches once more with the Nano's 32-bit types and FPU
        jobs += [(name + "_arm", text, arch, settings, old, arm_gxx)
                 for name, text, arch, settings, old in list(jobs) if arch == "ARDUINO_ARCH_MBED"]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda job: (job[0], _host_compile(tmp_path, *job)), jobs))
    failures = {name: r.stderr[-3000:] for name, r in results if r.returncode != 0}
    assert not failures


@needs_gxx
def test_the_imu_template_refuses_the_xiao(tmp_path):
    for rel, text in STUBS.items():
        path = tmp_path / "stubs" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    text, settings = _deployed("imu")
    result = _host_compile(tmp_path, "imu_on_xiao", text, "ARDUINO_ARCH_ESP32", settings)
    assert result.returncode != 0 and "has no IMU" in result.stderr
