"""Schema migrations on PostgreSQL: fresh, reopen, refusals, rollback, concurrent openers."""

from __future__ import annotations

import asyncio
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import asyncpg
import pytest

from boternity import Store, open_store
from boternity.backends.postgres.store import MIGRATIONS_PACKAGE
from boternity.errors import RepositoryError, SchemaError
from boternity.models import (
    Bot,
    ChatMessage,
    ChatSession,
    MemoryCategory,
    MemoryEntry,
    MessageRole,
)
from boternity.storage.migrations import Migration, load_migrations
from tests.postgres import workers
from tests.upgrade import old_database

pytestmark = pytest.mark.postgres

LATEST = len(load_migrations(MIGRATIONS_PACKAGE))

TABLES = {
    "bots",
    "soul_versions",
    "chat_sessions",
    "chat_messages",
    "session_memories",
    "pending_memory_extractions",
    "context_summaries",
    "memory_history",
    "memory_embeddings",
    "memory_changes",
    "schema_migrations",
}
SCHEMA_2_TABLES = TABLES - {"schema_migrations", "memory_embeddings", "memory_changes"}


async def _ledger(url: str) -> list[tuple[int, str, str]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
        return [(r[0], r[1], r[2]) for r in rows]
    finally:
        await conn.close()


async def _sql(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r[0] for r in rows}
    finally:
        await conn.close()


async def test_fresh_database_is_migrated_and_recorded(blank_pg_url: str) -> None:
    async with open_store(blank_pg_url) as store:
        assert store.backend == "postgresql"
        assert store.schema_version == LATEST
    assert await _tables(blank_pg_url) == TABLES
    shipped = load_migrations(MIGRATIONS_PACKAGE)
    assert await _ledger(blank_pg_url) == [(m.version, m.name, m.checksum) for m in shipped]


async def test_reopen_applies_nothing_twice(blank_pg_url: str) -> None:
    for _ in range(3):
        async with open_store(blank_pg_url) as store:
            assert store.schema_version == LATEST
    assert len(await _ledger(blank_pg_url)) == LATEST


async def test_newer_schema_is_refused(pg_url: str) -> None:
    await _sql(
        pg_url,
        f"INSERT INTO schema_migrations VALUES ({LATEST + 1}, 'future', 'x', now())",
    )
    with pytest.raises(
        SchemaError, match=f"schema version {LATEST + 1}, newer than this boternity knows"
    ):
        async with open_store(pg_url):
            pass


async def test_altered_migration_is_refused(pg_url: str) -> None:
    await _sql(pg_url, "UPDATE schema_migrations SET checksum = 'tampered' WHERE version = 1")
    with pytest.raises(SchemaError, match="0001_initial was changed after it was applied"):
        async with open_store(pg_url):
            pass


async def test_failed_step_leaves_nothing_behind(
    blank_pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = load_migrations(MIGRATIONS_PACKAGE)
    broken = Migration(LATEST + 1, "broken", "CREATE TABLE half_done (id int);\nSELECT 1 / 0;")
    monkeypatch.setattr(
        "boternity.backends.postgres.store.load_migrations", lambda _pkg: [*shipped, broken]
    )
    with pytest.raises(SchemaError, match=f"migration {LATEST + 1:04d}_broken failed") as caught:
        async with open_store(blank_pg_url):
            pass
    assert isinstance(caught.value.__cause__, asyncpg.DivisionByZeroError)
    assert "half_done" not in await _tables(blank_pg_url)
    assert [v for v, _, _ in await _ledger(blank_pg_url)] == list(range(1, LATEST + 1))
    monkeypatch.undo()
    async with open_store(blank_pg_url) as store:  # and the shipped code still opens it
        assert store.schema_version == LATEST


@pytest.mark.slow
def test_concurrent_first_opens_from_several_processes(blank_pg_url: str) -> None:
    with ProcessPoolExecutor(max_workers=4, mp_context=get_context("spawn")) as pool:
        versions = list(pool.map(workers.open_and_report, [blank_pg_url] * 4))
    assert versions == [LATEST] * 4
    assert len(asyncio.run(_ledger(blank_pg_url))) == LATEST


async def test_unreachable_server_is_a_repository_error() -> None:
    with pytest.raises(RepositoryError, match="cannot open PostgreSQL database") as caught:
        async with open_store("postgresql://postgres:secret@127.0.0.1:1/nothing"):
            pass
    assert isinstance(caught.value.__cause__, OSError)
    assert "secret" not in str(caught.value)


async def test_missing_asyncpg_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "asyncpg", None)
    for name in list(sys.modules):
        if name.startswith("boternity.backends.postgres."):
            monkeypatch.delitem(sys.modules, name)
    with pytest.raises(RepositoryError, match=r"pip install 'boternity\[postgres\]'"):
        async with open_store("postgresql://postgres@127.0.0.1:5432/test"):
            pass


def test_sqlite_users_never_import_asyncpg() -> None:
    code = (
        "import asyncio, sys, tempfile\n"
        "from boternity import open_store\n"
        "async def main():\n"
        "    async with open_store(tempfile.mkdtemp() + '/b.db'):\n"
        "        pass\n"
        "asyncio.run(main())\n"
        "assert 'asyncpg' not in sys.modules, 'asyncpg was imported'\n"
    )
    import subprocess

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


async def _dump(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every boternity table as of schema 2 (fact_tsv left out: migration 0003
    recomputes it; session_key, content_tsv, memory_version and user_id left out: migrations
    0004 to 0007 add them)."""
    conn = await asyncpg.connect(url)
    try:
        out: dict[str, list[tuple[object, ...]]] = {}
        for table in sorted(SCHEMA_2_TABLES):
            cols = await conn.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_name = $1"
                " AND column_name NOT IN"
                " ('fact_tsv', 'session_key', 'content_tsv', 'memory_version', 'user_id')"
                " ORDER BY column_name",
                table,
            )
            names = ", ".join(c[0] for c in cols)
            rows = await conn.fetch(f"SELECT {names} FROM {table} ORDER BY id")
            out[table] = [tuple(r) for r in rows]
        return out
    finally:
        await conn.close()


async def _fill_schema_2(store: Store) -> tuple[Bot, list[MemoryEntry]]:
    bot = await store.bots.create_bot(Bot(name="Old"))
    await store.bots.save_soul(bot.id, "You are kind.")
    session = await store.chat.create_session(ChatSession(bot_id=bot.id, model="m"))
    await store.chat.save_message(
        ChatMessage(session_id=session.id, role=MessageRole.USER, content="Zoë is my sister")
    )
    newer = await store.memory.save_memory(
        MemoryEntry(
            bot_id=bot.id, fact="Likes black tea", category=MemoryCategory.FACT, importance=3
        )
    )
    facts = ["Her sister Zoë plays the cello", "Ate crème brûlée", "Likes green tea"]
    memories = [
        await store.memory.save_memory(
            MemoryEntry(
                bot_id=bot.id,
                fact=fact,
                category=MemoryCategory.FACT,
                importance=3,
                superseded_by=newer.id if fact.endswith("green tea") else None,
            )
        )
        for fact in facts
    ]
    return bot, memories


async def test_upgrade_from_schema_2_keeps_every_row_and_folds_accents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = old_database(
        "postgres",
        tmp_path,
        monkeypatch,
        before="search_folds_diacritics",
        fill=_fill_schema_2,
    )
    async with made as (blank_pg_url, (bot, memories)):
        await _upgrade_schema_2(blank_pg_url, bot, memories)


async def _upgrade_schema_2(blank_pg_url: str, bot: Bot, memories: list[MemoryEntry]) -> None:
    before = await _dump(blank_pg_url)

    async with open_store(blank_pg_url) as store:
        assert store.schema_version == LATEST >= 3
        assert [m.id for m in await store.memory.search_memories(bot.id, "zoe")] == [memories[0].id]
        assert [m.id for m in await store.memory.search_memories(bot.id, "creme brulee")] == [
            memories[1].id
        ]
        assert await store.memory.search_memories(bot.id, "green") == []  # still superseded
    assert await _dump(blank_pg_url) == before
    assert (
        sum(len(rows) for rows in before.values()) == 12
    )  # 1 bot, soul, session, message; 4 memories; 4 history
