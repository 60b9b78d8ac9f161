"""Stored and model-produced text cannot drive the terminal (issue 9).

Hostile strings (screen clear, window retitle, BEL, a C1 CSI, a bidi override, Rich markup)
are stored through the library, then every command that shows them runs as the real
``bnity`` in a subprocess: the raw control bytes never reach stdout or stderr, a visible
form does, markup prints literally, and ``--json`` and ``session export`` keep the exact text.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from boternity import open_store
from boternity.models import (
    Bot,
    ChatMessage,
    ChatSession,
    MemoryEntry,
    MessageRole,
    PendingExtraction,
)
from tests.cli.conftest import CLEAN_ENV, FakeLlm
from tests.fakes.llm_server import openai_frames, sse_reply

BNITY = [sys.executable, "-m", "boternity.cli"]

#: Clears the screen, retitles the window (OSC ... ST), rings the bell, a C1 CSI, reverses
#: the line (U+202E) and carries Rich markup that must print literally.
HOSTILE = (
    "x\x1b[2J\x1b]0;PWNED\x1b\\ [red]RED[/red] [link=http://evil.example]L[/link]"
    " \u202eevil\x07 \x9b2J y"
)
#: What must never appear in terminal output (as UTF-8 bytes).
RAW = [b"\x1b", b"\x07", "\x9b".encode(), "\u202e".encode()]


def env(**extra: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k not in (*CLEAN_ENV, "COLUMNS")}
    e["PYTHONUTF8"] = "1"
    e.update(extra)
    return e


def bnity(
    db: str, *args: str, input: bytes | None = None, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*BNITY, "--db", db, *args],
        input=input,
        capture_output=True,
        timeout=60,
        env=env(**(extra_env or {})),
    )


def assert_harmless(result: subprocess.CompletedProcess[bytes], *, shown: bool = True) -> str:
    """No raw control byte on either stream; the visible form of ESC on stdout."""
    for stream in (result.stdout, result.stderr):
        for raw in RAW:
            assert raw not in stream, (raw, stream)
    out = result.stdout.decode()
    if shown:
        assert "\\x1b[2J" in out, out
    return out


@dataclass
class Hostile:
    db: str
    session: str
    memory: str
    job: str


async def _store_hostile(db: str) -> Hostile:
    async with open_store(db, readers=1) as store:
        bot = await store.bots.create_bot(
            Bot(name=f"Evil {HOSTILE}", slug="evil", description=HOSTILE, tags=["t"])
        )
        await store.bots.save_soul(bot.id, f"You are {HOSTILE}", message=HOSTILE)
        session = await store.chat.create_session(
            ChatSession(bot_id=bot.id, model="m", title=HOSTILE)
        )
        for role in (MessageRole.USER, MessageRole.ASSISTANT):
            await store.chat.save_message(
                ChatMessage(session_id=session.id, role=role, content=HOSTILE)
            )
        memory = await store.memory.save_memory(
            MemoryEntry(
                bot_id=bot.id,
                fact=f"fact {HOSTILE}",
                category="fact",  # type: ignore[arg-type]
                importance=3,
                session_id=session.id,
            )
        )
        job = await store.memory.save_pending_extraction(
            PendingExtraction(
                session_id=session.id, bot_id=bot.id, attempt_count=1, error_message=HOSTILE
            )
        )
        return Hostile(db, str(session.id), str(memory.id), str(job.id))


@pytest.fixture
def hostile(db_url: str) -> Hostile:
    return asyncio.run(_store_hostile(db_url))


@pytest.mark.slow
def test_listing_commands_show_control_characters_harmlessly(hostile: Hostile) -> None:
    db = hostile.db
    full_text = [  # commands that show the whole text: markup must print literally
        ("bot", "show", "evil"),
        ("soul", "show", "evil"),
        ("session", "show", hostile.session),
        ("memory", "show", hostile.memory),
    ]
    cut_text = [  # tables cut long text: the start (with its ESC) is shown
        ("bot", "list"),
        ("soul", "history", "evil"),
        ("sessions", "evil"),
        ("memories", "evil"),
        ("memories", "evil", "--search", "fact"),
        ("queue",),
    ]
    for args in full_text + cut_text:
        result = bnity(db, *args)
        assert result.returncode == 0, (args, result.stderr)
        out = assert_harmless(result)
        if args in full_text:
            assert "[red]RED[/red]" in out and "[link=http://evil.example]" in out, args
            assert "\\u202eevil\\x07 \\x9b2J" in out, args
    # soul show prints its header on stderr: the soul message (hostile) there too
    assert b"[red]RED[/red]" in bnity(db, "soul", "show", "evil").stderr


@pytest.mark.slow
def test_json_and_exports_keep_the_exact_text(hostile: Hostile, tmp_path: Path) -> None:
    db = hostile.db

    def data(*args: str) -> object:
        result = bnity(db, *args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    assert data("bot", "show", "evil")["description"] == HOSTILE  # type: ignore[index]
    shown = data("session", "show", hostile.session)
    assert [m["content"] for m in shown["messages"]] == [HOSTILE, HOSTILE]  # type: ignore[index]
    assert shown["session"]["title"] == HOSTILE  # type: ignore[index]
    assert data("memories", "evil")[0]["fact"] == f"fact {HOSTILE}"  # type: ignore[index]
    assert data("queue")[0]["error_message"] == HOSTILE  # type: ignore[index]
    assert data("soul", "show", "evil")["content"] == f"You are {HOSTILE}"  # type: ignore[index]

    # into a pipe, an export and `soul show --raw` are the exact text
    piped = bnity(db, "session", "export", hostile.session)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.decode().count(HOSTILE) == 4  # title, bot name, 2 messages
    raw = bnity(db, "soul", "show", "evil", "--raw")
    assert raw.stdout.decode() == f"You are {HOSTILE}\n"
    for fmt in ("md", "json"):
        target = tmp_path / f"export.{fmt}"
        done = bnity(db, "session", "export", hostile.session, "-f", fmt, "-o", str(target))
        assert done.returncode == 0, done.stderr
        body = target.read_text(encoding="utf-8")
        if fmt == "json":
            assert json.loads(body)["messages"][0]["content"] == HOSTILE
        else:
            assert body.count(HOSTILE) == 4


@pytest.mark.slow
def test_error_lines_and_prompts_quote_input_harmlessly(hostile: Hostile) -> None:
    db = hostile.db
    # an unknown slug is quoted back in the one-line error
    result = bnity(db, "bot", "show", "nope\x1b]0;PWNED\x07[red]x")
    assert result.returncode == 4
    assert_harmless(result, shown=False)
    assert "\\x1b]0;PWNED\\x07[red]x" in result.stderr.decode()
    # an unknown command (Click's own message)
    result = bnity(db, "nope\x1b[2J")
    assert result.returncode == 2
    assert_harmless(result, shown=False)
    assert "\\x1b[2J" in result.stderr.decode()
    # a refused confirmation quotes the fact
    result = bnity(db, "memory", "delete", hostile.memory)
    assert result.returncode == 2
    assert_harmless(result, shown=False)
    assert "\\x1b[2J" in result.stderr.decode()
    # what a delete reports
    result = bnity(db, "session", "delete", hostile.session, "--yes")
    assert result.returncode == 0, result.stderr
    assert_harmless(result)


@pytest.mark.slow
def test_streamed_replies_and_titles_are_shown_harmlessly(db_url: str, llm: FakeLlm) -> None:
    asyncio.run(_store_hostile(db_url))
    llm.script("chat", sse_reply(openai_frames(["a", HOSTILE[:5], HOSTILE[5:], " b"])))
    result = bnity(
        db_url,
        "chat",
        "evil",
        "--no-greeting",
        input=f"hi\n/history\n/sessions\n/remember r {HOSTILE}\n".encode(),
        extra_env=llm.env(),
    )
    assert result.returncode == 0, result.stderr
    out = assert_harmless(result)
    assert out.startswith("ax\\x1b[2J\\x1b]0;PWNED\\x1b\\ [red]RED[/red]")
    assert "Remembered: r x\\x1b[2J" in out
    listed = bnity(db_url, "session", "show", hostile_session(db_url), "--json")
    contents = [m["content"] for m in json.loads(listed.stdout)["messages"]]
    assert f"a{HOSTILE} b" in contents  # stored exactly


def hostile_session(db: str) -> str:
    result = bnity(db, "sessions", "evil", "--json")
    return str(json.loads(result.stdout)[0]["id"])
