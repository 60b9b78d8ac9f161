"""Databases made by an earlier release, for migration tests on every backend.

The current code cannot write an older schema (its statements name columns added since), so
an old database is built the way a user's would be: data is written through the current
store into a current database, then copied, column by column, into a database migrated only
up to the old version (the columns it lacks are dropped, foreign keys are not checked while
copying). Then the test opens the old database with the current code, which migrates it, and
compares every row before and after.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from boternity import Store, open_store
from boternity.backends.migrations import Migration, load_migrations
from tests.conftest import postgres_url_or_skip

PACKAGES = {
    "sqlite": "boternity.backends.sqlite.migrations",
    "postgres": "boternity.backends.postgres.migrations",
}
LOADERS = {
    "sqlite": "boternity.backends.sqlite.store.load_migrations",
    "postgres": "boternity.backends.postgres.store.load_migrations",
}


def before(backend: str, name: str) -> list[Migration]:
    """The migrations shipped before the one called ``name``."""
    shipped = load_migrations(PACKAGES[backend])
    index = next(i for i, m in enumerate(shipped) if m.name == name)
    return shipped[:index]


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
    before_migration: str,
    fill: Callable[[Store], Awaitable[Any]],
) -> AsyncIterator[tuple[str, Any]]:
    """(url, what ``fill`` returned) of a database at the schema just before the migration
    ``before_migration``, holding what ``fill`` wrote through a current store."""
    with (
        blank_database(backend, tmp_path, "current") as current,
        blank_database(backend, tmp_path, "old") as old,
    ):
        async with open_store(current) as store:
            filled = await fill(store)
        older = before(backend, before_migration)
        with monkeypatch.context() as patch:
            patch.setattr(LOADERS[backend], lambda _pkg: older)
            async with open_store(old) as store:
                assert store.schema_version == len(older)
        if backend == "sqlite":
            _copy_sqlite(current, old)
        else:
            await _copy_postgres(current, old)
        yield old, filled


def _copy_sqlite(source: str, dest: str) -> None:
    with sqlite3.connect(dest) as conn:
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("ATTACH DATABASE ? AS src", (source,))
        tables = [  # (schema, name, type, …): ordinary tables, not the index's shadow tables
            r[1]
            for r in conn.execute("PRAGMA main.table_list")
            if r[2] == "table" and r[1] != "schema_migrations" and not r[1].startswith("sqlite_")
        ]
        for table in tables:
            columns = ", ".join(
                f'"{r[1]}"' for r in conn.execute(f'PRAGMA main.table_info("{table}")')
            )
            # Triggers keep the old schema's derived tables (the full-text index) in step.
            conn.execute(
                f'INSERT INTO main."{table}" ({columns}) SELECT {columns} FROM src."{table}"'
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


def _sqlite_rows(path: str, skip: set[str]) -> dict[str, list[str]]:
    with sqlite3.connect(path) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
                " AND name <> 'schema_migrations' ORDER BY name"
            )
        ]
        dump: dict[str, list[str]] = {}
        for table in tables:
            cursor = conn.execute(f'SELECT * FROM "{table}"')
            names = [d[0] for d in cursor.description]
            dump[table] = sorted(
                repr({k: v for k, v in zip(names, row, strict=True) if k not in skip})
                for row in cursor.fetchall()
            )
    return dump


async def _postgres_rows(url: str, skip: set[str]) -> dict[str, list[str]]:
    conn = await asyncpg.connect(url)
    try:
        dump: dict[str, list[str]] = {}
        for table in await _pg_tables(conn):
            rows = await conn.fetch(f'SELECT * FROM "{table}"')
            dump[table] = sorted(
                repr({k: v for k, v in dict(r).items() if k not in skip}) for r in rows
            )
        return dump
    finally:
        await conn.close()


async def table_rows(backend: str, url: str, *, skip: set[str]) -> dict[str, list[str]]:
    """Every row of every table (the full-text index's too on SQLite), as sorted text, without
    the columns ``skip`` names: what a migration must keep."""
    return _sqlite_rows(url, skip) if backend == "sqlite" else await _postgres_rows(url, skip)


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
