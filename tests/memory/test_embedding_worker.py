"""The worker embeds memories off the chat path: after each pass, memories without a vector
of the embedder's model are embedded (extracted, remembered, superseding ones alike). An
embedder outage (the fake server's /v1/embeddings going down, then coming back) never loses
or delays a memory: it is saved and found by text at once, and embedded once the embedder is
back. On every backend, over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

import numpy as np
import pytest

from boternity import Store
from boternity.embeddings import OpenAIEmbedder
from boternity.llm import AnthropicProvider, RetryPolicy
from boternity.memory import (
    EmbeddingBackfill,
    ExtractionWorker,
    MemorySearch,
    remember,
)
from boternity.models import MemoryCategory, MemoryEntry
from tests.fakes.llm_server import (
    FakeLlmServer,
    anthropic_message,
    embeddings_reply,
    openai_error,
)
from tests.memory.test_worker import Clock, conversation, enqueue, facts_reply, provider, server

__all__ = ["provider", "server"]  # the worker tests' fixtures: the LLM side

MODEL = "fake-embed"


@pytest.fixture
async def embed_server() -> AsyncIterator[FakeLlmServer]:
    """The embeddings endpoint on its own server, so it can go down alone."""
    async with FakeLlmServer() as fake:
        yield fake


@pytest.fixture
async def embedder(embed_server: FakeLlmServer) -> AsyncIterator[OpenAIEmbedder]:
    async with OpenAIEmbedder(
        base_url=embed_server.openai_base_url,
        api_key="k",
        model=MODEL,
        retry=RetryPolicy(max_retries=0),
    ) as e:
        yield e


async def test_an_outage_delays_only_the_vectors_and_recovery_embeds_everything(
    store: Store,
    server: FakeLlmServer,
    provider: AnthropicProvider,
    embed_server: FakeLlmServer,
    embedder: OpenAIEmbedder,
) -> None:
    clock = Clock()
    worker = ExtractionWorker(store, provider, embedder=embedder, clock=clock)
    bot, session, _ = await conversation(store, "I live in Porto", "Nice!", "I keep bees")
    await enqueue(store, session, 1, 3)
    server.enqueue(
        anthropic_message(
            facts_reply(
                {"fact": "Lives in Porto", "category": "fact", "importance": 4, "source_seq": 1},
                {"fact": "Keeps bees", "category": "fact", "importance": 3, "source_seq": 3},
            )
        )
    )
    await embed_server.close()  # the embeddings endpoint is down: connections are refused

    report = await worker.run_once()
    assert (report.completed, report.memories_saved) == (1, 2)  # nothing waited for vectors
    assert report.embedding is not None and report.embedding.embedded == 0
    assert report.embedding.error is not None and "could not embed" in report.embedding.error
    assert await store.memory.count_without_embedding(MODEL, bot_id=bot.id) == 2
    search = MemorySearch(store, embedder)
    found = await search.search(bot.id, "Porto")
    assert found.mode == "text" and [h.memory.fact for h in found] == ["Lives in Porto"]

    # While it is down, remember() and supersession add memories the same way.
    kept = await remember(store, bot.id, "Allergic to wasps")
    porto = next(m for m in await store.memory.get_memories(bot.id) if m.fact == "Lives in Porto")
    moved = await store.memory.supersede_memory(
        porto.id,
        MemoryEntry(
            bot_id=bot.id, fact="Lives in Braga", category=MemoryCategory.FACT, importance=4
        ),
    )
    # The next pass waits out the backoff instead of knocking on a closed door.
    report = await worker.run_once()
    assert report.embedding is not None and report.embedding.waiting

    await embed_server.start()  # back, on the same port
    clock.advance(timedelta(seconds=31))
    report = await worker.run_once()
    assert report.embedding is not None and report.embedding.error is None
    assert report.embedding.embedded == 4  # live first, the superseded one too
    assert await store.memory.count_without_embedding(MODEL) == 0
    requests = [r for r in embed_server.requests if r.path == "/v1/embeddings"]
    assert len(requests) == 1 and requests[0].json["input"][:3] == [
        "Lives in Braga",  # importance 4, live
        "Allergic to wasps",
        "Keeps bees",
    ]
    ids, _ = await store.memory.live_embeddings(bot.id, MODEL)
    assert set(ids) == {moved.id, kept.id} | {
        m.id for m in await store.memory.get_memories(bot.id) if m.fact == "Keeps bees"
    }
    found = await search.search(bot.id, "Keeps bees", mode="semantic", limit=1)
    assert [h.memory.fact for h in found] == ["Keeps bees"]
    # Nothing left: the next pass asks the embedder nothing.
    asked = len(embed_server.requests)
    report = await worker.run_once()
    assert report.embedding is not None and report.embedding.embedded == 0
    assert len(embed_server.requests) == asked


async def test_a_fact_the_embedder_refuses_does_not_hold_back_the_others(
    store: Store, embed_server: FakeLlmServer, embedder: OpenAIEmbedder
) -> None:
    bot, _, _ = await conversation(store, "hi")
    for fact, importance in (("First fact", 5), ("Poison fact", 3), ("Third fact", 3)):
        await remember(store, bot.id, fact, importance=importance)
    # The batch (First, Third, Poison: importance, then newest) is refused; one at a time,
    # First and Third go through and Poison is refused again.
    embed_server.enqueue(
        openai_error(400, "input rejected"),
        embeddings_reply({"input": ["First fact"], "model": MODEL}),
        embeddings_reply({"input": ["Third fact"], "model": MODEL}),
        openai_error(400, "input rejected"),
    )
    backfill = EmbeddingBackfill(store, embedder)
    report = await backfill.run()
    assert (report.embedded, report.refused, report.error) == (2, 1, None)
    [left] = await store.memory.memories_without_embedding(MODEL)
    assert left.fact == "Poison fact"  # still found by text
    # This process does not ask again for it; nothing else is due.
    requests = len(embed_server.requests)
    assert (await backfill.run()).embedded == 0
    assert len(embed_server.requests) == requests


async def test_bounded_runs_and_progress(store: Store, embedder: OpenAIEmbedder) -> None:
    bot, _, _ = await conversation(store, "hi")
    for i in range(7):
        await remember(store, bot.id, f"fact number {i}")
    seen: list[int] = []
    backfill = EmbeddingBackfill(store, embedder, batch=3)
    report = await backfill.run(bot_id=bot.id, limit=5, on_batch=seen.append)
    assert report.embedded == 5 and seen == [3, 2]
    assert await store.memory.count_without_embedding(MODEL, bot_id=bot.id) == 2
    assert (await backfill.run(bot_id=bot.id)).embedded == 2
    with pytest.raises(ValueError, match="batch"):
        EmbeddingBackfill(store, embedder, batch=0)


async def test_vectors_of_another_dimension_under_the_model_name_are_embedded_again(
    store: Store, embed_server: FakeLlmServer
) -> None:
    """The model behind a name changed its dimension (an Ollama tag pulled again, OpenAI's
    ``dimensions``): the old vectors are never searched, and the error says to re-embed, so
    re-embedding must replace them (it saw them as embedded and did nothing: stuck)."""
    bot, _, _ = await conversation(store, "hi")
    facts = ["Ana keeps bees in Porto", "Ben plays the cello", "Ana's cat is called Miso"]
    saved = [await remember(store, bot.id, fact) for fact in facts]
    old = [(m.id, np.eye(8, dtype=np.float32)[0]) for m in saved]  # the old model: 8 numbers
    await store.memory.save_embeddings(MODEL, old)
    async with OpenAIEmbedder(
        base_url=embed_server.openai_base_url, api_key="k", model=MODEL, dimension=64
    ) as embedder:
        assert await store.memory.count_without_embedding(MODEL, bot_id=bot.id) == 0
        assert await store.memory.count_without_embedding(MODEL, bot_id=bot.id, dimension=64) == 3
        assert await store.memory.count_without_embedding(MODEL, bot_id=bot.id, dimension=8) == 0
        report = await EmbeddingBackfill(store, embedder).run(bot_id=bot.id)
        assert report.embedded == 3
        assert await store.memory.count_without_embedding(MODEL, bot_id=bot.id, dimension=64) == 0
        found = await MemorySearch(store, embedder).search(
            bot.id, "who plays the cello", mode="semantic", limit=1
        )
    assert [hit.memory.fact for hit in found] == ["Ben plays the cello"]


async def test_an_embedder_of_the_wrong_dimension_stops_the_run_without_refusing_facts(
    store: Store, embed_server: FakeLlmServer
) -> None:
    """Vectors of another length than the model's (a server behind OPENAI_BASE_URL serving
    another model under the name) say nothing about the facts: the run stops after one request
    and backs off, as in an outage. (Each batch was split into one request per fact and every
    fact marked refused: 256 wasted requests per worker pass, and good facts skipped.)"""
    bot, _, _ = await conversation(store, "hi")
    for i in range(5):
        await remember(store, bot.id, f"fact number {i}")
    clock = Clock()
    async with OpenAIEmbedder(
        base_url=embed_server.openai_base_url, api_key="k", model=MODEL, dimension=32
    ) as wrong:
        backfill = EmbeddingBackfill(store, wrong, clock=clock)
        report = await backfill.run(bot_id=bot.id)
        assert (report.embedded, report.refused) == (0, 0)
        assert report.error is not None and "dimension 64, expected 32" in report.error
        assert len(embed_server.requests) == 1
        assert (await backfill.run(bot_id=bot.id)).waiting  # backing off
        assert len(embed_server.requests) == 1
    assert await store.memory.count_without_embedding(MODEL, bot_id=bot.id) == 5


class _Careless:
    """An application's own Embedder that returns what the store refuses: NaN for a fact
    with "nan" in it, and one vector too few for a batch holding "short"."""

    name, model, dimension = "careless", "careless-v1", 4

    def __init__(self) -> None:
        self.calls = 0

    async def embed(self, texts: Sequence[str]) -> list[np.ndarray]:
        self.calls += 1
        vectors = [np.full(4, np.nan if "nan" in t else 1.0, np.float32) for t in texts]
        return vectors[:-1] if len(texts) > 1 and any("short" in t for t in texts) else vectors

    async def aclose(self) -> None:
        return None


async def test_vectors_the_store_refuses_skip_only_their_fact(store: Store) -> None:
    """A batch whose vectors the store refuses (ValidationError) or that has too few vectors
    is tried a memory at a time, like a batch the embedder refuses: the other facts are
    embedded, the bad one is skipped. (The error escaped the run, and the worker's pass.)"""
    bot, _, _ = await conversation(store, "hi")
    for fact in ("Ana keeps bees", "a nan fact", "Ben plays cello", "a short one"):
        await remember(store, bot.id, fact)
    careless = _Careless()
    report = await EmbeddingBackfill(store, careless).run(bot_id=bot.id)
    assert (report.embedded, report.refused, report.error) == (3, 1, None)
    [left] = await store.memory.memories_without_embedding("careless-v1", bot_id=bot.id)
    assert left.fact == "a nan fact"
