"""What a person at a terminal actually sees: the pty output of `bnity chat` fed through a
terminal emulator (pyte), so redraws, cursor moves and scrolling count as a screen would."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from tests.cli.conftest import FakeLlm
from tests.cli.test_chat import BNITY, _env, _reap
from tests.fakes.llm_server import openai_frames, sse_reply

ROWS, COLUMNS = 30, 100
PROMPT = "You › ".encode()


def screen_text(output: bytes) -> str:
    """Everything the terminal shows and has scrolled away, as text."""
    import pyte

    screen = pyte.HistoryScreen(COLUMNS, ROWS, history=10_000)
    pyte.ByteStream(screen).feed(output)
    scrolled = ["".join(char.data for char in row.values()) for row in screen.history.top]
    return "\n".join(line.rstrip() for line in [*scrolled, *screen.display])


def chat_on_a_terminal(db: str, llm: FakeLlm, *, cancel_at: bytes | None) -> bytes:
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        env = _env(llm, COLUMNS=str(COLUMNS), LINES=str(ROWS))
        os.execve(sys.executable, [*BNITY, "--db", db, "chat", "luna", "--no-greeting"], env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    output = b""

    def read_until(needle: bytes, timeout: float = 60, start: int = 0) -> int:
        nonlocal output
        end = time.monotonic() + timeout
        while (at := output.find(needle, start)) < 0:
            assert time.monotonic() < end, (needle, output[-2000:].decode(errors="replace"))
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    output += os.read(fd, 65536)
                except OSError:
                    break
        return at

    try:
        at = read_until(PROMPT)
        os.write(fd, b"tell me a long story\r")
        if cancel_at is not None:
            at = read_until(cancel_at, start=at)
            os.write(fd, b"\x03")  # Ctrl+C mid-stream
            at = read_until(b"reply cancelled", start=at)
        else:
            at = read_until("tokens ·".encode(), start=at)
        read_until(PROMPT, start=at)
        time.sleep(0.3)  # readline is reading
        os.write(fd, b"\x04")
        read_until(b"completed")
    finally:
        _reap(pid)
        os.close(fd)
    return output


@pytest.mark.slow
@pytest.mark.parametrize("cancel", [True, False], ids=["ctrl-c", "complete"])
def test_a_reply_taller_than_the_screen_is_shown_once(
    tmp_path: Path, llm: FakeLlm, cancel: bool
) -> None:
    """A long streamed reply (about 60 lines on a 30-line terminal), cancelled with Ctrl+C or
    complete: every word is on the screen exactly once (it used to be printed again on every
    refresh once it was taller than the screen: 57 copies of the first line)."""
    db = str(tmp_path / "screen.db")
    subprocess.run([*BNITY, "--db", db, "bot", "create", "Luna"], check=True, env=_env())
    words = [f"w{i:04d} " for i in range(1000)]
    llm.script("chat", sse_reply(openai_frames(words), chunk_delay=0.005))
    output = chat_on_a_terminal(db, llm, cancel_at=b"w0600 " if cancel else None)
    text = screen_text(output)
    last = 999
    if cancel:
        assert "(reply cancelled; what was said is kept)" in text
        last = max(i for i in range(1000) if f"w{i:04d}" in text)
        assert last >= 600
    for i in range(last + 1):
        assert text.count(f"w{i:04d}") == 1, (i, text[-3000:])
