"""SQLite writer: errors that make SQLite roll back the whole transaction (disk full, I/O).

These need the writer connection (to shrink the database's page budget), so they live
outside the backend-neutral conformance suite.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from boternity import open_store
from boternity.backends.sqlite import SqliteStore
from boternity.errors import RepositoryError
from boternity.models import Bot, ChatMessage, ChatSession, MessageRole

BIG = "x" * 200_000  # needs far more pages than the budget leaves


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with open_store(tmp_path / "data" / "boternity.db") as store:
        assert isinstance(store, SqliteStore)
        yield store


async def _limit_pages(store: SqliteStore, extra: int | None) -> None:
    def unit(conn: sqlite3.Connection) -> None:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        limit = 1_073_741_823 if extra is None else pages + extra
        conn.execute(f"PRAGMA max_page_count = {int(limit)}").fetchone()

    await store.writer.run(unit)


async def _session(store: SqliteStore) -> ChatSession:
    bot = await store.bots.create_bot(Bot(name="Full Disk"))
    return await store.chat.create_session(ChatSession(bot_id=bot.id, model="m"))


def _msg(session: ChatSession, content: str) -> ChatMessage:
    return ChatMessage(session_id=session.id, role=MessageRole.USER, content=content)


async def test_disk_full_on_a_lone_write_reports_disk_full(sqlite_store: SqliteStore) -> None:
    s = await _session(sqlite_store)
    await _limit_pages(sqlite_store, 3)
    with pytest.raises(RepositoryError) as info:
        await sqlite_store.chat.save_message(_msg(s, BIG))
    cause = info.value.__cause__
    assert isinstance(cause, sqlite3.Error)
    assert cause.sqlite_errorname == "SQLITE_FULL"
    stored = await sqlite_store.chat.get_session(s.id)
    assert stored is not None and stored.message_count == 0
    await _limit_pages(sqlite_store, None)
    assert (await sqlite_store.chat.save_message(_msg(s, BIG))).seq == 1


async def test_disk_full_in_a_batch_fails_only_the_write_that_hit_it(
    sqlite_store: SqliteStore,
) -> None:
    s = await _session(sqlite_store)
    await _limit_pages(sqlite_store, 3)
    contents = ["small 0", "small 1", BIG, "small 3", "small 4"]
    outcomes = await asyncio.gather(
        *(sqlite_store.chat.save_message(_msg(s, c)) for c in contents), return_exceptions=True
    )
    failed = [i for i, o in enumerate(outcomes) if isinstance(o, BaseException)]
    assert failed == [2]
    assert isinstance(outcomes[2], RepositoryError)
    messages = await sqlite_store.chat.get_messages(s.id)
    assert sorted(m.content for m in messages) == ["small 0", "small 1", "small 3", "small 4"]
    assert [m.seq for m in messages] == [1, 2, 3, 4]
    stored = await sqlite_store.chat.get_session(s.id)
    assert stored is not None and stored.message_count == 4


async def test_a_batch_takes_savepoints_only_when_a_unit_fails(sqlite_store: SqliteStore) -> None:
    """Writes that share a transaction run side by side (no SAVEPOINT, two statements less
    each); one failing sends the batch round again, each unit in a savepoint, so it fails
    alone (what the tests above and test_concurrency check)."""
    s = await _session(sqlite_store)
    statements: list[str] = []
    await sqlite_store.writer.run(lambda conn: conn.set_trace_callback(statements.append))
    try:
        await asyncio.gather(*(sqlite_store.chat.save_message(_msg(s, str(i))) for i in range(8)))
        assert statements and not [q for q in statements if "SAVEPOINT" in q]
        first = (await sqlite_store.chat.get_messages(s.id))[0]
        clash = ChatMessage(session_id=s.id, role=MessageRole.USER, content="x", id=first.id)
        outcomes = await asyncio.gather(
            *(sqlite_store.chat.save_message(m) for m in (_msg(s, "a"), clash, _msg(s, "b"))),
            return_exceptions=True,
        )
    finally:
        await sqlite_store.writer.run(lambda conn: conn.set_trace_callback(None))
    assert [isinstance(o, BaseException) for o in outcomes] == [False, True, False]
    assert len([q for q in statements if q.startswith("SAVEPOINT")]) == 3
    assert (await sqlite_store.chat.get_message_count(s.id)) == 10
