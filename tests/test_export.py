import re

import pytest

from tinyml_edu import export
from tinyml_edu.errors import InputError
from tinyml_edu.listen import ListenParams


def test_c_array_round_trips_aligned_with_length_and_guard(tmp_path):
    blob = bytes(range(256)) * 3 + b"\x01\x02"
    files = export.write_sketch_sources(tmp_path, blob, ["yes", "no"], 1234,
                                        {"sample_rate": 16000, "window_ms": 30.0,
                                         "kind": "log_mel", "shape": [49, 40]},
                                        input_scale=0.5, input_zero_point=-3)
    assert [f.name for f in files] == ["model_data.h", "model_data.cpp", "model_settings.h"]
    source = (tmp_path / "model_data.cpp").read_text()
    assert export.read_c_array(source) == blob
    assert "alignas(16) const unsigned char g_model_data[]" in source
    assert f"g_model_data_len = {len(blob)};" in source
    header = (tmp_path / "model_data.h").read_text()
    guard = re.search(r"#ifndef (\w+)", header).group(1)
    assert f"#define {guard}" in header and header.rstrip().endswith(f"#endif  // {guard}")
    settings = (tmp_path / "model_settings.h").read_text()
    assert "kTensorArenaSize = 1248;" in settings  # rounded up to 16
    assert '{"yes", "no"}' in settings and "kCategoryCount = 2;" in settings
    assert "#define FEATURE_SAMPLE_RATE 16000" in settings
    assert "#define FEATURE_WINDOW_MS 30.0f" in settings
    assert "#define FEATURE_SHAPE \"49x40\"" in settings
    assert "kInputZeroPoint = -3;" in settings


def test_c_array_compiles_with_the_host_compiler(tmp_path):
    import shutil
    import subprocess

    import pytest

    cxx = shutil.which("g++") or shutil.which("c++")
    if not cxx:
        pytest.skip("no C++ compiler on PATH")
    blob = bytes([7, 0, 255, 16]) * 10
    export.write_sketch_sources(tmp_path, blob, ["a"], 100)
    (tmp_path / "main.cc").write_text(
        '#include <cstdint>\n#include <cstdio>\n'
        '#include "model_data.h"\n#include "model_settings.h"\n'
        "int main() {\n"
        "  if (reinterpret_cast<std::uintptr_t>(g_model_data) % 16) return 3;\n"
        "  unsigned sum = 0;\n"
        "  for (unsigned i = 0; i < g_model_data_len; ++i) sum += g_model_data[i];\n"
        '  std::printf("%u %u %d", g_model_data_len, sum, kTensorArenaSize);\n}\n')
    exe = tmp_path / "check"
    subprocess.run([cxx, "-std=c++17", "-o", str(exe), str(tmp_path / "main.cc"),
                    str(tmp_path / "model_data.cpp")], check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    assert out == f"{len(blob)} {sum(blob)} 112"


def test_keyword_models_get_the_boards_listen_settings():
    audio = {"kind": "log_mel", "sample_rate": 16000}
    labels = ["silence", "unknown", "yes", "no"]
    defaults = ListenParams().to_dict()
    assert export.listen_settings(labels, audio) == defaults
    # Not a keyword model: IMU features, a regression, no keyword class, too many classes.
    assert export.listen_settings(labels, {"channels": ["ax"]}) is None
    assert export.listen_settings(labels, audio, task="regression") is None
    assert export.listen_settings(["silence", "unknown"], audio) is None
    assert export.listen_settings([f"w{i}" for i in range(33)], audio) is None

    loose = ListenParams(hop_ms=200, average_window_ms=600, min_count=2, threshold=0.45,
                         suppression_ms=700).to_dict()
    settings = export.settings_header(labels, 100, audio, listen=loose)
    assert "#define LISTEN_HOP_MS 200\n" in settings
    assert "#define LISTEN_AVERAGE_WINDOW_MS 600\n" in settings
    assert "#define LISTEN_MIN_COUNT 2\n" in settings
    assert "#define LISTEN_THRESHOLD 0.45\n" in settings  # a double, not 0.45f
    assert "#define LISTEN_SUPPRESSION_MS 700\n" in settings
    assert "kListenIsKeyword[kCategoryCount] = {0, 0, 1, 1};" in settings
    assert "LISTEN" not in export.settings_header(labels, 100, audio)
    with pytest.raises(InputError, match="min_count"):
        export.settings_header(labels, 100, audio, listen={**loose, "min_count": 9})
