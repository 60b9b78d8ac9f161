"""Two extraction workers saving for one bot at the same time, on every backend: the duplicate
check and the insert are one atomic step per bot, so a fact is remembered once.

The fake model holds its replies until both workers have asked (``FakeLlmServer.gate``): both
have read the bot's memories before either saves, which is the race, in every trial.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import pytest

from boternity import Store, open_store
from boternity.errors import ConflictError
from boternity.llm import AnthropicProvider, RetryPolicy
from boternity.memory import ExtractionWorker, remember
from boternity.models import (
    Bot,
    ChatMessage,
    ChatSession,
    MemoryCategory,
    MemoryEntry,
    MessageRole,
)
from tests.fakes.llm_server import FakeLlmServer, anthropic_message, openai_completion
from tests.memory.test_worker import conversation, enqueue
from tests.test_multiprocess import finish, spawn

TRIALS = 5


@pytest.fixture
async def server() -> AsyncIterator[FakeLlmServer]:
    async with FakeLlmServer() as fake:
        yield fake


def provider(server: FakeLlmServer) -> AnthropicProvider:
    return AnthropicProvider(
        api_key="test-key", base_url=server.base_url, retry=RetryPolicy(max_retries=0)
    )


async def two_jobs(store: Store, *texts: str) -> Bot:
    """A bot with two sessions saying the same things, one queued job each."""
    bot, first, _ = await conversation(store, *texts)
    second = await store.chat.create_session(ChatSession(bot_id=bot.id, model="claude-test"))
    for i, text in enumerate(texts):
        role = MessageRole.USER if i % 2 == 0 else MessageRole.ASSISTANT
        await store.chat.save_message(ChatMessage(session_id=second.id, role=role, content=text))
    for session in (first, second):
        await enqueue(store, session, 1, len(texts))
    return bot


async def until_asked(server: FakeLlmServer, count: int) -> None:
    """Wait until the model has received ``count`` requests in all."""
    async with asyncio.timeout(60):
        while len(server.requests) < count:  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def race(stores: list[Store], server: FakeLlmServer, bot: Bot, reply: str) -> list[object]:
    """Both workers claim one job each, ask the model, and save once both have asked."""
    server.gate = asyncio.Event()
    asked = len(server.requests)
    server.enqueue(anthropic_message(reply), anthropic_message(reply))
    async with provider(server) as p1, provider(server) as p2:
        workers = [ExtractionWorker(s, p) for s, p in zip(stores, (p1, p2), strict=True)]
        runs = asyncio.gather(*(w.run_once(limit=1, bot_id=bot.id) for w in workers))
        await until_asked(server, asked + 2)
        server.gate.set()
        return list(await runs)


async def test_two_workers_on_two_stores_save_a_fact_once(
    store: Store, db_url: str, server: FakeLlmServer
) -> None:
    async with open_store(db_url) as second:
        for _ in range(TRIALS):
            bot = await two_jobs(store, "I live in Porto", "Nice")
            reports = await race(
                [store, second], server, bot, '[{"fact": "Lives in Porto", "source_seq": 1}]'
            )
            assert [r.completed for r in reports] == [1, 1]  # type: ignore[attr-defined]
            facts = [m.fact for m in await store.memory.get_memories(bot.id)]
            assert facts == ["Lives in Porto"]
            assert sorted(r.memories_saved for r in reports) == [0, 1]  # type: ignore[attr-defined]
            assert await store.memory.list_pending_extractions(bot_id=bot.id) == []


async def test_two_workers_correcting_one_memory_the_same_way_both_complete(
    store: Store, db_url: str, server: FakeLlmServer
) -> None:
    async with open_store(db_url) as second:
        for _ in range(TRIALS):
            bot = await two_jobs(store, "I moved to Porto", "Nice")
            old = await store.memory.save_memory(
                MemoryEntry(
                    bot_id=bot.id,
                    fact="Lives in Lisbon",
                    category=MemoryCategory.FACT,
                    importance=3,
                )
            )
            reply = json.dumps([{"fact": "Lives in Porto", "supersedes": "m1", "source_seq": 1}])
            reports = await race([store, second], server, bot, reply)
            assert [r.completed for r in reports] == [1, 1]  # type: ignore[attr-defined]
            [porto] = await store.memory.get_memories(bot.id)
            assert porto.fact == "Lives in Porto"
            stored_old = await store.memory.get_memory(old.id)
            assert stored_old is not None and stored_old.superseded_by == porto.id


async def test_concurrent_remember_saves_a_fact_once(store: Store, db_url: str) -> None:
    async with open_store(db_url) as second:
        for _ in range(TRIALS):
            bot = await store.bots.create_bot(Bot(name=f"Manual {uuid.uuid4().hex[:6]}"))
            outcomes = await asyncio.gather(
                *(remember(s, bot.id, "Allergic to shellfish") for s in [store, second] * 3),
                return_exceptions=True,
            )
            saved = [o for o in outcomes if isinstance(o, MemoryEntry)]
            refused = [o for o in outcomes if isinstance(o, ConflictError)]
            assert (len(saved), len(refused)) == (1, 5), outcomes
            assert [m.fact for m in await store.memory.get_memories(bot.id)] == [
                "Allergic to shellfish"
            ]


@pytest.mark.slow
async def test_two_worker_processes_save_a_fact_once(db_url: str, server: FakeLlmServer) -> None:
    reply = openai_completion('[{"fact": "Lives in Porto", "source_seq": 1}]')
    async with open_store(db_url) as store:
        for _ in range(3):
            bot = await two_jobs(store, "I live in Porto", "Nice")
            server.gate = asyncio.Event()
            asked = len(server.requests)
            server.enqueue(reply, reply)
            procs = [
                spawn("extract", db_url, server.openai_base_url, "--limit", "1") for _ in range(2)
            ]
            try:
                await until_asked(server, asked + 2)
                server.gate.set()
                printed = [await asyncio.to_thread(finish, p) for p in procs]
            finally:
                server.gate.set()
                for p in procs:
                    if p.poll() is None:
                        p.kill()
                        await asyncio.to_thread(p.communicate)
            assert sorted(printed) == [["1", "0"], ["1", "1"]]  # (completed, saved) each
            assert [m.fact for m in await store.memory.get_memories(bot.id)] == ["Lives in Porto"]
