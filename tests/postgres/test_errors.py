"""Driver errors become library errors, classified by SQLSTATE and chained."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from boternity import Store
from boternity.backends.postgres.errors import translate
from boternity.errors import (
    ConflictError,
    NotFoundError,
    RepositoryError,
    StoreBusyError,
    ValidationError,
)
from boternity.ids import new_id
from boternity.models import Bot, ChatMessage, ChatSession, MessageRole

pytestmark = pytest.mark.postgres


async def test_duplicate_slug_is_a_conflict_chained_to_the_driver(pg_store: Store) -> None:
    await pg_store.bots.create_bot(Bot(name="Echo"))
    with pytest.raises(ConflictError, match="a bot with slug 'echo' already exists") as caught:
        await pg_store.bots.create_bot(Bot(name="Echo"))
    assert isinstance(caught.value.__cause__, asyncpg.UniqueViolationError)


async def test_duplicate_id_and_slug_clash_on_update_are_named(pg_store: Store) -> None:
    first = await pg_store.bots.create_bot(Bot(name="One"))
    second = await pg_store.bots.create_bot(Bot(name="Two"))
    with pytest.raises(ConflictError, match=f"a bot with id {first.id} already exists"):
        await pg_store.bots.create_bot(Bot(name="Other", id=first.id))
    with pytest.raises(ConflictError, match="another bot already has slug 'one'"):
        await pg_store.bots.update_bot(Bot(name="Two", slug="one", id=second.id))


async def test_missing_parents_are_not_found(pg_store: Store) -> None:
    ghost = new_id()
    with pytest.raises(NotFoundError, match=f"bot {ghost} not found"):
        await pg_store.chat.create_session(ChatSession(bot_id=ghost, model="m"))
    with pytest.raises(NotFoundError, match=f"chat session {ghost} not found"):
        await pg_store.chat.save_message(
            ChatMessage(session_id=ghost, role=MessageRole.USER, content="x")
        )
    with pytest.raises(NotFoundError, match=f"bot {ghost} not found"):
        await pg_store.bots.save_soul(ghost, "soul")
    with pytest.raises(NotFoundError):
        await pg_store.bots.delete_bot(ghost)
    assert await pg_store.chat.count_sessions() == 0
    assert await pg_store.chat.count_messages() == 0


async def test_out_of_range_total_is_a_validation_error(pg_store: Store) -> None:
    bot = await pg_store.bots.create_bot(Bot(name="Big"))
    session = await pg_store.chat.create_session(ChatSession(bot_id=bot.id, model="m"))
    huge = ChatMessage(session_id=session.id, role=MessageRole.USER, content="x",
                       input_tokens=2**63 - 1)  # fmt: skip
    await pg_store.chat.save_message(huge)
    with pytest.raises(ValidationError) as caught:
        await pg_store.chat.save_message(
            ChatMessage(session_id=session.id, role=MessageRole.USER, content="y", input_tokens=1)
        )
    assert isinstance(caught.value.__cause__, asyncpg.NumericValueOutOfRangeError)
    assert await pg_store.chat.get_message_count(session.id) == 1  # nothing half-written


async def test_a_connection_lost_mid_write_is_a_repository_error(
    pg_store: Store, pg_url: str
) -> None:
    bot = await pg_store.bots.create_bot(Bot(name="Cut"))
    session = await pg_store.chat.create_session(ChatSession(bot_id=bot.id, model="m"))
    blocker = await asyncpg.connect(pg_url)
    try:
        # Hold the session row so the write is in flight (waiting) when its backend dies.
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("SELECT 1 FROM chat_sessions WHERE id = $1 FOR UPDATE", session.id)
        write = asyncio.create_task(
            pg_store.chat.save_message(
                ChatMessage(session_id=session.id, role=MessageRole.USER, content="lost")
            )
        )
        for _ in range(500):  # until the write is seen waiting for the lock
            if await blocker.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND application_name = 'boternity-primary'"
            ):
                break
            await asyncio.sleep(0.01)
        await blocker.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND application_name = 'boternity-primary'"
        )
        with pytest.raises(RepositoryError) as caught:
            await write
        assert isinstance(caught.value.__cause__, asyncpg.PostgresError | asyncpg.InterfaceError)
        await tx.rollback()
    finally:
        await blocker.close()
    # The pool replaces the dead connection; nothing was half-written.
    assert await pg_store.chat.get_message_count(session.id) == 0
    assert await pg_store.bots.get_bot(bot.id) is not None


def test_translate_classifies_by_sqlstate() -> None:
    cases = [
        (asyncpg.UniqueViolationError("dup"), ConflictError),
        (asyncpg.ForeignKeyViolationError("fk"), NotFoundError),
        (asyncpg.CheckViolationError("check"), ValidationError),
        (asyncpg.NotNullViolationError("null"), ValidationError),
        (asyncpg.InvalidTextRepresentationError("22P02"), ValidationError),
        (asyncpg.DeadlockDetectedError("40P01"), StoreBusyError),
        (asyncpg.SerializationError("40001"), StoreBusyError),
        (asyncpg.ConnectionDoesNotExistError("gone"), RepositoryError),
        (ConnectionRefusedError("refused"), RepositoryError),
        (asyncpg.UndefinedTableError("42P01"), RepositoryError),
    ]
    for exc, kind in cases:
        error = translate(exc)
        assert type(error) is kind, (exc, error)
        assert error.__cause__ is exc


async def test_cancelled_save_message_still_commits(pg_store: Store) -> None:
    bot = await pg_store.bots.create_bot(Bot(name="Cancel"))
    session = await pg_store.chat.create_session(ChatSession(bot_id=bot.id, model="m"))
    task = asyncio.create_task(
        pg_store.chat.save_message(
            ChatMessage(session_id=session.id, role=MessageRole.USER, content="keep me")
        )
    )
    await asyncio.sleep(0)  # let it start
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The write was let finish: a cancelled caller never leaves it in doubt.
    assert [m.content for m in await pg_store.chat.get_messages(session.id)] == ["keep me"]
