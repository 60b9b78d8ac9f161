"""The store as a whole: reopening, time values, paging arguments, cross-repository flows."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from boternity import Store, open_store
from boternity.errors import NotFoundError, ValidationError
from tests.conformance import factories as f


async def test_store_reports_its_backend_and_schema_version(store: Store, backend: str) -> None:
    assert store.backend == {"sqlite": "sqlite", "postgres": "postgresql"}[backend]
    assert isinstance(store.schema_version, int) and store.schema_version >= 1


async def test_data_survives_closing_and_reopening(store: Store, db_url: str) -> None:
    bot = await f.new_bot(store)
    s = await f.new_session(store, bot.id)
    msgs = await f.add_messages(store, s.id, 3)
    mem = await store.memory.save_memory(f.memory(bot.id, session_id=s.id))
    version = store.schema_version
    async with open_store(db_url) as reopened:
        assert reopened.schema_version == version
        assert await reopened.chat.get_messages(s.id) == msgs
        assert await reopened.memory.get_memory(mem.id) == mem
        stored_bot = await reopened.bots.get_bot(bot.id)
        assert stored_bot is not None and stored_bot.conversation_count == 1
        # numbering continues where the other store left off
        assert (await reopened.chat.save_message(f.message(s.id))).seq == 4
    assert await store.chat.get_message_count(s.id) == 4


@pytest.mark.parametrize(
    "when",
    [
        datetime(2025, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
        datetime(2025, 6, 30, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC) + timedelta(days=1),
        datetime(9999, 12, 30, tzinfo=UTC),
    ],
    ids=["micro", "end_of_day", "before_epoch", "year_1", "year_9999"],
)
async def test_timestamps_round_trip_to_the_microsecond(store: Store, when: datetime) -> None:
    bot = await store.bots.create_bot(f.bot(created_at=when, updated_at=when))
    s = await store.chat.create_session(f.session(bot.id, started_at=when, ended_at=when))
    msg = await store.chat.save_message(f.message(s.id, created_at=when))
    got_bot = await store.bots.get_bot(bot.id)
    got_session = await store.chat.get_session(s.id)
    got_msg = await store.chat.get_message(msg.id)
    assert got_bot is not None and got_bot.created_at == when
    assert got_session is not None
    assert (got_session.started_at, got_session.ended_at) == (when, when)
    assert got_session.last_activity_at == when
    assert got_msg is not None and got_msg.created_at == when
    assert got_msg.created_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "when",
    [
        # The first and last storable microseconds (datetime.min and .max are reserved).
        datetime(1, 1, 1, 5, 0, 0, 1, tzinfo=timezone(timedelta(hours=5))),
        datetime(9999, 12, 31, 18, 59, 59, 999998, tzinfo=timezone(timedelta(hours=-5))),
    ],
    ids=["first_instant", "last_instant"],
)
async def test_the_first_and_last_instants_round_trip_from_any_offset(
    store: Store, when: datetime
) -> None:
    bot = await store.bots.create_bot(f.bot(created_at=when, updated_at=when))
    s = await store.chat.create_session(f.session(bot.id, started_at=when))
    job = await store.memory.save_pending_extraction(f.pending(bot.id, s.id, next_attempt_at=when))
    got_bot = await store.bots.get_bot(bot.id)
    got_job = await store.memory.get_pending_extraction(job.id)
    assert got_bot is not None and got_bot.created_at == when
    assert got_job is not None and got_job.next_attempt_at == when


async def test_times_that_leave_utc_are_refused_naming_the_field(store: Store) -> None:
    bot = await f.new_bot(store)
    early = datetime(1, 1, 1, 4, 59, tzinfo=timezone(timedelta(hours=5)))
    with pytest.raises(ValidationError, match=r"ChatSession\.started_at: .*outside"):
        await store.chat.create_session(f.session(bot.id, started_at=early))
    with pytest.raises(ValidationError, match=r"now: .*outside"):
        await store.memory.claim_pending_extractions(now=early)
    # asyncpg stores datetime.min/max as -infinity/infinity and reads them back naive.
    for edge in (datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)):
        with pytest.raises(ValidationError, match=r"ChatSession\.started_at: .*reserved"):
            await store.chat.create_session(f.session(bot.id, started_at=edge))
    last = datetime.max.replace(tzinfo=UTC) - timedelta(microseconds=1)
    with pytest.raises(ValidationError, match="reserved"):
        await store.memory.claim_pending_extractions(now=last, lease=timedelta(microseconds=1))
    assert await store.chat.list_sessions(bot.id) == []


async def test_non_utc_times_are_stored_as_the_same_instant(store: Store) -> None:
    tokyo = timezone(timedelta(hours=9))
    local = datetime(2025, 3, 1, 9, 0, tzinfo=tokyo)
    s = await f.new_session(store, started_at=local)
    got = await store.chat.get_session(s.id)
    assert got is not None and got.started_at == local
    assert got.started_at.utcoffset() == timedelta(0)


async def test_list_order_follows_time_not_text_across_timezones(store: Store) -> None:
    bot = await f.new_bot(store)
    # 10:00+09:00 is 01:00 UTC, earlier than 02:00 UTC although "10" > "02" as text
    early = await f.new_session(
        store, bot.id, started_at=datetime(2025, 3, 1, 10, 0, tzinfo=timezone(timedelta(hours=9)))
    )
    late = await f.new_session(store, bot.id, started_at=datetime(2025, 3, 1, 2, 0, tzinfo=UTC))
    assert [x.id for x in await store.chat.list_sessions(bot.id)] == [late.id, early.id]


async def test_claim_accepts_a_non_utc_now(store: Store) -> None:
    s = await f.new_session(store)
    job = await store.memory.save_pending_extraction(
        f.pending(s.bot_id, s.id, next_attempt_at=datetime(2025, 3, 1, 1, 0, tzinfo=UTC))
    )
    plus9 = timezone(timedelta(hours=9))
    before = datetime(2025, 3, 1, 9, 59, tzinfo=plus9)  # 00:59 UTC
    assert await store.memory.claim_pending_extractions(now=before) == []
    now = datetime(2025, 3, 1, 10, 0, tzinfo=plus9)  # 01:00 UTC
    (claimed,) = await store.memory.claim_pending_extractions(now=now)
    assert claimed.id == job.id
    assert claimed.last_attempt_at == now


async def test_claim_refuses_a_naive_now(store: Store) -> None:
    with pytest.raises(ValidationError):
        await store.memory.claim_pending_extractions(now=datetime(2025, 1, 1))


async def test_negative_limits_are_validation_errors(store: Store) -> None:
    s = await f.new_session(store)
    with pytest.raises(ValidationError):
        await store.chat.get_recent_messages(s.id, -1)
    with pytest.raises(ValidationError):
        await store.chat.get_messages(s.id, offset=-1)
    with pytest.raises(ValidationError):
        await store.chat.list_sessions(s.bot_id, limit=-1)
    with pytest.raises(ValidationError):
        await store.memory.get_memories(s.bot_id, limit=-1)
    with pytest.raises(ValidationError):
        await store.memory.claim_pending_extractions(limit=-1)


async def test_a_job_for_a_deleted_session_cannot_be_completed(store: Store) -> None:
    s = await f.new_session(store)
    job = await store.memory.save_pending_extraction(f.pending(s.bot_id, s.id))
    (claimed,) = await store.memory.claim_pending_extractions()
    assert claimed.id == job.id
    await store.chat.delete_session(s.id)
    mem = f.memory(s.bot_id, "from a vanished session")
    with pytest.raises(NotFoundError):
        await store.memory.complete_extraction(job.id, [mem])
    assert await store.memory.get_memory(mem.id) is None


async def test_a_job_dropped_by_clear_messages_cannot_be_completed(store: Store) -> None:
    s = await f.new_session(store)
    await f.add_messages(store, s.id, 2)
    job = await store.memory.save_pending_extraction(
        f.pending(s.bot_id, s.id, messages_start=1, messages_end=2)
    )
    await store.chat.clear_messages(s.id)
    with pytest.raises(NotFoundError):
        await store.memory.complete_extraction(job.id, [f.memory(s.bot_id, session_id=s.id)])
    assert await store.memory.get_memories(s.bot_id) == []


async def test_window_is_latest_summary_plus_later_messages(store: Store) -> None:
    """The documented way to build a model's context from the store."""
    s = await f.new_session(store)
    msgs = await f.add_messages(store, s.id, 7)
    await store.memory.save_context_summary(f.summary(s.id, 1, 3))
    latest = await store.memory.save_context_summary(f.summary(s.id, 1, 5))
    got = await store.memory.get_latest_summary(s.id)
    assert got == latest
    window = [m for m in await store.chat.get_messages(s.id) if (m.seq or 0) > latest.messages_end]
    assert window == msgs[5:]
    assert await store.chat.get_messages(s.id, offset=latest.messages_end) == msgs[5:]


async def test_unknown_parent_ids_in_lists_give_empty_results(store: Store) -> None:
    nobody = uuid.uuid4()
    assert await store.chat.list_sessions(nobody) == []
    assert await store.chat.get_active_sessions(nobody) == []
    assert await store.memory.get_memories(nobody) == []
    assert await store.memory.get_pending_extractions(nobody) == []
    assert await store.memory.list_pending_extractions(bot_id=nobody) == []
    assert await store.chat.get_recent_messages(nobody, 5) == []


HUGE = 2**64


async def test_paging_numbers_beyond_64_bits_are_validation_errors(store: Store) -> None:
    s = await f.new_session(store)
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: store.bots.list_bots(limit=HUGE),
        lambda: store.bots.list_bots(offset=HUGE),
        lambda: store.bots.get_soul(s.bot_id, HUGE),
        lambda: store.chat.list_sessions(s.bot_id, offset=HUGE),
        lambda: store.chat.get_messages(s.id, limit=HUGE),
        lambda: store.chat.get_recent_messages(s.id, HUGE),
        lambda: store.memory.get_memories(s.bot_id, limit=HUGE),
        lambda: store.memory.claim_pending_extractions(limit=HUGE),
    ]
    for call in calls:
        with pytest.raises(ValidationError):
            await call()


async def test_the_largest_64_bit_paging_numbers_are_fine(store: Store) -> None:
    s = await f.new_session(store)
    biggest = 2**63 - 1
    assert await store.bots.list_bots(limit=biggest, offset=biggest) == []
    assert await store.chat.get_messages(s.id, limit=biggest) == []
    assert await store.bots.get_soul(s.bot_id, biggest) is None
