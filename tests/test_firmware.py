"""The firmware in firmware/: its protocol library against tinyml_edu.protocol, its log-mel
front end against tinyml_edu.features, its camera input against tinyml_edu.camera_input (and
Pillow), and every Nano sketch compiled against the real core.

The sketches (capture_imu, capture_audio_nano, and what `tinyml-edu deploy` writes for every
project) are compiled with the compile-only kit of the real ArduinoCore-mbed 4.6.0 headers and
the real libraries (Chirale_TensorFlowLite 2.0.0, Arduino_BMI270_BMM150 1.2.3), with the flags
arduino-cli uses, and must build without a warning in our own files. The kit is found through
$TINYML_EDU_ARDUINO_KIT, else at ../shared/third_party/arduino-nano33ble next to the
repository; without it (or arm-none-eabi-gcc) those tests skip, unless $TINYML_EDU_REQUIRE_KIT
says the kit must be there (CI). Library objects are cached between runs (compile.sh reuses an
object only when its command line and dependencies are unchanged).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import re
import shutil
import struct
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tinyml_edu import deploy, features
from tinyml_edu import protocol as p
from tinyml_edu.projects import elephant_rumbles

FIRMWARE = Path(__file__).resolve().parent.parent / "firmware"
LIBRARY = FIRMWARE / "libraries" / "tinyml_edu_protocol"
SRC = LIBRARY / "src"
SKETCHES = ("capture_imu", "capture_audio_nano", "capture_audio_xiao", "capture_camera_nano",
            "capture_camera_xiao", "inference_template")
CAMERA_SKETCHES = ("capture_camera_nano", "capture_camera_xiao")
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
CENTROIDS = [  # C lines: (seq, (row, col) points)
    (0, []),
    (7, [(4, 20)]),
    (65537, [(4, 4), (92, 12), (44, 60)]),
    (3, [(8 * r + 4, 8 * c + 4) for r in range(0, 12, 2) for c in range(0, 12, 2)]),  # 36
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
    for seq, points in CENTROIDS:
        flat = ", ".join(str(v) for point in points for v in point) or "0"
        out.append(f"  {{ static const uint16_t pts[] = {{{flat}}};")
        out.append(f"    n = tme_format_centroids(line, sizeof line, {seq}u, pts, {len(points)});")
        out.append('    hex("centroids", line, n); }')
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


def test_centroid_lines_match_python_and_parse_back(host_output):
    expected = [p.encode_centroids(seq, points) for seq, points in CENTROIDS]
    assert host_output["centroids"] == expected
    assert expected[1] == b"C 7 1 4,20 *" + f"{p.crc16(b'C 7 1 4,20'):04X}".encode() + b"\n"
    events = list(p.StreamParser().feed(b"".join(expected)))
    assert events == [p.Centroids(seq % 65536, tuple(points)) for seq, points in CENTROIDS]
    assert isinstance(p.parse_line(b"C 1 2 4,4 *" + f"{p.crc16(b'C 1 2 4,4'):04X}".encode()),
                      p.Corrupted)  # two announced, one given


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


CAMERA_PROGRAM = r"""
#include <cstdio>
#include <cstdlib>
#include <vector>
#include "tinyml_edu_camera.h"
// A stand-in for Serial: records what the sketch writes, and in how many writes.
struct Port {
  std::vector<uint8_t> bytes;
  size_t writes = 0;
  size_t write(const uint8_t* data, size_t n) {
    bytes.insert(bytes.end(), data, data + n);
    ++writes;
    return n;
  }
};
static void dump(const char* tag, const Port& port, size_t returned) {
  std::printf("%s %zu %zu ", tag, returned, port.writes);
  for (uint8_t b : port.bytes) std::printf("%02x", b);
  std::printf("\n");
}
// argv: seq width height format; stdin: the pixels. Prints the frame as sendCameraFrame
// writes it, as tme_format_camera_frame builds it, and the header line.
int main(int argc, char** argv) {
  if (argc != 5) return 1;
  const uint32_t seq = (uint32_t)std::strtoul(argv[1], 0, 10);
  const uint32_t w = (uint32_t)std::atoi(argv[2]), h = (uint32_t)std::atoi(argv[3]);
  const uint8_t format = (uint8_t)std::atoi(argv[4]);
  std::vector<uint8_t> pixels(TME_CAMERA_PIXEL_BYTES(w, h, format) + 1);
  const size_t got = std::fread(pixels.data(), 1, pixels.size(), stdin);
  Port port;
  dump("sent", port, 0);  // an empty record: the parser's baseline
  Port frame;
  dump("frame", frame, tme::sendCameraFrame(frame, seq, w, h, format, pixels.data()));
  std::vector<uint8_t> whole(TME_CAMERA_FRAME_BYTES(w, h, format) + 16);
  const size_t n = tme_format_camera_frame(whole.data(), whole.size(), seq, w, h, format,
                                           pixels.data());
  std::printf("whole %zu %zu ", n, got);
  for (size_t i = 0; i < n; ++i) std::printf("%02x", whole[i]);
  std::printf("\n");
  static char line[TME_LINE_MAX];
  Port header;
  dump("header", header, tme::sendCameraHeader(header, line, "xiao_esp32s3_sense", 5, w, h,
                                               format));
  return 0;
}
"""


@pytest.fixture(scope="module")
def camera_exe(tmp_path_factory) -> Path:
    if GXX is None:
        pytest.skip("g++ is not installed")
    work = tmp_path_factory.mktemp("host_camera")
    (work / "camera.cpp").write_text(CAMERA_PROGRAM)
    exe = work / "camera"
    _run([GXX, "-std=c++17", "-O1", "-Wall", "-Wextra", "-Werror", "-I", str(SRC),
          "-x", "c++", str(SRC / "tinyml_edu_protocol.c"), "-x", "c++", str(work / "camera.cpp"),
          "-o", str(exe)])
    return exe


def _camera_output(exe: Path, seq: int, image: np.ndarray, code: int,
                   size: tuple[int, int] | None = None) -> dict[str, tuple[int, int, bytes]]:
    """Run the host build on ``image`` (``size``: another (width, height) to claim)."""
    height, width = image.shape[:2]
    pixels = p.rgb_to_rgb565(image) if image.ndim == 3 else image.tobytes()
    if size is not None:
        width, height = size
        pixels = bytes(width * height * 2)
    out = _run([str(exe), str(seq), str(width), str(height), str(code)], input=pixels,
               text=False).stdout.decode()
    records = {}
    for line in out.splitlines():
        tag, returned, count, data = (line.split(" ") + [""])[:4]
        records[tag] = (int(returned), int(count), bytes.fromhex(data))
    return records


@pytest.mark.parametrize(("seq", "height", "width", "colour"), [
    (0, 120, 160, True), (65537, 240, 320, False), (9, 96, 96, True), (3, 1, 1, False)])
def test_camera_frames_the_sketches_send_match_python(camera_exe, seq, height, width, colour):
    """What both camera sketches send (tme::sendCameraFrame, in pieces, never copying the
    picture) is byte for byte protocol.encode_camera_frame; so is the one-buffer encoder."""
    rng = np.random.default_rng(seq + width)
    image = rng.integers(0, 256, (height, width, 3) if colour else (height, width), np.uint8)
    code = p.PIXEL_FORMATS["rgb565" if colour else "grayscale8"]
    records = _camera_output(camera_exe, seq, image, code)
    expected = p.encode_camera_frame(seq, image)
    returned, writes, sent = records["frame"]
    assert sent == expected and returned == len(expected)
    assert writes == 2 + -(-(len(expected) - 12) // 1024)  # head, 1 kB pieces, CRC
    whole_n, _, whole = records["whole"]
    assert whole == expected and whole_n == len(expected)
    _, _, header = records["header"]
    fmt = "rgb565" if colour else "grayscale8"
    assert header == p.encode_header("xiao_esp32s3_sense", "camera", 5, [f"{width}x{height}"],
                                     [fmt])
    (event,) = p.StreamParser().feed(header)
    assert event.sensor == "camera" and event.columns == (f"{width}x{height}",)


@pytest.mark.parametrize(("width", "height", "code"), [(321, 240, 1), (320, 241, 2), (0, 5, 1),
                                                        (8, 8, 3)])
def test_camera_frames_beyond_qvga_or_of_unknown_format_are_not_sent(camera_exe, width, height,
                                                                      code):
    records = _camera_output(camera_exe, 0, np.zeros((1, 1), np.uint8), code, (width, height))
    assert records["frame"] == (0, 0, b"")
    assert records["whole"][0] == 0 and records["whole"][2] == b""
    if code not in p.PIXEL_FORMATS.values():  # no header line names an unknown format
        assert records["header"] == (0, 0, b"")


def test_both_camera_sketches_send_through_the_shared_encoder():
    """The XIAO's core is not here to compile capture_camera_xiao: it must make its frames and
    header with the same code as the Nano sketch (tinyml_edu_camera.h), which is compiled
    against the real core and checked byte for byte above."""
    for name in CAMERA_SKETCHES:
        text = re.sub(r"/\*.*?\*/|//[^\n]*", "", _ino(name), flags=re.S)
        assert "#include <tinyml_edu_camera.h>" in text, name
        assert re.search(r"tme::sendCameraFrame\(Serial,", text), name
        assert re.search(r"tme::sendCameraHeader\(Serial,", text), name
        # No frame bytes of its own making: no direct head/CRC calls, no raw writes of pixels.
        assert not re.search(r"tme_format_camera_(head|frame)|tme_camera_frame_crc", text), name
        assert not re.search(r"Serial\.write\((g_pixels|fb->buf)", text), name


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")
def test_the_library_is_warning_free_c99(tmp_path):
    for name in ("tinyml_edu_protocol.c", "tinyml_edu_dsp.c", "tinyml_edu_listen.c",
                 "tinyml_edu_image.c"):
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


AUDIO_INPUT_PROGRAM = r"""
#include <cstdio>
#include <cstdlib>
#include <vector>
#include "model_settings.h"
#include "tinyml_edu_audio_input.h"
// stdin: n int16 clips of FEATURE_CLIP_SAMPLES, then m float32 values to quantize.
// stdout: each clip's int8 model input, then the m quantized values.
int main(int argc, char** argv) {
  if (argc != 3) return 1;
  const unsigned clips = (unsigned)std::atoi(argv[1]), values = (unsigned)std::atoi(argv[2]);
  static tme_audio_input_t in;
  if (tme_audio_input_setup(&in) != TME_DSP_OK) return 2;
  const uint32_t n = tme_audio_input_count(&in);
  std::vector<int16_t> clip(FEATURE_CLIP_SAMPLES);
  std::vector<float> features(n);
  std::vector<int8_t> q(n);
  for (unsigned c = 0; c < clips; ++c) {
    if (std::fread(clip.data(), 2, clip.size(), stdin) != clip.size()) return 3;
    tme_audio_input_compute(&in, clip.data(), FEATURE_CLIP_SAMPLES, 0, features.data());
    for (uint32_t i = 0; i < n; ++i) q[i] = tme_quantize_int8(features[i], kInputScale,
                                                             kInputZeroPoint);
    std::fwrite(q.data(), 1, n, stdout);
  }
  for (unsigned i = 0; i < values; ++i) {
    float x;
    if (std::fread(&x, 4, 1, stdin) != 1) return 4;
    const int8_t v = tme_quantize_int8(x, kInputScale, kInputZeroPoint);
    std::fwrite(&v, 1, 1, stdout);
  }
  return 0;
}
"""


@needs_gxx
@pytest.mark.parametrize("kind", ["log_mel", "mfcc"])
def test_the_sketchs_audio_input_matches_the_host_model_input(tmp_path, kind):
    """tme_audio_input_setup (from model_settings.h) + tme_audio_input_compute +
    tme_quantize_int8, what the sketch's runInference does, against kws.model_inputs quantized
    with runtime.quantize_input; and the quantizer alone on halves and out-of-range values."""
    from tinyml_edu import datasets, export, runtime
    from tinyml_edu.projects import kws

    params = {**kws.feature_params(), "kind": kind}
    scale, zero_point = 0.0278, -10
    (tmp_path / "model_settings.h").write_text(
        export.settings_header(["a"], 4096, params, scale, zero_point))
    (tmp_path / "audio_input.cpp").write_text(AUDIO_INPUT_PROGRAM)
    exe = tmp_path / "audio_input"
    _run([GXX, "-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", "-I", str(SRC),
          "-I", str(tmp_path), "-x", "c++", str(SRC / "tinyml_edu_dsp.c"),
          "-x", "c++", str(tmp_path / "audio_input.cpp"), "-o", str(exe)])
    clips = datasets.load("kws").split("test")[0][::40][:6]
    halves = (np.arange(-140, 140) + 0.5) * np.float32(scale)  # ties round away from zero
    values = np.concatenate([halves, [-1e3, 1e3, 0.0]]).astype(np.float32)
    out = _run([str(exe), str(len(clips)), str(len(values))],
               input=clips.tobytes() + values.tobytes()).stdout
    board = np.frombuffer(out, np.int8)
    expected = runtime.quantize_input(kws.model_inputs(clips, params), scale, zero_point)
    got = board[:expected.size].reshape(expected.shape)
    lsb = np.abs(got.astype(int) - expected)
    assert lsb.max() <= 1 and (lsb > 0).mean() < 0.001  # float32 here, float64 in numpy
    assert len(np.unique(got)) > 20  # real features, not a constant
    np.testing.assert_array_equal(board[expected.size:],
                                  runtime.quantize_input(values, scale, zero_point))


IMU_INPUT_PROGRAM = r"""
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include "model_settings.h"
#include "tinyml_edu_imu_input.h"
// argv[1]: readings of 6 float32 on stdin -> each reading's int8 row on stdout.
// argv[1] = "parse": each line of stdin "channels|derived|num_channels" -> the init status.
int main(int argc, char** argv) {
  if (argc != 2) return 1;
  if (std::strcmp(argv[1], "parse") == 0) {
    char line[256];
    while (std::fgets(line, sizeof line, stdin)) {
      char* derived = std::strchr(line, '|');
      char* count = std::strchr(derived + 1, '|');
      *derived++ = '\0';
      *count++ = '\0';
      tme_imu_input_t in;
      std::printf("%d\n", tme_imu_input_init(&in, line, derived, (uint32_t)std::atoi(count),
                                            4.0f, 500.0f, 1.0f));
    }
    return 0;
  }
  static tme_imu_input_t in;
  if (tme_imu_input_setup(&in) != TME_DSP_OK) return 2;
  const unsigned readings = (unsigned)std::atoi(argv[1]);
  for (unsigned r = 0; r < readings; ++r) {
    float raw[TME_IMU_RAW_CHANNELS], row[TME_IMU_MAX_CHANNELS];
    if (std::fread(raw, 4, TME_IMU_RAW_CHANNELS, stdin) != TME_IMU_RAW_CHANNELS) return 3;
    tme_imu_input_sample(&in, raw, row);
    for (uint32_t c = 0; c < in.num_channels; ++c) {
      const int8_t q = tme_quantize_int8(row[c], kInputScale, kInputZeroPoint);
      std::fwrite(&q, 1, 1, stdout);
    }
  }
  return 0;
}
"""


@needs_gxx
def test_the_sketchs_imu_input_matches_the_host_model_input(tmp_path):
    """tme_imu_input_setup (from a gestures model_settings.h) + tme_imu_input_sample +
    tme_quantize_int8, what the sketch does per IMU reading, against gestures.imu_features
    quantized with runtime.quantize_input; and which channel lists tme_imu_input_init takes."""
    from tinyml_edu import datasets, export, runtime
    from tinyml_edu.projects import gestures

    scale, zero_point = 1 / 127.5, -1
    (tmp_path / "model_settings.h").write_text(
        export.settings_header(["a"], 4096, gestures.feature_params(), scale, zero_point))
    (tmp_path / "imu_input.cpp").write_text(IMU_INPUT_PROGRAM)
    exe = tmp_path / "imu_input"
    _run([GXX, "-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", "-I", str(SRC),
          "-I", str(tmp_path), "-x", "c++", str(SRC / "tinyml_edu_dsp.c"),
          "-x", "c++", str(tmp_path / "imu_input.cpp"), "-o", str(exe)])
    windows = datasets.load("gestures").split("test")[0][::10][:20].astype(np.float32)
    readings = windows.reshape(-1, 6)
    out = _run([str(exe), str(len(readings))], input=readings.tobytes()).stdout
    board = np.frombuffer(out, np.int8).reshape(windows.shape[0], windows.shape[1], 7)
    expected = runtime.quantize_input(gestures.imu_features(windows), scale, zero_point)
    lsb = np.abs(board.astype(int) - expected)
    assert lsb.max() <= 1 and (lsb > 0).mean() < 0.001  # float32 |a| here, float64 in numpy
    assert len(np.unique(board)) > 50  # real readings, not a constant

    cases = {"ax,ay,az,gx,gy,gz||6": 0, "ax,ay,az,gx,gy,gz|amag|7": 0, "GZ,ax||2": 0,
             "ax,ay,az,gx,gy,gz||7": -6,  # one channel short
             "ax,ay||1": -6, "ax,mx||2": -6, "ax,aw||2": -6, "ax,ay|speed|3": -6,
             "ax,ay,||2": -6, "a||1": -6, "|amag|1": -6}
    statuses = _run([str(exe), "parse"],
                    input="".join(f"{c}\n" for c in cases).encode()).stdout.split()
    assert dict(zip(cases, map(int, statuses), strict=True)) == cases


# ---------------------------------------------------------------------------------------------
# The camera input (tinyml_edu_image, tinyml_edu_camera_input.h) against tinyml_edu.camera_input

CAMERA_INPUT_PROGRAM = r"""
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include "model_settings.h"
#include "tinyml_edu_camera_input.h"
// frames N [SCALE ZP]: N camera frames of model_settings.h's size on stdin -> for each, the
//   model frame (uint8), the int8 input and the float input; then the 256-entry int8 table.
// generic N W H FORMAT SIZE: N frames of W x H in FORMAT (1 gray, 2 RGB565) -> model frames.
// peaks N ROWS COLS: N heatmaps (float32) -> for each, the peak flags, then the count (u32).
int main(int argc, char** argv) {
  if (argc < 3) return 1;
  const unsigned n = (unsigned)std::atoi(argv[2]);
  if (std::strcmp(argv[1], "frames") == 0) {
    const float scale = argc > 4 ? std::strtof(argv[3], 0) : kInputScale;
    const int32_t zero_point = argc > 4 ? (int32_t)std::atoi(argv[4]) : kInputZeroPoint;
    static tme_camera_input_t in;
    const int status = tme_camera_input_setup(&in, scale, zero_point);
    if (status != TME_IMAGE_OK) return 10 - status;
    std::vector<uint8_t> frame(TME_CAMERA_INPUT_FRAME_BYTES), model(TME_CAMERA_INPUT_PIXELS);
    std::vector<int8_t> input(TME_CAMERA_INPUT_PIXELS);
    std::vector<float> real(TME_CAMERA_INPUT_PIXELS);
    for (unsigned i = 0; i < n; ++i) {
      if (std::fread(frame.data(), 1, frame.size(), stdin) != frame.size()) return 3;
      tme_image_model_frame(&in.image, frame.data(), model.data());
      tme_camera_input_int8(&in, frame.data(), input.data());
      tme_image_model_input_float(&in.image, frame.data(), real.data());
      std::fwrite(model.data(), 1, model.size(), stdout);
      std::fwrite(input.data(), 1, input.size(), stdout);
      std::fwrite(real.data(), 4, real.size(), stdout);
    }
    std::fwrite(in.lut, 1, 256, stdout);
    return 0;
  }
  if (std::strcmp(argv[1], "generic") == 0 && argc == 7) {
    const uint32_t w = (uint32_t)std::atoi(argv[3]), h = (uint32_t)std::atoi(argv[4]);
    const uint8_t format = (uint8_t)std::atoi(argv[5]);
    const uint32_t size = (uint32_t)std::atoi(argv[6]);
    const uint32_t side = w < h ? w : h;
    std::vector<uint16_t> first(size), count(size);
    std::vector<int32_t> weights(size * TME_IMAGE_TAPS(side, size));
    tme_image_input_t in;
    const int status = tme_image_input_init(&in, w, h, format, size, first.data(), count.data(),
                                            weights.data(), weights.size());
    if (status != TME_IMAGE_OK) return 10 - status;
    if (tme_image_input_init(&in, w, h, format, size, first.data(), count.data(),
                             weights.data(), weights.size() - 1) != TME_IMAGE_NO_ROOM) {
      return 4;
    }
    tme_image_input_init(&in, w, h, format, size, first.data(), count.data(), weights.data(),
                         weights.size());
    std::vector<uint8_t> frame(TME_CAMERA_PIXEL_BYTES(w, h, format)), model(size * size);
    for (unsigned i = 0; i < n; ++i) {
      if (std::fread(frame.data(), 1, frame.size(), stdin) != frame.size()) return 3;
      tme_image_model_frame(&in, frame.data(), model.data());
      std::fwrite(model.data(), 1, model.size(), stdout);
    }
    return 0;
  }
  if (std::strcmp(argv[1], "peaks") == 0 && argc == 5) {
    const uint32_t rows = (uint32_t)std::atoi(argv[3]), cols = (uint32_t)std::atoi(argv[4]);
    std::vector<float> heat(rows * cols);
    std::vector<uint8_t> peaks(rows * cols);
    for (unsigned i = 0; i < n; ++i) {
      if (std::fread(heat.data(), 4, heat.size(), stdin) != heat.size()) return 3;
      const uint32_t found = tme_image_peaks(heat.data(), rows, cols, CAMERA_PEAK_THRESHOLD,
                                             peaks.data());
      std::fwrite(peaks.data(), 1, peaks.size(), stdout);
      std::fwrite(&found, 4, 1, stdout);
    }
    return 0;
  }
  return 1;
}
"""


def _camera_input_exe(folder: Path, camera: dict, params: dict, scale: float,
                      zero_point: int) -> Path:
    """The sketch's camera input code with g++, set up by a model_settings.h as deploy writes
    it (labels and arena do not matter here)."""
    from tinyml_edu import export

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model_settings.h").write_text(export.settings_header(
        ["a", "b"], 4096, params, scale, zero_point, camera=camera))
    (folder / "camera_input.cpp").write_text(CAMERA_INPUT_PROGRAM)
    exe = folder / "camera_input"
    _run([GXX, "-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", "-I", str(SRC),
          "-I", str(folder), "-x", "c++", str(SRC / "tinyml_edu_image.c"),
          "-x", "c++", str(SRC / "tinyml_edu_dsp.c"), "-x", "c++", str(folder / "camera_input.cpp"),
          "-o", str(exe)])
    return exe


def _camera_frames(height: int, width: int, colour: bool) -> np.ndarray:
    """Camera frames to test on: symbols of the images set scaled into the frame's centred
    square with noise around them (as a camera sees a sheet on a desk), random noise, black,
    white; (n, h, w) or, in colour, (n, h, w, 3) tinted."""
    from PIL import Image

    from tinyml_edu import datasets

    rng = np.random.default_rng(height + width + colour)
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    frames = []
    for symbol in datasets.load("images").split("test")[0][:6, :, :, 0]:
        frame = rng.integers(0, 256, (height, width)).astype(np.uint8)
        square = Image.fromarray(symbol).resize((side, side), Image.Resampling.BICUBIC)
        frame[top:top + side, left:left + side] = np.asarray(square)
        frames.append(frame)
    frames += [rng.integers(0, 256, (height, width)).astype(np.uint8),
               np.zeros((height, width), np.uint8), np.full((height, width), 255, np.uint8)]
    gray = np.stack(frames)
    if not colour:
        return gray
    tint = np.array([1.0, 0.8, 0.55])
    rgb = np.clip(gray[..., None] * tint + rng.integers(0, 40, gray.shape + (3,)), 0, 255)
    return rgb.astype(np.uint8)


def _pixels(frames: np.ndarray) -> bytes:
    """What the camera's buffer holds: grayscale8 bytes, or RGB565 high byte first."""
    return b"".join(p.rgb_to_rgb565(f) if f.ndim == 3 else f.tobytes() for f in frames)


@needs_gxx
@pytest.mark.parametrize(("width", "height", "pixel_format"), [
    (160, 120, "grayscale8"),  # what the deployed sketch reads
    (160, 120, "rgb565"), (176, 144, "grayscale8"), (320, 240, "rgb565")])
def test_the_sketchs_camera_input_matches_the_host_bit_for_bit(tmp_path, width, height,
                                                                pixel_format):
    """tme_camera_input_setup (from a camera model's model_settings.h) + the model frame and
    the int8 and float inputs the sketch writes, against camera_input.model_frame (which is
    Pillow's resize) + images.frames_to_inputs + runtime.quantize_input; for the input
    quantization of a real run and two others (one far from pixel - 128)."""
    from tinyml_edu import camera_input, runtime
    from tinyml_edu.projects import images

    params = {"input": "camera", "frame": 96, "channels": 1, "scale": 1 / 255}
    camera = {**camera_input.sketch_settings(params), "width": width, "height": height,
              "pixel_format": pixel_format}
    camera["frame_buffer_bytes"] = width * height * p.BYTES_PER_PIXEL[pixel_format]
    exe = _camera_input_exe(tmp_path, camera, params, 0.002752787433564663, -128)
    frames = _camera_frames(height, width, colour=pixel_format == "rgb565")
    delivered = [camera_input.camera_pixels(f) for f in frames]  # RGB565 loses low bits
    model_frames = camera_input.model_frames(delivered, 96)
    floats = images.frames_to_inputs(model_frames)
    for scale, zero_point in ((0.002752787433564663, -128), (float(np.float32(1 / 255)), -128),
                              (0.0041, -3)):
        scale = float(np.float32(scale))
        out = _run([str(exe), "frames", str(len(frames)), repr(scale), str(zero_point)],
                   input=_pixels(frames)).stdout
        per_frame = 96 * 96 * (1 + 1 + 4)
        assert len(out) == len(frames) * per_frame + 256
        for i in range(len(frames)):
            chunk = out[i * per_frame:(i + 1) * per_frame]
            board_frame = np.frombuffer(chunk[:9216], np.uint8).reshape(96, 96)
            np.testing.assert_array_equal(board_frame, model_frames[i, :, :, 0])
            np.testing.assert_array_equal(np.frombuffer(chunk[9216:18432], np.int8),
                                          runtime.quantize_input(floats[i], scale,
                                                                 zero_point).reshape(-1))
            np.testing.assert_array_equal(np.frombuffer(chunk[18432:], np.float32),
                                          floats[i].reshape(-1))
        lut = np.frombuffer(out[-256:], np.int8)
        every_value = np.arange(256, dtype=np.uint8).repeat(36).reshape(1, 96, 96, 1)
        np.testing.assert_array_equal(lut, runtime.quantize_input(
            images.frames_to_inputs(every_value), scale, zero_point).reshape(-1)[::36])
    assert len(np.unique(model_frames[:6])) > 100  # real pictures, not a constant


@needs_gxx
def test_the_boards_model_frame_is_what_predict_reads_from_a_picture(tmp_path):
    """A frame the board captured and the host saved as PNG: predict's read_frame gives the
    board's model frame; and tme_image_model_frame is Pillow's for odd sizes and upscaling."""
    from PIL import Image

    from tinyml_edu import camera_input, predict

    params = {"input": "camera", "frame": 96, "channels": 1, "scale": 1 / 255}
    exe = _camera_input_exe(tmp_path / "b", camera_input.sketch_settings(params), params,
                            1 / 255, -128)
    frames = _camera_frames(120, 160, colour=False)
    out = _run([str(exe), "frames", str(len(frames))], input=_pixels(frames)).stdout
    board = np.frombuffer(out[:9216], np.uint8).reshape(96, 96)
    Image.fromarray(frames[0]).save(tmp_path / "frame.png")
    np.testing.assert_array_equal(predict.read_frame(tmp_path / "frame.png", 96)[..., 0], board)

    rng = np.random.default_rng(5)
    for width, height, size, colour in ((131, 97, 96, False), (50, 100, 33, True),
                                        (64, 48, 96, False), (7, 5, 12, True)):
        pictures = rng.integers(0, 256, (2, height, width, 3) if colour else (2, height, width),
                                np.uint8)
        code = p.PIXEL_FORMATS["rgb565" if colour else "grayscale8"]
        got = _run([str(exe), "generic", "2", str(width), str(height), str(code), str(size)],
                   input=_pixels(pictures)).stdout
        for picture, board in zip(pictures, np.frombuffer(got, np.uint8).reshape(2, size, size),
                                  strict=True):
            delivered = camera_input.camera_pixels(picture)
            np.testing.assert_array_equal(board, camera_input.model_frame(delivered, size))
            side = min(width, height)
            left, top = (width - side) // 2, (height - side) // 2
            pil = Image.fromarray(delivered).convert("L").crop((left, top, left + side,
                                                                top + side))
            np.testing.assert_array_equal(
                board, np.asarray(pil.resize((size, size), Image.Resampling.BILINEAR)))


@needs_gxx
def test_the_sketchs_peaks_are_cars_local_peaks(tmp_path):
    """tme_image_peaks with CAMERA_PEAK_THRESHOLD (a double, as on the host) against
    cars.local_peaks: plateaus, values at the threshold, edges and corners."""
    from tinyml_edu import camera_input
    from tinyml_edu.projects import cars

    params = {"input": "camera", "frame": 96, "channels": 1, "scale": 1 / 255, "cells": 12,
              "peak_threshold": 0.45}
    exe = _camera_input_exe(tmp_path, camera_input.sketch_settings(params), params, 1 / 255,
                            -128)
    assert "#define CAMERA_PEAK_THRESHOLD 0.45\n" in (tmp_path / "model_settings.h").read_text()
    rng = np.random.default_rng(11)
    levels = np.float32([0.1, 0.45, np.nextafter(np.float32(0.45), np.float32(1)), 0.6, 0.9])
    heat = rng.choice(levels, size=(200, 12, 12)).astype(np.float32)  # many ties
    heat[:50] = rng.random((50, 12, 12)).astype(np.float32)
    out = _run([str(exe), "peaks", str(len(heat)), "12", "12"], input=heat.tobytes()).stdout
    records = np.frombuffer(out, np.uint8).reshape(len(heat), 144 + 4)
    expected = cars.local_peaks(heat.astype(np.float64), 0.45)
    np.testing.assert_array_equal(records[:, :144].reshape(-1, 12, 12).astype(bool), expected)
    np.testing.assert_array_equal(records[:, 144:].copy().view(np.uint32).reshape(-1),
                                  expected.sum(axis=(1, 2)))
    assert expected.sum() > 500  # real peaks


# ---------------------------------------------------------------------------------------------
# (b) the library builds for the Nano's Cortex-M4F

ARM_GCC = shutil.which("arm-none-eabi-gcc")


@pytest.mark.skipif(ARM_GCC is None, reason="arm-none-eabi-gcc is not installed")
@pytest.mark.parametrize("name", ["tinyml_edu_protocol.c", "tinyml_edu_dsp.c",
                                  "tinyml_edu_listen.c", "tinyml_edu_image.c"])
def test_library_builds_for_cortex_m4f(tmp_path, name):
    obj = tmp_path / (name + ".o")
    _run([ARM_GCC, "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=softfp", "-mfpu=fpv4-sp-d16", "-Os",
          "-ffreestanding", "-std=c99", "-Wall", "-Wextra", "-Werror", "-c", str(SRC / name),
          "-o", str(obj)])
    assert obj.stat().st_size > 0


@pytest.mark.skipif(ARM_GCC is None, reason="arm-none-eabi-gcc is not installed")
def test_protocol_core_needs_no_c_library(tmp_path):
    """No printf, no malloc, nothing from libc: the object file has no undefined symbols
    except compiler helpers."""
    obj = tmp_path / "p.o"
    _run([ARM_GCC, "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=softfp", "-mfpu=fpv4-sp-d16", "-Os",
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
    core = (SRC / "tinyml_edu_protocol.c").read_text() + (SRC / "tinyml_edu_dsp.c").read_text()
    assert not re.search(r"\b(malloc|calloc|realloc|free|new|printf|sprintf)\s*\(", core)


def test_the_template_has_exactly_the_placeholders():
    """deploy fills these in; a placeholder it does not know would be left in the sketch."""
    text = _ino("inference_template")
    assert set(re.findall(r"\{\{\w+\}\}", text)) == set(PLACEHOLDERS)
    assert re.search(r"^\{\{OP_RESOLVER_ADDS\}\}$", text, re.M)  # its own line


def test_no_float_printf_anywhere():
    """newlib-nano has no float printf by default: no "%f" (nor %e, %g) in any string, and no
    printf-family call at all in the firmware."""
    for path in _sources():
        text = re.sub(r"/\*.*?\*/|//[^\n]*", "", path.read_text(encoding="utf-8"), flags=re.S)
        for literal in re.findall(r'"(?:[^"\\\n]|\\.)*"', text):
            assert not re.search(r"%[-+ #0]*\d*(\.\d+)?l?[fFeEgGaA]", literal), (path, literal)
        assert not re.search(r"\b(v?s?n?printf|Serial\.printf|dtostrf)\s*\(", text), path


# ---------------------------------------------------------------------------------------------
# (d) every Nano sketch compiles against the real core and libraries (the compile-only kit)

REPO = FIRMWARE.parent
DEFAULT_KIT = REPO.parent / "shared" / "third_party" / "arduino-nano33ble"
REQUIRE_KIT_ENV = "TINYML_EDU_REQUIRE_KIT"
KIT_CACHE_ENV = "TINYML_EDU_KIT_CACHE"
ARM_GXX = shutil.which("arm-none-eabi-g++")
DIAGNOSTIC = re.compile(r"^(?P<path>[^:\s][^:]*):\d+(?::\d+)?: (?P<kind>warning|error): ")
DEPLOY_BOARD = {"gestures": "nano33ble_sense_rev1"}  # the others: Rev2
# One project per data path of the template (none, imu, audio, other, camera): each TFLM sketch
# costs minutes of library discovery on 2 cores. TINYML_EDU_KIT_PROJECTS=all (or a
# comma-separated list) compiles more. Of the camera projects, cars: its sketch compiles the
# classifier's report (images) and the counting one alike (which runs is a constant).
KIT_PROJECTS_ENV = "TINYML_EDU_KIT_PROJECTS"
DEFAULT_KIT_PROJECTS = ("sine", "gestures", "kws", "wingbeats", "cars")


@dataclass
class KitBuild:
    returncode: int
    output: str
    our_warnings: list[str]
    seconds: float


class KitCompiler:
    """Runs the kit's compile.sh, one sketch at a time, with one object cache for all of them
    (TFLM is ~215 files: compiled once, then reused)."""

    def __init__(self, kit: Path, cache: Path) -> None:
        self.kit, self.cache = kit, cache
        self.timings: list[tuple[str, float]] = []

    def compile(self, sketch: Path, libraries: tuple[Path, ...] = ()) -> KitBuild:
        command = [str(self.kit / "compile.sh"), str(sketch), "--out", str(self.cache),
                   "--warnings", "all", "--jobs", "2"]
        for folder in libraries:
            command += ["--libraries", str(folder)]
        self.cache.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        import fcntl  # compile.sh needs bash: the kit runs on Linux and macOS only

        with open(self.cache.parent / f"{self.cache.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # compile.sh rebuilds OUT/sketch on every run
            done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
        seconds = time.perf_counter() - started
        self.timings.append((sketch.name, seconds))
        output = done.stdout + done.stderr
        ours = [line for line in output.splitlines()
                if (m := DIAGNOSTIC.match(line)) and self._is_ours(Path(m["path"]), sketch)]
        return KitBuild(done.returncode, output, ours, seconds)

    def _is_ours(self, path: Path, sketch: Path) -> bool:
        """Our code: the sketch folder (and compile.sh's copy of it) and firmware/; warnings
        from the core's and the libraries' own code are not ours to fix."""
        path = path.resolve()
        return any(path.is_relative_to(root.resolve())
                   for root in (sketch, self.cache / "sketch", FIRMWARE))


def _kit_cache(kit: Path) -> Path:
    """$TINYML_EDU_KIT_CACHE, else a folder in the user's cache keyed by compiler and kit (an
    object is reused only when compile.sh finds its command line and dependencies unchanged)."""
    if os.environ.get(KIT_CACHE_ENV):
        return Path(os.environ[KIT_CACHE_ENV])
    version = subprocess.run([ARM_GXX, "--version"], capture_output=True, text=True).stdout
    key = hashlib.sha256(version.encode() + str(kit.resolve()).encode()
                         + (kit / "compile.sh").read_bytes()).hexdigest()[:16]
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "tinyml-edu" / "arduino-kit-build" / key


@pytest.fixture(scope="session")
def kit_compiler() -> Iterator[KitCompiler]:
    named = os.environ.get(deploy.KIT_ENV_VAR)
    kit = deploy.find_kit(named or DEFAULT_KIT)
    if ARM_GXX is None:
        missing = "arm-none-eabi-g++ is not installed (apt-get install gcc-arm-none-eabi)"
    elif kit is None:
        missing = (f"the Arduino compile kit is not at {named or DEFAULT_KIT} (set "
                   f"{deploy.KIT_ENV_VAR} to its folder)")
    else:
        compiler = KitCompiler(kit, _kit_cache(kit))
        yield compiler
        total = sum(seconds for _, seconds in compiler.timings)
        print(f"\nkit compiles: {len(compiler.timings)} sketches in {total:.0f} s: "
              + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in compiler.timings))
        return
    if os.environ.get(REQUIRE_KIT_ENV) == "1":
        pytest.fail(f"{missing}; {REQUIRE_KIT_ENV}=1 says it must be there")
    pytest.skip(missing)


def _assert_clean(build: KitBuild) -> None:
    assert build.returncode == 0, build.output[-8000:]
    assert build.our_warnings == [], "\n".join(build.our_warnings)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["capture_imu", "capture_audio_nano", "capture_camera_nano"])
def test_capture_sketches_compile_for_the_nano_without_warnings(kit_compiler, name):
    build = kit_compiler.compile(FIRMWARE / name, libraries=(FIRMWARE / "libraries",))
    _assert_clean(build)
    assert "tinyml_edu_protocol" in build.output  # found through --libraries, as installed
    if name == "capture_camera_nano":  # the kit's real camera library, not a stand-in
        assert re.search(r"Arduino_OV767X 0\.0\.2 \(.*/libraries/Arduino_OV767X\)", build.output)


@pytest.mark.slow
@pytest.mark.parametrize(("resolution", "fmt"), [("QVGA", "GRAYSCALE"), ("QVGA", "RGB565"),
                                                 ("QCIF", "GRAYSCALE")])
def test_the_camera_sketch_compiles_in_its_other_settings(kit_compiler, tmp_path, resolution,
                                                          fmt):
    """The sketch's documented settings (its three #defines) all build; a size the protocol
    does not carry would not (the frame buffer is sized from them)."""
    sketch = tmp_path / "capture_camera_nano"
    sketch.mkdir()
    text = _ino("capture_camera_nano")
    text = text.replace("#define CAMERA_RESOLUTION QQVGA",
                        f"#define CAMERA_RESOLUTION {resolution}")
    text = text.replace("#define CAMERA_FORMAT RGB565", f"#define CAMERA_FORMAT {fmt}")
    assert f"CAMERA_RESOLUTION {resolution}" in text and f"CAMERA_FORMAT {fmt}" in text
    (sketch / "capture_camera_nano.ino").write_text(text)
    _assert_clean(kit_compiler.compile(sketch, libraries=(FIRMWARE / "libraries",)))


def _few_of_each_class(labels: np.ndarray, task: str) -> np.ndarray:
    if task == "regression":
        return np.arange(min(16, len(labels)))
    return np.concatenate([np.flatnonzero(labels == c)[:2] for c in np.unique(labels)])


def _project_run(name: str, folder: Path) -> Path:
    """A run folder as `tinyml-edu run` leaves it (model_int8.tflite + report.json), with the
    project's own model, untrained, quantized on a few examples: the sketch depends on the
    model's ops, shapes and feature parameters, not on its accuracy."""
    from tinyml_edu import datasets, quantize, runtime, train
    from tinyml_edu.projects import get_project

    project = get_project(name)
    ds = datasets.load(project.dataset)
    small = datasets.Dataset(ds.info, {})
    for split in datasets.SPLITS:
        keep = _few_of_each_class(ds.arrays[f"y_{split}"], ds.info.task)
        small.arrays.update({key: array[keep] for key, array in ds.arrays.items()
                             if key.endswith(f"_{split}")})
    prep = project.prepare(small)
    train.set_seed(0)
    network = project.build(prep)
    model = quantize.convert(network, "int8", representative=prep.x["train"],
                             per_channel_dense=project.per_channel_dense)
    if runtime.tflm_abort_reason(model):  # cars: the untrained softmax gets no signal
        train.fit(network, prep.x["train"], prep.y["train"], prep.x["val"], prep.y["val"],
                  config=dataclasses.replace(project.training, epochs=1), seed=0,
                  progress=False)
        model = quantize.convert(network, "int8", representative=prep.x["train"],
                                 per_channel_dense=project.per_channel_dense)
    folder.mkdir(parents=True)
    (folder / "model_int8.tflite").write_bytes(model)
    (folder / "report.json").write_text(json.dumps({
        "project": name, "task": ds.info.task, "classes": prep.labels,
        "feature_params": prep.feature_params}))
    return folder / "model_int8.tflite"


def _kit_projects() -> list[str]:
    from tinyml_edu.projects import PROJECTS

    chosen = os.environ.get(KIT_PROJECTS_ENV, "").strip()
    if chosen == "all":
        return sorted(PROJECTS)
    return [name.strip() for name in chosen.split(",") if name.strip()] or list(
        DEFAULT_KIT_PROJECTS)


@pytest.mark.slow
@pytest.mark.parametrize("project", _kit_projects())
def test_the_deployed_sketch_of_every_project_compiles_for_the_nano(kit_compiler, tmp_path,
                                                                     project):
    from tinyml_edu.projects import get_project

    model = _project_run(project, tmp_path / "runs" / project)
    board = DEPLOY_BOARD.get(project, "nano33ble_sense_rev2")
    sketch = deploy.build_sketch(model, board, tmp_path / "sketches").sketch_dir
    if project == "kws":  # a keyword model: the sketch listens too (smoother, K lines)
        assert "#define LISTEN_HOP_MS" in (sketch / "model_settings.h").read_text()
    camera = get_project(project).sensor == "camera"
    if camera:  # the Tiny ML Kit's camera, and the frame buffer the fit table counts
        assert json.loads((sketch / "deploy.json").read_text())["sketch_sensor"] == "camera"
        settings = (sketch / "model_settings.h").read_text()
        assert "#define CAMERA_FRAME_BUFFER_BYTES 19200" in settings
    # With firmware/libraries on the search path too, as for a student who installed the
    # protocol library: the sketch must still use its own copy only (no double definitions).
    build = kit_compiler.compile(sketch, libraries=(FIRMWARE / "libraries",))
    _assert_clean(build)
    compiled = re.search(r"compiled (\d+) of (\d+) files, 0 failed", build.output)
    assert compiled and compiled[1] == compiled[2] and int(compiled[1]) > 200  # with all of TFLM
    assert re.search(r"Chirale_TensorFlowLite 2\.0\.0", build.output)
    assert "  tinyml_edu_protocol " not in build.output  # the library was not pulled in
    if camera:  # the kit's real camera library
        assert re.search(r"Arduino_OV767X 0\.0\.2 \(.*/libraries/Arduino_OV767X\)",
                         build.output)


def _protocol_sketch(folder: Path, include: str, with_src_copy: bool) -> Path:
    folder.mkdir(parents=True)
    (folder / f"{folder.name}.ino").write_text(
        f"#include {include}\n"
        "static char g_line[TME_LINE_MAX];\n"
        "void setup() { Serial.begin(TME_BAUD_RATE); }\n"
        "void loop() {\n"
        '  size_t n = tme_format_comment(g_line, sizeof g_line, "hello");\n'
        "  Serial.write(reinterpret_cast<const uint8_t*>(g_line), n);\n}\n")
    if with_src_copy:
        shutil.copytree(SRC, folder / "src")
    return folder


@pytest.mark.slow
def test_the_kit_catches_what_broke_deployed_sketches(kit_compiler, tmp_path):
    """The two faults of the old sketch folders, which the stand-in headers never showed."""
    # <> include of a header that only sits in the sketch folder: not found.
    alone = _protocol_sketch(tmp_path / "angle_brackets", "<tinyml_edu_protocol.h>", False)
    shutil.copy(SRC / "tinyml_edu_protocol.h", alone)
    shutil.copy(SRC / "tinyml_edu_protocol.c", alone)
    build = kit_compiler.compile(alone)
    assert build.returncode != 0
    assert "tinyml_edu_protocol.h: No such file or directory" in build.output
    # The sketch's copy and the installed library, both compiled: the link would fail.
    twice = _protocol_sketch(tmp_path / "twice", "<tinyml_edu_protocol.h>", True)
    build = kit_compiler.compile(twice, libraries=(FIRMWARE / "libraries",))
    assert build.returncode != 0 and "multiple definition" in build.output
    assert "tme_crc16_update" in build.output
    # The layout deploy writes: src/ copy, quoted include, library installed or not: clean.
    quoted = _protocol_sketch(tmp_path / "quoted", '"src/tinyml_edu_protocol.h"', True)
    _assert_clean(kit_compiler.compile(quoted, libraries=(FIRMWARE / "libraries",)))
