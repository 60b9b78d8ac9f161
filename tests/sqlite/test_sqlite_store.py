"""SQLite-only behaviour: files, pragmas, migrations, locking between processes."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
import threading
import time
from pathlib import Path

import pytest

from boternity import open_store
from boternity.backends.sqlite import SqliteStore, pool
from boternity.errors import (
    BoternityError,
    RepositoryError,
    SchemaError,
    StoreBusyError,
    ValidationError,
)
from boternity.models import Bot, ChatMessage, ChatSession, MessageRole

pytestmark = pytest.mark.sqlite


def _sqlite(store: object) -> SqliteStore:
    assert isinstance(store, SqliteStore)
    return store


async def test_new_database_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "b.db"
    async with open_store(path):
        pass
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


@pytest.mark.parametrize(
    ("durability", "expected"), [("normal", 1), ("full", 2)], ids=["normal", "full"]
)
async def test_durability_sets_synchronous(tmp_path: Path, durability: str, expected: int) -> None:
    async with open_store(tmp_path / "b.db", durability=durability) as store:  # type: ignore[arg-type]
        sync = await _sqlite(store).writer.run(
            lambda c: c.execute("PRAGMA synchronous").fetchone()[0]
        )
        mode = await _sqlite(store).writer.run(
            lambda c: c.execute("PRAGMA journal_mode").fetchone()[0]
        )
        fks = await _sqlite(store).readers.run(
            lambda c: c.execute("PRAGMA foreign_keys").fetchone()[0]
        )
    assert (sync, mode, fks) == (expected, "wal", 1)


async def test_every_connection_has_the_larger_page_cache(tmp_path: Path) -> None:
    """A search over a large store re-reads its pages from the OS on every run with SQLite's
    default 2 MB cache (pool.CACHE_KIB)."""
    size = "PRAGMA cache_size"
    async with open_store(tmp_path / "b.db") as store:
        s = _sqlite(store)
        writer = await s.writer.run(lambda c: c.execute(size).fetchone()[0])
        reader = await s.readers.run(lambda c: c.execute(size).fetchone()[0])
        assert s.readers.loop_connection is not None
        loop = s.readers.loop_connection.execute(size).fetchone()[0]
    assert writer == reader == loop == -pool.CACHE_KIB


async def test_bad_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="durability"):
        async with open_store(tmp_path / "b.db", durability="sometimes"):  # type: ignore[arg-type]
            pass
    with pytest.raises(ValidationError, match="readers"):
        async with open_store(tmp_path / "b.db", readers=0):
            pass
    # Every option is checked whatever the backend, before anything is created.
    for option, value in [("busy_wait", -1), ("busy_wait", "soon"), ("pool_size", 0)]:
        with pytest.raises(ValidationError, match=option):
            async with open_store(tmp_path / "b.db", **{option: value}):  # type: ignore[arg-type]
                pass
    assert not (tmp_path / "b.db").exists()


async def test_readers_cannot_write(tmp_path: Path) -> None:
    async with open_store(tmp_path / "b.db") as store:
        with pytest.raises(BoternityError) as info:
            await _sqlite(store).readers.run(lambda c: c.execute("DELETE FROM bots").fetchall())
        assert isinstance(info.value.__cause__, sqlite3.Error)


async def test_reopen_does_not_reapply_migrations(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    async with open_store(path) as store:
        await store.bots.create_bot(Bot(name="keep me"))
        first = store.schema_version
    async with open_store(path) as store:
        assert store.schema_version == first >= 1
        assert [b.name for b in await store.bots.list_bots()] == ["keep me"]
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()
    assert len(rows) == first
    assert all(len(checksum) == 64 for _, checksum in rows)


async def test_newer_schema_is_refused_with_advice(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    async with open_store(path):
        pass
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO schema_migrations VALUES (999, 'future', 'x', '2030-01-01T00:00:00+00:00')"
        )
    with pytest.raises(SchemaError, match=r"schema version 999.*upgrade boternity"):
        async with open_store(path):
            pass


async def test_altered_migration_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    async with open_store(path):
        pass
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE schema_migrations SET checksum = 'tampered' WHERE version = 1")
    with pytest.raises(SchemaError, match="changed after it was applied"):
        async with open_store(path):
            pass


async def test_a_failed_migration_is_named_and_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from boternity.storage.migrations import Migration, load_migrations

    path = tmp_path / "b.db"
    async with open_store(path) as store:
        await store.bots.create_bot(Bot(name="keep me"))
        latest = store.schema_version
    shipped = load_migrations("boternity.backends.sqlite.migrations")
    broken = Migration(
        latest + 1,
        "broken",
        "CREATE TABLE half_done (id INTEGER);\nINSERT INTO nowhere VALUES (1);",
    )
    monkeypatch.setattr(
        "boternity.backends.sqlite.store.load_migrations", lambda _pkg: [*shipped, broken]
    )
    with pytest.raises(SchemaError, match=f"migration {latest + 1:04d}_broken failed") as caught:
        async with open_store(path):
            pass
    assert isinstance(caught.value.__cause__.__cause__, sqlite3.OperationalError)  # type: ignore[union-attr]
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
    assert "half_done" not in tables
    assert versions == list(range(1, latest + 1))
    monkeypatch.undo()
    async with open_store(path) as store:  # and the shipped code still opens it
        assert store.schema_version == latest
        assert [b.name for b in await store.bots.list_bots()] == ["keep me"]


def _hold_write_lock(path: Path, seconds: float, started: threading.Event) -> None:
    """Another connection (as another process would) holding the write lock."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    started.set()
    time.sleep(seconds)
    conn.execute("ROLLBACK")
    conn.close()


async def _session(store: object) -> ChatSession:
    s = _sqlite(store)
    bot = await s.bots.create_bot(Bot(name="lock"))
    return await s.chat.create_session(ChatSession(bot_id=bot.id, model="m"))


async def test_write_waits_for_another_writer_instead_of_failing(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    async with open_store(path) as store:
        session = await _session(store)
        started = threading.Event()
        holder = threading.Thread(target=_hold_write_lock, args=(path, 1.0, started))
        holder.start()
        await asyncio.to_thread(started.wait)
        t0 = time.monotonic()
        saved = await store.chat.save_message(
            ChatMessage(session_id=session.id, role=MessageRole.USER, content="after the lock")
        )
        waited = time.monotonic() - t0
        await asyncio.to_thread(holder.join)
    assert saved.seq == 1
    assert waited >= 0.5


async def test_a_lock_held_too_long_is_a_clear_busy_error(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    async with open_store(path, busy_wait=0.3) as store:
        session = await _session(store)
        started = threading.Event()
        holder = threading.Thread(target=_hold_write_lock, args=(path, 6.0, started))
        holder.start()
        await asyncio.to_thread(started.wait)
        try:
            with pytest.raises(StoreBusyError, match="busy for more than") as info:
                await store.chat.save_message(
                    ChatMessage(session_id=session.id, role=MessageRole.USER, content="x")
                )
            assert "database is locked" not in str(info.value)
            assert isinstance(info.value.__cause__, sqlite3.OperationalError)
        finally:
            await asyncio.to_thread(holder.join)
        # and the store still works afterwards
        saved = await store.chat.save_message(
            ChatMessage(session_id=session.id, role=MessageRole.USER, content="y")
        )
        assert saved.seq == 1


async def test_cancelled_caller_does_not_leave_a_write_in_doubt(tmp_path: Path) -> None:
    async with open_store(tmp_path / "b.db") as store:
        session = await _session(store)
        messages = [
            ChatMessage(session_id=session.id, role=MessageRole.USER, content=f"m{i}")
            for i in range(20)
        ]
        tasks = [asyncio.create_task(store.chat.save_message(m)) for m in messages]
        await asyncio.sleep(0)
        tasks[5].cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert isinstance(results[5], asyncio.CancelledError)
        stored = await store.chat.get_messages(session.id)
        # the cancelled write was already queued: it finished, and seq stays contiguous
        assert {m.id for m in stored} == {m.id for m in messages}
        assert [m.seq for m in stored] == list(range(1, 21))


async def test_concurrent_writes_are_committed_in_groups(tmp_path: Path) -> None:
    async with open_store(tmp_path / "b.db") as store:
        session = await _session(store)
        statements: list[str] = []
        writer = _sqlite(store).writer
        await writer.run(lambda c: c.set_trace_callback(statements.append))
        await asyncio.gather(
            *(
                store.chat.save_message(
                    ChatMessage(session_id=session.id, role=MessageRole.USER, content=str(i))
                )
                for i in range(64)
            )
        )
        await writer.run(lambda c: c.set_trace_callback(None))
        assert await store.chat.get_message_count(session.id) == 64
    commits = sum(1 for s in statements if s == "COMMIT")
    assert 1 <= commits < 16, f"64 concurrent writes took {commits} commits"


@pytest.mark.parametrize(
    "url",
    ["mysql://x/y", "sqlite://", "sqlite:///:memory:", ""],
)
async def test_unusable_locations_are_refused(url: str) -> None:
    with pytest.raises(ValidationError):
        async with open_store(url):
            pass


async def test_a_path_that_cannot_be_a_database_is_a_repository_error(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder.db"
    folder.mkdir()
    with pytest.raises(RepositoryError, match="cannot open SQLite database") as info:
        async with open_store(folder):
            pass
    assert isinstance(info.value.__cause__, sqlite3.Error)
    not_a_db = tmp_path / "notes.db"
    not_a_db.write_text("this is not a database " * 100)
    with pytest.raises(RepositoryError) as info2:
        async with open_store(not_a_db):
            pass
    assert isinstance(info2.value.__cause__, sqlite3.Error)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(RepositoryError, match="cannot create SQLite database") as info3:
        async with open_store(blocker / "sub" / "b.db"):
            pass
    assert isinstance(info3.value.__cause__, OSError)


def test_opening_needs_no_write_lock_when_no_migration_is_due(tmp_path: Path) -> None:
    """Another process holds the write lock (BEGIN IMMEDIATE): opening still answers at once,
    reads work, and only a write waits for the lock."""
    import subprocess
    import sys

    from boternity.errors import StoreBusyError

    db = tmp_path / "held.db"

    async def create() -> None:
        async with open_store(db) as store:
            await store.bots.create_bot(Bot(name="Ann"))

    async def read_then_write() -> None:
        start = time.monotonic()
        async with open_store(db, busy_wait=30) as store:
            assert [b.name for b in await store.bots.list_bots()] == ["Ann"]
            assert time.monotonic() - start < 5  # was: 30 s, then StoreBusyError
        async with open_store(db, busy_wait=0.2) as store:
            with pytest.raises(StoreBusyError):
                await store.bots.create_bot(Bot(name="Bob"))

    asyncio.run(create())
    script = (
        "import sqlite3, sys, time\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "c.execute('BEGIN IMMEDIATE')\n"
        "print('locked', flush=True)\n"
        "time.sleep(120)\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", script, str(db)], stdout=subprocess.PIPE, text=True
    ) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
            asyncio.run(read_then_write())
        finally:
            holder.kill()
