"""Choosing which memories go into the system prompt, within a token budget.

All live memories the conversation may see (its user's and the bot's own, see
docs/users.md) when they fit, most important first. When they don't, memories relevant to the
current user turn (full-text search) come first, then the rest by importance.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from boternity.llm.base import estimate_tokens
from boternity.models import Bot, MemoryEntry
from boternity.store import Store

RELEVANT_LIMIT = 20


def memory_line(memory: MemoryEntry) -> str:
    """How a memory appears in the prompt's memories section."""
    return f"[{memory.category.value}] {memory.fact}"


async def recall_memories(
    store: Store,
    bot_id: uuid.UUID,
    user_text: str,
    *,
    budget_tokens: int,
    user_id: str | None = None,
    count_tokens: Callable[[str], int] = estimate_tokens,
) -> list[MemoryEntry]:
    """What to recall for a conversation with ``user_id`` (None: a session without a user)."""
    live = await store.memory.get_memories(bot_id, user_id=user_id)
    cost = {m.id: count_tokens(memory_line(m)) + 1 for m in live}
    if sum(cost.values()) <= budget_tokens:
        return live
    relevant = (
        await store.memory.search_memories(bot_id, user_text, user_id=user_id, limit=RELEVANT_LIMIT)
        if user_text.strip()
        else []
    )
    chosen: list[MemoryEntry] = []
    taken: set[uuid.UUID] = set()
    used = 0
    for m in [*relevant, *live]:
        price = cost.get(m.id, count_tokens(memory_line(m)) + 1)
        if m.id in taken or used + price > budget_tokens:
            continue
        chosen.append(m)
        taken.add(m.id)
        used += price
    return chosen


class MemoryRecall:
    """The chat engine's recall hook: memory lines for the system prompt of each turn, from
    the memories the session's user may see.

    ``budget_tokens`` caps what the memories may cost (estimated like the rest of the
    prompt); within it, what the user just said decides which memories come first.
    """

    def __init__(
        self,
        store: Store,
        *,
        budget_tokens: int = 800,
        count_tokens: Callable[[str], int] = estimate_tokens,
    ) -> None:
        self.store = store
        self.budget_tokens = budget_tokens
        self.count_tokens = count_tokens

    async def __call__(self, bot: Bot, user_text: str, /, *, user_id: str | None) -> list[str]:
        chosen = await recall_memories(
            self.store,
            bot.id,
            user_text,
            budget_tokens=self.budget_tokens,
            user_id=user_id,
            count_tokens=self.count_tokens,
        )
        return [memory_line(m) for m in chosen]
