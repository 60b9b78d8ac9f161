"""The chat engine with the memory pipeline plugged in: queue -> worker -> recall -> prompt."""

from __future__ import annotations

from boternity import Store
from boternity.chat import ChatEngine
from boternity.llm import OfflineProvider
from boternity.memory import ExtractionWorker, MemoryRecall, remember
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


async def test_each_user_recalls_their_own_memories_and_the_bots(store: Store, bot: Bot) -> None:
    """Two users of one bot through the engine, the queue and the worker: what Ana said is
    hers (provenance exact, corrections supersede her own memories only) and never reaches
    Ben, while the bot's own memory reaches both."""
    shared = await remember(store, bot.id, "User works at Acme")
    async with OfflineProvider() as offline:
        engine = ChatEngine(store, offline, recall=MemoryRecall(store))
        async with engine:
            first = await engine.start_session(bot, user_id="ana")
            await first.ask("I live in Lisbon. I work at Initech.")
            await first.end()
            await ExtractionWorker(store, offline).run_once()
            second = await engine.start_session(bot, user_id="ana")
            moved = await second.ask("I moved to Porto.")
            await second.end()
            await ExtractionWorker(store, offline).run_once()
            bens = await engine.start_session(bot, user_id="ben")
            where = await bens.ask("Where do I live?")
            await bens.end()

    anas = {m.fact: m for m in await store.memory.get_memories(bot.id, user_id="ana")}
    assert set(anas) == {"User lives in Porto", "User works at Initech", "User works at Acme"}
    # Her correction of the bot's own memory is hers: the bot's stays live for everyone.
    assert anas["User works at Acme"] == await store.memory.get_memory(shared.id)
    assert anas["User works at Initech"].user_id == "ana"
    porto = anas["User lives in Porto"]
    assert (porto.user_id, porto.session_id) == ("ana", second.id)
    assert moved.seq is not None
    [said] = await store.chat.get_messages(second.id, offset=moved.seq - 2, limit=1)
    assert porto.source_message_id == said.id and said.content == "I moved to Porto."
    [lisbon] = [
        m
        for m in await store.memory.get_memories_by_session(first.id)
        if m.fact == "User lives in Lisbon"
    ]
    assert lisbon.superseded_by == porto.id
    # Ben's conversation knows the bot's memory and nothing of Ana's.
    assert "Lisbon" not in where.content and "Porto" not in where.content
    assert [m.fact for m in await store.memory.get_memories(bot.id, user_id="ben")] == [
        "User works at Acme"
    ]
    assert await store.memory.get_memories_by_session(bens.id) == []
