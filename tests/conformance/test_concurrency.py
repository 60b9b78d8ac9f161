"""Concurrent writers inside one process: no lost increments, no double claims, and a
failing write never takes its neighbours down."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from boternity import Store, open_store
from boternity.errors import ConflictError, NotFoundError
from boternity.models import PendingExtraction
from tests.conformance import factories as f

TASKS = 8
PER_TASK = 6


async def _writer(store: Store, session_id: uuid.UUID, task: int) -> list[int]:
    seqs: list[int] = []
    for i in range(PER_TASK):
        saved = await store.chat.save_message(
            f.message(session_id, f"t{task}-{i}", input_tokens=task + 1, output_tokens=i + 1)
        )
        assert saved.seq is not None
        seqs.append(saved.seq)
    return seqs


def _expected_tokens() -> tuple[int, int]:
    tokens_in = sum((task + 1) * PER_TASK for task in range(TASKS))
    tokens_out = TASKS * sum(i + 1 for i in range(PER_TASK))
    return tokens_in, tokens_out


async def _check_session(store: Store, session_id: uuid.UUID, bot_id: uuid.UUID) -> None:
    n = TASKS * PER_TASK
    stored = await store.chat.get_session(session_id)
    assert stored is not None
    assert stored.message_count == n
    assert (stored.total_input_tokens, stored.total_output_tokens) == _expected_tokens()
    messages = await store.chat.get_messages(session_id)
    assert [m.seq for m in messages] == list(range(1, n + 1))
    # each task saw its own messages in order
    for task in range(TASKS):
        own = [m.content for m in messages if m.content.startswith(f"t{task}-")]
        assert own == [f"t{task}-{i}" for i in range(PER_TASK)]
    stored_bot = await store.bots.get_bot(bot_id)
    assert stored_bot is not None
    assert stored_bot.total_tokens_used == sum(_expected_tokens())


async def test_save_message_is_exact_under_concurrent_writers(store: Store) -> None:
    s = await f.new_session(store)
    results = await asyncio.gather(*(_writer(store, s.id, t) for t in range(TASKS)))
    all_seqs = sorted(seq for seqs in results for seq in seqs)
    assert all_seqs == list(range(1, TASKS * PER_TASK + 1))
    for seqs in results:
        assert seqs == sorted(seqs)
    await _check_session(store, s.id, s.bot_id)


async def test_save_message_is_exact_with_two_stores_on_one_database(
    store: Store, db_url: str
) -> None:
    """Two opened stores (two connection pools) write to the same session at once."""
    s = await f.new_session(store)
    async with open_store(db_url) as second:
        stores = [store, second]
        results = await asyncio.gather(*(_writer(stores[t % 2], s.id, t) for t in range(TASKS)))
    all_seqs = sorted(seq for seqs in results for seq in seqs)
    assert all_seqs == list(range(1, TASKS * PER_TASK + 1))
    await _check_session(store, s.id, s.bot_id)


async def _jobs(store: Store, n: int) -> list[PendingExtraction]:
    s = await f.new_session(store)
    return [
        await store.memory.save_pending_extraction(
            f.pending(s.bot_id, s.id, next_attempt_at=f.at(i))
        )
        for i in range(n)
    ]


async def test_concurrent_claimers_never_get_the_same_job(store: Store) -> None:
    jobs = await _jobs(store, 20)
    now = f.at(1000)
    rounds = await asyncio.gather(
        *(store.memory.claim_pending_extractions(limit=3, now=now) for _ in range(10))
    )
    claimed = [j.id for batch in rounds for j in batch]
    assert len(claimed) == len(set(claimed)) == 20
    assert set(claimed) == {j.id for j in jobs}
    for job in await store.memory.list_pending_extractions():
        assert job.attempt_count == 1


async def test_two_claimers_on_two_stores_never_get_the_same_job(store: Store, db_url: str) -> None:
    jobs = await _jobs(store, 12)
    now = f.at(1000)
    async with open_store(db_url) as second:
        a, b = await asyncio.gather(
            store.memory.claim_pending_extractions(limit=12, now=now),
            second.memory.claim_pending_extractions(limit=12, now=now),
        )
    ids_a = {j.id for j in a}
    ids_b = {j.id for j in b}
    assert not ids_a & ids_b
    assert ids_a | ids_b == {j.id for j in jobs}


async def test_a_failing_write_among_concurrent_ones_fails_alone(store: Store) -> None:
    bot = await f.new_bot(store)
    s = await f.new_session(store, bot.id)
    first = await store.chat.save_message(f.message(s.id, "first", input_tokens=1))
    good = [f.message(s.id, f"good {i}", input_tokens=1) for i in range(7)]
    # a duplicate id fails inside the write, after the session row would have been bumped
    duplicate = f.message(s.id, "dup", id=first.id, input_tokens=1000)
    orphan = f.message(uuid.uuid4(), "no session")
    batch = [*good[:3], duplicate, *good[3:5], orphan, *good[5:]]
    outcomes = await asyncio.gather(
        *(store.chat.save_message(m) for m in batch), return_exceptions=True
    )
    errors = {i: o for i, o in enumerate(outcomes) if isinstance(o, BaseException)}
    assert set(errors) == {3, 6}
    assert isinstance(errors[3], ConflictError)
    assert isinstance(errors[6], NotFoundError)
    stored = await store.chat.get_session(s.id)
    assert stored is not None
    assert stored.message_count == 8
    assert stored.total_input_tokens == 8
    messages = await store.chat.get_messages(s.id)
    assert [m.seq for m in messages] == list(range(1, 9))
    assert {m.content for m in messages} == {"first", *(m.content for m in good)}
    stored_bot = await store.bots.get_bot(bot.id)
    assert stored_bot is not None and stored_bot.total_tokens_used == 8


async def test_concurrent_failing_completions_leave_their_jobs(store: Store) -> None:
    s = await f.new_session(store)
    jobs = [await store.memory.save_pending_extraction(f.pending(s.bot_id, s.id)) for _ in range(6)]
    batches = [
        [f.memory(s.bot_id, f"fact {i}", session_id=s.id if i % 2 == 0 else uuid.uuid4())]
        for i in range(6)
    ]
    outcomes = await asyncio.gather(
        *(store.memory.complete_extraction(j.id, b) for j, b in zip(jobs, batches, strict=True)),
        return_exceptions=True,
    )
    for i, outcome in enumerate(outcomes):
        job = await store.memory.get_pending_extraction(jobs[i].id)
        mem = await store.memory.get_memory(batches[i][0].id)
        if i % 2 == 0:
            assert outcome == batches[i]
            assert job is None and mem is not None
        else:
            assert isinstance(outcome, NotFoundError)
            assert job == jobs[i] and mem is None


async def test_concurrent_supersedes_of_one_memory_let_exactly_one_win(store: Store) -> None:
    bot = await f.new_bot(store)
    old = await store.memory.save_memory(f.memory(bot.id, "v1"))
    rivals = [f.memory(bot.id, f"v2 by worker {i}") for i in range(5)]
    outcomes = await asyncio.gather(
        *(store.memory.supersede_memory(old.id, r) for r in rivals), return_exceptions=True
    )
    winners = [r for r, o in zip(rivals, outcomes, strict=True) if not isinstance(o, BaseException)]
    losers = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(e, ConflictError) for e in losers)
    got = await store.memory.get_memory(old.id)
    assert got is not None and got.superseded_by == winners[0].id
    live = await store.memory.get_memories(bot.id)
    assert [m.id for m in live] == [winners[0].id]


@pytest.mark.parametrize("delay", [0.0, 0.001])
async def test_cancelling_save_message_leaves_counters_consistent(
    store: Store, delay: float
) -> None:
    s = await f.new_session(store)
    tasks = [
        asyncio.create_task(store.chat.save_message(f.message(s.id, f"m{i}", input_tokens=1)))
        for i in range(10)
    ]
    await asyncio.sleep(delay)
    for task in tasks[::2]:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    stored = await store.chat.get_session(s.id)
    messages = await store.chat.get_messages(s.id)
    assert stored is not None
    assert stored.message_count == len(messages)
    assert stored.total_input_tokens == len(messages)
    assert [m.seq for m in messages] == list(range(1, len(messages) + 1))
    # the survivors were all written
    assert len(messages) >= 5


async def test_hundreds_of_concurrent_single_writes_stay_exact(store: Store) -> None:
    """More concurrent writes than one group-commit batch holds."""
    s = await f.new_session(store)
    n = 300
    saved = await asyncio.gather(
        *(store.chat.save_message(f.message(s.id, f"m{i}", output_tokens=1)) for i in range(n))
    )
    assert sorted(m.seq or 0 for m in saved) == list(range(1, n + 1))
    stored = await store.chat.get_session(s.id)
    assert stored is not None
    assert (stored.message_count, stored.total_output_tokens) == (n, n)
    assert await store.chat.get_message_count(s.id) == n
    assert len(await store.chat.get_messages(s.id)) == n


async def test_reads_during_concurrent_writes_see_consistent_counts(store: Store) -> None:
    s = await f.new_session(store)

    async def reader() -> None:
        for _ in range(20):
            session = await store.chat.get_session(s.id)
            assert session is not None
            # a committed message is always counted, and never counted before it exists
            count = len(await store.chat.get_messages(s.id))
            after = await store.chat.get_session(s.id)
            assert after is not None
            assert session.message_count <= count <= after.message_count
            await asyncio.sleep(0)

    await asyncio.gather(*(_writer(store, s.id, t) for t in range(TASKS)), reader(), reader())
    await _check_session(store, s.id, s.bot_id)


async def test_concurrent_soul_saves_get_distinct_consecutive_versions(
    store: Store, db_url: str
) -> None:
    bot = await f.new_bot(store)
    async with open_store(db_url) as second:
        stores = [store, second]
        souls = await asyncio.gather(
            *(stores[i % 2].bots.save_soul(bot.id, f"soul {i}") for i in range(10))
        )
    assert sorted(s.version for s in souls) == list(range(1, 11))
    listed = await store.bots.list_soul_versions(bot.id)
    assert [s.version for s in listed] == list(range(1, 11))
    assert {s.content for s in listed} == {f"soul {i}" for i in range(10)}
    stored = await store.bots.get_bot(bot.id)
    assert stored is not None and stored.version_count == 10


async def test_concurrent_session_creation_counts_every_conversation(store: Store) -> None:
    bot = await f.new_bot(store)
    await asyncio.gather(*(f.new_session(store, bot.id) for _ in range(12)))
    stored = await store.bots.get_bot(bot.id)
    assert stored is not None and stored.conversation_count == 12
    assert len(await store.chat.list_sessions(bot.id)) == 12


async def test_concurrent_slug_claims_let_exactly_one_bot_in(store: Store) -> None:
    rivals = [f.bot(name="Same Name") for _ in range(6)]
    outcomes = await asyncio.gather(
        *(store.bots.create_bot(b) for b in rivals), return_exceptions=True
    )
    assert sum(not isinstance(o, BaseException) for o in outcomes) == 1
    assert all(isinstance(o, ConflictError) for o in outcomes if isinstance(o, BaseException))
    assert len(await store.bots.list_bots()) == 1
