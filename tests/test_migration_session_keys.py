"""Upgrading a database made before session keys: every row is kept, on every backend."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from boternity import Store, open_store
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


def _before_session_keys(package: str) -> list[Migration]:
    shipped = load_migrations(package)
    index = next(i for i, m in enumerate(shipped) if m.name == "session_keys")
    return shipped[:index]


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


async def _fill(store: Store) -> list[ChatSession]:
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
            # An old memory superseded by a newer one (written as an older release could).
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


#: Columns added after session keys (by later migrations), left out of the comparison.
LATER_COLUMNS = {"session_key", "memory_version"}


def _sqlite_rows(path: str) -> dict[str, list[Any]]:
    with sqlite3.connect(path) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
                " AND name <> 'schema_migrations' ORDER BY name"
            )
        ]
        dump: dict[str, list[Any]] = {}
        for table in tables:
            cursor = conn.execute(f'SELECT * FROM "{table}"')
            names = [d[0] for d in cursor.description]
            dump[table] = sorted(
                repr({k: v for k, v in zip(names, row, strict=True) if k not in LATER_COLUMNS})
                for row in cursor.fetchall()
            )
    return dump


async def _postgres_rows(url: str) -> dict[str, list[Any]]:
    conn = await asyncpg.connect(url)
    try:
        tables = [
            r[0]
            for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename <> 'schema_migrations' ORDER BY tablename"
            )
        ]
        dump: dict[str, list[Any]] = {}
        for table in tables:
            rows = await conn.fetch(f'SELECT * FROM "{table}"')
            dump[table] = sorted(
                repr({k: v for k, v in dict(r).items() if k not in LATER_COLUMNS}) for r in rows
            )
        return dump
    finally:
        await conn.close()


async def _rows(backend: str, url: str) -> dict[str, list[Any]]:
    return _sqlite_rows(url) if backend == "sqlite" else await _postgres_rows(url)


async def test_upgrade_keeps_every_row_and_old_sessions_work(
    blank: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    backend, url = blank
    old = _before_session_keys(PACKAGES[backend])
    monkeypatch.setattr(LOADERS[backend], lambda _pkg: old)
    async with open_store(url) as store:
        assert store.schema_version == len(old)
        sessions = await _fill(store)
    before = await _rows(backend, url)
    assert sum(len(rows) for rows in before.values()) > 30
    monkeypatch.undo()

    async with open_store(url) as store:
        assert store.schema_version == len(load_migrations(PACKAGES[backend]))
        after = await _rows(backend, url)
        assert after.keys() >= before.keys()  # later migrations add tables
        for table in before:
            assert after[table] == before[table], table
        # Old sessions have no key; new keyed sessions and pops work beside them.
        old_session = sessions[0]
        keyed = await store.chat.get_or_create_session_by_key(
            ChatSession(bot_id=old_session.bot_id, model="m"), "new-key"
        )
        assert keyed.id not in {s.id for s in sessions}
        popped = await store.chat.pop_message(old_session.id)
        assert popped is not None and popped.seq == 3
        assert (await store.chat.save_message(f.message(old_session.id))).seq == 3
