"""ChatRepository: sessions and messages, on every backend."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from boternity import Store
from boternity.errors import ConflictError, NotFoundError, ValidationError
from boternity.models import ChatMessage, MessageRole, SessionStatus
from tests.conformance import factories as f

# --- sessions -----------------------------------------------------------------------------


async def test_create_session_round_trips_and_counts_it_on_the_bot(store: Store) -> None:
    bot = await f.new_bot(store)
    s = f.session(bot.id, title="t", started_at=f.at(0))
    assert await store.chat.create_session(s) == s
    assert await store.chat.get_session(s.id) == s
    await f.new_session(store, bot.id)
    stored = await store.bots.get_bot(bot.id)
    assert stored is not None and stored.conversation_count == 2


async def test_create_session_for_missing_bot_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        await store.chat.create_session(f.session(uuid.uuid4()))
    assert await store.chat.count_sessions() == 0


async def test_create_session_with_duplicate_id_is_a_conflict_and_not_counted(
    store: Store,
) -> None:
    bot = await f.new_bot(store)
    s = await f.new_session(store, bot.id)
    with pytest.raises(ConflictError):
        await store.chat.create_session(f.session(bot.id, id=s.id))
    stored = await store.bots.get_bot(bot.id)
    assert stored is not None and stored.conversation_count == 1


async def test_get_missing_session_returns_none(store: Store) -> None:
    assert await store.chat.get_session(uuid.uuid4()) is None


async def test_update_session_writes_title_status_and_ended_at(store: Store) -> None:
    s = await f.new_session(store)
    done = dataclasses.replace(s, title="Named", status=SessionStatus.COMPLETED, ended_at=f.at(100))
    updated = await store.chat.update_session(done)
    assert updated == done
    assert await store.chat.get_session(s.id) == done


async def test_update_session_ignores_other_fields(store: Store) -> None:
    s = await f.new_session(store, started_at=f.at(0))
    other = dataclasses.replace(s, model="other-model", started_at=f.at(50), title="kept")
    updated = await store.chat.update_session(other)
    assert updated.model == s.model
    assert updated.started_at == s.started_at
    assert updated.title == "kept"


async def test_update_session_never_rolls_back_counters(store: Store) -> None:
    stale = await f.new_session(store)
    for i in range(3):
        await store.chat.save_message(f.message(stale.id, f"m{i}", input_tokens=2, output_tokens=5))
    fresh = await store.chat.get_session(stale.id)
    assert fresh is not None
    # stale still says 0 messages and no tokens
    updated = await store.chat.update_session(
        dataclasses.replace(stale, status=SessionStatus.COMPLETED, title="done")
    )
    assert updated.message_count == 3
    assert (updated.total_input_tokens, updated.total_output_tokens) == (6, 15)
    assert updated.last_activity_at == fresh.last_activity_at
    assert await store.chat.get_session(stale.id) == updated
    # and the next message continues after seq 3
    assert (await store.chat.save_message(f.message(stale.id))).seq == 4


async def test_update_missing_session_is_not_found(store: Store) -> None:
    bot = await f.new_bot(store)
    with pytest.raises(NotFoundError):
        await store.chat.update_session(f.session(bot.id))


async def test_list_sessions_is_newest_first_with_id_tie_breaker(store: Store) -> None:
    bot = await f.new_bot(store)
    same = f.at(10)
    tied = [f.session(bot.id, started_at=same) for _ in range(4)]
    older = f.session(bot.id, started_at=f.at(0))
    newer = f.session(bot.id, started_at=f.at(20))
    for s in [older, *tied, newer]:
        await store.chat.create_session(s)
    other = await f.new_session(store)
    expected = [newer.id, *sorted((s.id for s in tied), reverse=True), older.id]
    listed = await store.chat.list_sessions(bot.id)
    assert [s.id for s in listed] == expected
    assert other.id not in {s.id for s in listed}
    assert [s.id for s in await store.chat.list_sessions(bot.id, limit=2)] == expected[:2]
    assert [s.id for s in await store.chat.list_sessions(bot.id, limit=2, offset=1)] == (
        expected[1:3]
    )
    assert [s.id for s in await store.chat.list_sessions(bot.id, offset=4)] == expected[4:]


async def test_get_active_sessions_lists_only_active_newest_first(store: Store) -> None:
    bot = await f.new_bot(store)
    a1 = await f.new_session(store, bot.id, started_at=f.at(1))
    a2 = await f.new_session(store, bot.id, started_at=f.at(2))
    done = await f.new_session(store, bot.id, started_at=f.at(3))
    crashed = await f.new_session(store, bot.id, started_at=f.at(4), status="crashed")
    await store.chat.update_session(dataclasses.replace(done, status=SessionStatus.COMPLETED))
    await f.new_session(store)  # another bot's active session
    active = await store.chat.get_active_sessions(bot.id)
    assert [s.id for s in active] == [a2.id, a1.id]
    assert crashed.id not in {s.id for s in active}


async def test_delete_session_cascades_but_memories_survive_detached(store: Store) -> None:
    bot = await f.new_bot(store)
    s = await f.new_session(store, bot.id)
    keep = await f.new_session(store, bot.id)
    msgs = await f.add_messages(store, s.id, 3)
    kept_msgs = await f.add_messages(store, keep.id, 2)
    mem = await store.memory.save_memory(
        f.memory(bot.id, session_id=s.id, source_message_id=msgs[1].id)
    )
    await store.memory.save_context_summary(f.summary(s.id, 1, 3))
    job = await store.memory.save_pending_extraction(f.pending(bot.id, s.id))
    kept_job = await store.memory.save_pending_extraction(f.pending(bot.id, keep.id))

    await store.chat.delete_session(s.id)

    assert await store.chat.get_session(s.id) is None
    assert await store.chat.get_messages(s.id) == []
    assert all([await store.chat.get_message(m.id) is None for m in msgs])
    assert await store.memory.list_summaries(s.id) == []
    assert await store.memory.get_latest_summary(s.id) is None
    assert await store.memory.get_pending_extraction(job.id) is None
    survivor = await store.memory.get_memory(mem.id)
    assert survivor == dataclasses.replace(mem, session_id=None, source_message_id=None)
    assert [m.id for m in await store.memory.get_memories(bot.id)] == [mem.id]
    assert await store.chat.get_messages(keep.id) == kept_msgs
    assert await store.memory.get_pending_extraction(kept_job.id) == kept_job
    assert await store.chat.count_messages() == 2


async def test_delete_missing_session_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        await store.chat.delete_session(uuid.uuid4())


async def test_count_sessions_and_messages(store: Store) -> None:
    assert (await store.chat.count_sessions(), await store.chat.count_messages()) == (0, 0)
    a = await f.new_session(store)
    b = await f.new_session(store)
    await f.add_messages(store, a.id, 3)
    await f.add_messages(store, b.id, 1)
    assert (await store.chat.count_sessions(), await store.chat.count_messages()) == (2, 4)


# --- messages -----------------------------------------------------------------------------


async def test_save_message_assigns_seq_and_round_trips(store: Store) -> None:
    s = await f.new_session(store)
    m = f.message(
        s.id,
        "answer",
        role="assistant",
        created_at=f.at(5),
        input_tokens=10,
        output_tokens=20,
        model="m",
        stop_reason="end_turn",
        response_ms=123,
        metadata={"tool": "x", "n": [1, 2.5, None, True], "nested": {"k": "v"}},
    )
    saved = await store.chat.save_message(m)
    assert saved == dataclasses.replace(m, seq=1)
    assert saved.role is MessageRole.ASSISTANT
    assert await store.chat.get_message(m.id) == saved


async def test_save_message_seq_counts_from_one_per_session(store: Store) -> None:
    a = await f.new_session(store)
    b = await f.new_session(store)
    seqs_a = [m.seq for m in await f.add_messages(store, a.id, 4)]
    seqs_b = [m.seq for m in await f.add_messages(store, b.id, 2)]
    assert (seqs_a, seqs_b) == ([1, 2, 3, 4], [1, 2])


async def test_save_message_ignores_a_caller_supplied_seq(store: Store) -> None:
    s = await f.new_session(store)
    await f.add_messages(store, s.id, 2)
    saved = await store.chat.save_message(f.message(s.id, seq=1))
    assert saved.seq == 3


async def test_save_message_bumps_session_and_bot_counters(store: Store) -> None:
    bot = await f.new_bot(store)
    s = await f.new_session(store, bot.id)
    await store.chat.save_message(
        f.message(s.id, created_at=f.at(1), input_tokens=3, output_tokens=None)
    )
    await store.chat.save_message(
        f.message(s.id, created_at=f.at(2), input_tokens=None, output_tokens=None)
    )
    await store.chat.save_message(
        f.message(s.id, created_at=f.at(3), input_tokens=4, output_tokens=10)
    )
    stored = await store.chat.get_session(s.id)
    assert stored is not None
    assert stored.message_count == 3
    assert (stored.total_input_tokens, stored.total_output_tokens) == (7, 10)
    assert stored.last_activity_at == f.at(3)
    stored_bot = await store.bots.get_bot(bot.id)
    assert stored_bot is not None
    assert stored_bot.total_tokens_used == 17
    assert stored_bot.last_active_at == f.at(3)


async def test_save_message_for_missing_session_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        await store.chat.save_message(f.message(uuid.uuid4()))
    assert await store.chat.count_messages() == 0


async def test_save_message_with_duplicate_id_is_a_conflict_and_counts_nothing(
    store: Store,
) -> None:
    bot = await f.new_bot(store)
    s = await f.new_session(store, bot.id)
    first = await store.chat.save_message(f.message(s.id, input_tokens=1))
    with pytest.raises(ConflictError) as info:
        await store.chat.save_message(f.message(s.id, id=first.id, input_tokens=100))
    assert info.value.__cause__ is not None
    stored = await store.chat.get_session(s.id)
    assert stored is not None
    assert (stored.message_count, stored.total_input_tokens) == (1, 1)
    stored_bot = await store.bots.get_bot(bot.id)
    assert stored_bot is not None and stored_bot.total_tokens_used == 1
    assert (await store.chat.save_message(f.message(s.id))).seq == 2


async def test_get_message_missing_returns_none(store: Store) -> None:
    assert await store.chat.get_message(uuid.uuid4()) is None


async def test_get_messages_is_seq_order_with_limit_and_offset(store: Store) -> None:
    s = await f.new_session(store)
    # created_at runs backwards: order must follow seq, not the clock
    saved = [
        await store.chat.save_message(f.message(s.id, f"m{i}", created_at=f.at(100 - i)))
        for i in range(6)
    ]
    assert await store.chat.get_messages(s.id) == saved
    assert await store.chat.get_messages(s.id, limit=2) == saved[:2]
    assert await store.chat.get_messages(s.id, limit=2, offset=3) == saved[3:5]
    assert await store.chat.get_messages(s.id, offset=4) == saved[4:]
    assert await store.chat.get_messages(s.id, offset=6) == []
    assert await store.chat.get_messages(uuid.uuid4()) == []


async def test_messages_with_equal_timestamps_keep_insertion_order(store: Store) -> None:
    s = await f.new_session(store)
    same = f.at(7)
    saved = [
        await store.chat.save_message(f.message(s.id, f"m{i}", created_at=same)) for i in range(5)
    ]
    assert [m.content for m in await store.chat.get_messages(s.id)] == [m.content for m in saved]


async def test_get_recent_messages_returns_the_last_n_in_seq_order(store: Store) -> None:
    s = await f.new_session(store)
    saved = await f.add_messages(store, s.id, 5)
    assert await store.chat.get_recent_messages(s.id, 3) == saved[2:]
    assert await store.chat.get_recent_messages(s.id, 10) == saved
    assert await store.chat.get_recent_messages(s.id, 0) == []


async def test_get_message_count(store: Store) -> None:
    s = await f.new_session(store)
    assert await store.chat.get_message_count(s.id) == 0
    await f.add_messages(store, s.id, 3)
    assert await store.chat.get_message_count(s.id) == 3
    assert await store.chat.get_message_count(uuid.uuid4()) == 0


async def test_clear_messages_deletes_messages_summaries_and_jobs_and_keeps_totals(
    store: Store,
) -> None:
    bot = await f.new_bot(store)
    s = await f.new_session(store, bot.id)
    other = await f.new_session(store, bot.id)
    for i in range(3):
        await store.chat.save_message(f.message(s.id, f"m{i}", input_tokens=1, output_tokens=2))
    other_msgs = await f.add_messages(store, other.id, 2)
    first = (await store.chat.get_messages(s.id))[0]
    mem = await store.memory.save_memory(
        f.memory(bot.id, session_id=s.id, source_message_id=first.id)
    )
    await store.memory.save_context_summary(f.summary(s.id, 1, 2))
    job = await store.memory.save_pending_extraction(f.pending(bot.id, s.id))
    other_job = await store.memory.save_pending_extraction(f.pending(bot.id, other.id))

    assert await store.chat.clear_messages(s.id) == 3

    assert await store.chat.get_messages(s.id) == []
    assert await store.chat.get_message_count(s.id) == 0
    assert await store.memory.list_summaries(s.id) == []
    assert await store.memory.get_pending_extraction(job.id) is None
    stored = await store.chat.get_session(s.id)
    assert stored is not None
    assert stored.message_count == 0
    assert (stored.total_input_tokens, stored.total_output_tokens) == (3, 6)
    stored_bot = await store.bots.get_bot(bot.id)
    assert stored_bot is not None and stored_bot.total_tokens_used == 9
    # memories survive, detached from the deleted message but still in the session
    survivor = await store.memory.get_memory(mem.id)
    assert survivor == dataclasses.replace(mem, source_message_id=None)
    # other sessions are untouched
    assert await store.chat.get_messages(other.id) == other_msgs
    assert await store.memory.get_pending_extraction(other_job.id) == other_job
    # numbering restarts
    assert (await store.chat.save_message(f.message(s.id))).seq == 1
    assert await store.chat.get_message_count(s.id) == 1


async def test_clear_messages_of_an_empty_session_returns_zero(store: Store) -> None:
    s = await f.new_session(store)
    assert await store.chat.clear_messages(s.id) == 0


async def test_clear_messages_of_missing_session_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        await store.chat.clear_messages(uuid.uuid4())


MAX_BIGINT = 2**63 - 1


async def test_token_totals_that_would_overflow_are_refused_and_corrupt_nothing(
    store: Store,
) -> None:
    bot = await f.new_bot(store)
    s = await f.new_session(store, bot.id)
    await store.chat.save_message(f.message(s.id, input_tokens=2**62))
    with pytest.raises(ValidationError):
        await store.chat.save_message(f.message(s.id, input_tokens=2**62))
    stored = await store.chat.get_session(s.id)  # still readable, unchanged
    assert stored is not None
    assert (stored.message_count, stored.total_input_tokens) == (1, 2**62)
    stored_bot = await store.bots.get_bot(bot.id)
    assert stored_bot is not None and stored_bot.total_tokens_used == 2**62
    assert (await store.chat.save_message(f.message(s.id, input_tokens=5))).seq == 2


async def test_bot_token_total_that_would_overflow_is_refused(store: Store) -> None:
    bot = await f.new_bot(store)
    a = await f.new_session(store, bot.id)
    b = await f.new_session(store, bot.id)
    await store.chat.save_message(f.message(a.id, output_tokens=2**62))
    # the session's own totals fit, the bot's sum does not
    with pytest.raises(ValidationError):
        await store.chat.save_message(f.message(b.id, output_tokens=2**62))
    with pytest.raises(ValidationError):
        await store.chat.save_message(
            f.message(b.id, input_tokens=MAX_BIGINT, output_tokens=MAX_BIGINT)
        )
    assert await store.chat.get_message_count(b.id) == 0
    stored_bot = await store.bots.get_bot(bot.id)
    assert stored_bot is not None and stored_bot.total_tokens_used == 2**62


async def test_bot_totals_are_lifetime_totals_that_survive_clearing_and_deleting(
    store: Store,
) -> None:
    bot = await f.new_bot(store)
    first = await f.new_session(store, bot.id)
    second = await f.new_session(store, bot.id)
    for session, tokens in ((first, 5), (second, 7)):
        await store.chat.save_message(
            ChatMessage(
                session_id=session.id,
                role=MessageRole.ASSISTANT,
                content="x",
                input_tokens=tokens,
                output_tokens=1,
            )
        )
    await store.chat.clear_messages(first.id)
    await store.chat.delete_session(second.id)
    stored = await store.bots.get_bot(bot.id)
    assert stored is not None
    assert (stored.conversation_count, stored.total_tokens_used) == (2, 14)
    assert stored.last_active_at is not None


async def test_a_bot_reserved_to_the_limit_refuses_a_new_session_and_keeps_its_count(
    store: Store,
) -> None:
    """Each live session reserves a step of tokens on its bot (see storage/sql.py
    RESERVE_STEP): a bot whose total is that close to 2^63 - 1 can take no new session."""
    bot = await store.bots.create_bot(f.bot(total_tokens_used=MAX_BIGINT - 1000))
    with pytest.raises(ValidationError, match=f"bot {bot.id}: .* no new session fits"):
        await f.new_session(store, bot.id)
    with pytest.raises(NotFoundError):  # no bot at all is another error
        await f.new_session(store, uuid.uuid4())
    stored = await store.bots.get_bot(bot.id)
    assert stored is not None
    assert (stored.conversation_count, stored.total_tokens_used) == (0, MAX_BIGINT - 1000)
    assert await store.chat.list_sessions(bot.id) == []
