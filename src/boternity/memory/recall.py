"""Choosing which memories go into the system prompt, within a token budget.

All live memories the conversation may see (its user's and the bot's own, see
docs/users.md) when they fit, most important first. When they don't, the memories most
relevant to the current user turn come first (``MemorySearch``: by meaning and shared words
with an embedder, by shared words without), then the rest by importance. A turn reads only
as many memories as could fit (and the search's hits), never every memory of a big bot.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from boternity.embeddings.base import Embedder
from boternity.llm.base import estimate_tokens
from boternity.memory.search import MemorySearch
from boternity.models import Bot, MemoryEntry
from boternity.store import Store

RELEVANT_LIMIT = 20
#: The most important memories are read this many at a time: one read fills a usual budget
#: (800 tokens hold about 50 lines), and tells whether the bot has more.
PAGE = 100


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
    embedder: Embedder | None = None,
    search: MemorySearch | None = None,
) -> list[MemoryEntry]:
    """The memories to recall for ``user_text`` in a conversation with ``user_id`` (None: a
    session without a user), within ``budget_tokens``: all the live memories it may see when
    they fit, else the relevant ones first, then by importance. ``search`` (else one made
    with ``embedder``) finds the relevant ones."""

    def cost(m: MemoryEntry) -> int:
        return count_tokens(memory_line(m)) + 1

    important, complete = await _most_important(store, bot_id, user_id, budget_tokens, cost)
    if complete and sum(map(cost, important)) <= budget_tokens:
        return important
    relevant: list[MemoryEntry] = []
    if user_text.strip():
        search = search or MemorySearch(store, embedder)
        found = await search.search(bot_id, user_text, limit=RELEVANT_LIMIT, user_id=user_id)
        relevant = found.memories
    chosen: list[MemoryEntry] = []
    taken: set[uuid.UUID] = set()
    used = 0
    for m in [*relevant, *important]:
        price = cost(m)
        if m.id in taken or used + price > budget_tokens:
            continue
        chosen.append(m)
        taken.add(m.id)
        used += price
    return chosen


async def _most_important(
    store: Store,
    bot_id: uuid.UUID,
    user_id: str | None,
    budget_tokens: int,
    cost: Callable[[MemoryEntry], int],
) -> tuple[list[MemoryEntry], bool]:
    """The most important live memories ``user_id`` may see, as many as the budget could
    hold, and whether they are all of them. A line costs at least one token, so no more than
    ``budget_tokens`` lines ever fit: a second, bigger read happens only when a page of
    lines is cheaper than the budget."""
    page = await store.memory.get_memories(bot_id, user_id=user_id, limit=PAGE)
    if len(page) < PAGE or sum(map(cost, page)) > budget_tokens:
        return page, len(page) < PAGE
    wider = await store.memory.get_memories(bot_id, user_id=user_id, limit=budget_tokens + 1)
    return wider, len(wider) <= budget_tokens


class MemoryRecall:
    """The chat engine's recall hook: memory lines for the system prompt of each turn, from
    the memories the session's user may see.

    ``budget_tokens`` caps what the memories may cost (estimated like the rest of the
    prompt); within it, what the user just said decides which memories come first: found by
    meaning and shared words with an ``embedder`` (the caller owns it), by shared words
    without one (or while it fails).
    """

    def __init__(
        self,
        store: Store,
        *,
        budget_tokens: int = 800,
        count_tokens: Callable[[str], int] = estimate_tokens,
        embedder: Embedder | None = None,
    ) -> None:
        self.store = store
        self.budget_tokens = budget_tokens
        self.count_tokens = count_tokens
        self.search = MemorySearch(store, embedder)

    async def __call__(self, bot: Bot, user_text: str, /, *, user_id: str | None) -> list[str]:
        chosen = await recall_memories(
            self.store,
            bot.id,
            user_text,
            budget_tokens=self.budget_tokens,
            user_id=user_id,
            count_tokens=self.count_tokens,
            search=self.search,
        )
        return [memory_line(m) for m in chosen]
