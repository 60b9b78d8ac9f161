"""One exception tree: every library error derives from BoternityError, and an error made
from a driver failure chains it."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import pytest

from boternity import Store
from boternity.errors import (
    BoternityError,
    ConflictError,
    NotFoundError,
    RepositoryError,
    SchemaError,
    StoreBusyError,
    ValidationError,
)
from tests.conformance import factories as f


@pytest.mark.parametrize(
    "cls",
    [ValidationError, RepositoryError, NotFoundError, ConflictError, SchemaError, StoreBusyError],
)
def test_every_library_error_is_a_boternity_error_in_the_public_module(cls: type) -> None:
    assert issubclass(cls, BoternityError)
    assert cls.__module__ == "boternity.errors"


def test_validation_error_is_a_value_error_and_repository_errors_are_not() -> None:
    assert issubclass(ValidationError, ValueError)
    assert not issubclass(RepositoryError, ValueError)
    assert issubclass(NotFoundError, RepositoryError)
    assert issubclass(ConflictError, RepositoryError)


DuplicateWrite = Callable[[Store], Awaitable[object]]


async def _duplicate_session(store: Store) -> object:
    s = await f.new_session(store)
    return await store.chat.create_session(f.session(s.bot_id, id=s.id))


async def _duplicate_message(store: Store) -> object:
    s = await f.new_session(store)
    m = await store.chat.save_message(f.message(s.id))
    return await store.chat.save_message(f.message(s.id, id=m.id))


async def _duplicate_pending(store: Store) -> object:
    s = await f.new_session(store)
    job = await store.memory.save_pending_extraction(f.pending(s.bot_id, s.id))
    return await store.memory.save_pending_extraction(f.pending(s.bot_id, s.id, id=job.id))


async def _duplicate_summary(store: Store) -> object:
    s = await f.new_session(store)
    await f.add_messages(store, s.id, 2)
    summ = await store.memory.save_context_summary(f.summary(s.id, 1, 2))
    return await store.memory.save_context_summary(f.summary(s.id, 1, 1, id=summ.id))


@pytest.mark.parametrize(
    "write",
    [_duplicate_session, _duplicate_message, _duplicate_pending, _duplicate_summary],
    ids=["session", "message", "pending_extraction", "context_summary"],
)
async def test_duplicate_id_is_a_conflict_that_chains_the_driver_error(
    store: Store, write: DuplicateWrite
) -> None:
    with pytest.raises(ConflictError) as info:
        await write(store)
    cause = info.value.__cause__
    assert cause is not None
    assert not isinstance(cause, BoternityError)  # the driver's own error, kept for debugging


async def test_duplicate_bot_and_memory_ids_are_conflicts(store: Store) -> None:
    bot = await f.new_bot(store)
    with pytest.raises(ConflictError):
        await store.bots.create_bot(f.bot(id=bot.id))
    mem = await store.memory.save_memory(f.memory(bot.id))
    with pytest.raises(ConflictError):
        await store.memory.save_memory(f.memory(bot.id, id=mem.id))


@pytest.mark.parametrize("bad_id", ["not-a-uuid", 42])
async def test_malformed_ids_are_validation_errors(store: Store, bad_id: object) -> None:
    with pytest.raises(ValidationError):
        await store.bots.get_bot(bad_id)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        await store.chat.get_messages(bad_id)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        await store.memory.delete_memory(bad_id)  # type: ignore[arg-type]


async def test_ids_given_as_text_are_accepted(store: Store) -> None:
    s = await f.new_session(store)
    got = await store.chat.get_session(str(s.id))  # type: ignore[arg-type]
    assert got == s


@pytest.mark.parametrize(
    "call",
    [
        lambda st: st.bots.create_bot("not a bot"),
        lambda st: st.chat.create_session("not a session"),
        lambda st: st.chat.save_message({"content": "x"}),
        lambda st: st.memory.save_memory(None),
    ],
    ids=["create_bot", "create_session", "save_message", "save_memory"],
)
async def test_wrong_argument_types_are_validation_errors(
    store: Store, call: Callable[[Store], Awaitable[object]]
) -> None:
    with pytest.raises(ValidationError):
        await call(store)


async def test_errors_leave_the_store_usable(store: Store) -> None:
    s = await f.new_session(store)
    for _ in range(3):
        with pytest.raises(NotFoundError):
            await store.chat.save_message(f.message(uuid.uuid4()))
    saved = await store.chat.save_message(f.message(s.id))
    assert saved.seq == 1


async def test_a_closed_store_refuses_work_with_a_library_error(db_url: str) -> None:
    from boternity import open_store
    from boternity.errors import RepositoryError
    from boternity.models import Bot

    async with open_store(db_url) as store:
        pass
    with pytest.raises(RepositoryError, match="closed"):
        await store.bots.list_bots()
    with pytest.raises(RepositoryError, match="closed"):
        await store.bots.create_bot(Bot(name="late"))
