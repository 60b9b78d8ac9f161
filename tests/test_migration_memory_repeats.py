"""Upgrading a database made before the memory history recorded repeats: every row is kept
(SQLite rebuilds the history table to change its event check), on every backend; repeats are
then recorded, and an event of no known kind is still refused by the database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import asyncpg
import pytest

from boternity import Store, open_store
from boternity.models import Bot, MemoryEntry, MemoryEventKind
from tests.conformance import factories as f
from tests.upgrade import latest, old_database, table_rows

#: Columns added by later migrations (memory_changes_pruned).
LATER = {"changes_pruned_to", "tokens_reserved"}


async def _fill(store: Store) -> list[MemoryEntry]:
    """History of every kind the previous release wrote, of the bot and of a user: added,
    superseded, deleted, restored (a superseding memory deleted)."""
    live = []
    for b in range(2):
        bot = await store.bots.create_bot(Bot(name=f"Old bot {b}"))
        for user in (None, f"user {b}"):
            session = await f.new_session(store, bot.id, user_id=user)
            first = await store.memory.save_memory(
                f.memory(bot.id, f"Lives in Porto {b} {user}", session_id=session.id, user_id=user)
            )
            newer = await store.memory.supersede_memory(
                first.id, f.memory(bot.id, f"Lives in Braga {b} {user}", user_id=user)
            )
            await store.memory.delete_memory(newer.id)  # first is live again: restored
            gone = await store.memory.save_memory(
                f.memory(bot.id, f"Gone {b} {user}", user_id=user)
            )
            await store.memory.delete_memory(gone.id)
            live.append(first)
    return live


async def _insert_event(backend: str, url: str, memory: MemoryEntry, event: str) -> None:
    """A history row written past the store (as a buggy or hostile writer would)."""
    values = (str(memory.id), str(memory.id), str(memory.bot_id), event, "system", "x")
    if backend == "sqlite":
        with sqlite3.connect(url) as conn:
            conn.execute(
                "INSERT INTO memory_history (id, memory_id, bot_id, event, actor, fact, created_at)"
                " VALUES (lower(hex(randomblob(16))), ?, ?, ?, ?, ?, '2025-01-01')",
                values[1:],
            )
        return
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO memory_history (id, memory_id, bot_id, event, actor, fact, created_at)"
            " VALUES (gen_random_uuid(), $1, $2, $3, $4, $5, now())",
            *(memory.id, memory.bot_id, *values[3:]),
        )
    finally:
        await conn.close()


async def test_upgrade_keeps_every_history_row_and_records_repeats_after(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = old_database(backend, tmp_path, monkeypatch, before="memory_repeats", fill=_fill)
    async with made as (url, live):
        before = await table_rows(backend, url, skip=LATER)
        assert len(before["memory_history"]) == 4 * 7  # per bot and user: 3 added, 2 deleted, …
        kinds = {e for row in before["memory_history"] for e in MemoryEventKind if f"'{e}'" in row}
        assert kinds == set(MemoryEventKind) - {MemoryEventKind.REPEATED}
        with pytest.raises((sqlite3.IntegrityError, asyncpg.CheckViolationError)):
            await _insert_event(backend, url, live[0], "repeated")  # not yet a kind
        async with open_store(url) as store:
            assert store.schema_version == latest(backend)
            assert await table_rows(backend, url, skip=LATER) == before
            memory = live[1]  # a user's
            session = await f.new_session(store, memory.bot_id, user_id=memory.user_id)
            job = await store.memory.save_pending_extraction(f.pending(memory.bot_id, session.id))
            again = f.memory(memory.bot_id, "Is living in Porto", user_id=memory.user_id)
            await store.memory.complete_extraction(job.id, [again], repeats={again.id: memory.id})
            history = await store.memory.get_memory_history(memory.id)
            assert history[-1].event is MemoryEventKind.REPEATED
            assert [e.event for e in history[:-1]] == [
                MemoryEventKind.ADDED, MemoryEventKind.SUPERSEDED, MemoryEventKind.RESTORED,
            ]  # fmt: skip
        await _insert_event(backend, url, live[0], "repeated")
        with pytest.raises((sqlite3.IntegrityError, asyncpg.CheckViolationError)):
            await _insert_event(backend, url, live[0], "rewritten")
