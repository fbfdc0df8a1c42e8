"""The sandbox's stuck-kernel verdicts, on a clock we control (no kernel needed); the graded
class in ``test_grading_autograde.py`` runs the real thing on kernels that lose a reply or
freeze."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from tinyml_edu.course import sandbox

GRACE = 5.0


class FakeHeartbeat:
    def __init__(self, beating: bool) -> None:
        self.beating = beating

    def is_alive(self) -> bool:
        return True

    def is_beating(self) -> bool:
        return self.beating


@pytest.fixture
def kernel() -> Iterator[int]:
    """A process standing in for the kernel: the watchdog's thread may kill it."""
    proc = subprocess.Popen(["sleep", "60"])
    yield proc.pid
    proc.kill()
    proc.wait()


def _dog(pid: int, beating: bool = True) -> sandbox._Watchdog:
    ep = SimpleNamespace(process_message=lambda msg, cell, index: None,
                         kc=SimpleNamespace(_hb_channel=FakeHeartbeat(beating)))
    dog = sandbox._Watchdog(ep, GRACE)
    dog.arm(pid)
    return dog


def _status(state: str) -> dict:
    return {"msg_type": "status", "content": {"execution_state": state}}


def test_idle_without_reply_is_stuck_after_the_grace(kernel: int) -> None:
    dog = _dog(kernel)
    dog.ep.process_message(_status("busy"), None, 0)
    dog.ep.process_message(_status("idle"), None, 0)
    assert dog._verdict(dog.idle_at + GRACE - 1) == ""
    assert "lost reply" in dog._verdict(dog.idle_at + GRACE + 1)


def test_a_busy_cell_that_sleeps_is_not_stuck(kernel: int) -> None:
    dog = _dog(kernel)
    dog.ep.process_message(_status("busy"), None, 0)
    assert dog._verdict(dog.armed_at + 100 * GRACE) == ""


def test_no_message_and_no_cpu_is_a_lost_request(kernel: int) -> None:
    dog = _dog(kernel)
    assert dog.cpu_at_arm is not None  # psutil read the kernel's CPU time
    assert dog._verdict(dog.armed_at + GRACE - 1) == ""
    assert "lost request" in dog._verdict(dog.armed_at + GRACE + 1)
    dog.cpu_at_arm -= 1.0  # it has been computing: starting, not stuck
    assert dog._verdict(dog.armed_at + GRACE + 1) == ""


def test_a_silent_heartbeat_is_stuck_after_the_grace(kernel: int) -> None:
    dog = _dog(kernel, beating=False)
    dog.ep.process_message(_status("busy"), None, 0)
    start = dog.armed_at
    assert dog._verdict(start) == ""  # first miss: the clock starts
    assert dog._verdict(start + GRACE - 1) == ""
    assert "heartbeat" in dog._verdict(start + GRACE + 1)
    dog.ep.kc._hb_channel.beating = True
    assert dog._verdict(start + GRACE + 2) == ""
