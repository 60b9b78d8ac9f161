"""MemoryRepository: memories, superseding and context summaries, on every backend."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from boternity import Store
from boternity.errors import ConflictError, NotFoundError, ValidationError
from boternity.models import MemoryCategory
from tests.conformance import factories as f

# --- memories -----------------------------------------------------------------------------


async def test_save_memory_round_trips_every_field(store: Store) -> None:
    bot = await f.new_bot(store)
    s = await f.new_session(store, bot.id)
    (msg,) = await f.add_messages(store, s.id, 1)
    mem = f.memory(
        bot.id,
        "prefers 'single' and \"double\" quotes",
        category="preference",
        importance=5,
        session_id=s.id,
        source_message_id=msg.id,
        created_at=f.at(3),
    )
    assert await store.memory.save_memory(mem) == mem
    got = await store.memory.get_memory(mem.id)
    assert got == mem
    assert got is not None and got.category is MemoryCategory.PREFERENCE


async def test_manual_memory_needs_no_session(store: Store) -> None:
    bot = await f.new_bot(store)
    mem = await store.memory.save_memory(f.memory(bot.id, is_manual=True))
    got = await store.memory.get_memory(mem.id)
    assert got is not None and got.is_manual and got.session_id is None


async def test_get_missing_memory_returns_none(store: Store) -> None:
    assert await store.memory.get_memory(uuid.uuid4()) is None


async def test_save_memory_with_missing_parents_is_not_found(store: Store) -> None:
    bot = await f.new_bot(store)
    with pytest.raises(NotFoundError):
        await store.memory.save_memory(f.memory(uuid.uuid4()))
    with pytest.raises(NotFoundError):
        await store.memory.save_memory(f.memory(bot.id, session_id=uuid.uuid4()))
    with pytest.raises(NotFoundError):
        await store.memory.save_memory(f.memory(bot.id, source_message_id=uuid.uuid4()))
    with pytest.raises(NotFoundError):
        await store.memory.save_memory(f.memory(bot.id, superseded_by=uuid.uuid4()))
    assert await store.memory.get_memories(bot.id, include_superseded=True) == []


async def test_save_memory_with_another_bots_session_is_a_validation_error(store: Store) -> None:
    bot = await f.new_bot(store)
    foreign = await f.new_session(store)
    (msg,) = await f.add_messages(store, foreign.id, 1)
    with pytest.raises(ValidationError):
        await store.memory.save_memory(f.memory(bot.id, session_id=foreign.id))
    with pytest.raises(ValidationError):
        await store.memory.save_memory(f.memory(bot.id, source_message_id=msg.id))
    assert await store.memory.get_memories(bot.id) == []


async def test_save_memory_with_duplicate_id_is_a_conflict(store: Store) -> None:
    bot = await f.new_bot(store)
    mem = await store.memory.save_memory(f.memory(bot.id))
    with pytest.raises(ConflictError):
        await store.memory.save_memory(f.memory(bot.id, "other", id=mem.id))
    assert await store.memory.get_memory(mem.id) == mem


async def test_get_memories_orders_by_importance_then_newest_then_id(store: Store) -> None:
    bot = await f.new_bot(store)
    same = f.at(5)
    low_new = f.memory(bot.id, "low new", importance=1, created_at=f.at(9))
    high_old = f.memory(bot.id, "high old", importance=5, created_at=f.at(0))
    mid_tied = [f.memory(bot.id, f"tied {i}", importance=3, created_at=same) for i in range(3)]
    mid_new = f.memory(bot.id, "mid new", importance=3, created_at=f.at(6))
    for m in [low_new, *mid_tied, high_old, mid_new]:
        await store.memory.save_memory(m)
    other = await f.new_bot(store)
    await store.memory.save_memory(f.memory(other.id, importance=5))
    expected = [
        high_old.id,
        mid_new.id,
        *sorted((m.id for m in mid_tied), reverse=True),
        low_new.id,
    ]
    assert [m.id for m in await store.memory.get_memories(bot.id)] == expected
    assert [m.id for m in await store.memory.get_memories(bot.id, limit=3)] == expected[:3]


async def test_get_memories_hides_superseded_unless_asked(store: Store) -> None:
    bot = await f.new_bot(store)
    old = await store.memory.save_memory(f.memory(bot.id, "old", importance=5))
    new = await store.memory.supersede_memory(old.id, f.memory(bot.id, "new", importance=2))
    assert [m.id for m in await store.memory.get_memories(bot.id)] == [new.id]
    everything = await store.memory.get_memories(bot.id, include_superseded=True)
    assert [m.id for m in everything] == [old.id, new.id]


async def test_delete_memory(store: Store) -> None:
    bot = await f.new_bot(store)
    a = await store.memory.save_memory(f.memory(bot.id, "a"))
    b = await store.memory.save_memory(f.memory(bot.id, "b"))
    await store.memory.delete_memory(a.id)
    assert await store.memory.get_memory(a.id) is None
    assert await store.memory.get_memory(b.id) == b


async def test_delete_missing_memory_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        await store.memory.delete_memory(uuid.uuid4())


async def test_delete_superseding_memory_revives_nothing_dangling(store: Store) -> None:
    bot = await f.new_bot(store)
    old = await store.memory.save_memory(f.memory(bot.id, "old"))
    new = await store.memory.supersede_memory(old.id, f.memory(bot.id, "new"))
    await store.memory.delete_memory(new.id)
    got = await store.memory.get_memory(old.id)
    assert got is not None and got.superseded_by is None


async def test_delete_all_memories_returns_count_and_spares_other_bots(store: Store) -> None:
    bot = await f.new_bot(store)
    other = await f.new_bot(store)
    old = await store.memory.save_memory(f.memory(bot.id, "old"))
    await store.memory.supersede_memory(old.id, f.memory(bot.id, "new"))
    await store.memory.save_memory(f.memory(bot.id, "third"))
    kept = await store.memory.save_memory(f.memory(other.id))
    assert await store.memory.delete_all_memories(bot.id) == 3
    assert await store.memory.get_memories(bot.id, include_superseded=True) == []
    assert await store.memory.delete_all_memories(bot.id) == 0
    assert await store.memory.get_memories(other.id) == [kept]


async def test_get_memories_by_session_is_oldest_first_and_includes_superseded(
    store: Store,
) -> None:
    bot = await f.new_bot(store)
    s = await f.new_session(store, bot.id)
    same = f.at(4)
    tied = [f.memory(bot.id, f"t{i}", session_id=s.id, created_at=same) for i in range(3)]
    first = f.memory(bot.id, "first", session_id=s.id, created_at=f.at(0))
    for m in [*tied, first]:
        await store.memory.save_memory(m)
    newer = await store.memory.supersede_memory(
        first.id, f.memory(bot.id, "replacement", session_id=s.id, created_at=f.at(9))
    )
    await store.memory.save_memory(f.memory(bot.id, "manual"))
    got = await store.memory.get_memories_by_session(s.id)
    assert [m.id for m in got] == [first.id, *sorted(m.id for m in tied), newer.id]
    assert got[0].superseded_by == newer.id
    assert await store.memory.get_memories_by_session(uuid.uuid4()) == []


# --- superseding --------------------------------------------------------------------------


async def test_supersede_memory_is_non_destructive(store: Store) -> None:
    bot = await f.new_bot(store)
    old = await store.memory.save_memory(f.memory(bot.id, "lives in Paris"))
    new = f.memory(bot.id, "lives in Rome", category="correction")
    assert await store.memory.supersede_memory(old.id, new) == new
    assert await store.memory.get_memory(old.id) == dataclasses.replace(old, superseded_by=new.id)
    assert await store.memory.get_memory(new.id) == new


async def test_superseding_an_already_superseded_memory_is_a_conflict_and_inserts_nothing(
    store: Store,
) -> None:
    bot = await f.new_bot(store)
    old = await store.memory.save_memory(f.memory(bot.id, "v1"))
    v2 = await store.memory.supersede_memory(old.id, f.memory(bot.id, "v2"))
    late = f.memory(bot.id, "v2 from a stale worker")
    with pytest.raises(ConflictError):
        await store.memory.supersede_memory(old.id, late)
    assert await store.memory.get_memory(late.id) is None
    got = await store.memory.get_memory(old.id)
    assert got is not None and got.superseded_by == v2.id


async def test_superseding_a_missing_memory_is_not_found_and_inserts_nothing(
    store: Store,
) -> None:
    bot = await f.new_bot(store)
    new = f.memory(bot.id)
    with pytest.raises(NotFoundError):
        await store.memory.supersede_memory(uuid.uuid4(), new)
    assert await store.memory.get_memory(new.id) is None


async def test_superseding_across_bots_is_refused_and_inserts_nothing(store: Store) -> None:
    a = await f.new_bot(store)
    b = await f.new_bot(store)
    old = await store.memory.save_memory(f.memory(a.id))
    new = f.memory(b.id)
    with pytest.raises(ValidationError):
        await store.memory.supersede_memory(old.id, new)
    assert await store.memory.get_memory(new.id) is None
    assert await store.memory.get_memory(old.id) == old


async def test_supersede_chain_keeps_one_live_memory(store: Store) -> None:
    bot = await f.new_bot(store)
    v1 = await store.memory.save_memory(f.memory(bot.id, "v1"))
    v2 = await store.memory.supersede_memory(v1.id, f.memory(bot.id, "v2"))
    v3 = await store.memory.supersede_memory(v2.id, f.memory(bot.id, "v3"))
    assert [m.id for m in await store.memory.get_memories(bot.id)] == [v3.id]
    assert len(await store.memory.get_memories(bot.id, include_superseded=True)) == 3


# --- context summaries --------------------------------------------------------------------


async def test_save_context_summary_round_trips(store: Store) -> None:
    s = await f.new_session(store)
    await f.add_messages(store, s.id, 4)
    summ = f.summary(s.id, 1, 4, summary="they talked about tea", token_count=42)
    assert await store.memory.save_context_summary(summ) == summ
    assert await store.memory.list_summaries(s.id) == [summ]


async def test_save_context_summary_for_missing_session_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        await store.memory.save_context_summary(f.summary(uuid.uuid4(), 1, 1))


async def test_summary_range_beyond_message_count_is_a_validation_error(store: Store) -> None:
    s = await f.new_session(store)
    await f.add_messages(store, s.id, 3)
    with pytest.raises(ValidationError):
        await store.memory.save_context_summary(f.summary(s.id, 2, 4))
    assert await store.memory.list_summaries(s.id) == []
    await store.memory.save_context_summary(f.summary(s.id, 2, 3))


async def test_get_latest_summary_picks_the_highest_messages_end(store: Store) -> None:
    s = await f.new_session(store)
    await f.add_messages(store, s.id, 10)
    assert await store.memory.get_latest_summary(s.id) is None
    # the newest summary by time covers less: messages_end wins over created_at
    wide = await store.memory.save_context_summary(f.summary(s.id, 1, 8, created_at=f.at(0)))
    narrow = await store.memory.save_context_summary(f.summary(s.id, 1, 4, created_at=f.at(50)))
    assert await store.memory.get_latest_summary(s.id) == wide
    assert await store.memory.list_summaries(s.id) == [narrow, wide]


async def test_list_summaries_orders_by_end_then_created_then_id(store: Store) -> None:
    s = await f.new_session(store)
    await f.add_messages(store, s.id, 6)
    same = f.at(1)
    tied = [f.summary(s.id, 1, 3, created_at=same) for _ in range(3)]
    later = f.summary(s.id, 1, 3, created_at=f.at(2))
    last = f.summary(s.id, 4, 6, created_at=f.at(0))
    for x in [later, last, *tied]:
        await store.memory.save_context_summary(x)
    expected = [*sorted(t.id for t in tied), later.id, last.id]
    assert [x.id for x in await store.memory.list_summaries(s.id)] == expected
    assert await store.memory.get_latest_summary(s.id) == last
    assert await store.memory.list_summaries(uuid.uuid4()) == []
