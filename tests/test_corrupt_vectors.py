"""A stored vector whose bytes are not numbers (NaN, written past ``save_embeddings``, which
refuses them: another tool, a restore, a bad disk) is never a search hit, on every backend:
its similarity would be NaN, which sorts anywhere and is not valid JSON."""

from __future__ import annotations

import sqlite3
import struct

import asyncpg
import numpy as np

from boternity import Store, open_store
from boternity.models import MemoryEntry
from tests.conformance import factories as f
from tests.tables import is_postgres

MODEL = "m"


def vec(*numbers: float) -> np.ndarray:
    return np.array(numbers, np.float32)


async def _write_vector(url: str, memory: MemoryEntry, blob: bytes) -> None:
    sql = "UPDATE memory_embeddings SET vector = {} WHERE memory_id = {}"
    if is_postgres(url):
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(sql.format("$1", "$2"), blob, memory.id)
        finally:
            await conn.close()
        return
    with sqlite3.connect(url) as conn:
        conn.execute(sql.format("?", "?"), (blob, str(memory.id)))


async def test_a_vector_of_nan_bytes_is_never_a_hit(store: Store, db_url: str) -> None:
    bot = await f.new_bot(store)
    a, b, c = [await store.memory.save_memory(f.memory(bot.id, f"fact {i}")) for i in range(3)]
    await store.memory.save_embeddings(
        MODEL, [(a.id, vec(1, 0)), (b.id, vec(0, 1)), (c.id, vec(1, 1))]
    )
    await _write_vector(db_url, b, struct.pack("<2f", float("nan"), 1.0))
    async with open_store(db_url) as fresh:
        found = await fresh.memory.nearest_memories(bot.id, MODEL, vec(1, 0), limit=10)
        assert [(m.id, round(s, 4)) for m, s in found] == [(a.id, 1.0), (c.id, 0.7071)]
        only = await fresh.memory.nearest_memories(bot.id, MODEL, vec(0, 1), limit=1)
        assert [m.id for m, _ in only] == [c.id]
