"""Opening a PostgreSQL store: URL schemes, options, connection settings."""

from __future__ import annotations

import asyncio

import pytest

from boternity import open_store
from boternity.backends.postgres.store import MIGRATIONS_PACKAGE, PostgresStore
from boternity.errors import RepositoryError, ValidationError
from boternity.ids import new_id
from boternity.models import Bot, ChatMessage, ChatSession, MessageRole
from boternity.storage.migrations import load_migrations

pytestmark = pytest.mark.postgres


async def test_postgres_scheme_and_store_attributes(pg_url: str) -> None:
    short = "postgres://" + pg_url.split("://", 1)[1]
    async with open_store(short) as store:
        assert isinstance(store, PostgresStore)
        assert (store.backend, store.schema_version) == (
            "postgresql",
            len(load_migrations(MIGRATIONS_PACKAGE)),
        )


@pytest.mark.parametrize(
    ("option", "value"),
    [("pool_size", 0), ("pool_size", True), ("durability", "fast"), ("read_url", 5)],
)
async def test_bad_options_are_refused_before_connecting(option: str, value: object) -> None:
    with pytest.raises(ValidationError, match=option):
        async with open_store("postgresql://nobody@127.0.0.1:1/none", **{option: value}):  # type: ignore[arg-type]
            pass


@pytest.mark.parametrize(("durability", "expected"), [("full", "on"), ("normal", None)])
async def test_connection_settings(pg_url: str, durability: str, expected: str | None) -> None:
    async with open_store(pg_url, durability=durability) as store:  # type: ignore[arg-type]
        assert isinstance(store, PostgresStore)
        async with store.db.primary.acquire() as conn:
            assert await conn.fetchval("SHOW application_name") == "boternity-primary"
            server_default = await conn.fetchval(
                "SELECT boot_val FROM pg_settings WHERE name = 'synchronous_commit'"
            )
            shown = await conn.fetchval("SHOW synchronous_commit")
            assert shown == (expected or server_default)


async def test_a_closed_store_raises_a_library_error(pg_url: str) -> None:
    async with open_store(pg_url) as store:
        pass
    with pytest.raises(RepositoryError):
        await store.bots.get_bot(new_id())
    with pytest.raises(RepositoryError):
        await store.chat.save_message(
            ChatMessage(session_id=new_id(), role=MessageRole.USER, content="late")
        )


async def test_more_callers_than_connections_wait_their_turn(pg_url: str) -> None:
    async with open_store(pg_url, pool_size=2) as store:
        bot = await store.bots.create_bot(Bot(name="Queue up"))
        session = await store.chat.create_session(ChatSession(bot_id=bot.id, model="m"))
        writes = [
            store.chat.save_message(
                ChatMessage(session_id=session.id, role=MessageRole.USER, content=str(i))
            )
            for i in range(30)
        ]
        reads = [store.chat.get_messages(session.id) for _ in range(10)]
        saved, _ = await asyncio.gather(asyncio.gather(*writes), asyncio.gather(*reads))
        assert sorted(m.seq or 0 for m in saved) == list(range(1, 31))
        assert isinstance(store, PostgresStore)
        async with store.db.primary.acquire() as conn:
            opened = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name = 'boternity-primary'"
            )
        assert opened <= 2
