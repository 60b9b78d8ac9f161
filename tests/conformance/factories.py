"""Small builders for the conformance suite: fresh ids everywhere, so tests never collide."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from boternity import Store
from boternity.models import (
    Bot,
    ChatMessage,
    ChatSession,
    ContextSummary,
    MemoryEntry,
    PendingExtraction,
)

T0 = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """A fixed instant, ``seconds`` after T0: tests that check order never depend on the clock."""
    return T0 + timedelta(seconds=seconds)


def bot(**kw: Any) -> Bot:
    suffix = uuid.uuid4().hex[:12]
    return Bot(**{"name": f"Bot {suffix}", **kw})


def session(bot_id: uuid.UUID, **kw: Any) -> ChatSession:
    return ChatSession(**{"bot_id": bot_id, "model": "test-model", **kw})


def message(session_id: uuid.UUID, content: str = "hello", **kw: Any) -> ChatMessage:
    return ChatMessage(**{"session_id": session_id, "role": "user", "content": content, **kw})


def memory(bot_id: uuid.UUID, fact: str = "likes tea", **kw: Any) -> MemoryEntry:
    return MemoryEntry(
        **{"bot_id": bot_id, "fact": fact, "category": "fact", "importance": 3, **kw}
    )


def summary(session_id: uuid.UUID, start: int, end: int, **kw: Any) -> ContextSummary:
    defaults = {"summary": f"summary {start}..{end}", "token_count": 10}
    return ContextSummary(
        **{"session_id": session_id, "messages_start": start, "messages_end": end, **defaults, **kw}
    )


def pending(bot_id: uuid.UUID, session_id: uuid.UUID, **kw: Any) -> PendingExtraction:
    return PendingExtraction(**{"bot_id": bot_id, "session_id": session_id, **kw})


async def new_bot(store: Store, **kw: Any) -> Bot:
    return await store.bots.create_bot(bot(**kw))


async def new_session(store: Store, bot_id: uuid.UUID | None = None, **kw: Any) -> ChatSession:
    if bot_id is None:
        bot_id = (await new_bot(store)).id
    return await store.chat.create_session(session(bot_id, **kw))


async def add_messages(store: Store, session_id: uuid.UUID, n: int) -> list[ChatMessage]:
    return [await store.chat.save_message(message(session_id, f"m{i}")) for i in range(n)]
