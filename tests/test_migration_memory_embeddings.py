"""Upgrading a database made before memory embeddings: every row is kept, on every backend,
and the old memories are embedded and found by meaning afterwards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from boternity import Store, open_store
from boternity.models import Bot, ChatSession, MemoryEntry
from tests.conformance import factories as f
from tests.upgrade import assert_rows_kept, latest, old_database, table_rows

NEW_TABLES = {"memory_embeddings", "memory_changes"}


async def _fill(store: Store) -> list[MemoryEntry]:
    """What an older release could write: bots, a session, memories (one superseded)."""
    saved = []
    for b in range(2):
        bot = await store.bots.create_bot(Bot(name=f"Old bot {b}"))
        session = await store.chat.create_session(ChatSession(bot_id=bot.id, model="m"))
        message = await store.chat.save_message(f.message(session.id, "I play the cello"))
        newer = await store.memory.save_memory(f.memory(bot.id, f"Plays the cello ({b})"))
        old = await store.memory.save_memory(
            f.memory(
                bot.id,
                f"Plays the violin ({b})",
                session_id=session.id,
                source_message_id=message.id,
                superseded_by=newer.id,
            )
        )
        other = await store.memory.save_memory(f.memory(bot.id, f"Drives a Volvo ({b})"))
        saved += [newer, old, other]
    return saved


async def test_upgrade_keeps_every_row_and_old_memories_can_be_embedded(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = old_database(backend, tmp_path, monkeypatch, before="memory_embeddings", fill=_fill)
    async with made as (url, memories):
        await _upgrade_and_embed(backend, url, memories)


async def _upgrade_and_embed(backend: str, url: str, memories: list[MemoryEntry]) -> None:
    added = {
        "memory_version",
        "user_id",
        "changes_pruned_to",
        "tokens_reserved",
    }  # user_id, changes_pruned_to, tokens_reserved: later (users, memory_changes_pruned,
    # bot_totals_in_batches)
    before = await table_rows(backend, url, skip=added)
    assert not NEW_TABLES & set(before)
    async with open_store(url) as store:
        assert store.schema_version == latest(backend)
        await assert_rows_kept(backend, url, before, added=added)
        after = await table_rows(backend, url)
        assert set(after) == set(before) | NEW_TABLES
        assert after["memory_embeddings"] == after["memory_changes"] == []
        assert all("'memory_version': 0" in row for row in after["bots"])

        # Every old memory lacks an embedding; once embedded, search works as for new ones.
        assert await store.memory.count_without_embedding("m") == len(memories)
        vectors = {m.id: np.eye(4, dtype=np.float32)[i % 4] for i, m in enumerate(memories)}
        assert await store.memory.save_embeddings("m", list(vectors.items())) == len(memories)
        newer, old, other = memories[:3]
        found = await store.memory.nearest_memories(newer.bot_id, "m", vectors[old.id], limit=3)
        assert old.id not in {m.id for m, _ in found}  # superseded before the upgrade
        await store.memory.delete_memory(newer.id)  # the old one is live again
        found = await store.memory.nearest_memories(newer.bot_id, "m", vectors[old.id], limit=1)
        assert [m.id for m, _ in found] == [old.id]
        assert other.id in {m.id for m, _ in await store.memory.nearest_memories(
            other.bot_id, "m", vectors[other.id], limit=1
        )}  # fmt: skip
