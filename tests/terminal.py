"""A program on a pseudo-terminal, driven like a person at a keyboard: for the tests of
what `bnity` does on a real terminal (prompts, Ctrl+C, pagers, redraws)."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import termios
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Self


class Terminal:
    """``argv`` started on a new pseudo-terminal of ``rows`` × ``columns``. Everything it
    writes is kept in ``output``; ``close`` (or leaving the ``with`` block) reaps it, killing
    it if it does not end in time."""

    def __init__(
        self, argv: Sequence[str], env: dict[str, str], *, rows: int = 30, columns: int = 100
    ) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # pragma: no cover - the child
            # A test run started in the background by a shell without job control inherits
            # SIGINT ignored, and that survives exec: a person at a terminal has the default.
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.execve(argv[0], list(argv), env)
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.pid, self.fd = pid, fd
        self.output = b""
        self.status: int | None = None

    def read_until(self, needle: bytes, *, start: int = 0, timeout: float = 30) -> int:
        """Read until ``needle`` appears at or after ``start``; where it starts."""
        end = time.monotonic() + timeout
        while (at := self.output.find(needle, start)) < 0:
            assert time.monotonic() < end, (needle, self.output[-2000:].decode(errors="replace"))
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if ready:
                try:
                    self.output += os.read(self.fd, 65536)
                except OSError:  # the program ended
                    break
        return at

    def press(self, keys: bytes, *, settle: float = 0.0) -> None:
        """Send key presses; ``settle`` waits first (e.g. for readline to be reading)."""
        if settle:
            time.sleep(settle)
        os.write(self.fd, keys)

    def close(self, timeout: float = 30) -> int:
        """Wait for the program (killing it after ``timeout``); its exit code."""
        if self.status is None:
            end = time.monotonic() + timeout
            while self.status is None and time.monotonic() < end:
                done, status = os.waitpid(self.pid, os.WNOHANG)
                if done:
                    self.status = status
                else:
                    time.sleep(0.05)
            if self.status is None:
                os.kill(self.pid, signal.SIGKILL)
                self.status = os.waitpid(self.pid, 0)[1]
            os.close(self.fd)
        return os.waitstatus_to_exitcode(self.status)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
