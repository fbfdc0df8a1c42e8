"""The virtual board's serial line: its end of a pseudo-terminal, which the host opens like a
real board's ``/dev/ttyACM0``."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time

NO_PTY_MESSAGE = ("the virtual board needs a pseudo-terminal, which Windows does not have: run "
                  "it on Linux or macOS, or inside WSL (Windows Subsystem for Linux)")


def has_pty() -> bool:
    """Pseudo-terminals exist on Linux and macOS (and in WSL), not on Windows."""
    return os.name != "nt" and hasattr(os, "openpty")


class PtyLine:
    """A raw, non-blocking pseudo-terminal: the board writes and reads the master, the host
    opens ``port`` (the slave's device path)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # close() may come from another thread than write()
        self.master: int | None = None
        self.slave: int | None = None
        self.port: str | None = None

    def open(self) -> str:
        import tty

        master, slave = os.openpty()
        try:
            tty.setraw(slave)  # bytes pass unchanged: no echo, no CR/LF translation
            with contextlib.suppress(OSError, tty.error):
                tty.setraw(master)  # Linux shares the settings; some systems refuse this
            os.set_blocking(master, False)
            self.port = os.ttyname(slave)
        except BaseException:
            os.close(master)
            os.close(slave)
            raise
        self.master, self.slave = master, slave
        return self.port

    def close(self) -> None:
        with self._lock:
            for fd in (self.master, self.slave):
                if fd is not None:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            self.master = self.slave = None

    def write(self, out: bytearray) -> None:
        """Send what the line takes now of ``out`` and remove it from ``out``."""
        with self._lock:
            if self.master is None or not out:
                return
            try:
                written = os.write(self.master, out)
            except BlockingIOError:
                return
            except OSError:
                return  # nobody at the other end for now; keep it
            del out[:written]

    def read(self) -> bytes:
        """What the host sent (b"" when nothing or closed)."""
        master = self.master
        if master is None:
            return b""
        try:
            return os.read(master, 4096)
        except OSError:  # BlockingIOError, InterruptedError, or gone
            return b""

    def flush_unread(self) -> None:
        """Throw away what the host has not read yet (a board reset)."""
        import termios

        with self._lock:
            if self.slave is not None:
                with contextlib.suppress(OSError, termios.error):
                    termios.tcflush(self.slave, termios.TCIFLUSH)

    def unread(self) -> int:
        """Bytes the host has not read yet (on its side of the pty)."""
        import fcntl
        import termios

        with self._lock:
            if self.slave is None:
                return 0
            try:
                raw = fcntl.ioctl(self.slave, termios.FIONREAD, b"\0\0\0\0")
            except OSError:
                return 0
        return int.from_bytes(raw, sys.byteorder, signed=True)

    def drain(self, out: bytearray, stop: threading.Event, timeout: float = 2.0) -> None:
        """Let the host read ``out`` and what was sent before, so that a test knows exactly
        which frames arrived before the cable is pulled (a closing pty throws away what the
        host has not read)."""
        deadline = time.monotonic() + timeout
        quiet = 0  # the kernel moves written bytes to the host's queue a moment later
        while time.monotonic() < deadline and not stop.is_set():
            self.write(out)
            quiet = quiet + 1 if not out and self.unread() == 0 else 0
            if quiet >= 10:
                return
            time.sleep(0.01)
