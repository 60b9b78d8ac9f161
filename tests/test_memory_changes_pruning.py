"""memory_changes (the notes that keep every process's cached vectors current) is pruned,
and a handle holding vectors from before the kept notes reads them all again, on every
backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from boternity import Store, open_store
from boternity.storage import repositories
from tests.conformance import factories as f
from tests.conformance.test_embeddings import MODEL, ids_near, memories, unit


@pytest.fixture
async def other(db_url: str, store: Store) -> AsyncIterator[Store]:
    async with open_store(db_url) as second:
        yield second


async def test_change_notes_are_pruned_and_older_vectors_are_read_again(
    store: Store, other: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """memory_changes keeps the notes of the last KEEP_VERSIONS versions only (else it grows
    with every change forever); a handle holding vectors from before the kept notes reads
    them all again instead of missing a change."""
    monkeypatch.setattr(repositories, "KEEP_VERSIONS", 8)
    monkeypatch.setattr(repositories, "PRUNE_EVERY", 4)
    bot = await f.new_bot(store)
    saved = await memories(store, bot, 4)
    await store.memory.save_embeddings(MODEL, [(m.id, unit(i)) for i, m in enumerate(saved)])
    assert (await ids_near(other, bot, unit(0), limit=1)) == [saved[0].id]  # cached
    await store.memory.supersede_memory(saved[0].id, f.memory(bot.id, "newer"))
    for i in range(30):  # a note per deleted memory, 2 versions each
        gone = await store.memory.save_memory(f.memory(bot.id, f"passing {i}"))
        await store.memory.save_embeddings(MODEL, [(gone.id, unit(100 + i))])
        await store.memory.delete_memory(gone.id)
    assert (await store.maintenance.table_counts())["memory_changes"] <= 8 + 4
    # The supersession's note is gone: the other handle reads everything again.
    assert saved[0].id not in await ids_near(other, bot, unit(0), limit=10)
    assert set(await ids_near(other, bot, unit(0), limit=10)) == {m.id for m in saved[1:]}
