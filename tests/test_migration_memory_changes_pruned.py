"""Upgrading a database made before memory_changes was pruned: every row is kept, no bot has
pruned anything yet, and vectors cached before and after keep working, on every backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from boternity import Store, open_store
from boternity.models import Bot, MemoryEntry
from tests.conformance import factories as f
from tests.upgrade import assert_rows_kept, column_values, latest, old_database, table_rows

MODEL = "m"


async def _fill(store: Store) -> tuple[Bot, list[MemoryEntry]]:
    bot = await store.bots.create_bot(Bot(name="Old bot"))
    saved = [await store.memory.save_memory(f.memory(bot.id, f"fact {i}")) for i in range(4)]
    vectors = np.eye(4, dtype=np.float32)
    await store.memory.save_embeddings(MODEL, [(m.id, vectors[i]) for i, m in enumerate(saved)])
    await store.memory.supersede_memory(saved[0].id, f.memory(bot.id, "newer"))
    await store.memory.delete_memory(saved[1].id)
    return bot, saved


async def test_upgrade_keeps_every_row_and_nothing_is_pruned_yet(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = old_database(backend, tmp_path, monkeypatch, before="memory_changes_pruned", fill=_fill)
    async with made as (url, (bot, saved)):
        added = {"changes_pruned_to", "tokens_reserved"}
        before = await table_rows(backend, url, skip=added)
        assert len(before["memory_changes"]) == 2
        async with open_store(url) as store:
            assert store.schema_version == latest(backend)
            await assert_rows_kept(backend, url, before, added=added)
            assert (await column_values(backend, url, "changes_pruned_to")) == {"bots": {0}}
            found = await store.memory.nearest_memories(bot.id, MODEL, np.eye(4)[2], limit=4)
            assert [m.id for m, _ in found] == [saved[2].id, saved[3].id]
