"""Upgrading a database made by an earlier release, on every backend: what the migration tests
share.

The current code cannot write an older schema (its statements name columns added since), so
an old database is built the way a user's would be (``old_database``): data is written
through the current store into a current database (``fill``), then copied, column by column,
into a database migrated only up to the old version (``old_schema``: the migrations before
the one tested); the columns it lacks are dropped, and foreign keys are not checked while
copying. The test then opens it with the current code, which migrates it, and compares every
row (``table_rows``, ``assert_rows_kept``)."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from boternity import Store, open_store
from boternity.models import Bot, ChatMessage, ChatSession, MessageRole
from boternity.storage.migrations import Migration, load_migrations
from tests.conformance import factories as f
from tests.conftest import postgres_url_or_skip

PACKAGES = {
    "sqlite": "boternity.backends.sqlite.migrations",
    "postgres": "boternity.backends.postgres.migrations",
}
LOADERS = {
    "sqlite": "boternity.backends.sqlite.store.load_migrations",
    "postgres": "boternity.backends.postgres.store.load_migrations",
}


def latest(backend: str) -> int:
    return len(load_migrations(PACKAGES[backend]))


def old_schema(monkeypatch: pytest.MonkeyPatch, backend: str, before: str) -> int:
    """Until ``monkeypatch.undo()``, stores open with the migrations shipped before the one
    named ``before`` only: a database made then is one made by the release before it. Returns
    that schema version."""
    shipped = load_migrations(PACKAGES[backend])
    old: list[Migration] = shipped[: next(i for i, m in enumerate(shipped) if m.name == before)]
    monkeypatch.setattr(LOADERS[backend], lambda _pkg: old)
    return len(old)


@contextmanager
def blank_database(backend: str, tmp_path: Path, label: str) -> Iterator[str]:
    """The path or URL of a database with no schema at all."""
    if backend == "sqlite":
        yield str(tmp_path / f"{label}.db")
        return
    from tests.pg import fresh_postgres_database

    with fresh_postgres_database(postgres_url_or_skip(), migrated=False) as url:
        yield url


@asynccontextmanager
async def old_database(
    backend: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    before: str,
    fill: Callable[[Store], Awaitable[Any]],
) -> AsyncIterator[tuple[str, Any]]:
    """(url, what ``fill`` returned) of a database at the schema just before the migration
    called ``before``, holding what ``fill`` wrote through a current store."""
    with (
        blank_database(backend, tmp_path, "current") as current,
        blank_database(backend, tmp_path, "old") as old,
    ):
        async with open_store(current) as store:
            filled = await fill(store)
        with monkeypatch.context() as patch:
            version = old_schema(patch, backend, before)
            async with open_store(old) as store:
                assert store.schema_version == version
        if backend == "sqlite":
            _copy_sqlite(current, old)
        else:
            await _copy_postgres(current, old)
        yield old, filled


def _copy_sqlite(source: str, dest: str) -> None:
    with sqlite3.connect(dest) as conn:
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("ATTACH DATABASE ? AS src", (source,))
        # Tables the old schema's triggers fill (full-text bookkeeping) are left to them.
        derived = {
            name
            for (sql,) in conn.execute("SELECT sql FROM main.sqlite_master WHERE type = 'trigger'")
            for name in re.findall(r"INSERT INTO (\w+)", sql)
        }
        tables = [  # (schema, name, type, …): ordinary tables, not an index's shadow tables
            r[1]
            for r in conn.execute("PRAGMA main.table_list")
            if r[2] == "table"
            and r[1] != "schema_migrations"
            and not r[1].startswith("sqlite_")
            and r[1] not in derived
        ]
        for table in tables:
            info = conn.execute(f'PRAGMA main.table_info("{table}")')
            columns = ", ".join(f'"{r[1]}"' for r in info)
            # OR REPLACE: a row the old schema's migrations wrote themselves (a singleton
            # such as messages_indexed) takes the copied one's values.
            conn.execute(
                f'INSERT OR REPLACE INTO main."{table}" ({columns})'
                f' SELECT {columns} FROM src."{table}"'
            )
        conn.commit()
        conn.execute("DETACH DATABASE src")


async def _copy_postgres(source: str, dest: str) -> None:
    src, dst = await asyncpg.connect(source), await asyncpg.connect(dest)
    try:
        await dst.execute("SET session_replication_role = replica")  # no foreign-key checks
        for table in await _pg_tables(dst):
            columns = [
                r[0]
                for r in await dst.fetch(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema ="
                    " 'public' AND table_name = $1 AND is_generated = 'NEVER' ORDER BY"
                    " ordinal_position",
                    table,
                )
            ]
            names = ", ".join(f'"{c}"' for c in columns)
            rows = await src.fetch(f'SELECT {names} FROM "{table}"')
            await dst.copy_records_to_table(table, records=rows, columns=columns)
    finally:
        await src.close()
        await dst.close()


async def _pg_tables(conn: Any) -> list[str]:
    rows = await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        " AND tablename <> 'schema_migrations' ORDER BY tablename"
    )
    return [r[0] for r in rows]


async def fill(store: Store) -> list[ChatSession]:
    """Rows in every table: 2 bots with a soul, 2 sessions each with 3 messages, a memory
    superseded by another, a summary and a queued job."""
    sessions = []
    for b in range(2):
        bot = await store.bots.create_bot(Bot(name=f"Old bot {b}", tags=["x"]))
        await store.bots.save_soul(bot.id, "You are kind.")
        for s in range(2):
            session = await store.chat.create_session(ChatSession(bot_id=bot.id, model="m"))
            sessions.append(session)
            for i in range(3):
                m = await store.chat.save_message(
                    ChatMessage(
                        session_id=session.id,
                        role=MessageRole.USER if i % 2 == 0 else MessageRole.ASSISTANT,
                        content=f"old message {b}.{s}.{i} ✓",
                        input_tokens=i,
                        output_tokens=1,
                        metadata={"n": i, "nested": [1.5, None, "é"]},
                    )
                )
            # An old memory superseded by a newer one, written without supersede_memory
            # (whose unit needs bots.memory_version, added by a later migration).
            newer = await store.memory.save_memory(
                f.memory(bot.id, f"newer fact {b}.{s}", session_id=session.id)
            )
            await store.memory.save_memory(
                f.memory(
                    bot.id,
                    f"fact {b}.{s}",
                    session_id=session.id,
                    source_message_id=m.id,
                    superseded_by=newer.id,
                )
            )
            await store.memory.save_context_summary(f.summary(session.id, 1, 2))
            await store.memory.save_pending_extraction(f.pending(bot.id, session.id))
    return sessions


#: The message index on SQLite (the FTS5 table, its shadow tables, what is indexed so far):
#: migration 0009 indexes the messages still waiting and replaces the queue with a mark, so
#: these change on upgrade. tests/sqlite/test_message_index.py checks them against the messages.
#: And the mark of the messages counted on their bots (migration 0011; see
#: tests/sqlite/test_bot_totals.py).
MESSAGE_INDEX = ("messages_fts", "messages_to_index", "messages_indexed", "messages_counted")


def _sqlite_rows(path: str, skip: set[str]) -> dict[str, list[str]]:
    with sqlite3.connect(path) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
                " AND name <> 'schema_migrations' ORDER BY name"
            )
            if not r[0].startswith(MESSAGE_INDEX)
        ]
        dump: dict[str, list[str]] = {}
        for table in tables:
            cursor = conn.execute(f'SELECT * FROM "{table}"')
            names = [d[0] for d in cursor.description]
            dump[table] = _reprs((dict(zip(names, row, strict=True)) for row in cursor), skip)
    return dump


async def _postgres_rows(url: str, skip: set[str]) -> dict[str, list[str]]:
    conn = await asyncpg.connect(url)
    try:
        tables = await _pg_tables(conn)
        return {t: _reprs((dict(r) for r in await conn.fetch(f'SELECT * FROM "{t}"')), skip)
                for t in tables}  # fmt: skip
    finally:
        await conn.close()


def _reprs(rows: Iterable[dict[str, Any]], skip: set[str]) -> list[str]:
    return sorted(repr({k: v for k, v in row.items() if k not in skip}) for row in rows)


async def table_rows(backend: str, url: str, *, skip: Iterable[str] = ()) -> dict[str, list[str]]:
    """Every row of every table but the migration ledger, by table, sorted; the columns
    named in ``skip`` (added by a later migration) left out."""
    left_out = set(skip)
    if backend == "sqlite":
        return _sqlite_rows(url, left_out)
    return await _postgres_rows(url, left_out)


async def assert_rows_kept(backend: str, url: str, before: dict[str, list[str]],
                           *, added: Iterable[str] = ()) -> None:  # fmt: skip
    """Every table and row of ``before`` (``table_rows(…, skip=added)`` of the old database)
    is still there, unchanged but for the columns ``added`` since (tables added since may
    exist too). A column name counts in every table: a column some tables had before (the
    bots' user_id) is then compared by the test itself."""
    after = await table_rows(backend, url, skip=added)
    assert set(after) >= set(before)
    for table in before:
        assert after[table] == before[table], table


async def column_values(backend: str, url: str, column: str) -> dict[str, set[Any]]:
    """The values ``column`` holds, by table, in the tables that have it."""
    if backend == "sqlite":
        with sqlite3.connect(url) as conn:
            names = [
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            ]
            found = {}
            for table in names:
                if column in [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]:
                    found[table] = {r[0] for r in conn.execute(f'SELECT "{column}" FROM "{table}"')}
            return found
    conn = await asyncpg.connect(url)
    try:
        found = {}
        for table in await _pg_tables(conn):
            has = await conn.fetchval(
                "SELECT 1 FROM information_schema.columns WHERE table_schema = 'public'"
                " AND table_name = $1 AND column_name = $2",
                table,
                column,
            )
            if has:
                found[table] = {r[0] for r in await conn.fetch(f'SELECT "{column}" FROM "{table}"')}
        return found
    finally:
        await conn.close()
