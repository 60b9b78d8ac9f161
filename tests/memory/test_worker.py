"""The extraction worker against a fake LLM server over real HTTP, on every backend."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest

from boternity import Store
from boternity.ids import utc_now
from boternity.llm import AnthropicProvider, RetryPolicy
from boternity.memory import ExtractionWorker, retry_extraction
from boternity.models import (
    MAX_EXTRACTION_ATTEMPTS,
    Bot,
    ChatMessage,
    ChatSession,
    MemoryCategory,
    MemoryEntry,
    MemoryEventKind,
    MessageRole,
    PendingExtraction,
)
from tests.fakes.llm_server import FakeLlmServer, anthropic_error, anthropic_message


class Clock:
    def __init__(self) -> None:
        self.now = utc_now() + timedelta(seconds=1)  # jobs made "now" are due

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
async def server() -> AsyncIterator[FakeLlmServer]:
    async with FakeLlmServer() as fake:
        yield fake


@pytest.fixture
async def provider(server: FakeLlmServer) -> AsyncIterator[AnthropicProvider]:
    # No retries inside the provider: the queue's own backoff is what is under test.
    async with AnthropicProvider(
        api_key="test-key", base_url=server.base_url, retry=RetryPolicy(max_retries=0)
    ) as p:
        yield p


def facts_reply(*facts: dict[str, object]) -> str:
    return "Here you go:\n```json\n" + json.dumps(list(facts)) + "\n```"


async def conversation(store: Store, *texts: str) -> tuple[Bot, ChatSession, list[ChatMessage]]:
    bot = await store.bots.create_bot(Bot(name=f"Mem {uuid.uuid4().hex[:6]}"))
    session = await store.chat.create_session(ChatSession(bot_id=bot.id, model="claude-test"))
    saved = []
    for i, text in enumerate(texts):
        role = MessageRole.USER if i % 2 == 0 else MessageRole.ASSISTANT
        saved.append(
            await store.chat.save_message(
                ChatMessage(session_id=session.id, role=role, content=text)
            )
        )
    return bot, session, saved


async def enqueue(store: Store, session: ChatSession, start: int, end: int) -> PendingExtraction:
    return await store.memory.save_pending_extraction(
        PendingExtraction(
            session_id=session.id, bot_id=session.bot_id, messages_start=start, messages_end=end
        )
    )


async def test_outage_backs_off_keeps_the_job_and_recovers(
    store: Store, server: FakeLlmServer, provider: AnthropicProvider
) -> None:
    clock = Clock()
    worker = ExtractionWorker(store, provider, clock=clock)
    bot, session, msgs = await conversation(store, "I live in Porto", "Nice!", "I love cats")
    job = await enqueue(store, session, 1, 3)

    server.enqueue(anthropic_error(529, "overloaded_error", "Overloaded"))
    report = await worker.run_once()
    assert (report.claimed, report.failed, report.completed) == (1, 1, 0)
    [failed] = await store.memory.list_pending_extractions()
    assert failed.id == job.id and failed.attempt_count == 1
    assert failed.error_message is not None and "Overloaded" in failed.error_message
    assert failed.next_attempt_at == clock.now + timedelta(seconds=30)

    # not due yet: nothing is claimed, nothing lost
    assert (await worker.run_once()).claimed == 0
    clock.advance(timedelta(seconds=31))
    server.enqueue(anthropic_error(503, "api_error", "down for maintenance"))
    assert (await worker.run_once()).failed == 1
    [failed] = await store.memory.list_pending_extractions()
    assert failed.attempt_count == 2
    assert failed.next_attempt_at == clock.now + timedelta(seconds=60)

    clock.advance(timedelta(seconds=61))
    server.enqueue(
        anthropic_message(
            facts_reply(
                {"fact": "Lives in Porto", "category": "fact", "importance": 4, "source_seq": 1},
                {"fact": "Loves cats", "category": "preference", "importance": 3, "source_seq": 3},
            )
        )
    )
    report = await worker.run_once()
    assert (report.completed, report.memories_saved) == (1, 2)
    assert await store.memory.list_pending_extractions() == []
    memories = {m.fact: m for m in await store.memory.get_memories(bot.id)}
    assert memories["Lives in Porto"].source_message_id == msgs[0].id
    assert memories["Loves cats"].source_message_id == msgs[2].id
    assert all(m.session_id == session.id for m in memories.values())


async def test_exhausted_job_stays_visible_and_can_be_retried(
    store: Store, server: FakeLlmServer, provider: AnthropicProvider
) -> None:
    clock = Clock()
    worker = ExtractionWorker(store, provider, clock=clock)
    bot, session, _ = await conversation(store, "I drink oat milk")
    job = await enqueue(store, session, 1, 1)
    for _ in range(MAX_EXTRACTION_ATTEMPTS):
        server.enqueue(anthropic_message("Sorry, I can't help with that."))  # no array: failure
        await worker.run_once()
        clock.advance(timedelta(hours=2))
    [exhausted] = await store.memory.list_pending_extractions()
    assert exhausted.exhausted and exhausted.attempt_count == MAX_EXTRACTION_ATTEMPTS
    assert exhausted.error_message is not None and "no JSON array" in exhausted.error_message
    assert await store.memory.get_pending_extractions(bot.id) == []
    assert (await worker.run_once()).claimed == 0  # exhausted jobs are not claimed

    retried = await retry_extraction(store, job.id)
    assert retried.attempt_count == 0
    server.enqueue(anthropic_message('[{"fact": "Drinks oat milk", "source_seq": 1}]'))
    report = await worker.run_once()
    assert report.memories_saved == 1
    assert [m.fact for m in await store.memory.get_memories(bot.id)] == ["Drinks oat milk"]


async def test_correction_supersedes_and_history_keeps_the_old_memory(
    store: Store, server: FakeLlmServer, provider: AnthropicProvider
) -> None:
    worker = ExtractionWorker(store, provider)
    bot, session, msgs = await conversation(
        store, "I live in Lisbon", "Lovely city.", "Actually I moved to Berlin", "Welcome!"
    )
    server.enqueue(anthropic_message('[{"fact": "Lives in Lisbon", "source_seq": 1}]'))
    await enqueue(store, session, 1, 2)
    await worker.run_once()
    [lisbon] = await store.memory.get_memories(bot.id)

    server.enqueue(
        anthropic_message(
            '[{"fact": "Lives in Berlin", "category": "correction", "importance": 4,'
            ' "source_seq": 3, "supersedes": "m1"}]'
        )
    )
    await enqueue(store, session, 3, 4)
    await worker.run_once()
    prompt = server.requests[-1].json["messages"][0]["content"]
    assert "[m1] (fact) Lives in Lisbon" in prompt

    [berlin] = await store.memory.get_memories(bot.id)
    assert berlin.fact == "Lives in Berlin" and berlin.source_message_id == msgs[2].id
    old = await store.memory.get_memory(lisbon.id)
    assert old is not None and old.superseded_by == berlin.id
    history = await store.memory.get_memory_history(lisbon.id)
    assert [e.event for e in history] == [MemoryEventKind.ADDED, MemoryEventKind.SUPERSEDED]
    assert history[1].related_memory_id == berlin.id


async def test_facts_equal_to_live_memories_are_not_saved_again(
    store: Store, server: FakeLlmServer, provider: AnthropicProvider
) -> None:
    worker = ExtractionWorker(store, provider)
    bot, session, _ = await conversation(store, "I like tea", "ok", "I really like tea")
    await store.memory.save_memory(
        MemoryEntry(
            bot_id=bot.id, fact="Likes tea.", category=MemoryCategory.PREFERENCE, importance=3
        )
    )
    server.enqueue(
        anthropic_message(
            '[{"fact": "likes   TEA", "source_seq": 1}, {"fact": "Likes tea!", "source_seq": 3},'
            ' {"fact": "Really likes tea", "source_seq": 3}]'
        )
    )
    await enqueue(store, session, 1, 3)
    report = await worker.run_once()
    assert report.memories_saved == 1
    facts = sorted(m.fact for m in await store.memory.get_memories(bot.id))
    assert facts == ["Likes tea.", "Really likes tea"]


async def test_provenance_points_at_existing_messages_of_the_session(
    store: Store, server: FakeLlmServer, provider: AnthropicProvider
) -> None:
    worker = ExtractionWorker(store, provider)
    bot, session, msgs = await conversation(
        store, "My name is Zoë 🚀", "Hi Zoë", "I work as a nurse", "Cool", "I have two cats"
    )
    server.enqueue(
        anthropic_message(
            '[{"fact": "Name is Zoë", "source_seq": 1}, {"fact": "Works as a nurse",'
            ' "source_seq": 3}, {"fact": "Has two cats", "source_seq": 500},'
            ' {"fact": "Said hi", "source_seq": "two"}]'
        )
    )
    await enqueue(store, session, 1, 5)
    await worker.run_once()
    memories = await store.memory.get_memories(bot.id)
    assert len(memories) == 4
    for m in memories:
        assert m.session_id == session.id
        assert m.source_message_id is not None
        source = await store.chat.get_message(m.source_message_id)
        assert source is not None and source.session_id == session.id
    by_fact = {m.fact: m.source_message_id for m in memories}
    assert by_fact["Name is Zoë"] == msgs[0].id
    assert by_fact["Works as a nurse"] == msgs[2].id
    assert by_fact["Has two cats"] == msgs[4].id  # out of range: last user message


async def test_a_worker_whose_lease_ran_out_cannot_duplicate(
    store: Store, server: FakeLlmServer, provider: AnthropicProvider
) -> None:
    clock = Clock()
    slow = ExtractionWorker(store, provider, clock=clock)
    _, session, _ = await conversation(store, "I live in Oslo")
    job = await enqueue(store, session, 1, 1)
    [claimed] = await store.memory.claim_pending_extractions(now=clock.now)
    clock.advance(timedelta(minutes=6))  # the first claimer's lease is over
    fast = ExtractionWorker(store, provider, clock=clock)
    server.enqueue(anthropic_message('[{"fact": "Lives in Oslo", "source_seq": 1}]'))
    assert (await fast.run_once()).memories_saved == 1
    server.enqueue(anthropic_message('[{"fact": "Lives in Oslo", "source_seq": 1}]'))
    report = await slow.run_once()  # nothing due
    assert report.claimed == 0
    from boternity.errors import NotFoundError

    with pytest.raises(NotFoundError):
        await slow.extract(claimed)  # the late worker finishing its stale claim
    assert [m.fact for m in await store.memory.get_memories_by_session(job.session_id)] == [
        "Lives in Oslo"
    ]


async def test_empty_range_completes_without_calling_the_model(
    store: Store, server: FakeLlmServer, provider: AnthropicProvider
) -> None:
    _, session, _ = await conversation(store, "   ")
    await enqueue(store, session, 1, 1)
    report = await ExtractionWorker(store, provider).run_once()
    assert report.completed == 1 and server.requests == []


async def test_run_forever_survives_a_failing_pass(
    store: Store, provider: AnthropicProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    _, session, _ = await conversation(store, "I live in Oslo")
    await enqueue(store, session, 1, 1)
    real_claim = store.memory.claim_pending_extractions
    calls = 0

    async def flaky_claim(**kwargs: object) -> list[PendingExtraction]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a bug in a pass")
        return await real_claim(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store.memory, "claim_pending_extractions", flaky_claim)
    task = asyncio.create_task(ExtractionWorker(store, provider).run_forever(interval=0.01))
    try:
        async with asyncio.timeout(10):
            while await store.memory.list_pending_extractions():  # noqa: ASYNC110
                await asyncio.sleep(0.02)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert calls >= 2


async def test_an_interrupted_pass_gives_its_claims_back_without_using_an_attempt(
    store: Store, server: FakeLlmServer, provider: AnthropicProvider
) -> None:
    """Ctrl+C while the model is thinking: the job is due again at once with its attempt
    returned, so the next `queue run` processes it instead of saying "No due jobs"."""
    import asyncio

    worker = ExtractionWorker(store, provider)
    bot, session, _ = await conversation(store, "I live in Porto", "Nice!")
    first = await enqueue(store, session, 1, 1)
    second = await enqueue(store, session, 2, 2)
    server.gate = asyncio.Event()  # the model call hangs until released
    task = asyncio.create_task(worker.run_once(batch=5))
    async with asyncio.timeout(10):
        while not server.requests:  # noqa: ASYNC110 (the server records from its own task)
            await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    server.gate.set()
    jobs = {j.id: j for j in await store.memory.list_pending_extractions()}
    assert set(jobs) == {first.id, second.id}
    for job in jobs.values():
        assert job.attempt_count == 0 and job.next_attempt_at <= utc_now()
    server.enqueue(anthropic_message(facts_reply({"fact": "Lives in Porto", "source_seq": 1})))
    server.enqueue(anthropic_message(facts_reply()))
    report = await worker.run_once()
    assert (report.claimed, report.completed) == (2, 2)
    assert [m.fact for m in await store.memory.get_memories(bot.id)] == ["Lives in Porto"]
