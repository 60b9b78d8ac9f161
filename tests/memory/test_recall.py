"""Recall: which memories reach the system prompt, within a token budget."""

from __future__ import annotations

import pytest

from boternity import Store
from boternity.errors import ConflictError
from boternity.memory import MemoryRecall, forget, memory_line, recall_memories, remember
from boternity.models import Bot, MemoryCategory, MemoryEntry


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
