"""Keyed sessions (an integration's own session id), pop_message and save_messages."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from boternity import Store
from boternity.errors import ConflictError, NotFoundError, ValidationError
from boternity.models import ChatMessage, MessageRole
from tests.conformance import factories as f

# --- keyed sessions -----------------------------------------------------------------------


async def test_key_is_created_on_first_use_then_found(store: Store) -> None:
    bot = await f.new_bot(store)
    assert await store.chat.get_session_by_key(bot.id, "thread-1") is None
    first = await store.chat.get_or_create_session_by_key(f.session(bot.id), "thread-1")
    again = await store.chat.get_or_create_session_by_key(f.session(bot.id), "thread-1")
    assert again == first
    assert await store.chat.get_session_by_key(bot.id, "thread-1") == first
    assert await store.chat.get_session(first.id) == first
    stored_bot = await store.bots.get_bot(bot.id)
    assert stored_bot is not None and stored_bot.conversation_count == 1


async def test_a_key_is_unique_per_bot_not_across_bots(store: Store) -> None:
    a, b = await f.new_bot(store), await f.new_bot(store)
    sa = await store.chat.get_or_create_session_by_key(f.session(a.id), "same")
    sb = await store.chat.get_or_create_session_by_key(f.session(b.id), "same")
    other = await store.chat.get_or_create_session_by_key(f.session(a.id), "Same")
    assert len({sa.id, sb.id, other.id}) == 3
    assert (await store.chat.get_session_by_key(b.id, "same")) == sb


async def test_keys_are_any_text(store: Store) -> None:
    bot = await f.new_bot(store)
    keys = ["O'Reilly; DROP TABLE chat_sessions;--", "ключ 🔑", " ", "x" * 500, "%_"]
    made = [await store.chat.get_or_create_session_by_key(f.session(bot.id), k) for k in keys]
    assert len({s.id for s in made}) == len(keys)
    for key, session in zip(keys, made, strict=True):
        assert await store.chat.get_session_by_key(bot.id, key) == session
    assert await store.chat.get_session_by_key(bot.id, "%") is None


@pytest.mark.parametrize("key", ["", "x" * 501, "nul\x00", 42])
async def test_bad_keys_are_refused(store: Store, key: object) -> None:
    bot = await f.new_bot(store)
    with pytest.raises(ValidationError):
        await store.chat.get_or_create_session_by_key(f.session(bot.id), key)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        await store.chat.get_session_by_key(bot.id, key)  # type: ignore[arg-type]
    assert await store.chat.count_sessions() == 0


async def test_keyed_session_for_a_missing_bot_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        await store.chat.get_or_create_session_by_key(f.session(uuid.uuid4()), "k")
    assert await store.chat.count_sessions() == 0


async def test_keyed_session_with_a_taken_id_is_a_conflict(store: Store) -> None:
    bot = await f.new_bot(store)
    plain = await f.new_session(store, bot.id)
    with pytest.raises(ConflictError):
        await store.chat.get_or_create_session_by_key(f.session(bot.id, id=plain.id), "k")
    assert await store.chat.get_session_by_key(bot.id, "k") is None


async def test_concurrent_first_uses_of_a_key_share_one_session(store: Store) -> None:
    bot = await f.new_bot(store)
    made = await asyncio.gather(
        *(store.chat.get_or_create_session_by_key(f.session(bot.id), "race") for _ in range(20))
    )
    assert len({s.id for s in made}) == 1
    assert await store.chat.count_sessions() == 1
    stored_bot = await store.bots.get_bot(bot.id)
    assert stored_bot is not None and stored_bot.conversation_count == 1


async def test_deleting_a_keyed_session_frees_its_key(store: Store) -> None:
    bot = await f.new_bot(store)
    first = await store.chat.get_or_create_session_by_key(f.session(bot.id), "k")
    await store.chat.delete_session(first.id)
    assert await store.chat.get_session_by_key(bot.id, "k") is None
    second = await store.chat.get_or_create_session_by_key(f.session(bot.id), "k")
    assert second.id != first.id


async def test_keyed_sessions_are_listed_like_any_other(store: Store) -> None:
    bot = await f.new_bot(store)
    plain = await f.new_session(store, bot.id, started_at=f.at(0))
    keyed = await store.chat.get_or_create_session_by_key(
        f.session(bot.id, started_at=f.at(1)), "k"
    )
    assert [s.id for s in await store.chat.list_sessions(bot.id)] == [keyed.id, plain.id]


# --- pop_message --------------------------------------------------------------------------


async def test_pop_on_an_empty_session_is_none(store: Store) -> None:
    bot = await f.new_bot(store)
    s = await f.new_session(store, bot.id)
    assert await store.chat.pop_message(s.id) is None
    assert await store.chat.pop_message(s.id) is None
    stored = await store.chat.get_session(s.id)
    assert stored is not None and stored.message_count == 0


async def test_pop_on_a_missing_session_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        await store.chat.pop_message(uuid.uuid4())


async def test_pop_returns_the_latest_and_the_next_message_reuses_its_seq(store: Store) -> None:
    bot = await f.new_bot(store)
    s = await f.new_session(store, bot.id)
    saved = [
        await store.chat.save_message(
            f.message(s.id, f"m{i}", input_tokens=1, output_tokens=2, metadata={"i": i})
        )
        for i in range(3)
    ]
    popped = await store.chat.pop_message(s.id)
    assert popped == saved[2]
    assert await store.chat.get_message(saved[2].id) is None
    assert await store.chat.get_message_count(s.id) == 2
    again = await store.chat.save_message(f.message(s.id, "replacement"))
    assert again.seq == 3
    assert [m.seq for m in await store.chat.get_messages(s.id)] == [1, 2, 3]
    assert [m.content for m in await store.chat.get_recent_messages(s.id, 2)] == [
        "m1",
        "replacement",
    ]
    stored = await store.chat.get_session(s.id)
    assert stored is not None
    # Tokens already spent stay counted (as with clear_messages).
    assert (stored.total_input_tokens, stored.total_output_tokens) == (3, 6)


async def test_pop_until_empty(store: Store) -> None:
    bot = await f.new_bot(store)
    s = await f.new_session(store, bot.id)
    for i in range(3):
        await store.chat.save_message(f.message(s.id, f"m{i}"))
    contents = []
    while (m := await store.chat.pop_message(s.id)) is not None:
        contents.append(m.content)
    assert contents == ["m2", "m1", "m0"]
    assert await store.chat.get_messages(s.id) == []
    assert (await store.chat.save_message(f.message(s.id))).seq == 1


async def test_pop_only_touches_its_session(store: Store) -> None:
    bot = await f.new_bot(store)
    a, b = await f.new_session(store, bot.id), await f.new_session(store, bot.id)
    await store.chat.save_message(f.message(a.id, "a"))
    await store.chat.save_message(f.message(b.id, "b1"))
    await store.chat.save_message(f.message(b.id, "b2"))
    popped = await store.chat.pop_message(b.id)
    assert popped is not None and popped.content == "b2"
    assert [m.content for m in await store.chat.get_messages(a.id)] == ["a"]
    assert [m.content for m in await store.chat.get_messages(b.id)] == ["b1"]


async def test_pop_drops_summaries_that_cover_the_popped_message(store: Store) -> None:
    bot = await f.new_bot(store)
    s = await f.new_session(store, bot.id)
    for i in range(4):
        await store.chat.save_message(f.message(s.id, f"m{i}"))
    kept = await store.memory.save_context_summary(f.summary(s.id, 1, 3))
    await store.memory.save_context_summary(f.summary(s.id, 1, 4))
    await store.chat.pop_message(s.id)
    assert await store.memory.list_summaries(s.id) == [kept]


async def test_pop_keeps_memories_of_the_popped_message_detached(store: Store) -> None:
    bot = await f.new_bot(store)
    s = await f.new_session(store, bot.id)
    m = await store.chat.save_message(f.message(s.id, "I live in Porto"))
    memory = await store.memory.save_memory(
        f.memory(bot.id, session_id=s.id, source_message_id=m.id)
    )
    await store.chat.pop_message(s.id)
    kept = await store.memory.get_memory(memory.id)
    assert kept is not None and kept.source_message_id is None


async def test_concurrent_pops_and_appends_keep_seq_gap_free(store: Store) -> None:
    bot = await f.new_bot(store)
    s = await f.new_session(store, bot.id)
    for i in range(20):
        await store.chat.save_message(f.message(s.id, f"m{i}"))

    async def pop() -> ChatMessage | None:
        return await store.chat.pop_message(s.id)

    async def append(i: int) -> ChatMessage:
        return await store.chat.save_message(f.message(s.id, f"new{i}"))

    results = await asyncio.gather(*(pop() if i % 2 else append(i) for i in range(30)))
    popped = [r for i, r in enumerate(results) if i % 2]
    assert all(p is not None for p in popped)
    ids = [p.id for p in popped if p is not None]
    assert len(set(ids)) == len(ids)
    remaining = await store.chat.get_messages(s.id)
    assert [m.seq for m in remaining] == list(range(1, len(remaining) + 1))
    assert len(remaining) == 20
    assert await store.chat.get_message_count(s.id) == 20
    assert not {m.id for m in remaining} & set(ids)


# --- save_messages ------------------------------------------------------------------------


async def test_save_messages_stores_all_in_order(store: Store) -> None:
    bot = await f.new_bot(store)
    s = await f.new_session(store, bot.id)
    await store.chat.save_message(f.message(s.id, "first"))
    batch = [
        f.message(s.id, f"b{i}", role=MessageRole.ASSISTANT, input_tokens=i, output_tokens=1)
        for i in range(5)
    ]
    saved = await store.chat.save_messages(batch)
    assert [m.seq for m in saved] == [2, 3, 4, 5, 6]
    assert await store.chat.get_messages(s.id, offset=1) == saved
    stored = await store.chat.get_session(s.id)
    assert stored is not None
    assert (stored.message_count, stored.total_input_tokens, stored.total_output_tokens) == (
        6,
        10,
        5,
    )
    assert await store.chat.save_messages([]) == []


async def test_save_messages_is_all_or_nothing(store: Store) -> None:
    bot = await f.new_bot(store)
    s = await f.new_session(store, bot.id)
    batch = [f.message(s.id, "ok"), f.message(uuid.uuid4(), "no such session")]
    with pytest.raises(NotFoundError):
        await store.chat.save_messages(batch)
    assert await store.chat.get_messages(s.id) == []
    stored = await store.chat.get_session(s.id)
    assert stored is not None and stored.message_count == 0
    dup = f.message(s.id, "dup")
    with pytest.raises(ConflictError):
        await store.chat.save_messages([dup, dup])
    assert await store.chat.get_message_count(s.id) == 0
    with pytest.raises(ValidationError):
        await store.chat.save_messages([f.message(s.id), "not a message"])  # type: ignore[list-item]
