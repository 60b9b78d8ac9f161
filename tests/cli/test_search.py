"""bnity search TEXT: messages of every session, through the real ``bnity`` in a subprocess
or on a pseudo-terminal."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from boternity.cli.output import short_ids
from boternity.models import ChatMessage, MessageRole
from tests.cli.conftest import with_store
from tests.cli.fixtures import UNICODE, World
from tests.cli.test_conventions import bnity, ok_json, on_a_terminal

pytestmark = pytest.mark.slow

HIT_FIELDS = {
    "message_id",
    "session_id",
    "bot_id",
    "bot_slug",
    "user_id",
    "seq",
    "role",
    "created_at",
    "length",
    "snippet",
    "marks",
}


def prefixes(world: World) -> dict[str, str]:
    """Each session's id -> the prefix bnity prints for it."""
    ids = [s.id for s in world.sessions]
    return {str(k): v for k, v in short_ids(ids, ids).items()}


def rows(stdout: str) -> list[list[str]]:
    """The table's rows, split into cells at runs of two or more spaces."""
    return [re.split(r"\s{2,}", line.strip()) for line in stdout.splitlines() if line.strip()]


def test_table_shows_session_prefix_seq_who_and_snippet(world: World) -> None:
    done = bnity(world.db, "search", "ramen")
    assert done.returncode == 0, done.stderr
    found = {r[0]: r for r in rows(done.stdout)}
    table = [r for r in rows(done.stdout) if r[0] in prefixes(world).values()]
    assert len(table) == 6  # two messages in each of the three sessions
    for row in table:
        assert row[1] == "helper"  # the Bot column: no --bot given
        if row[2] == "1":
            assert row[3] == "You"
            assert row[5] == f"Hello {UNICODE}, I live in Zürich and love ramen 🍜"
        else:
            assert row[2] == "2"
            assert row[3] == f"Helper {UNICODE}"  # the bot's name for its replies
            assert row[5] == "Nice to meet you! Ramen is great."  # one line
    assert {r[0] for r in table} == set(prefixes(world).values())
    assert done.stdout.rstrip().endswith("6 messages")
    assert "Session" in found and "Match" in found["Session"]


def test_json_rows_are_exact(world: World) -> None:
    hits = ok_json(bnity(world.db, "search", "Ramen", "--json"))
    assert len(hits) == 6
    every = {str(m.id): m for msgs in world.messages.values() for m in msgs}
    for hit in hits:
        assert set(hit) == HIT_FIELDS
        stored = every[hit["message_id"]]
        assert hit["length"] == len(stored.content)
        assert hit["seq"] == stored.seq
        assert hit["session_id"] == str(stored.session_id)
        assert hit["role"] == stored.role.value
        assert hit["created_at"] == stored.created_at.isoformat()
        assert (hit["bot_id"], hit["bot_slug"]) == (str(world.bot.id), "helper")
        marked = [hit["snippet"][s:e] for s, e in hit["marks"]]
        assert marked in (["ramen"], ["Ramen"])
    # Best first (the short replies), then newest: the same reply in each session, so the
    # newest session's first.
    assert [(h["session_id"], h["seq"]) for h in hits[:3]] == [
        (str(s.id), 2) for s in reversed(world.sessions)
    ]


def test_bot_filter_limit_and_empty_results(world: World) -> None:
    assert ok_json(bnity(world.db, "search", "ramen", "--bot", "other", "--json")) == []
    empty = bnity(world.db, "search", "ramen", "--bot", "other")
    assert empty.returncode == 0, empty.stderr  # like an empty listing
    assert empty.stdout == "No messages match 'ramen' in the sessions of 'other'.\n"
    none = bnity(world.db, "search", "tiramisu")
    assert (none.returncode, none.stdout) == (0, "No messages match 'tiramisu'.\n")
    by_prefix = bnity(world.db, "search", "ramen", "--bot", str(world.bot.id)[:-6], "--json")
    assert len(ok_json(by_prefix)) == 6
    narrowed = bnity(world.db, "search", "ramen", "--bot", "helper", "--limit", "2")
    assert narrowed.returncode == 0
    assert narrowed.stdout.rstrip().endswith("2 messages (best 2; use --limit for more)")
    assert "helper  " not in narrowed.stdout  # no Bot column for one bot
    unknown = bnity(world.db, "search", "ramen", "--bot", "nope")
    assert unknown.returncode == 4 and len(unknown.stderr.splitlines()) == 1
    for bad in ("0", "-1", "9" * 30):
        refused = bnity(world.db, "search", "ramen", "--limit", bad)
        assert refused.returncode == 2 and len(refused.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    "query",
    ['"; DROP TABLE chat_messages; --', "NEAR(ramen", "ramen*", "\x1b[2Jramen\x07", "r" * 10_000],
    ids=["sql", "fts", "star", "escapes", "long"],
)
def test_hostile_queries_are_text(world: World, query: str) -> None:
    done = bnity(world.db, "search", query)
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout and "\x07" not in done.stdout
    assert len(done.stdout) < 2_000  # a long query is not echoed whole
    if query in ("NEAR(ramen", "ramen*"):
        assert done.stdout.rstrip().endswith("6 messages")
    assert len(ok_json(bnity(world.db, "sessions", "--json"))) == 3  # nothing harmed


def test_stored_control_characters_are_shown_not_obeyed(world: World) -> None:
    evil = "\x1b]0;pwned\x07 ramen\x1b[2J \u202egnirts ramen"

    async def add(store: object) -> None:
        await store.chat.save_message(  # type: ignore[attr-defined]
            ChatMessage(session_id=world.sessions[0].id, role=MessageRole.USER, content=evil)
        )

    with_store(world.db, add)
    done = bnity(world.db, "search", "ramen")
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout and "\x07" not in done.stdout and "\u202e" not in done.stdout
    assert "\\x1b]0;pwned\\x07 ramen\\x1b[2J \\u202egnirts ramen" in done.stdout
    hits = ok_json(bnity(world.db, "search", "pwned", "--json"))
    assert hits[0]["snippet"] == evil  # --json keeps the exact text


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_matches_are_highlighted_on_a_terminal(world: World) -> None:
    code, shown = on_a_terminal(["--db", str(world.db), "search", "zurich"], {"PAGER": ""})
    assert code == 0, shown
    # Bold red around the word as written ("Zürich" for "zurich"), and only there.
    assert re.search(r"\x1b\[[0-9;]*1;31m" + "Zürich" + r"\x1b\[0m", shown), shown
    assert not re.search(r"\x1b\[[0-9;]*1;31m" + "Hello", shown)
    piped = bnity(world.db, "search", "zurich")
    assert "\x1b[" not in piped.stdout and "Zürich" in piped.stdout  # no styles into a pipe


def test_help_lists_search(tmp_path: Path) -> None:
    done = bnity(tmp_path / "x.db", "--help")
    assert re.search(r"^  search\s+Search the messages", done.stdout, re.M), done.stdout
    usage = bnity(tmp_path / "x.db", "search", "--help")
    assert "bnity search [OPTIONS] TEXT" in usage.stdout and "--bot BOT" in usage.stdout
