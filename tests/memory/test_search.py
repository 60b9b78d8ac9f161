"""MemorySearch: text, semantic and hybrid search on every backend, with the real local
embedder (WordLlama) where meaning matters, and the openai embedder against the fake server
for an embedder that is down."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from boternity import Store
from boternity.embeddings import LocalEmbedder, OpenAIEmbedder
from boternity.errors import EmbeddingError, EmbeddingUnavailableError, ValidationError
from boternity.llm import RetryPolicy
from boternity.memory import EmbeddingBackfill, MemorySearch, search_memories
from boternity.memory.search import RRF_K, fuse
from boternity.models import Bot, MemoryCategory, MemoryEntry
from tests.fakes.llm_server import FakeLlmServer, openai_error

FACTS = [
    "Plays the cello in an orchestra",
    "Drives an old Volvo",
    "Prefers green tea over coffee",
    "Lives in Lisbon since 2019",
    "Is allergic to peanuts",
]


def entry(bot: Bot, fact: str) -> MemoryEntry:
    return MemoryEntry(bot_id=bot.id, fact=fact, category=MemoryCategory.FACT, importance=3)


async def remembered(store: Store, bot: Bot, embedder: LocalEmbedder) -> dict[str, MemoryEntry]:
    saved = {f: await store.memory.save_memory(entry(bot, f)) for f in FACTS}
    assert (await EmbeddingBackfill(store, embedder).run()).embedded == len(FACTS)
    return saved


@pytest.fixture
async def down_server() -> AsyncIterator[FakeLlmServer]:
    async with FakeLlmServer() as fake:
        yield fake


def facts_of(result: object) -> list[str]:
    return [h.memory.fact for h in result]  # type: ignore[attr-defined]


async def test_semantic_finds_what_shares_no_word_with_the_question(
    store: Store, bot: Bot, local_embedder: LocalEmbedder
) -> None:
    await remembered(store, bot, local_embedder)
    search = MemorySearch(store, local_embedder)
    for question, fact in [
        ("which instrument?", "Plays the cello in an orchestra"),
        ("what car?", "Drives an old Volvo"),
        ("favourite drink?", "Prefers green tea over coffee"),
    ]:
        assert (await search.search(bot.id, question, mode="text")).hits == []
        found = await search.search(bot.id, question, mode="semantic", limit=3)
        assert found.mode == "semantic" and found.notice is None
        assert facts_of(found)[0] == fact
        top = found.hits[0]
        assert top.score == top.similarity and top.semantic_rank == 1 and top.text_rank is None
        assert [h.score for h in found] == sorted((h.score for h in found), reverse=True)
        hybrid = await search.search(bot.id, question, limit=3)
        assert hybrid.mode == "hybrid" and facts_of(hybrid)[0] == fact


async def test_hybrid_puts_a_memory_found_both_ways_first(
    store: Store, bot: Bot, local_embedder: LocalEmbedder
) -> None:
    saved = await remembered(store, bot, local_embedder)
    search = MemorySearch(store, local_embedder)
    found = await search.search(bot.id, "the orchestra cello")
    top = found.hits[0]
    assert top.memory == saved["Plays the cello in an orchestra"]
    assert (top.text_rank, top.semantic_rank) == (1, 1)
    assert top.score == pytest.approx(2 / (RRF_K + 1))
    assert len(found) == len(FACTS)  # semantic ranks every embedded memory
    # In hybrid, the text ranking counts facts with every word of the query: one shared
    # word ("orchestra") is no text match there, though text search alone finds it.
    partial = await search.search(bot.id, "orchestra tickets")
    assert all(h.text_rank is None for h in partial)
    alone = await search.search(bot.id, "orchestra tickets", mode="text")
    assert [h.memory for h in alone] == [saved["Plays the cello in an orchestra"]]
    text = await search_memories(store, bot.id, "Lisbon", mode="text")
    assert facts_of(text) == ["Lives in Lisbon since 2019"]
    assert text.hits[0].score == pytest.approx(1 / (RRF_K + 1))


def test_fuse_is_reciprocal_rank_fusion() -> None:
    bot_id = uuid.uuid4()
    a, b, c, d = (
        MemoryEntry(bot_id=bot_id, fact=x, category=MemoryCategory.FACT, importance=3)
        for x in "abcd"
    )
    hits = fuse([a, b, c], [(c, 0.9), (d, 0.8), (a, 0.1)], rrf_k=1)
    scores = {h.memory.fact: h.score for h in hits}
    assert scores == pytest.approx({"a": 1 / 2 + 1 / 4, "b": 1 / 3, "c": 1 / 4 + 1 / 2, "d": 1 / 3})
    # Equal scores: the better text rank first (a before c, b before d).
    assert [h.memory.fact for h in hits] == ["a", "c", "b", "d"]
    assert [(h.text_rank, h.semantic_rank) for h in hits] == [(1, 3), (3, 1), (2, None), (None, 2)]
    assert [h.similarity for h in hits] == [0.1, 0.9, None, 0.8]


async def test_without_an_embedder_hybrid_is_text_with_a_notice_and_semantic_refused(
    store: Store, bot: Bot
) -> None:
    await store.memory.save_memory(entry(bot, "Lives in Lisbon since 2019"))
    search = MemorySearch(store)
    found = await search.search(bot.id, "moved to Lisbon")
    assert found.mode == "text" and found.notice is not None and "no embedder" in found.notice
    assert facts_of(found) == ["Lives in Lisbon since 2019"]
    with pytest.raises(EmbeddingError, match="semantic search needs an embedder"):
        await search.search(bot.id, "Lisbon", mode="semantic")


async def test_an_embedder_that_is_down_leaves_text_search_working(
    store: Store, bot: Bot, down_server: FakeLlmServer
) -> None:
    await store.memory.save_memory(entry(bot, "Lives in Lisbon since 2019"))
    embedder = OpenAIEmbedder(
        base_url=down_server.openai_base_url,
        api_key="k",
        model="fake-embed",
        retry=RetryPolicy(max_retries=0),
    )
    async with embedder:
        search = MemorySearch(store, embedder)
        down_server.enqueue(openai_error(503, "down for maintenance", kind="server_error"))
        found = await search.search(bot.id, "Lisbon")
        assert found.mode == "text" and facts_of(found) == ["Lives in Lisbon since 2019"]
        assert found.notice is not None and "down for maintenance" in found.notice
        down_server.enqueue(openai_error(503, "down for maintenance", kind="server_error"))
        with pytest.raises(EmbeddingUnavailableError, match="down for maintenance"):
            await search.search(bot.id, "Lisbon", mode="semantic")
        # Back: nothing is embedded yet, so hybrid is the text ranking, in hybrid mode.
        found = await search.search(bot.id, "Lisbon")
        assert found.mode == "hybrid" and facts_of(found) == ["Lives in Lisbon since 2019"]


async def test_memories_not_embedded_yet_are_found_by_text_in_hybrid(
    store: Store, bot: Bot, local_embedder: LocalEmbedder
) -> None:
    await remembered(store, bot, local_embedder)
    late = await store.memory.save_memory(entry(bot, "Adopted a parrot named Kiwi"))
    search = MemorySearch(store, local_embedder)
    found = await search.search(bot.id, "Kiwi")
    assert found.hits[0].memory == late and found.hits[0].similarity is None
    # Sharing only some words: still its text match, as it has no vector to speak for it.
    found = await search.search(bot.id, "kiwi fruit salad")
    assert found.hits[0].memory == late and found.hits[0].text_rank == 1


async def test_superseded_memories_only_when_asked(
    store: Store, bot: Bot, local_embedder: LocalEmbedder
) -> None:
    saved = await remembered(store, bot, local_embedder)
    old = saved["Drives an old Volvo"]
    await store.memory.supersede_memory(old.id, entry(bot, "Sold the Volvo, cycles now"))
    await EmbeddingBackfill(store, local_embedder).run()
    search = MemorySearch(store, local_embedder)
    for mode in ("hybrid", "semantic", "text"):
        live = await search.search(bot.id, "Volvo car", mode=mode)
        assert old.id not in {h.memory.id for h in live}
        every = await search.search(bot.id, "Volvo car", mode=mode, include_superseded=True)
        assert old.id in {h.memory.id for h in every}


@pytest.mark.parametrize(
    "query", ["", "   ", "a\x00b car", "\ud800 car?", '"OR NOT (" car*', "\x00", " \x00\t"]
)
async def test_any_string_is_a_query_in_every_mode(
    store: Store, bot: Bot, local_embedder: LocalEmbedder, query: str
) -> None:
    await remembered(store, bot, local_embedder)
    search = MemorySearch(store, local_embedder)
    for mode in ("hybrid", "semantic", "text"):
        found = await search.search(bot.id, query, mode=mode)
        assert all(h.memory.bot_id == bot.id for h in found)


async def test_bad_arguments_are_refused(store: Store, bot: Bot) -> None:
    search = MemorySearch(store)
    with pytest.raises(ValidationError, match="unknown search mode 'fuzzy'"):
        await search.search(bot.id, "x", mode="fuzzy")  # type: ignore[arg-type]
    for limit in (-1, 10_001, True, 1.5):
        with pytest.raises(ValidationError, match="limit"):
            await search.search(bot.id, "x", limit=limit)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="query must be str"):
        await search.search(bot.id, None)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="candidates"):
        MemorySearch(store, candidates=0)
    assert (await search.search(bot.id, "x", limit=0)).hits == []


def test_search_terms_leave_out_what_an_apostrophe_leaves_of_a_word() -> None:
    from boternity.storage.checks import search_terms

    assert search_terms("What's Ana's cat? I'm sure you're right, don't, I'll, I've, I'd") == [
        "ana", "cat", "sure", "right", "don",
    ]  # fmt: skip
