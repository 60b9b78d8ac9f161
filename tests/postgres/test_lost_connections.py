"""Connections the server drops (pg_terminate_backend, a restart) and a pool that stays busy."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from boternity import open_store
from boternity.errors import RepositoryError, StoreBusyError
from boternity.models import ChatMessage, MessageRole
from tests.conformance.factories import new_bot, new_session

pytestmark = pytest.mark.postgres

_KILL_POOL = (
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
    " WHERE application_name = 'boternity-primary' AND datname = current_database()"
    " AND pid <> pg_backend_pid()"
)


async def test_killed_pool_connections_under_load_give_a_clear_error(pg_url: str) -> None:
    """Every failure is a RepositoryError saying the connection was lost (never the driver's
    InternalClientError "cannot switch to state"), and the next call works."""
    async with open_store(pg_url, pool_size=4) as store:
        bot = await new_bot(store)
        session = await new_session(store, bot.id)
        admin = await asyncpg.connect(pg_url)
        errors: list[BaseException] = []
        done = 0
        stop = asyncio.Event()

        async def load(i: int) -> None:
            nonlocal done
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    if n % 2:
                        await store.chat.save_message(
                            ChatMessage(
                                session_id=session.id, role=MessageRole.USER, content=f"{i}.{n}"
                            )
                        )
                    else:
                        await store.chat.get_recent_messages(session.id, 5)
                    done += 1
                except RepositoryError as exc:
                    errors.append(exc)

        tasks = [asyncio.create_task(load(i)) for i in range(12)]
        try:
            for _ in range(25):
                await asyncio.sleep(0.02)
                await admin.fetchval(_KILL_POOL)
        finally:
            stop.set()
            await asyncio.gather(*tasks)
            await admin.close()
        assert done > 0
        assert errors, "no connection was killed mid-use: the test proves nothing"
        for exc in errors:
            assert type(exc) is RepositoryError, repr(exc)
            assert "connection to the database was lost" in str(exc), str(exc)
            assert "InternalClientError" not in str(exc) and "cannot switch" not in str(exc)
        # The next call of each kind works (the broken connections were dropped).
        for _ in range(8):
            await store.chat.get_recent_messages(session.id, 5)
        await store.chat.save_message(
            ChatMessage(session_id=session.id, role=MessageRole.USER, content="after")
        )


async def test_a_pool_that_stays_busy_is_a_store_busy_error(pg_url: str) -> None:
    async with open_store(pg_url, pool_size=1, busy_wait=0.3) as store:
        bot = await new_bot(store)
        db = store.db  # type: ignore[attr-defined]
        async with db.primary.acquire():  # the only connection, held by someone else
            started = time.monotonic()
            with pytest.raises(StoreBusyError, match="no PostgreSQL connection became free"):
                await store.bots.get_bot(bot.id)
            assert 0.25 < time.monotonic() - started < 3
        assert await store.bots.get_bot(bot.id) is not None  # free again: works
