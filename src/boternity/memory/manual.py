"""Memories the user states by hand: the same storage path as extracted ones."""

from __future__ import annotations

import uuid

from boternity.models import MemoryCategory, MemoryEntry, check_enum
from boternity.store import Store

MANUAL_IMPORTANCE = 4


async def remember(
    store: Store,
    bot_id: uuid.UUID,
    fact: str,
    *,
    category: MemoryCategory | str = MemoryCategory.FACT,
    importance: int = MANUAL_IMPORTANCE,
    session_id: uuid.UUID | None = None,
    user_id: str | None = None,
) -> MemoryEntry:
    """Save a manual memory: ``user_id``'s (it must be the session's user when
    ``session_id`` is given), or the bot's own, seen by every conversation, when None.
    ConflictError when a conversation with that user already recalls the same fact."""
    kind = check_enum(MemoryCategory, category, "category")
    entry = MemoryEntry(
        bot_id=bot_id,
        fact=" ".join(fact.split()),
        category=kind,
        importance=importance,
        session_id=session_id,
        is_manual=True,
        user_id=user_id,
    )
    # The store checks for the same live fact and inserts in one step: two concurrent
    # remember() calls cannot both save it.
    return await store.memory.save_memory(entry, unique=True)


async def forget(store: Store, bot_id: uuid.UUID) -> int:
    """Delete every memory of the bot (each deletion is kept in the memory history)."""
    return await store.memory.delete_all_memories(bot_id)
