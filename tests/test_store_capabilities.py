"""The capabilities every backend offers behind ``Store``: session locks and maintenance
(row counts, details, integrity check, online backup), on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from boternity import Store, open_store
from boternity.config import resolve_database
from boternity.errors import UnsupportedError
from boternity.models import Bot, MemoryEntry
from boternity.repositories import Maintenance, SessionLock, SessionLocks
from boternity.store import backend_of

SCHEMA_TABLES = {
    "bots",
    "soul_versions",
    "chat_sessions",
    "chat_messages",
    "context_summaries",
    "session_memories",
    "memory_history",
    "memory_embeddings",
    "memory_changes",
    "pending_memory_extractions",
    "schema_migrations",
}


async def _bot_with_memory(store: Store) -> Bot:
    bot = await store.bots.create_bot(Bot(name="Ann", slug="ann"))
    await store.memory.save_memory(
        MemoryEntry(bot_id=bot.id, fact="Likes tea", category="fact", importance=3)  # type: ignore[arg-type]
    )
    return bot


async def test_session_locks_come_from_the_store(store: Store) -> None:
    locks = store.session_locks()
    assert isinstance(locks, SessionLocks)
    sid = uuid.uuid4()
    other = store.session_locks()
    try:
        lock = await locks.try_acquire(sid)
        assert isinstance(lock, SessionLock) and lock.session_id == sid
        assert await lock.still_held()
        assert await other.try_acquire(sid) is None  # one holder, even in one process
        await lock.release()
        again = await other.try_acquire(sid)
        assert again is not None
        await again.release()
    finally:
        await locks.aclose()
        await other.aclose()


async def test_table_counts_list_every_table_the_database_has(store: Store) -> None:
    assert isinstance(store.maintenance, Maintenance)
    await _bot_with_memory(store)
    counts = await store.maintenance.table_counts()
    assert set(counts) >= SCHEMA_TABLES
    assert counts["bots"] == 1 and counts["session_memories"] == 1
    assert counts["memory_history"] == 1  # the 'added' record
    assert counts["schema_migrations"] == store.schema_version
    assert list(counts) == sorted(counts)
    # The database's own bookkeeping is left out: SQLite's sqlite_* tables and the shadow
    # tables of the full-text indexes (their PostgreSQL counterparts are columns and indexes).
    shadows = ("sqlite_", "memories_fts_", "messages_fts_")
    assert not [name for name in counts if name.startswith(shadows)]
    extra = set(counts) - SCHEMA_TABLES
    sqlite_extra = {"memories_fts", "messages_fts", "messages_indexed", "messages_counted"}
    assert extra == (sqlite_extra if store.backend == "sqlite" else set())
    if "memories_fts" in counts:
        assert (counts["memories_fts"], counts["messages_fts"]) == (1, 0)


async def test_details_say_what_the_backend_knows(store: Store) -> None:
    details = await store.maintenance.details()
    assert details.lines and all(isinstance(v, str) for _, v in details.lines)
    if store.backend == "sqlite":
        assert details.fields["journal_mode"] == "wal"
        assert "boternity.db" in details.fields["files"]
    else:
        assert details.fields["server_version"]
        assert details.fields["database_bytes"] > 0


async def test_backup_and_integrity_check(store: Store, db_url: str, tmp_path: Path) -> None:
    bot = await _bot_with_memory(store)
    copy = tmp_path / "copy.db"
    if backend_of(db_url).unsupported("backup") is not None:
        with pytest.raises(UnsupportedError, match="pg_dump"):
            await store.maintenance.backup(copy)
        with pytest.raises(UnsupportedError, match="pg_amcheck"):
            await store.maintenance.integrity_check()
        assert not copy.exists()
        return
    report = await store.maintenance.integrity_check()
    assert report.ok and report.problems == [] and report.foreign_keys == []
    copy.touch()  # what the CLI hands over: a new, empty, owner-only file
    done = await store.maintenance.backup(copy)
    assert done.tables >= len(SCHEMA_TABLES)
    await store.bots.create_bot(Bot(name="Later", slug="later"))  # the store stays in use
    async with open_store(copy, readers=1) as restored:
        assert [b.id for b in await restored.bots.list_bots()] == [bot.id]
        assert (await restored.maintenance.integrity_check()).ok
        counts = await restored.maintenance.table_counts()
    assert counts == {**await store.maintenance.table_counts(), "bots": 1}


def test_backends_answer_without_connecting() -> None:
    # A PostgreSQL URL nobody listens on: nothing is opened to answer.
    url = "postgresql://nobody:secret@127.0.0.1:9/none"
    pg = backend_of(url)
    assert pg.name == "postgresql"
    assert pg.schema_version_on_disk(resolve_database(url)) is None
    for operation in ("backup", "integrity_check"):
        reason = pg.unsupported(operation)
        assert reason is not None and "SQLite" in reason and "secret" not in reason
    sqlite = backend_of("sqlite:///nowhere/x.db")
    assert sqlite.name == "sqlite" and sqlite.unsupported("backup") is None
