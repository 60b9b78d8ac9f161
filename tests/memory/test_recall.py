"""Recall: which memories reach the system prompt, within a token budget."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from boternity import Store
from boternity.embeddings import LocalEmbedder, OpenAIEmbedder
from boternity.errors import ConflictError
from boternity.llm import RetryPolicy
from boternity.memory import (
    EmbeddingBackfill,
    MemoryRecall,
    forget,
    memory_line,
    recall_memories,
    remember,
)
from boternity.memory.recall import PAGE
from boternity.models import Bot, MemoryCategory, MemoryEntry
from tests.fakes.llm_server import FakeLlmServer, openai_error


async def bot_with_memories(store: Store) -> Bot:
    bot = await store.bots.create_bot(Bot(name="Rememberer"))
    facts = [
        ("Has a severe peanut allergy", 5),
        ("Prefers answers in Portuguese", 5),
        ("Works as a night-shift nurse", 4),
        ("Has two cats named Miso and Tofu", 3),
        ("Is learning the violin", 2),
        ("Visited Kyoto in the spring of 2023", 1),
    ]
    for fact, importance in facts:
        await store.memory.save_memory(
            MemoryEntry(
                bot_id=bot.id, fact=fact, category=MemoryCategory.FACT, importance=importance
            )
        )
    return bot


async def test_everything_when_it_fits_most_important_first(store: Store) -> None:
    bot = await bot_with_memories(store)
    chosen = await recall_memories(store, bot.id, "hello", budget_tokens=10_000)
    assert [m.importance for m in chosen] == [5, 5, 4, 3, 2, 1]


async def test_small_budget_pulls_in_the_memory_the_turn_is_about(store: Store) -> None:
    bot = await bot_with_memories(store)
    all_live = await store.memory.get_memories(bot.id)
    one_line = max(len(memory_line(m)) for m in all_live) // 4 + 2
    budget = 3 * one_line  # room for about three of six
    plain = await recall_memories(store, bot.id, "how are you", budget_tokens=budget)
    assert "Visited Kyoto in the spring of 2023" not in [m.fact for m in plain]
    asked = await recall_memories(
        store, bot.id, "Any tips for my trip back to Kyoto?", budget_tokens=budget
    )
    facts = [m.fact for m in asked]
    assert facts[0] == "Visited Kyoto in the spring of 2023"
    assert "Has a severe peanut allergy" in facts  # the rest still by importance
    assert sum(len(memory_line(m)) // 4 + 2 for m in asked) <= budget + len(asked)


async def test_superseded_memories_are_never_recalled(store: Store) -> None:
    bot = await bot_with_memories(store)
    [kyoto] = await store.memory.search_memories(bot.id, "kyoto")
    await store.memory.supersede_memory(
        kyoto.id,
        MemoryEntry(
            bot_id=bot.id,
            fact="Visited Osaka, not Kyoto",
            category=MemoryCategory.CORRECTION,
            importance=1,
        ),
    )
    chosen = await recall_memories(store, bot.id, "kyoto", budget_tokens=10_000)
    assert kyoto.id not in {m.id for m in chosen}


async def test_recall_hook_gives_the_engine_prompt_lines(store: Store) -> None:
    bot = await bot_with_memories(store)
    lines = await MemoryRecall(store, budget_tokens=10_000)(bot, "hi", user_id=None)
    assert lines[0] in {
        "[fact] Has a severe peanut allergy",
        "[fact] Prefers answers in Portuguese",
    }
    assert len(lines) == 6
    assert await MemoryRecall(store, budget_tokens=0)(bot, "kyoto", user_id=None) == []


async def test_remember_is_manual_with_default_importance_and_refuses_duplicates(
    store: Store,
) -> None:
    bot = await store.bots.create_bot(Bot(name="Manual"))
    saved = await remember(store, bot.id, "  Allergic to   shellfish ")
    assert (saved.fact, saved.is_manual, saved.importance, saved.session_id) == (
        "Allergic to shellfish",
        True,
        4,
        None,
    )
    with pytest.raises(ConflictError, match="already remembered"):
        await remember(store, bot.id, "allergic to shellfish.")
    assert await forget(store, bot.id) == 1
    assert await store.memory.get_memories(bot.id) == []


async def test_remember_names_a_bad_category(store: Store) -> None:
    from boternity.errors import ValidationError

    bot = await store.bots.create_bot(Bot(name="Strict"))
    with pytest.raises(ValidationError, match="category: unknown value 'gossip'"):
        await remember(store, bot.id, "x", category="gossip")
    assert (await remember(store, bot.id, "Likes tea", category="preference")).category == (
        MemoryCategory.PREFERENCE
    )


# --- recall by meaning, and reading no more than could fit ----------------------------------

#: Filler the size of real memories: together far more than the default budget of 800 tokens.
FILLER = [f"Mentioned a detail of the quarterly report, item {i}" for i in range(300)]


async def crowded_bot(store: Store, embedder: LocalEmbedder) -> tuple[Bot, MemoryEntry]:
    """300 important memories and one unimportant about an instrument, all embedded."""
    bot = await store.bots.create_bot(Bot(name="Crowded"))
    for fact in FILLER:
        await store.memory.save_memory(
            MemoryEntry(bot_id=bot.id, fact=fact, category=MemoryCategory.FACT, importance=5)
        )
    cello = await store.memory.save_memory(
        MemoryEntry(
            bot_id=bot.id,
            fact="Plays the cello in an orchestra",
            category=MemoryCategory.FACT,
            importance=1,
        )
    )
    assert (await EmbeddingBackfill(store, embedder).run(bot_id=bot.id)).embedded == 301
    return bot, cello


async def test_with_an_embedder_the_turn_recalls_a_memory_sharing_no_word_with_it(
    store: Store, local_embedder: LocalEmbedder
) -> None:
    bot, cello = await crowded_bot(store, local_embedder)
    question = "which instrument should I practise tonight?"
    by_meaning = await MemoryRecall(store, embedder=local_embedder)(bot, question, user_id=None)
    assert by_meaning[0] == memory_line(cello)
    assert len(by_meaning) > 1  # the rest of the budget: the most important ones
    by_words = await MemoryRecall(store)(bot, question, user_id=None)
    assert memory_line(cello) not in by_words
    assert by_words[0] == memory_line((await store.memory.get_memories(bot.id, limit=1))[0])


async def test_an_embedder_that_is_down_leaves_recall_by_words(
    store: Store, local_embedder: LocalEmbedder
) -> None:
    bot, cello = await crowded_bot(store, local_embedder)
    async with (
        FakeLlmServer(default=lambda _: openai_error(503, "down")) as fake,
        OpenAIEmbedder(
            api_key="k", base_url=fake.openai_base_url, retry=RetryPolicy(max_retries=0)
        ) as down,
    ):
        lines = await MemoryRecall(store, embedder=down)(bot, "the orchestra cello", user_id=None)
    assert lines[0] == memory_line(cello)  # found by its words
    assert fake.requests, "the embedder was asked"


class CountingReads:
    """The store's own ``get_memories``, counting the rows each call returned."""

    def __init__(self, store: Store) -> None:
        self.read = store.memory.get_memories
        self.rows: list[int] = []

    async def __call__(self, bot_id: uuid.UUID, **kwargs: Any) -> list[MemoryEntry]:
        found = await self.read(bot_id, **kwargs)
        self.rows.append(len(found))
        return found


async def test_a_turn_reads_what_could_fit_not_every_memory(
    store: Store, local_embedder: LocalEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot, _ = await crowded_bot(store, local_embedder)
    reads = CountingReads(store)
    monkeypatch.setattr(store.memory, "get_memories", reads)
    lines = await MemoryRecall(store, embedder=local_embedder)(bot, "what do I play?", user_id=None)
    assert reads.rows == [PAGE]  # one page of the most important: more than fits
    assert 0 < len(lines) < PAGE
    # Lines cheaper than the budget: one more read, bounded by the budget, tells all fit.
    reads.rows.clear()
    tiny = await recall_memories(
        store, bot.id, "hi", budget_tokens=1_000, count_tokens=lambda _: 1, search=None
    )
    assert reads.rows == [PAGE, 301] and len(tiny) == 301
    reads.rows.clear()
    some = await recall_memories(
        store, bot.id, "hi", budget_tokens=250, count_tokens=lambda _: 0, embedder=local_embedder
    )
    assert reads.rows == [PAGE, 251] and len(some) == 250


async def test_recall_by_meaning_keeps_the_users_scope(
    store: Store, local_embedder: LocalEmbedder
) -> None:
    bot, cello = await crowded_bot(store, local_embedder)  # the bot's own memories
    anas = await store.memory.save_memory(
        MemoryEntry(bot_id=bot.id, fact="Ana plays the violin in a quartet",
                    category=MemoryCategory.FACT, importance=1, user_id="ana")
    )  # fmt: skip
    await EmbeddingBackfill(store, local_embedder).run(bot_id=bot.id)
    recall = MemoryRecall(store, embedder=local_embedder)
    question = "which instrument should I practise tonight?"
    for_ana = await recall(bot, question, user_id="ana")
    assert {memory_line(anas), memory_line(cello)} <= set(for_ana[:2])
    for user in ("ben", None):
        seen = await recall(bot, question, user_id=user)
        assert seen[0] == memory_line(cello) and memory_line(anas) not in seen
