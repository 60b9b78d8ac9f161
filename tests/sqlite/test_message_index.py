"""SQLite's full-text index of messages (migrations 0005, 0009) stays exactly in step with the
messages: FTS5's own check compares every entry with the text it should hold, after every way
a message can come or go (saved, indexed in a batch or by a search, popped, cleared, deleted
with its session or bot, rolled back), whether it was indexed yet or still waiting. Those
indexed are exactly those at or below the mark (messages_indexed.up_to)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from boternity import open_store
from boternity.errors import ValidationError
from tests.conformance import factories as f

pytestmark = pytest.mark.sqlite

#: New messages are indexed this many at a time (the migration's batch trigger).
BATCH = 64


def _state(path: Path) -> tuple[int, int]:
    """(messages indexed, messages waiting), after FTS5's integrity check against the text it
    should hold (rank 1: the content too) and checking that every message is one or the other."""
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)")
        indexed = {r for (r,) in conn.execute("SELECT id FROM messages_fts_docsize")}
        (mark,) = conn.execute("SELECT up_to FROM messages_indexed").fetchone()
        messages = {r for (r,) in conn.execute("SELECT rowid FROM chat_messages")}
    waiting = {r for r in messages if r > mark}
    assert indexed == messages - waiting
    assert mark <= max(messages, default=0)  # the next message's rowid is above the mark
    return len(indexed), len(waiting)


async def test_every_delete_leaves_the_index_in_step(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    async with open_store(path) as store:
        ana, ben = await f.new_bot(store), await f.new_bot(store)
        sessions = [await f.new_session(store, b.id) for b in (ana, ana, ben, ben)]

        async def fill(count: int) -> None:
            for s in sessions:
                for i in range(count):
                    await store.chat.save_message(f.message(s.id, f"word{i} é shared " * (i + 1)))

        await fill(4)
        assert _state(path) == (0, 16)  # all waiting
        await store.chat.pop_message(sessions[0].id)  # a waiting one goes
        await store.chat.save_message(f.message(sessions[0].id, "its row again, new words"))
        assert _state(path) == (0, 16)
        assert len(await store.chat.search_messages("shared", limit=100)) == 15
        assert _state(path) == (16, 0)  # the search indexed them
        await store.chat.pop_message(sessions[0].id)  # an indexed one goes
        assert _state(path) == (15, 0)
        await fill(1)  # some waiting beside the indexed
        await store.chat.clear_messages(sessions[1].id)
        assert _state(path) == (11, 3)
        await store.chat.delete_session(sessions[2].id)
        assert _state(path) == (7, 2)
        await store.bots.delete_bot(ana.id)
        assert _state(path) == (4, 1)
        with pytest.raises(ValidationError):  # rolled back whole: nothing indexed or waiting
            await store.chat.save_messages(
                [
                    f.message(sessions[3].id, "x", input_tokens=2**62),
                    f.message(sessions[3].id, "y", input_tokens=2**62),
                ]
            )
        assert _state(path) == (4, 1)
        assert len(await store.chat.search_messages("shared")) == 5


async def test_new_messages_are_indexed_a_batch_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    async with open_store(path) as store:
        s = await f.new_session(store)
        await store.chat.save_messages([f.message(s.id, f"batch {i}") for i in range(BATCH - 1)])
        assert _state(path) == (0, BATCH - 1)
        await store.chat.save_message(f.message(s.id, "batch last"))  # the 64th
        assert _state(path) == (BATCH, 0)
        for i in range(BATCH + 3):
            await store.chat.save_message(f.message(s.id, f"batch {i}"))
        assert _state(path) == (2 * BATCH, 3)
        assert len(await store.chat.search_messages("batch", limit=1000)) == 2 * BATCH + 3


async def test_a_long_message_is_indexed_up_to_its_searched_start(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    async with open_store(path) as store:
        s = await f.new_session(store)
        long = "start " + "word " * 12_000 + "end"  # "end" is past the first 50,000
        await store.chat.save_message(f.message(s.id, long))
        await store.chat.save_message(f.message(s.id, long + " popped"))
        assert await store.chat.search_messages("end") == []
        await store.chat.pop_message(s.id)
        assert len(await store.chat.search_messages("start")) == 1
    assert _state(path) == (1, 0)


async def test_a_message_reusing_a_deleted_rowid_is_found(tmp_path: Path) -> None:
    """SQLite gives a new row the rowid after the largest left, so after the latest messages
    are deleted the next ones reuse rowids the index had already passed: they must wait to
    be indexed like any new message, and be found."""
    path = tmp_path / "b.db"
    async with open_store(path) as store:
        s = await f.new_session(store)
        for i in range(3):
            await store.chat.save_message(f.message(s.id, f"old {i}"))
        assert len(await store.chat.search_messages("old")) == 3  # indexed: the mark is at 3
        await store.chat.pop_message(s.id)
        await store.chat.save_message(f.message(s.id, "fresh one"))  # rowid 3 again
        assert _state(path) == (2, 1)
        assert [h.message.content for h in await store.chat.search_messages("fresh")] == [
            "fresh one"
        ]
        await store.chat.clear_messages(s.id)  # every message: the mark goes back to 0
        assert _state(path) == (0, 0)
        await store.chat.save_message(f.message(s.id, "after the clear"))
        assert len(await store.chat.search_messages("clear")) == 1
    assert _state(path) == (1, 0)
