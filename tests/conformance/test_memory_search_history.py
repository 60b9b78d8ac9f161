"""search_memories and the memory history, on every backend."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from boternity import Store
from boternity.errors import NotFoundError, ValidationError
from boternity.models import (
    Bot,
    ChatSession,
    MemoryActor,
    MemoryCategory,
    MemoryEntry,
    MemoryEventKind,
    PendingExtraction,
)


def memory(
    bot_id: uuid.UUID,
    fact: str,
    *,
    session_id: uuid.UUID | None = None,
    is_manual: bool = False,
) -> MemoryEntry:
    return MemoryEntry(
        bot_id=bot_id,
        fact=fact,
        category=MemoryCategory.FACT,
        importance=3,
        session_id=session_id,
        is_manual=is_manual,
    )


async def seeded(store: Store) -> tuple[Bot, dict[str, MemoryEntry]]:
    bot = await store.bots.create_bot(Bot(name="Searcher"))
    other = await store.bots.create_bot(Bot(name="Other"))
    facts = {
        "berlin": "Moved to Berlin in 2024",
        "tea": "Prefers green tea over coffee",
        "zoe": "Her sister Zoë plays the cello",
        "cats": "Has two cats named Miso and Tofu",
        "work": "Works as a nurse on night shifts",
    }
    saved = {k: await store.memory.save_memory(memory(bot.id, v)) for k, v in facts.items()}
    await store.memory.save_memory(memory(other.id, "Also moved to Berlin"))
    return bot, saved


async def test_search_finds_memories_sharing_a_word_with_the_query(store: Store) -> None:
    bot, saved = await seeded(store)
    found = await store.memory.search_memories(bot.id, "Actually I'm in Berlin now")
    assert [m.id for m in found] == [saved["berlin"].id]
    both = await store.memory.search_memories(bot.id, "cats and tea")
    assert {m.id for m in both} == {saved["cats"].id, saved["tea"].id}


async def test_what_an_apostrophe_leaves_of_a_word_matches_nothing(store: Store) -> None:
    """ "s" of "What's" is no word: it would match every possessive ("Ana's") on SQLite."""
    bot = await store.bots.create_bot(Bot(name="Possessive"))
    for fact in ("Ana's cat is called Miso", "Don't call before 9", "You're a night owl"):
        await store.memory.save_memory(memory(bot.id, fact))
    for query in ("What's my occupation?", "I'm fine, I'd say", "we'll see, they've gone"):
        assert await store.memory.search_memories(bot.id, query) == [], query
    [cat] = await store.memory.search_memories(bot.id, "What's Ana's pet, a cat?")
    assert cat.fact == "Ana's cat is called Miso"


async def test_search_stems_and_folds_case(store: Store) -> None:
    bot, saved = await seeded(store)
    assert [m.id for m in await store.memory.search_memories(bot.id, "WORKING")] == [
        saved["work"].id
    ]
    assert [m.id for m in await store.memory.search_memories(bot.id, "plays")] == [saved["zoe"].id]


@pytest.mark.parametrize(
    ("fact", "queries"),
    [
        ("Her sister Zoë plays the cello", ["zoe", "Zoë", "ZOË", "Zoe\u0308"]),
        ("Her friend zoe plays the cello", ["zoe", "Zoë", "ZOË", "Zoe\u0308"]),
        ("Her aunt Zoe\u0308 plays the cello", ["zoe", "Zoë"]),  # decomposed in the fact
        ("Ordered a crème brûlée at the Café", ["creme", "brulee", "cafe", "CAFÉ"]),
        ("Lives in São Paulo, near Peñarol", ["sao", "penarol", "SÃO"]),
        ("Reads Dvořák and Ångström", ["dvorak", "angstrom", "ÅNGSTRÖM"]),
    ],
)
async def test_search_folds_diacritics_both_ways_on_every_backend(
    store: Store, fact: str, queries: list[str]
) -> None:
    bot = await store.bots.create_bot(Bot(name="Accents"))
    saved = await store.memory.save_memory(memory(bot.id, fact))
    await store.memory.save_memory(memory(bot.id, "Unrelated fact about tea"))
    for query in queries:
        found = await store.memory.search_memories(bot.id, query)
        assert [m.id for m in found] == [saved.id], query


async def test_search_keeps_letters_that_are_not_accented_forms_distinct(store: Store) -> None:
    # ø, ß, æ and ł have no decomposition: neither backend folds them (so both agree).
    bot = await store.bots.create_bot(Bot(name="Letters"))
    await store.memory.save_memory(memory(bot.id, "Søren lives on Hauptstraße"))
    for query in ("soren", "hauptstrasse"):
        assert await store.memory.search_memories(bot.id, query) == []
    assert len(await store.memory.search_memories(bot.id, "Søren")) == 1


async def test_search_is_scoped_to_the_bot_and_respects_limit(store: Store) -> None:
    bot, _ = await seeded(store)
    found = await store.memory.search_memories(bot.id, "berlin tea cats nurse cello")
    assert len(found) == 5
    assert all(m.bot_id == bot.id for m in found)
    assert len(await store.memory.search_memories(bot.id, "berlin tea cats", limit=2)) == 2
    assert await store.memory.search_memories(bot.id, "berlin", limit=0) == []


async def test_search_hides_superseded_memories_unless_asked(store: Store) -> None:
    bot, saved = await seeded(store)
    new = await store.memory.supersede_memory(saved["berlin"].id, memory(bot.id, "Moved to Paris"))
    assert await store.memory.search_memories(bot.id, "berlin") == []
    old = await store.memory.search_memories(bot.id, "berlin", include_superseded=True)
    assert [m.id for m in old] == [saved["berlin"].id]
    assert [m.id for m in await store.memory.search_memories(bot.id, "paris")] == [new.id]


async def test_search_sees_deletes(store: Store) -> None:
    bot, saved = await seeded(store)
    await store.memory.delete_memory(saved["tea"].id)
    assert await store.memory.search_memories(bot.id, "tea") == []


HOSTILE = [
    "",
    "   ",
    '"',
    "'",
    'tea" OR "x',
    "*",
    "NEAR(a b)",
    "berlin AND",
    "(((",
    "-berlin",
    "'; DROP TABLE session_memories; --",
    "a & b | !c <-> d",
    ":*",
    "col:berlin",
    "^berlin",
    "\\",
    "🚀🚀",
    "the of and",
]


@pytest.mark.parametrize("query", HOSTILE)
async def test_hostile_queries_never_raise(store: Store, query: str) -> None:
    bot, _ = await seeded(store)
    found = await store.memory.search_memories(bot.id, query)
    assert all(m.bot_id == bot.id for m in found)


async def test_hostile_query_still_matches_its_words(store: Store) -> None:
    bot, saved = await seeded(store)
    found = await store.memory.search_memories(bot.id, '"berlin" OR (tea* AND -coffee)')
    assert {saved["berlin"].id, saved["tea"].id} <= {m.id for m in found}
    assert await store.memory.get_memory(saved["berlin"].id) is not None


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(query=st.text(max_size=60))
async def test_any_text_is_a_valid_query(store: Store, query: str) -> None:
    bots = await store.bots.list_bots(limit=1)
    bot = bots[0] if bots else await store.bots.create_bot(Bot(name="Fuzz"))
    # NUL and lone surrogates included: only letters and digits ever reach the engine.
    found = await store.memory.search_memories(bot.id, query)
    assert all(m.bot_id == bot.id for m in found)


async def test_bad_search_arguments(store: Store) -> None:
    bot, _ = await seeded(store)
    with pytest.raises(ValidationError):
        await store.memory.search_memories(bot.id, "x", limit=-1)
    with pytest.raises(ValidationError):
        await store.memory.search_memories(bot.id, 42)  # type: ignore[arg-type]


async def test_history_records_add_supersede_delete_and_restore(store: Store) -> None:
    bot = await store.bots.create_bot(Bot(name="Historian"))
    old = await store.memory.save_memory(memory(bot.id, "Lives in Lisbon", is_manual=True))
    new = await store.memory.supersede_memory(old.id, memory(bot.id, "Lives in Berlin"))
    await store.memory.delete_memory(new.id)

    old_events = await store.memory.get_memory_history(old.id)
    assert [(e.event, e.actor) for e in old_events] == [
        (MemoryEventKind.ADDED, MemoryActor.USER),
        (MemoryEventKind.SUPERSEDED, MemoryActor.USER),
        (MemoryEventKind.RESTORED, MemoryActor.USER),
    ]
    assert old_events[1].related_memory_id == new.id
    assert old_events[2].related_memory_id == new.id
    restored = await store.memory.get_memory(old.id)
    assert restored is not None and restored.superseded_by is None

    new_events = await store.memory.get_memory_history(new.id)
    assert [e.event for e in new_events] == [MemoryEventKind.ADDED, MemoryEventKind.DELETED]
    assert all(e.fact == "Lives in Berlin" and e.bot_id == bot.id for e in new_events)
    assert await store.memory.get_memory(new.id) is None  # gone, history kept


async def test_history_names_the_extraction_job(store: Store) -> None:
    bot = await store.bots.create_bot(Bot(name="Extracted"))
    session = await store.chat.create_session(ChatSession(bot_id=bot.id, model="m"))
    old = await store.memory.save_memory(memory(bot.id, "Likes coffee"))
    job = await store.memory.save_pending_extraction(
        PendingExtraction(session_id=session.id, bot_id=bot.id)
    )
    fresh = memory(bot.id, "Likes tea now", session_id=session.id)
    await store.memory.complete_extraction(job.id, [fresh], supersedes={fresh.id: old.id})
    added = await store.memory.get_memory_history(fresh.id)
    assert [(e.event, e.actor, e.job_id) for e in added] == [
        (MemoryEventKind.ADDED, MemoryActor.EXTRACTION, job.id)
    ]
    superseded = (await store.memory.get_memory_history(old.id))[-1]
    assert (superseded.event, superseded.job_id, superseded.related_memory_id) == (
        MemoryEventKind.SUPERSEDED,
        job.id,
        fresh.id,
    )


async def test_forget_records_every_deletion_and_a_failed_write_records_nothing(
    store: Store,
) -> None:
    bot = await store.bots.create_bot(Bot(name="Forgetful"))
    kept = [await store.memory.save_memory(memory(bot.id, f"fact {i}")) for i in range(3)]
    with pytest.raises(NotFoundError):
        await store.memory.delete_memory(uuid.uuid4())
    assert await store.memory.delete_all_memories(bot.id) == 3
    for m in kept:
        events = [e.event for e in await store.memory.get_memory_history(m.id)]
        assert events == [MemoryEventKind.ADDED, MemoryEventKind.DELETED]
    bad = memory(bot.id, "orphan", session_id=uuid.uuid4())
    with pytest.raises(NotFoundError):
        await store.memory.save_memory(bad)
    assert await store.memory.get_memory_history(bad.id) == []


async def test_deleting_the_bot_removes_its_history(store: Store) -> None:
    bot = await store.bots.create_bot(Bot(name="Gone"))
    m = await store.memory.save_memory(memory(bot.id, "x"))
    await store.bots.delete_bot(bot.id)
    assert await store.memory.get_memory_history(m.id) == []
