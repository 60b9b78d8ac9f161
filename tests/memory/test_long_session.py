"""One long session through periodic, crash and final extraction: every message is
extracted once, and facts said again and again are remembered once."""

from __future__ import annotations

import asyncio

import pytest

from boternity import Store
from boternity.chat import ChatEngine
from boternity.llm import AnthropicProvider, OfflineProvider
from boternity.memory import ExtractionWorker, MemoryRecall
from boternity.memory.extraction import normalise
from boternity.models import Bot, MemoryCategory, MemoryEntry, SessionStatus
from tests.chat.test_processes import Worker, store_url
from tests.fakes.llm_server import FakeLlmServer

pytestmark = pytest.mark.slow


async def drained(store: Store, bot: Bot) -> None:
    """Wait for the background worker to empty the bot's queue."""
    async with asyncio.timeout(10):
        # Polling: the work happens in the engine's own task, with no event to wait on.
        while await store.memory.list_pending_extractions(bot_id=bot.id):  # noqa: ASYNC110
            await asyncio.sleep(0.05)


SAYINGS = ["My name is Ana.", "I live in Lisbon.", "I love cats.", "How are you today?"]


async def test_periodic_crash_and_final_extraction_never_duplicate(store: Store, bot: Bot) -> None:
    # Process 1 chats 25 turns (periodic jobs at turns 10 and 20), then is killed.
    doomed = await Worker.spawn(
        store_url(store), str(bot.id), "--turns", "25", "--hold",
        *(arg for text in SAYINGS for arg in ("--say", text)),
    )  # fmt: skip
    try:
        session_id = (await doomed.expect("session"))[1]
        await doomed.expect("holding")
    finally:
        await doomed.kill()
    periodic = await store.memory.list_pending_extractions(bot_id=bot.id)
    assert [(j.messages_start, j.messages_end) for j in periodic] == [(1, 20), (21, 40)]

    async with OfflineProvider() as offline:
        async with ChatEngine(store, offline) as engine:  # recovery queues the rest
            assert [str(s.id) for s in await engine.start()] == []  # ran on enter
        session = next(s for s in await store.chat.list_sessions(bot.id) if str(s.id) == session_id)
        assert session.status is SessionStatus.CRASHED
        jobs = await store.memory.list_pending_extractions(bot_id=bot.id)
        ranges = sorted((j.messages_start, j.messages_end) for j in jobs)
        assert ranges == [(1, 20), (21, 40), (41, 50)]

        report = await ExtractionWorker(store, offline).run_once()
    assert (report.completed, report.failed) == (3, 0)
    live = await store.memory.get_memories(bot.id)
    keys = [normalise(m.fact) for m in live]
    assert len(keys) == len(set(keys)) == 3, keys
    for m in live:  # remembered from where it was first said
        assert m.source_message_id is not None
        source = await store.chat.get_message(m.source_message_id)
        assert source is not None and source.seq is not None and source.seq <= 20


async def test_engine_worker_drains_the_queue_in_the_background(store: Store, bot: Bot) -> None:
    async with OfflineProvider() as offline:
        worker = ExtractionWorker(store, offline)
        async with ChatEngine(store, offline, worker=worker, worker_interval=0.05) as engine:
            first = await engine.start_session(bot)
            await first.ask("I live in Porto and I love jazz.")
            await first.end()  # the final job is queued, and the background worker takes it
            await drained(store, bot)
            facts = {m.fact for m in await store.memory.get_memories(bot.id)}
            assert facts == {"User lives in Porto", "User likes jazz"}
        assert engine._background == set()  # cancelled and awaited on close


async def test_session_start_processes_that_bots_pending_jobs(store: Store, bot: Bot) -> None:
    async with OfflineProvider() as offline:
        async with ChatEngine(store, offline) as engine:  # no worker: jobs stay queued
            first = await engine.start_session(bot)
            await first.ask("My name is Zoë.")
            await first.end()
        assert len(await store.memory.list_pending_extractions(bot_id=bot.id)) == 1
        # a long interval: only the start-of-session pass can have done the work
        worker = ExtractionWorker(store, offline)
        async with ChatEngine(store, offline, worker=worker, worker_interval=3600) as engine:
            await asyncio.sleep(0.2)  # the engine-wide pass at start
            second = await engine.start_session(bot)
            await drained(store, bot)
            assert [m.fact for m in await store.memory.get_memories(bot.id)] == [
                "User's name is Zoë"
            ]
            await second.end()


async def test_the_engine_stops_its_worker_and_runs_a_sessions_final_job_on_request(
    store: Store, bot: Bot
) -> None:
    async with OfflineProvider() as offline:
        worker = ExtractionWorker(store, offline)
        async with ChatEngine(
            store, offline, worker=worker, worker_interval=3600, start_worker=False
        ) as engine:
            assert engine.worker_task is None  # waits for start_worker()
            engine.start_worker()
            loop = engine.worker_task
            assert loop is not None and not loop.done()
            live = await engine.start_session(bot)
            await live.ask("I live in Lima.")
            ended = await live.end()
            job = live.final_job
            assert job is not None and job.session_id == ended.id
            assert (job.messages_start, job.messages_end) == (1, 2)
            report = await engine.final_extraction(live)
            assert loop.cancelled() and engine.worker_task is None
            assert (report.claimed, report.completed, report.memories_saved) == (1, 1, 1)
            assert await store.memory.list_pending_extractions(bot_id=bot.id) == []
            again = await engine.resume_session(ended.id)
            await again.end()
            assert again.final_job is None  # nothing new was said


async def test_a_turn_about_a_topic_pulls_its_memory_into_a_small_prompt_budget(
    store: Store, bot: Bot
) -> None:
    facts = [(f"Important fact number {i} about budgeting spreadsheets", 5) for i in range(12)]
    facts.append(("Once climbed Mount Fuji at sunrise with old friends from university", 1))
    for fact, importance in facts:
        await store.memory.save_memory(
            MemoryEntry(
                bot_id=bot.id, fact=fact, category=MemoryCategory.FACT, importance=importance
            )
        )
    async with (
        FakeLlmServer() as server,
        AnthropicProvider(api_key="test-key", base_url=server.base_url) as provider,
    ):
        recall = MemoryRecall(store, budget_tokens=60)  # room for three or four lines
        async with ChatEngine(store, provider, recall=recall) as engine:
            live = await engine.start_session(bot)
            await live.ask("Hello there")
            await live.ask("I want to climb Fuji again, any tips?")
            await live.end()
    chats = [r.json for r in server.requests if "<identity>" in str(r.json.get("system"))]
    first_system, second_system = chats[0]["system"], chats[-1]["system"]
    assert "Mount Fuji" not in first_system
    assert "budgeting spreadsheets" in first_system
    assert "Mount Fuji" in second_system
    assert "budgeting spreadsheets" in second_system  # the rest by importance, within budget
