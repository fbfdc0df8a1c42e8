"""doctor's CPU lines, its choice of serial ports and its one-step training of every model."""

from types import SimpleNamespace

import pytest

from tinyml_edu import doctor

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512dq avx512_vnni avx512_bf16
"""
OLD_LAPTOP = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n"


def test_cpu_line_names_avx_and_onednn_from_a_fake_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(CPUINFO)
    check = doctor._cpu_check(cpuinfo, "Linux", "x86_64", env={})
    assert "AVX2 yes, AVX-512 yes (avx512_bf16, avx512_vnni, avx512f)" in check.detail
    assert "oneDNN on" in check.detail and "TF_ENABLE_ONEDNN_OPTS unset" in check.detail
    assert "TF_ENABLE_ONEDNN_OPTS=0" in check.note  # how to match the course's reference
    cpuinfo.write_text(OLD_LAPTOP)
    check = doctor._cpu_check(cpuinfo, "Linux", "x86_64", env={})
    assert "AVX2 yes, AVX-512 no, AMX no" in check.detail and "oneDNN off" in check.detail
    assert not check.note


@pytest.mark.parametrize("env, flags, system, want", [
    ({"TF_ENABLE_ONEDNN_OPTS": "0"}, {"avx512_vnni"}, "Linux", False),
    ({"TF_ENABLE_ONEDNN_OPTS": "true"}, set(), "Linux", True),
    ({}, {"amx_tile"}, "Linux", True),
    ({}, {"avx2", "avx512f"}, "Linux", False),  # AVX-512 alone does not switch it on
    ({"TF_ENABLE_ONEDNN_OPTS": "yes"}, {"avx_vnni"}, "Linux", True),  # not 0/1: the default
    ({}, None, "Linux", None),
    ({}, None, "Darwin", False),
    ({}, None, "Windows", True),
])
def test_onednn_follows_tensorflows_rule(env, flags, system, want):
    machine = "AMD64" if system == "Windows" else "x86_64"
    assert doctor.onednn_state(flags, system, machine, env)[0] is want


def test_windows_cpu_features_are_unknown_not_guessed():
    check = doctor._cpu_check("/nonexistent", "Windows", "AMD64", env={})
    assert "features unknown" in check.detail


def test_built_in_uarts_are_not_board_ports(monkeypatch):
    from serial.tools import list_ports

    ports = [SimpleNamespace(device="/dev/ttyS0", vid=None),
             SimpleNamespace(device="/dev/ttyACM0", vid=0x2341)]
    monkeypatch.setattr(list_ports, "comports", lambda: ports)
    assert doctor._serial_ports().detail == "/dev/ttyACM0"
    monkeypatch.setattr(list_ports, "comports", lambda: ports[:1])
    check = doctor._serial_ports()
    assert not check.ok and "ttyS0" not in check.detail


def test_a_crash_in_the_training_child_is_a_fail_line_naming_the_project():
    crash = ("import json, os, sys; print(json.dumps({'project': sys.argv[1], 'event': 'start'}),"
             " flush=True); sys.stderr.write('F0000 Check failed: kernel\\n'); os.abort()")
    checks, left = doctor._run_train_child(["kws", "sine"], timeout=60, code=crash)
    assert [c.name for c in checks] == ["train kws"] and left == ["sine"]
    assert not checks[0].ok and checks[0].required
    assert "crashed" in checks[0].detail and "Check failed" in checks[0].detail
    assert "TF_ENABLE_ONEDNN_OPTS" in checks[0].fix
    verdict = doctor.format_checks(checks)
    assert "[FAIL] train kws" in verdict and "cannot train kws" in verdict


def test_a_hang_in_the_training_child_times_out():
    hang = "import time; time.sleep(60)"
    checks, left = doctor._run_train_child(["sine"], timeout=1, code=hang)
    assert not checks[0].ok and "no answer after 1 s" in checks[0].detail and left == []


@pytest.mark.slow
def test_one_training_step_of_a_real_model():
    checks = doctor.train_step_checks(["sine", "nonexistent"])
    assert checks[0].ok and "one training step in" in checks[0].detail
    assert not checks[1].ok and "unknown project" in checks[1].detail


def test_versions_line_names_what_differs_from_the_lock(tmp_path, monkeypatch):
    from tinyml_edu import locks

    lock = tmp_path / "linux-py3.11.txt"
    lock.write_text("numpy==1.0.0 \\\n    --hash=sha256:00\nsoundfile==0.14.0\n")
    monkeypatch.setattr(locks, "current_lock_path", lambda: lock)
    monkeypatch.setattr(locks, "installed_versions",
                        lambda: {"numpy": "2.4.6", "soundfile": "0.14.0"})
    check = doctor._versions_check()
    assert check.ok and not check.required  # information, not a fault
    assert "1 differ from linux-py3.11.txt: numpy 2.4.6 (lock 1.0.0)" in check.detail
    assert str(lock) in check.note
    monkeypatch.setattr(locks, "installed_versions",
                        lambda: {"numpy": "1.0.0", "soundfile": "0.14.0"})
    assert "every package matches" in doctor._versions_check().detail


def test_the_emulator_line_says_how_to_install_what_is_missing(monkeypatch, tmp_path):
    from tinyml_edu.emulator import board

    monkeypatch.setattr(board.shutil, "which", lambda tool: None)  # a laptop without the tools
    check = doctor._emulator_check()
    assert not check.ok and not check.required  # optional: nothing else depends on it
    assert "qemu-system-arm" in check.detail and "apt install qemu-system-arm" in check.fix
    assert "TINYML_EDU_ARDUINO_KIT" in check.fix
    monkeypatch.undo()
    monkeypatch.setenv("TINYML_EDU_ARDUINO_KIT", str(tmp_path))  # tools there, kit not
    if not board.missing_tools():
        check = doctor._emulator_check()
        assert not check.ok and str(tmp_path) in check.detail
