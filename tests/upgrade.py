"""Upgrading a database made by an earlier release, on every backend: what the migration tests
share. A test makes the old database by shipping only the migrations before the one it tests
(``old_schema``), fills it through the store of that release, upgrades it by opening it again,
and compares every row (``table_rows``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from boternity import Store
from boternity.backends.migrations import Migration, load_migrations
from boternity.models import Bot, ChatMessage, ChatSession, MessageRole
from tests.conformance import factories as f
from tests.conftest import BACKENDS, postgres_url_or_skip

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


@pytest.fixture(params=BACKENDS)
def blank(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(backend, url) of a database with no schema at all."""
    backend: str = request.param
    if backend == "sqlite":
        yield backend, str(tmp_path / "old.db")
        return
    from tests.pg import fresh_postgres_database

    with fresh_postgres_database(postgres_url_or_skip(), migrated=False) as url:
        yield backend, url


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
            dump[table] = _reprs((dict(zip(names, row, strict=True)) for row in cursor), skip)
    return dump


async def _postgres_rows(url: str, skip: set[str]) -> dict[str, list[str]]:
    conn = await asyncpg.connect(url)
    try:
        tables = [
            r[0]
            for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename <> 'schema_migrations' ORDER BY tablename"
            )
        ]
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
    """Every table and row of ``before`` is still there, unchanged but for the columns
    ``added`` since (tables added since may exist too)."""
    after = await table_rows(backend, url, skip=added)
    assert set(after) >= set(before)
    for table in before:
        assert after[table] == before[table], table
