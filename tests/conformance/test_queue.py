"""The extraction queue (pending_memory_extractions), on every backend."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

import pytest

from boternity import Store
from boternity.errors import ConflictError, NotFoundError, ValidationError
from boternity.models import MAX_EXTRACTION_ATTEMPTS, ChatSession
from tests.conformance import factories as f

LEASE = timedelta(minutes=5)


async def _session(store: Store) -> ChatSession:
    return await f.new_session(store)


async def test_save_pending_extraction_round_trips(store: Store) -> None:
    s = await _session(store)
    job = f.pending(
        s.bot_id,
        s.id,
        next_attempt_at=f.at(10),
        attempt_count=1,
        last_attempt_at=f.at(5),
        error_message="boom 'quoted'",
        messages_start=1,
        messages_end=4,
        created_at=f.at(0),
    )
    assert await store.memory.save_pending_extraction(job) == job
    assert await store.memory.get_pending_extraction(job.id) == job


async def test_get_missing_pending_extraction_returns_none(store: Store) -> None:
    assert await store.memory.get_pending_extraction(uuid.uuid4()) is None


async def test_save_pending_extraction_for_missing_session_is_not_found(store: Store) -> None:
    bot = await f.new_bot(store)
    with pytest.raises(NotFoundError):
        await store.memory.save_pending_extraction(f.pending(bot.id, uuid.uuid4()))
    assert await store.memory.list_pending_extractions() == []


async def test_save_pending_extraction_for_another_bots_session_is_refused(store: Store) -> None:
    bot = await f.new_bot(store)
    s = await _session(store)
    with pytest.raises(ValidationError):
        await store.memory.save_pending_extraction(f.pending(bot.id, s.id))
    assert await store.memory.list_pending_extractions() == []


async def test_save_pending_extraction_with_duplicate_id_is_a_conflict(store: Store) -> None:
    s = await _session(store)
    job = await store.memory.save_pending_extraction(f.pending(s.bot_id, s.id))
    with pytest.raises(ConflictError) as info:
        await store.memory.save_pending_extraction(f.pending(s.bot_id, s.id, id=job.id))
    assert info.value.__cause__ is not None


async def test_get_pending_extractions_excludes_exhausted_and_orders_by_due_time(
    store: Store,
) -> None:
    s = await _session(store)
    other = await _session(store)
    late = f.pending(s.bot_id, s.id, next_attempt_at=f.at(30))
    early = f.pending(s.bot_id, s.id, next_attempt_at=f.at(10), attempt_count=2)
    tied = [f.pending(s.bot_id, s.id, next_attempt_at=f.at(20)) for _ in range(3)]
    exhausted = f.pending(
        s.bot_id, s.id, next_attempt_at=f.at(0), attempt_count=MAX_EXTRACTION_ATTEMPTS
    )
    for job in [late, *tied, exhausted, early]:
        await store.memory.save_pending_extraction(job)
    foreign = await store.memory.save_pending_extraction(f.pending(other.bot_id, other.id))
    expected = [early.id, *sorted(t.id for t in tied), late.id]
    assert [j.id for j in await store.memory.get_pending_extractions(s.bot_id)] == expected
    listed = await store.memory.list_pending_extractions(bot_id=s.bot_id)
    assert [j.id for j in listed] == [exhausted.id, *expected]
    assert listed[0].exhausted
    everything = await store.memory.list_pending_extractions()
    assert {j.id for j in everything} == {*expected, exhausted.id, foreign.id}
    assert [j.next_attempt_at for j in everything] == sorted(j.next_attempt_at for j in everything)


async def test_update_pending_extraction_writes_attempt_fields(store: Store) -> None:
    s = await _session(store)
    job = await store.memory.save_pending_extraction(f.pending(s.bot_id, s.id))
    failed = dataclasses.replace(
        job,
        attempt_count=2,
        last_attempt_at=f.at(100),
        next_attempt_at=f.at(400),
        error_message="model timed out",
    )
    assert await store.memory.update_pending_extraction(failed) == failed
    assert await store.memory.get_pending_extraction(job.id) == failed


async def test_update_missing_pending_extraction_is_not_found(store: Store) -> None:
    s = await _session(store)
    with pytest.raises(NotFoundError):
        await store.memory.update_pending_extraction(f.pending(s.bot_id, s.id))


async def test_delete_pending_extraction(store: Store) -> None:
    s = await _session(store)
    job = await store.memory.save_pending_extraction(f.pending(s.bot_id, s.id))
    await store.memory.delete_pending_extraction(job.id)
    assert await store.memory.get_pending_extraction(job.id) is None
    with pytest.raises(NotFoundError):
        await store.memory.delete_pending_extraction(job.id)


# --- claiming -----------------------------------------------------------------------------


async def test_claim_takes_only_due_jobs_and_leases_them(store: Store) -> None:
    s = await _session(store)
    due = await store.memory.save_pending_extraction(
        f.pending(s.bot_id, s.id, next_attempt_at=f.at(0))
    )
    not_yet = await store.memory.save_pending_extraction(
        f.pending(s.bot_id, s.id, next_attempt_at=f.at(61))
    )
    now = f.at(60)
    claimed = await store.memory.claim_pending_extractions(now=now, lease=LEASE)
    assert [j.id for j in claimed] == [due.id]
    (job,) = claimed
    assert job.attempt_count == 1
    assert job.last_attempt_at == now
    assert job.next_attempt_at == now + LEASE
    assert await store.memory.get_pending_extraction(due.id) == job
    assert await store.memory.get_pending_extraction(not_yet.id) == not_yet


async def test_claim_treats_exactly_due_as_due(store: Store) -> None:
    s = await _session(store)
    job = await store.memory.save_pending_extraction(
        f.pending(s.bot_id, s.id, next_attempt_at=f.at(60))
    )
    claimed = await store.memory.claim_pending_extractions(now=f.at(60))
    assert [j.id for j in claimed] == [job.id]


async def test_a_claimed_job_is_not_claimed_again_until_its_lease_ends(store: Store) -> None:
    s = await _session(store)
    job = await store.memory.save_pending_extraction(
        f.pending(s.bot_id, s.id, next_attempt_at=f.at(0))
    )
    assert len(await store.memory.claim_pending_extractions(now=f.at(1), lease=LEASE)) == 1
    assert await store.memory.claim_pending_extractions(now=f.at(2), lease=LEASE) == []
    after = f.at(1) + LEASE + timedelta(seconds=1)
    again = await store.memory.claim_pending_extractions(now=after, lease=LEASE)
    assert [j.id for j in again] == [job.id]
    assert again[0].attempt_count == 2


async def test_claim_never_returns_exhausted_jobs(store: Store) -> None:
    s = await _session(store)
    job = await store.memory.save_pending_extraction(
        f.pending(s.bot_id, s.id, next_attempt_at=f.at(0))
    )
    now = f.at(0)
    for attempt in range(1, MAX_EXTRACTION_ATTEMPTS + 1):
        now = now + LEASE + timedelta(seconds=1)
        (claimed,) = await store.memory.claim_pending_extractions(now=now, lease=LEASE)
        assert claimed.attempt_count == attempt
    now = now + LEASE * 10
    assert await store.memory.claim_pending_extractions(now=now, lease=LEASE) == []
    # exhausted, but kept and visible
    kept = await store.memory.get_pending_extraction(job.id)
    assert kept is not None and kept.exhausted
    assert [j.id for j in await store.memory.list_pending_extractions()] == [job.id]
    assert await store.memory.get_pending_extractions(s.bot_id) == []


async def test_an_exhausted_job_can_be_retried_by_hand(store: Store) -> None:
    s = await _session(store)
    job = await store.memory.save_pending_extraction(
        f.pending(s.bot_id, s.id, next_attempt_at=f.at(0), attempt_count=MAX_EXTRACTION_ATTEMPTS)
    )
    assert await store.memory.claim_pending_extractions(now=f.at(10)) == []
    await store.memory.update_pending_extraction(dataclasses.replace(job, attempt_count=0))
    assert [j.id for j in await store.memory.claim_pending_extractions(now=f.at(10))] == [job.id]


async def test_claim_respects_limit_taking_the_earliest_due(store: Store) -> None:
    s = await _session(store)
    jobs = [
        await store.memory.save_pending_extraction(
            f.pending(s.bot_id, s.id, next_attempt_at=f.at(i))
        )
        for i in (4, 0, 3, 1, 2)
    ]
    earliest = sorted(jobs, key=lambda j: j.next_attempt_at)
    claimed = await store.memory.claim_pending_extractions(limit=2, now=f.at(100))
    assert {j.id for j in claimed} == {earliest[0].id, earliest[1].id}
    rest = await store.memory.claim_pending_extractions(limit=10, now=f.at(100))
    assert {j.id for j in rest} == {j.id for j in earliest[2:]}
    assert await store.memory.claim_pending_extractions(limit=0, now=f.at(100)) == []


async def test_claim_can_be_limited_to_one_bot(store: Store) -> None:
    a = await _session(store)
    b = await _session(store)
    ja = await store.memory.save_pending_extraction(
        f.pending(a.bot_id, a.id, next_attempt_at=f.at(0))
    )
    jb = await store.memory.save_pending_extraction(
        f.pending(b.bot_id, b.id, next_attempt_at=f.at(0))
    )
    claimed = await store.memory.claim_pending_extractions(now=f.at(1), bot_id=b.bot_id)
    assert [j.id for j in claimed] == [jb.id]
    assert await store.memory.get_pending_extraction(ja.id) == ja


async def test_claim_with_default_now_takes_jobs_due_now(store: Store) -> None:
    s = await _session(store)
    job = await store.memory.save_pending_extraction(f.pending(s.bot_id, s.id))
    (claimed,) = await store.memory.claim_pending_extractions()
    assert claimed.id == job.id
    assert claimed.last_attempt_at is not None
    assert claimed.next_attempt_at == claimed.last_attempt_at + timedelta(minutes=5)


@pytest.mark.parametrize("lease", [timedelta(0), timedelta(seconds=-1)])
async def test_claim_refuses_a_non_positive_lease(store: Store, lease: timedelta) -> None:
    with pytest.raises(ValidationError):
        await store.memory.claim_pending_extractions(lease=lease)


# --- completing ---------------------------------------------------------------------------


async def test_complete_extraction_saves_memories_and_deletes_the_job(store: Store) -> None:
    s = await _session(store)
    msgs = await f.add_messages(store, s.id, 2)
    job = await store.memory.save_pending_extraction(f.pending(s.bot_id, s.id))
    found = [
        f.memory(s.bot_id, "a", session_id=s.id, source_message_id=msgs[0].id),
        f.memory(s.bot_id, "b", session_id=s.id, importance=5),
    ]
    assert await store.memory.complete_extraction(job.id, found) == found
    assert await store.memory.get_pending_extraction(job.id) is None
    assert {m.id for m in await store.memory.get_memories(s.bot_id)} == {m.id for m in found}
    assert await store.memory.get_memories_by_session(s.id) == sorted(
        found, key=lambda m: (m.created_at, m.id)
    )


async def test_complete_extraction_with_no_memories_just_deletes_the_job(store: Store) -> None:
    s = await _session(store)
    job = await store.memory.save_pending_extraction(f.pending(s.bot_id, s.id))
    assert await store.memory.complete_extraction(job.id, []) == []
    assert await store.memory.get_pending_extraction(job.id) is None


async def test_a_failing_memory_leaves_the_job_and_saves_no_memories(store: Store) -> None:
    s = await _session(store)
    job = await store.memory.save_pending_extraction(f.pending(s.bot_id, s.id))
    good = f.memory(s.bot_id, "good", session_id=s.id)
    bad = f.memory(s.bot_id, "bad", session_id=uuid.uuid4())  # no such session
    with pytest.raises(NotFoundError):
        await store.memory.complete_extraction(job.id, [good, bad])
    assert await store.memory.get_pending_extraction(job.id) == job
    assert await store.memory.get_memory(good.id) is None
    assert await store.memory.get_memories(s.bot_id, include_superseded=True) == []


async def test_completing_a_job_twice_is_not_found_and_duplicates_nothing(store: Store) -> None:
    s = await _session(store)
    job = await store.memory.save_pending_extraction(f.pending(s.bot_id, s.id))
    first = [f.memory(s.bot_id, "fact", session_id=s.id)]
    await store.memory.complete_extraction(job.id, first)
    # a second worker whose lease ran out finishes the same job with fresh ids
    second = [f.memory(s.bot_id, "fact", session_id=s.id)]
    with pytest.raises(NotFoundError):
        await store.memory.complete_extraction(job.id, second)
    assert [m.id for m in await store.memory.get_memories(s.bot_id)] == [first[0].id]


async def test_complete_extraction_of_a_missing_job_is_not_found(store: Store) -> None:
    s = await _session(store)
    mem = f.memory(s.bot_id)
    with pytest.raises(NotFoundError):
        await store.memory.complete_extraction(uuid.uuid4(), [mem])
    assert await store.memory.get_memory(mem.id) is None


async def test_complete_extraction_supersedes_mapped_memories(store: Store) -> None:
    s = await _session(store)
    old = await store.memory.save_memory(f.memory(s.bot_id, "lives in Paris"))
    job = await store.memory.save_pending_extraction(f.pending(s.bot_id, s.id))
    new = f.memory(s.bot_id, "lives in Rome", session_id=s.id, category="correction")
    extra = f.memory(s.bot_id, "likes cats", session_id=s.id)
    await store.memory.complete_extraction(job.id, [new, extra], supersedes={new.id: old.id})
    got_old = await store.memory.get_memory(old.id)
    assert got_old is not None and got_old.superseded_by == new.id
    live = await store.memory.get_memories(s.bot_id)
    assert {m.id for m in live} == {new.id, extra.id}


async def test_complete_extraction_superseding_a_superseded_memory_changes_nothing(
    store: Store,
) -> None:
    s = await _session(store)
    old = await store.memory.save_memory(f.memory(s.bot_id, "v1"))
    v2 = await store.memory.supersede_memory(old.id, f.memory(s.bot_id, "v2"))
    job = await store.memory.save_pending_extraction(f.pending(s.bot_id, s.id))
    stale = f.memory(s.bot_id, "v2 again", session_id=s.id)
    with pytest.raises(ConflictError):
        await store.memory.complete_extraction(job.id, [stale], supersedes={stale.id: old.id})
    assert await store.memory.get_pending_extraction(job.id) == job
    assert await store.memory.get_memory(stale.id) is None
    got_old = await store.memory.get_memory(old.id)
    assert got_old is not None and got_old.superseded_by == v2.id


async def test_complete_extraction_supersedes_must_name_a_memory_in_the_batch(
    store: Store,
) -> None:
    s = await _session(store)
    old = await store.memory.save_memory(f.memory(s.bot_id, "v1"))
    job = await store.memory.save_pending_extraction(f.pending(s.bot_id, s.id))
    mem = f.memory(s.bot_id, "new", session_id=s.id)
    with pytest.raises(ValidationError):
        await store.memory.complete_extraction(job.id, [mem], supersedes={uuid.uuid4(): old.id})
    assert await store.memory.get_pending_extraction(job.id) == job
    assert await store.memory.get_memory(mem.id) is None


async def test_a_lease_ending_beyond_the_calendar_is_a_validation_error(store: Store) -> None:
    s = await _session(store)
    job = await store.memory.save_pending_extraction(
        f.pending(s.bot_id, s.id, next_attempt_at=f.at(0))
    )
    with pytest.raises(ValidationError):
        await store.memory.claim_pending_extractions(now=f.at(1), lease=timedelta.max)
    assert await store.memory.get_pending_extraction(job.id) == job


async def test_two_new_memories_cannot_supersede_the_same_old_one(store: Store) -> None:
    s = await _session(store)
    old = await store.memory.save_memory(f.memory(s.bot_id, "v1"))
    job = await store.memory.save_pending_extraction(f.pending(s.bot_id, s.id))
    a = f.memory(s.bot_id, "v2a", session_id=s.id)
    b = f.memory(s.bot_id, "v2b", session_id=s.id)
    with pytest.raises(ConflictError):
        await store.memory.complete_extraction(
            job.id, [a, b], supersedes={a.id: old.id, b.id: old.id}
        )
    assert await store.memory.get_pending_extraction(job.id) == job
    assert await store.memory.get_memory(old.id) == old
    assert await store.memory.get_memory(a.id) is None
    assert await store.memory.get_memory(b.id) is None


async def test_complete_extraction_can_supersede_within_its_own_batch(store: Store) -> None:
    s = await _session(store)
    job = await store.memory.save_pending_extraction(f.pending(s.bot_id, s.id))
    first = f.memory(s.bot_id, "said Paris", session_id=s.id)
    fixed = f.memory(s.bot_id, "then corrected to Rome", session_id=s.id)
    await store.memory.complete_extraction(job.id, [first, fixed], supersedes={fixed.id: first.id})
    assert [m.id for m in await store.memory.get_memories(s.bot_id)] == [fixed.id]


async def test_complete_extraction_skips_facts_the_bot_already_holds(store: Store) -> None:
    s = await _session(store)
    live = await store.memory.save_memory(f.memory(s.bot_id, "Lives in Porto"))
    old = await store.memory.save_memory(f.memory(s.bot_id, "Likes tea"))
    gone = await store.memory.save_memory(f.memory(s.bot_id, "Lives in Lisbon"))
    await store.memory.supersede_memory(gone.id, f.memory(s.bot_id, "Lived in Lisbon"))
    other_bot = await f.new_session(store)
    await store.memory.save_memory(f.memory(other_bot.bot_id, "Likes cats"))
    job = await store.memory.save_pending_extraction(f.pending(s.bot_id, s.id))
    again = f.memory(s.bot_id, "lives in  PORTO.", session_id=s.id)  # live already
    correction = f.memory(s.bot_id, "Likes tea", session_id=s.id)  # its supersession goes too
    revived = f.memory(s.bot_id, "Lives in Lisbon", session_id=s.id)  # only superseded
    cats = f.memory(s.bot_id, "Likes cats", session_id=s.id)  # another bot's fact
    twice = f.memory(s.bot_id, "likes cats!", session_id=s.id)  # earlier in the batch
    saved = await store.memory.complete_extraction(
        job.id, [again, correction, revived, cats, twice], supersedes={correction.id: old.id}
    )
    assert saved == [revived, cats]
    assert await store.memory.get_memory(old.id) == old  # not superseded
    facts = sorted(m.fact for m in await store.memory.get_memories(s.bot_id))
    assert facts == ["Likes cats", "Likes tea", "Lived in Lisbon", "Lives in Lisbon", live.fact]
    assert await store.memory.get_pending_extraction(job.id) is None


async def test_save_memory_unique_refuses_a_live_duplicate_only(store: Store) -> None:
    s = await _session(store)
    first = await store.memory.save_memory(f.memory(s.bot_id, "Likes tea"), unique=True)
    with pytest.raises(ConflictError, match="already remembered"):
        await store.memory.save_memory(f.memory(s.bot_id, "LIKES TEA."), unique=True)
    # without unique, the store saves what it is given
    await store.memory.save_memory(f.memory(s.bot_id, "Likes tea"))
    other = await f.new_session(store)
    await store.memory.save_memory(f.memory(other.bot_id, "Likes tea"), unique=True)
    await store.memory.supersede_memory(first.id, f.memory(s.bot_id, "Likes green tea"))
    old = await store.memory.save_memory(f.memory(s.bot_id, "Likes coffee"), unique=True)
    await store.memory.supersede_memory(old.id, f.memory(s.bot_id, "Likes espresso"))
    await store.memory.save_memory(f.memory(s.bot_id, "Likes coffee"), unique=True)
