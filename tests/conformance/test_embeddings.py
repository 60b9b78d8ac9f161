"""Memory embeddings on every backend: storing vectors, finding memories without one, and the
exact cosine search with its per-process cache, kept current across store handles."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator

import numpy as np
import pytest

from boternity import Store, open_store
from boternity.errors import EmbeddingDimensionError, NotFoundError, ValidationError
from boternity.models import Bot, MemoryEntry
from tests.conformance import factories as f

MODEL = "test-model"
DIM = 8


def unit(seed: int, dim: int = DIM) -> np.ndarray:
    vector = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return vector / np.linalg.norm(vector)


async def memories(store: Store, bot: Bot, count: int) -> list[MemoryEntry]:
    return [await store.memory.save_memory(f.memory(bot.id, f"fact {i}")) for i in range(count)]


def brute_force(
    vectors: dict[uuid.UUID, np.ndarray], query: np.ndarray, limit: int
) -> list[uuid.UUID]:
    scored = sorted(vectors.items(), key=lambda kv: -float(kv[1] @ query))
    return [k for k, _ in scored[:limit]]


async def ids_near(store: Store, bot: Bot, query: np.ndarray, **kw: object) -> list[uuid.UUID]:
    found = await store.memory.nearest_memories(bot.id, MODEL, query, **kw)  # type: ignore[arg-type]
    return [m.id for m, _ in found]


@pytest.fixture
async def other(db_url: str, store: Store) -> AsyncIterator[Store]:
    """A second handle on the same database, as another process would have."""
    async with open_store(db_url) as second:
        yield second


async def test_saved_vectors_are_found_by_cosine_similarity(store: Store) -> None:
    bot = await f.new_bot(store)
    saved = await memories(store, bot, 6)
    vectors = {m.id: unit(i) for i, m in enumerate(saved)}
    assert await store.memory.save_embeddings(MODEL, list(vectors.items())) == 6
    for i, m in enumerate(saved):
        found = await store.memory.nearest_memories(bot.id, MODEL, unit(i), limit=3)
        assert found[0][0] == m
        assert found[0][1] == pytest.approx(1.0, abs=1e-5)
        assert [x.id for x, _ in found] == brute_force(vectors, unit(i), 3)
        assert [s for _, s in found] == sorted((s for _, s in found), reverse=True)


async def test_vectors_are_stored_as_unit_float32_and_read_back_exactly(store: Store) -> None:
    bot = await f.new_bot(store)
    (m,) = await memories(store, bot, 1)
    raw = [3.0, 4.0, 0.0, 0.0]  # a plain list, not unit length: stored scaled to 0.6, 0.8
    await store.memory.save_embeddings(MODEL, [(m.id, raw)])  # type: ignore[list-item]
    ids, matrix = await store.memory.live_embeddings(bot.id, MODEL)
    assert ids == [m.id] and matrix.dtype == np.float32
    assert matrix.tolist() == [[np.float32(0.6), np.float32(0.8), 0.0, 0.0]]


async def test_one_row_per_memory_and_model_and_other_models_are_ignored(store: Store) -> None:
    bot = await f.new_bot(store)
    a, b = await memories(store, bot, 2)
    await store.memory.save_embeddings(MODEL, [(a.id, unit(1)), (b.id, unit(2))])
    await store.memory.save_embeddings("other-model", [(a.id, unit(2, 4)), (b.id, unit(1, 4))])
    assert await ids_near(store, bot, unit(1), limit=1) == [a.id]
    found = await store.memory.nearest_memories(bot.id, "other-model", unit(1, 4), limit=1)
    assert [m.id for m, _ in found] == [b.id]
    # Saving again replaces that model's vector only.
    await store.memory.save_embeddings(MODEL, [(a.id, unit(2))])
    assert await ids_near(store, bot, unit(2), limit=2) == sorted([a.id, b.id], key=str)
    counts = await store.maintenance.table_counts()
    assert counts["memory_embeddings"] == 4
    assert await store.memory.nearest_memories(bot.id, "never-used", unit(1)) == []


async def test_memories_without_embedding_live_first_bounded_and_counted(store: Store) -> None:
    bot, elsewhere = await f.new_bot(store), await f.new_bot(store)
    low = await store.memory.save_memory(f.memory(bot.id, "low", importance=1))
    high = await store.memory.save_memory(f.memory(bot.id, "high", importance=5))
    old = await store.memory.save_memory(f.memory(bot.id, "old", importance=5))
    await store.memory.supersede_memory(old.id, f.memory(bot.id, "new", importance=2))
    await store.memory.save_memory(f.memory(elsewhere.id, "theirs", importance=3))
    listed = await store.memory.memories_without_embedding(MODEL, bot_id=bot.id)
    assert [m.fact for m in listed] == ["high", "new", "low", "old"]  # superseded last
    every_bot = await store.memory.memories_without_embedding(MODEL, limit=2)
    assert [m.fact for m in every_bot] == ["high", "theirs"]
    assert await store.memory.count_without_embedding(MODEL) == 5
    assert await store.memory.count_without_embedding(MODEL, bot_id=bot.id) == 4
    await store.memory.save_embeddings(MODEL, [(high.id, unit(1)), (low.id, unit(2))])
    assert [
        m.fact for m in await store.memory.memories_without_embedding(MODEL, bot_id=bot.id)
    ] == [
        "new",
        "old",
    ]
    assert await store.memory.count_without_embedding(MODEL, bot_id=bot.id) == 2
    assert await store.memory.count_without_embedding("other-model", bot_id=bot.id) == 4
    assert await store.memory.memories_without_embedding(MODEL, bot_id=bot.id, limit=0) == []


async def test_search_is_live_only_unless_asked_and_follows_supersede_and_delete(
    store: Store,
) -> None:
    bot = await f.new_bot(store)
    old, keep = await memories(store, bot, 2)
    await store.memory.save_embeddings(MODEL, [(old.id, unit(1)), (keep.id, unit(2))])
    assert await ids_near(store, bot, unit(1)) == [old.id, keep.id]
    new = await store.memory.supersede_memory(old.id, f.memory(bot.id, "newer"))
    assert await ids_near(store, bot, unit(1)) == [keep.id]  # new has no vector yet
    assert await ids_near(store, bot, unit(1), include_superseded=True) == [old.id, keep.id]
    await store.memory.save_embeddings(MODEL, [(new.id, unit(3))])
    assert set(await ids_near(store, bot, unit(1))) == {keep.id, new.id}
    # Deleting the newer memory makes the old one live again: it is found again.
    await store.memory.delete_memory(new.id)
    assert await ids_near(store, bot, unit(1)) == [old.id, keep.id]
    await store.memory.delete_memory(keep.id)
    assert await ids_near(store, bot, unit(2)) == [old.id]
    assert (await store.maintenance.table_counts())["memory_embeddings"] == 1  # cascaded
    assert await store.memory.delete_all_memories(bot.id) == 1
    assert await ids_near(store, bot, unit(1)) == []
    assert (await store.maintenance.table_counts())["memory_embeddings"] == 0


async def test_a_memory_deleted_before_its_vector_is_saved_is_skipped(store: Store) -> None:
    bot = await f.new_bot(store)
    gone, kept = await memories(store, bot, 2)
    await store.memory.delete_memory(gone.id)
    saved = await store.memory.save_embeddings(
        MODEL, [(gone.id, unit(1)), (uuid.uuid4(), unit(2)), (kept.id, unit(3))]
    )
    assert saved == 1
    assert await ids_near(store, bot, unit(1)) == [kept.id]


async def test_deleting_the_bot_deletes_its_vectors(store: Store) -> None:
    bot = await f.new_bot(store)
    (m,) = await memories(store, bot, 1)
    await store.memory.save_embeddings(MODEL, [(m.id, unit(1))])
    await store.bots.delete_bot(bot.id)
    counts = await store.maintenance.table_counts()
    assert counts["memory_embeddings"] == 0 and counts["memory_changes"] == 0
    with pytest.raises(NotFoundError, match="bot"):
        await store.memory.nearest_memories(bot.id, MODEL, unit(1))


@pytest.mark.parametrize(
    ("model", "vector", "words"),
    [
        ("", [1.0], "embedding model"),
        ("   ", [1.0], "embedding model"),
        ("m" * 201, [1.0], "embedding model"),
        ("bad\x00model", [1.0], "NUL"),
        (42, [1.0], "embedding model must be str"),
        (MODEL, [], "1..16384 numbers"),
        (MODEL, [[1.0, 2.0]], "one row"),
        (MODEL, [1.0] * 16385, "1..16384 numbers"),
        (MODEL, [float("nan"), 1.0], "not finite"),
        (MODEL, [float("inf"), 1.0], "not finite"),
        (MODEL, [1e300, 1.0], "not finite"),
        (MODEL, "1.0 2.0", "not text"),
        (MODEL, ["a", "b"], "numbers"),
        (MODEL, None, "one row"),
    ],
)
async def test_hostile_vectors_and_models_are_refused_before_anything_is_written(
    store: Store, model: object, vector: object, words: str
) -> None:
    bot = await f.new_bot(store)
    (m,) = await memories(store, bot, 1)
    with pytest.raises(ValidationError, match=words):
        await store.memory.save_embeddings(model, [(m.id, vector)])  # type: ignore[arg-type,list-item]
    assert (await store.maintenance.table_counts())["memory_embeddings"] == 0


async def test_other_refusals(store: Store) -> None:
    bot = await f.new_bot(store)
    a, b = await memories(store, bot, 2)
    with pytest.raises(ValidationError, match="differ in length"):
        await store.memory.save_embeddings(MODEL, [(a.id, unit(1)), (b.id, unit(1, 4))])
    with pytest.raises(ValidationError, match="memory_id"):
        await store.memory.save_embeddings(MODEL, [("not-an-id", unit(1))])  # type: ignore[list-item]
    assert await store.memory.save_embeddings(MODEL, []) == 0
    await store.memory.save_embeddings(MODEL, [(a.id, unit(1))])
    with pytest.raises(EmbeddingDimensionError, match="dimension 4"):
        await store.memory.nearest_memories(bot.id, MODEL, unit(1, 4))
    with pytest.raises(ValidationError, match="limit"):
        await store.memory.nearest_memories(bot.id, MODEL, unit(1), limit=-1)
    with pytest.raises(ValidationError, match="query vector"):
        await store.memory.nearest_memories(bot.id, MODEL, [float("nan")] * DIM)  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        await store.memory.nearest_memories(uuid.uuid4(), MODEL, unit(1))
    assert await store.memory.nearest_memories(bot.id, MODEL, unit(1), limit=0) == []
    # A zero query finds memories, all at similarity 0.
    found = await store.memory.nearest_memories(bot.id, MODEL, np.zeros(DIM, np.float32))
    assert [(m.id, s) for m, s in found] == [(a.id, 0.0)]


async def test_changes_made_through_another_handle_are_seen(store: Store, other: Store) -> None:
    bot = await f.new_bot(store)
    a, b = await memories(store, bot, 2)
    await store.memory.save_embeddings(MODEL, [(a.id, unit(1))])
    assert await ids_near(store, bot, unit(2)) == [a.id]  # read into this handle's cache
    # The other handle embeds, supersedes, deletes: each is seen by the next search here.
    await other.memory.save_embeddings(MODEL, [(b.id, unit(2))])
    assert await ids_near(store, bot, unit(2)) == [b.id, a.id]
    newer = await other.memory.supersede_memory(b.id, f.memory(bot.id, "newer"))
    assert await ids_near(store, bot, unit(2)) == [a.id]
    await other.memory.save_embeddings(MODEL, [(newer.id, unit(2))])
    assert await ids_near(store, bot, unit(2)) == [newer.id, a.id]
    await other.memory.delete_memory(newer.id)  # b is live again
    assert await ids_near(store, bot, unit(2)) == [b.id, a.id]
    await other.memory.save_embeddings(MODEL, [(a.id, unit(2))])  # replaced vector
    assert [s for _, s in await store.memory.nearest_memories(bot.id, MODEL, unit(2))] == [
        pytest.approx(1.0, abs=1e-5),
        pytest.approx(1.0, abs=1e-5),
    ]
    await other.memory.delete_all_memories(bot.id)
    assert await ids_near(store, bot, unit(2)) == []


async def test_vectors_re_embedded_at_another_dimension_are_searched_by_a_cached_handle(
    store: Store, other: Store
) -> None:
    """A model that changed its dimension under one name, re-embedded by another process: a
    handle holding the old matrix reads everything again (its rows' length changed), so its
    searches at the new dimension find the memories. (It left the new vectors out and kept
    searching an emptied matrix: nothing was ever found again in that process.)"""
    bot = await f.new_bot(store)
    saved = await memories(store, bot, 3)
    await store.memory.save_embeddings(MODEL, [(m.id, unit(i)) for i, m in enumerate(saved)])
    assert len(await ids_near(store, bot, unit(0))) == 3  # the 8-dimension matrix is cached
    wide = {m.id: unit(10 + i, 12) for i, m in enumerate(saved)}
    await other.memory.save_embeddings(MODEL, list(wide.items()))
    assert await ids_near(store, bot, unit(10, 12)) == brute_force(wide, unit(10, 12), 3)
    with pytest.raises(EmbeddingDimensionError, match="dimension 8"):
        await ids_near(store, bot, unit(0))
    # Half re-embedded: the dimension most vectors have is searched, as by a fresh handle.
    await other.memory.save_embeddings(MODEL, [(saved[0].id, unit(0))])
    assert await ids_near(store, bot, unit(11, 12)) == brute_force(
        {k: v for k, v in wide.items() if k != saved[0].id}, unit(11, 12), 3
    )


async def test_the_cache_stays_exact_through_many_changes_from_two_handles(
    store: Store, other: Store, db_url: str
) -> None:
    """Random changes through either handle; after each, both handles' searches equal a brute
    force over what is stored (a fresh handle reads everything, as a new process)."""
    rng = random.Random(1234)
    bot = await f.new_bot(store)
    vectors: dict[uuid.UUID, np.ndarray] = {}
    live: set[uuid.UUID] = set()
    superseded: dict[uuid.UUID, uuid.UUID] = {}  # old -> newer
    for seed in range(1, 61):
        handle = rng.choice([store, other])
        action = rng.random()
        if action < 0.35 or not live:
            m = await handle.memory.save_memory(f.memory(bot.id, f"fact {seed}"))
            live.add(m.id)
            if rng.random() < 0.8:
                vectors[m.id] = unit(seed)
                await handle.memory.save_embeddings(MODEL, [(m.id, vectors[m.id])])
        elif action < 0.55:
            old = rng.choice(sorted(live))
            new = await handle.memory.supersede_memory(old, f.memory(bot.id, f"fact {seed}"))
            live.discard(old)
            live.add(new.id)
            superseded[old] = new.id
            vectors[new.id] = unit(seed)
            await rng.choice([store, other]).memory.save_embeddings(
                MODEL, [(new.id, vectors[new.id])]
            )
        elif action < 0.75:
            target = rng.choice(sorted(vectors))
            vectors[target] = unit(seed)
            await handle.memory.save_embeddings(MODEL, [(target, vectors[target])])
        else:
            target = rng.choice(sorted(live))
            await handle.memory.delete_memory(target)
            live.discard(target)
            vectors.pop(target, None)
            for old, newer in list(superseded.items()):
                if newer == target:  # restored
                    del superseded[old]
                    live.add(old)
        query = unit(10_000 + seed)
        expected = brute_force({k: v for k, v in vectors.items() if k in live}, query, 5)
        for h in (store, other):
            assert await ids_near(h, bot, query, limit=5) == expected
    async with open_store(db_url) as fresh:
        query = unit(99)
        expected = brute_force({k: v for k, v in vectors.items() if k in live}, query, 5)
        assert await ids_near(fresh, bot, query, limit=5) == expected


async def test_concurrent_writers_keep_the_cache_exact(store: Store, other: Store) -> None:
    bot = await f.new_bot(store)
    saved = await memories(store, bot, 40)
    vectors = {m.id: unit(i) for i, m in enumerate(saved)}
    await store.memory.save_embeddings(MODEL, list(vectors.items())[:10])
    assert len(await ids_near(store, bot, unit(0), limit=50)) == 10

    async def embed(handle: Store, part: list[uuid.UUID]) -> None:
        for memory_id in part:
            await handle.memory.save_embeddings(MODEL, [(memory_id, vectors[memory_id])])

    async def supersede(handle: Store, part: list[MemoryEntry]) -> None:
        for m in part:
            await handle.memory.supersede_memory(m.id, f.memory(bot.id, f"newer {m.fact}"))

    async def search() -> None:
        for i in range(10):
            await store.memory.nearest_memories(bot.id, MODEL, unit(i))

    ids = list(vectors)
    await asyncio.gather(
        embed(other, ids[10:25]),
        embed(store, ids[25:]),
        supersede(other, saved[:5]),
        search(),
    )
    live = {k: v for k, v in vectors.items() if k not in {m.id for m in saved[:5]}}
    for h in (store, other):
        assert await ids_near(h, bot, unit(7), limit=50) == brute_force(live, unit(7), 50)


async def test_a_vector_of_another_dimension_counts_as_none_when_a_dimension_is_given(
    store: Store,
) -> None:
    bot = await f.new_bot(store)
    a, b, c = await memories(store, bot, 3)
    await store.memory.save_embeddings(MODEL, [(a.id, unit(1)), (b.id, unit(2))])
    await store.memory.save_embeddings(MODEL, [(b.id, unit(2, 12))])  # b: now 12 numbers
    listed = store.memory.memories_without_embedding
    assert {m.id for m in await listed(MODEL, bot_id=bot.id)} == {c.id}
    assert {m.id for m in await listed(MODEL, bot_id=bot.id, dimension=DIM)} == {b.id, c.id}
    assert {m.id for m in await listed(MODEL, dimension=12, limit=5)} == {a.id, c.id}
    count = store.memory.count_without_embedding
    assert [await count(MODEL, bot_id=bot.id, dimension=d) for d in (None, DIM, 12, 3)] == [
        1,
        2,
        2,
        3,
    ]
    for bad in (0, -1, True, 1.5, "8"):
        with pytest.raises(ValidationError, match="dimension"):
            await count(MODEL, dimension=bad)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="dimension"):
            await listed(MODEL, dimension=bad)  # type: ignore[arg-type]


async def test_which_memories_have_no_vector_of_a_model(store: Store) -> None:
    bot = await f.new_bot(store)
    a, b, c = await memories(store, bot, 3)
    await store.memory.save_embeddings(MODEL, [(a.id, unit(1))])
    await store.memory.save_embeddings("other-model", [(b.id, unit(2))])
    unknown = uuid.uuid4()
    ids = [a.id, b.id, c.id, unknown]
    assert await store.memory.without_embedding_among(MODEL, ids) == {b.id, c.id, unknown}
    assert await store.memory.without_embedding_among("other-model", ids) == {a.id, c.id, unknown}
    assert await store.memory.without_embedding_among(MODEL, []) == set()
    # A vector of another length counts as none when the dimension is given.
    among = store.memory.without_embedding_among
    assert await among(MODEL, ids, dimension=DIM) == {b.id, c.id, unknown}
    assert await among(MODEL, ids, dimension=12) == {a.id, b.id, c.id, unknown}
    for bad in (0, True, "8"):
        with pytest.raises(ValidationError, match="dimension"):
            await among(MODEL, ids, dimension=bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="memory_ids"):
        await store.memory.without_embedding_among(MODEL, "not ids")  # type: ignore[arg-type]


async def test_text_search_of_every_word(store: Store) -> None:
    bot = await f.new_bot(store)
    porto = await store.memory.save_memory(f.memory(bot.id, "Lives in Porto"))
    wine = await store.memory.save_memory(f.memory(bot.id, "Loves Porto wine from the Douro"))
    some = await store.memory.search_memories(bot.id, "porto wines?")
    assert {m.id for m in some} == {porto.id, wine.id}
    every = await store.memory.search_memories(bot.id, "porto wines?", match_all=True)
    assert [m.id for m in every] == [wine.id]  # stemmed: "wines" has "wine"
    assert await store.memory.search_memories(bot.id, "porto beer", match_all=True) == []
    hostile = await store.memory.search_memories(bot.id, 'porto" OR "wine', match_all=True)
    assert [m.id for m in hostile] == [wine.id]  # quotes and OR are words, never syntax
