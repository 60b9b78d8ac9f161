"""The offline provider answers boternity's own extraction requests usefully (for the demo)."""

from __future__ import annotations

from boternity import Store
from boternity.llm import OfflineProvider
from boternity.memory import ExtractionWorker
from boternity.models import Bot, ChatMessage, ChatSession, MessageRole, PendingExtraction


async def test_offline_extraction_has_provenance_and_supersedes_a_move(store: Store) -> None:
    bot = await store.bots.create_bot(Bot(name="Offline"))
    session = await store.chat.create_session(ChatSession(bot_id=bot.id, model="offline"))
    lines = [
        "Hi, my name is Ana",
        "Hi Ana! I live in the cloud myself.",
        "I live in Lisbon and I love cats",
        "Nice!",
        "Actually I moved to Berlin",
        "Welcome to Berlin.",
    ]
    saved = []
    for i, text in enumerate(lines):
        role = MessageRole.USER if i % 2 == 0 else MessageRole.ASSISTANT
        saved.append(
            await store.chat.save_message(
                ChatMessage(session_id=session.id, role=role, content=text)
            )
        )
    for start, end in ((1, 4), (5, 6)):
        await store.memory.save_pending_extraction(
            PendingExtraction(
                session_id=session.id, bot_id=bot.id, messages_start=start, messages_end=end
            )
        )
    report = await ExtractionWorker(store, OfflineProvider()).run_once(batch=1)
    assert (report.completed, report.superseded) == (2, 1)
    live = {m.fact: m for m in await store.memory.get_memories(bot.id)}
    assert set(live) == {"User's name is Ana", "User likes cats", "User lives in Berlin"}
    assert live["User's name is Ana"].source_message_id == saved[0].id
    assert live["User likes cats"].source_message_id == saved[2].id
    assert live["User lives in Berlin"].source_message_id == saved[4].id
    every = await store.memory.get_memories(bot.id, include_superseded=True)
    [lisbon] = [m for m in every if m.fact == "User lives in Lisbon"]
    assert lisbon.superseded_by == live["User lives in Berlin"].id
    # the assistant's "I live in the cloud" is not a fact about the user
    assert all("cloud" not in m.fact for m in every)
