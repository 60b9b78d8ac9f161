"""Several processes on one PostgreSQL database: appends to one session, claims from one queue."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from multiprocessing import get_context

import pytest

from boternity import Store
from boternity.ids import utc_now
from boternity.models import Bot, ChatSession, PendingExtraction
from tests.postgres import workers

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

PROCESSES = 4
PER_PROCESS = 60


async def test_save_message_from_four_processes_keeps_seq_and_counters_exact(
    pg_store: Store, pg_url: str
) -> None:
    bot = await pg_store.bots.create_bot(Bot(name="Busy"))
    session = await pg_store.chat.create_session(ChatSession(bot_id=bot.id, model="m"))
    with ProcessPoolExecutor(max_workers=PROCESSES, mp_context=get_context("spawn")) as pool:
        futures = [
            pool.submit(workers.append_messages, pg_url, str(session.id), PER_PROCESS, w)
            for w in range(1, PROCESSES + 1)
        ]
        seqs = [seq for f in futures for seq in f.result()]

    total = PROCESSES * PER_PROCESS
    assert sorted(seqs) == list(range(1, total + 1))  # no gaps, no duplicates
    stored = await pg_store.chat.get_messages(session.id)
    assert [m.seq for m in stored] == list(range(1, total + 1))
    # Each process saw its own messages in the order it saved them.
    for w in range(1, PROCESSES + 1):
        mine = [int(m.content.split("m")[1]) for m in stored if m.content.startswith(f"w{w} ")]
        assert len(mine) == PER_PROCESS
    after = await pg_store.chat.get_session(session.id)
    assert after is not None
    assert after.message_count == total
    expected_in = PER_PROCESS * sum(range(1, PROCESSES + 1))
    assert after.total_input_tokens == expected_in
    assert after.total_output_tokens == total
    owner = await pg_store.bots.get_bot(bot.id)
    assert owner is not None
    assert owner.total_tokens_used == expected_in + total
    assert owner.last_active_at == after.last_activity_at


async def test_two_processes_never_claim_the_same_job(pg_store: Store, pg_url: str) -> None:
    bot = await pg_store.bots.create_bot(Bot(name="Queue"))
    session = await pg_store.chat.create_session(ChatSession(bot_id=bot.id, model="m"))
    now = utc_now()
    jobs = [
        await pg_store.memory.save_pending_extraction(
            PendingExtraction(
                session_id=session.id, bot_id=bot.id, next_attempt_at=now - timedelta(seconds=i)
            )
        )
        for i in range(45)
    ]
    with ProcessPoolExecutor(max_workers=2, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(workers.claim_all, pg_url, now.isoformat()) for _ in range(2)]
        got = [f.result() for f in futures]

    first, second = set(got[0]), set(got[1])
    assert len(got[0]) == len(first) and len(got[1]) == len(second)
    assert not first & second
    assert first | second == {str(j.id) for j in jobs}
    for job in await pg_store.memory.list_pending_extractions():
        assert job.attempt_count == 1
