"""The chat engine with the memory pipeline plugged in: queue -> worker -> recall -> prompt."""

from __future__ import annotations

from boternity import Store
from boternity.chat import ChatEngine
from boternity.llm import OfflineProvider
from boternity.memory import ExtractionWorker, MemoryRecall
from boternity.models import Bot


async def test_what_one_session_learned_is_recalled_in_the_next(store: Store, bot: Bot) -> None:
    async with OfflineProvider() as offline:
        async with ChatEngine(store, offline) as engine:
            first = await engine.start_session(bot, greet=True)
            await first.ask("Hi! My name is Bob and I live in Paris.")
            await first.end()  # queues the final extraction of 1..3

        report = await ExtractionWorker(store, offline).run_once()
        assert report is not None
        assert await store.memory.list_pending_extractions(bot_id=bot.id) == []
        facts = [m.fact for m in await store.memory.get_memories(bot.id)]
        assert any("Bob" in fact for fact in facts)
        memories = await store.memory.get_memories_by_session(first.id)
        assert memories and all(m.session_id == first.id for m in memories)

        async with ChatEngine(store, offline, recall=MemoryRecall(store)) as engine:
            second = await engine.start_session(bot)
            reply = await second.ask("What is my name?")
            await second.end()
    assert "Bob" in reply.content
