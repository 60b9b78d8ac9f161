"""Fixture data for CLI tests, written through the library (``bnity chat`` does not exist yet)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from boternity import open_store
from boternity.ids import utc_now
from boternity.models import (
    Bot,
    ChatMessage,
    ChatSession,
    MemoryEntry,
    MessageRole,
    PendingExtraction,
    SessionStatus,
)

UNICODE = "Zoë 🚀 日本語"


@dataclass
class World:
    db: Path
    bot: Bot
    other_bot: Bot
    sessions: list[ChatSession] = field(default_factory=list)
    messages: dict[uuid.UUID, list[ChatMessage]] = field(default_factory=dict)
    memories: list[MemoryEntry] = field(default_factory=list)
    manual: MemoryEntry | None = None
    other_memory: MemoryEntry | None = None
    jobs: list[PendingExtraction] = field(default_factory=list)


async def build_world(db: Path) -> World:
    """Two bots; three sessions of the first (one unicode-titled, one untitled, one crashed);
    memories extracted from a session and one manual; two queued jobs (one exhausted)."""
    now = utc_now()
    async with open_store(db, readers=1) as store:
        bot = await store.bots.create_bot(
            Bot(name=f"Helper {UNICODE}", slug="helper", description="helps")
        )
        await store.bots.save_soul(bot.id, "You are helpful. ✨", message="first")
        other = await store.bots.create_bot(Bot(name="Other", slug="other"))
        world = World(db=db, bot=bot, other_bot=other)

        specs = [
            (f"Trip to Kyōto {UNICODE}", SessionStatus.COMPLETED, timedelta(hours=-3)),
            (None, SessionStatus.ACTIVE, timedelta(hours=-2)),
            ("Crashed one", SessionStatus.CRASHED, timedelta(hours=-1)),
        ]
        for title, status, offset in specs:
            started = now + offset
            # Ids from different milliseconds, as sessions started hours apart would have: two
            # UUIDv7s of one millisecond share 27 characters, and printed ids are their
            # shortest unique prefix (a burst of writes now fits in one millisecond).
            await asyncio.sleep(0.002)
            session = await store.chat.create_session(
                ChatSession(bot_id=bot.id, model="test-model", title=title, started_at=started)
            )
            msgs = []
            contents = [
                (MessageRole.USER, f"Hello {UNICODE}, I live in Zürich and love ramen 🍜"),
                (MessageRole.ASSISTANT, "Nice to meet you!\nRamen is great."),
                (MessageRole.USER, "Remember that my cat is called Ünal. " + "x" * 100),
            ]
            for i, (role, content) in enumerate(contents):
                msgs.append(
                    await store.chat.save_message(
                        ChatMessage(
                            session_id=session.id,
                            role=role,
                            content=content,
                            created_at=started + timedelta(minutes=i),
                            input_tokens=10 * (i + 1),
                            output_tokens=5 * (i + 1),
                        )
                    )
                )
            if status is not SessionStatus.ACTIVE:
                ended = (
                    started + timedelta(minutes=42) if status is SessionStatus.COMPLETED else None
                )
                session = await store.chat.update_session(
                    dataclasses.replace(session, status=status, ended_at=ended)
                )
            stored = await store.chat.get_session(session.id)
            assert stored is not None
            world.sessions.append(stored)
            world.messages[stored.id] = msgs

        first = world.sessions[0]
        src = world.messages[first.id][0]
        for fact, importance in ((f"Lives in Zürich {UNICODE}", 5), ("Loves ramen 🍜", 3)):
            world.memories.append(
                await store.memory.save_memory(
                    MemoryEntry(
                        bot_id=bot.id,
                        fact=fact,
                        category="fact",  # type: ignore[arg-type]
                        importance=importance,
                        session_id=first.id,
                        source_message_id=src.id,
                    )
                )
            )
        world.manual = await store.memory.save_memory(
            MemoryEntry(
                bot_id=bot.id,
                fact="Prefers short answers",
                category="preference",  # type: ignore[arg-type]
                importance=4,
                is_manual=True,
            )
        )
        world.other_memory = await store.memory.save_memory(
            MemoryEntry(bot_id=other.id, fact="Other bot fact", category="fact", importance=2)  # type: ignore[arg-type]
        )
        world.jobs.append(
            await store.memory.save_pending_extraction(
                PendingExtraction(
                    session_id=world.sessions[1].id,
                    bot_id=bot.id,
                    messages_start=1,
                    messages_end=3,
                )
            )
        )
        world.jobs.append(
            await store.memory.save_pending_extraction(
                PendingExtraction(
                    session_id=world.sessions[2].id,
                    bot_id=bot.id,
                    attempt_count=3,
                    error_message="LLM down: 503 Service Unavailable\nretry later",
                    last_attempt_at=now,
                )
            )
        )
    return world


def all_memory_ids(world: World) -> list[uuid.UUID]:
    extra = [m for m in (world.manual, world.other_memory) if m is not None]
    return [m.id for m in [*world.memories, *extra]]
