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


def _user_messages(db: str) -> list[str]:
    import asyncio

    from boternity import open_store
    from boternity.models import MessageRole

    async def read() -> list[str]:
        async with open_store(db) as store:
            bot = await store.bots.get_bot_by_slug("luna")
            assert bot is not None
            [session] = await store.chat.list_sessions(bot.id)
            messages = await store.chat.get_messages(session.id)
            return [m.content for m in messages if m.role is MessageRole.USER]

    return asyncio.run(read())


def _drive(db: str, llm: FakeLlm, keys: list[bytes], **env: str) -> bytes:
    """Type ``keys`` (one send per turn, each followed by waiting for the reply's footer)."""
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.execve(
            sys.executable,
            [*BNITY, "--db", db, "chat", "luna", "--no-greeting"],
            _env(llm, COLUMNS=str(COLUMNS), LINES=str(ROWS), **env),
        )
    output = b""

    def read_until(needle: bytes, start: int = 0) -> int:
        nonlocal output
        end = time.monotonic() + 30
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
        for key in keys:
            time.sleep(0.3)  # readline is reading
            os.write(fd, key)
            at = read_until("tokens ·".encode(), start=at)
            at = read_until(PROMPT, start=at)
        time.sleep(0.3)
        os.write(fd, b"\x04")
        read_until(b"completed")
    finally:
        _reap(pid)
        os.close(fd)
    return output


@pytest.mark.slow
def test_a_pasted_block_of_lines_is_one_message_and_edit_uses_the_editor(
    tmp_path: Path, llm: FakeLlm
) -> None:
    """Bracketed paste: three pasted lines and one Enter are one message. /edit opens
    $EDITOR on the text after it and sends what was saved, newlines included."""
    db = str(tmp_path / "paste.db")
    subprocess.run([*BNITY, "--db", db, "bot", "create", "Luna"], check=True, env=_env())
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nprintf ' and more\\nsecond line\\n' >> \"$1\"\n")
    editor.chmod(0o700)
    paste = b"\x1b[200~first line\nsecond line\nthird\x1b[201~\r"
    output = _drive(db, llm, [paste, b"/edit Draft\r"], EDITOR=str(editor), VISUAL="")
    assert b"Traceback" not in output
    assert _user_messages(db) == [
        "first line\nsecond line\nthird",
        "Draft and more\nsecond line",
    ]


def test_edit_is_refused_without_a_terminal(tmp_path: Path, llm: FakeLlm) -> None:
    db = str(tmp_path / "piped.db")
    subprocess.run([*BNITY, "--db", db, "bot", "create", "Luna"], check=True, env=_env())
    done = subprocess.run(
        [*BNITY, "--db", db, "chat", "luna", "--no-greeting"],
        input=b"/edit\nhello\n",
        capture_output=True,
        env=_env(llm),
        timeout=60,
        check=False,
    )
    assert b"/edit needs a terminal" in done.stderr
    assert _user_messages(db) == ["hello"]
