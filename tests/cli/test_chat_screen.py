"""What a person at a terminal actually sees: the pty output of `bnity chat` fed through a
terminal emulator (pyte), so redraws, cursor moves and scrolling count as a screen would."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli.conftest import FakeLlm
from tests.cli.test_chat import BNITY, _env
from tests.fakes.llm_server import openai_frames, sse_reply
from tests.terminal import Terminal

ROWS, COLUMNS = 30, 100
PROMPT = "You › ".encode()


def screen_text(output: bytes) -> str:
    """Everything the terminal shows and has scrolled away, as text."""
    import pyte

    screen = pyte.HistoryScreen(COLUMNS, ROWS, history=10_000)
    pyte.ByteStream(screen).feed(output)
    scrolled = ["".join(char.data for char in row.values()) for row in screen.history.top]
    return "\n".join(line.rstrip() for line in [*scrolled, *screen.display])


def luna_chat(db: str, llm: FakeLlm, **env: str) -> Terminal:
    """`bnity chat luna --no-greeting` on a terminal of ROWS × COLUMNS."""
    return Terminal(
        [*BNITY, "--db", db, "chat", "luna", "--no-greeting"],
        _env(llm, COLUMNS=str(COLUMNS), LINES=str(ROWS), **env),
        rows=ROWS,
        columns=COLUMNS,
    )


def chat_on_a_terminal(db: str, llm: FakeLlm, *, cancel_at: bytes | None) -> bytes:
    with luna_chat(db, llm) as term:
        at = term.read_until(PROMPT)
        term.press(b"tell me a long story\r")
        if cancel_at is not None:
            at = term.read_until(cancel_at, start=at)
            term.press(b"\x03")  # Ctrl+C mid-stream
            at = term.read_until(b"reply cancelled", start=at)
        else:
            at = term.read_until("tokens ·".encode(), start=at)
        term.read_until(PROMPT, start=at)
        term.press(b"\x04", settle=0.3)  # readline is reading
        term.read_until(b"completed")
    return term.output


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
    with luna_chat(db, llm, **env) as term:
        at = term.read_until(PROMPT)
        for key in keys:
            term.press(key, settle=0.3)  # readline is reading
            at = term.read_until("tokens ·".encode(), start=at)
            at = term.read_until(PROMPT, start=at)
        term.press(b"\x04", settle=0.3)
        term.read_until(b"completed")
    return term.output


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
