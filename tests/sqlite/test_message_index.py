"""SQLite's full-text index of messages (migration 0005) stays exactly in step with the
messages: FTS5's own check compares every entry with the text it indexes, after every way a
message can go (pop, clear, a deleted session or bot, a rolled-back batch)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from boternity import open_store
from boternity.errors import ValidationError
from tests.conformance import factories as f

pytestmark = pytest.mark.sqlite


def _check(path: Path) -> int:
    """FTS5's integrity check against the content (rank 1); the number of indexed rows."""
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)")
        rows = conn.execute("SELECT count(*) FROM messages_fts_docsize").fetchone()[0]
        assert rows == conn.execute("SELECT count(*) FROM chat_messages").fetchone()[0]
        return int(rows)


async def test_every_delete_leaves_the_index_in_step(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    async with open_store(path) as store:
        ana, ben = await f.new_bot(store), await f.new_bot(store)
        sessions = [await f.new_session(store, b.id) for b in (ana, ana, ben, ben)]
        for s in sessions:
            for i in range(4):
                await store.chat.save_message(f.message(s.id, f"word{i} é shared " * (i + 1)))
        assert _check(path) == 16
        await store.chat.pop_message(sessions[0].id)
        await store.chat.save_message(f.message(sessions[0].id, "its row again, new words"))
        assert _check(path) == 16
        await store.chat.clear_messages(sessions[1].id)
        assert _check(path) == 12
        await store.chat.delete_session(sessions[2].id)
        assert _check(path) == 8
        await store.bots.delete_bot(ana.id)
        assert _check(path) == 4
        with pytest.raises(ValidationError):  # rolled back whole: nothing indexed
            await store.chat.save_messages(
                [
                    f.message(sessions[3].id, "x", input_tokens=2**62),
                    f.message(sessions[3].id, "y", input_tokens=2**62),
                ]
            )
        assert _check(path) == 4


async def test_a_long_message_is_indexed_up_to_its_searched_start(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    async with open_store(path) as store:
        s = await f.new_session(store)
        long = "start " + "word " * 12_000 + "end"  # "end" is past the first 50,000
        await store.chat.save_message(f.message(s.id, long))
        await store.chat.save_message(f.message(s.id, long + " popped"))
        await store.chat.pop_message(s.id)
    assert _check(path) == 1
