"""The command line as a user meets it: a real subprocess each time."""

import json
import os
import subprocess
import sys
import textwrap

import pytest


def tinyml(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "tinyml_edu", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=600)


def test_help_does_not_import_tensorflow():
    code = ("import sys; from tinyml_edu import cli\n"
            "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'tensorflow' not in sys.modules, 'TensorFlow imported for --help'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "doctor" in result.stdout and "run" in result.stdout


def test_boards_json_is_the_catalog():
    result = tinyml("boards", "--json")
    boards = json.loads(result.stdout)
    assert boards["nano33ble_sense_rev1"]["fqbn"] == "arduino:mbed_nano:nano33ble"
    assert "XIAO ESP32S3" in tinyml("boards").stdout


def test_unknown_project_exits_2_and_lists_projects():
    result = tinyml("run", "speech")
    assert result.returncode == 2
    assert "unknown project 'speech'" in result.stderr and "sine" in result.stderr


def test_data_verify_names_a_corrupted_file_and_fails(data_copy):
    env = {**os.environ, "TINYML_EDU_DATA": str(data_copy)}
    assert tinyml("data", "verify", env=env).returncode == 0
    path = data_copy / "sine" / "sine.npz"
    blob = bytearray(path.read_bytes())
    blob[-30] ^= 1
    path.write_bytes(bytes(blob))
    result = tinyml("data", "verify", env=env)
    assert result.returncode == 1
    assert "sine.npz" in result.stderr and "corrupted" in result.stderr
    assert "sine" in tinyml("data", "list", env=env).stdout


def test_profile_of_a_missing_file_says_so(tmp_path):
    result = tinyml("profile", str(tmp_path / "nope.tflite"))
    assert result.returncode == 2 and "not found" in result.stderr


def test_doctor_reports_a_missing_part_instead_of_crashing(tmp_path):
    # Shadow tflite_micro and arduino-cli as a machine without them would look.
    fake = tmp_path / "shadow" / "tflite_micro"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('simulated: no wheel for this OS')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "shadow"),
           "PATH": os.path.dirname(sys.executable)}
    result = tinyml("doctor", "--quick", env=env)
    assert result.returncode == 0, result.stdout + result.stderr  # optional part: core still ok
    assert "TFLM (tflite-micro)" in result.stdout and "simulated: no wheel" in result.stdout
    assert "Linux x86-64" in result.stdout  # says what to do
    assert "arduino-cli" in result.stdout and "not on PATH" in result.stdout
    report = json.loads(tinyml("doctor", "--quick", "--json", env=env).stdout)
    checks = {c["name"]: c for c in report}
    assert checks["TFLM (tflite-micro)"]["ok"] is False


def test_doctor_exits_nonzero_when_the_core_is_broken(tmp_path):
    fake = tmp_path / "shadow" / "ai_edge_litert"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('simulated broken install')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "shadow")}
    result = tinyml("doctor", "--quick", env=env)
    assert result.returncode == 1
    assert "FAIL" in result.stdout and "pip install ai-edge-litert" in result.stdout


@pytest.mark.slow
def test_run_sine_from_the_command_line(tmp_path):
    result = tinyml("run", "sine", "--out", str(tmp_path / "sine"), "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "sine" / "report.json").read_text())
    assert report["project"] == "sine" and report["model_bytes"] <= 3000
    assert textwrap.dedent(result.stdout).strip().endswith("report.json")


def test_collect_help_says_what_it_reads_and_needs():
    out = tinyml("course", "collect", "--help").stdout
    for words in ("Moodle zip", "Canvas zip", "a folder", "USB stick", "students.csv",
                  "students.example.csv", "lms_id"):
        assert words in out, words


def test_capture_and_doctor_options_have_help():
    capture_help = tinyml("capture", "--help").stdout
    assert "microphone" in capture_help and "accelerometer" in capture_help
    assert "--quick" in tinyml("doctor", "--help").stdout
