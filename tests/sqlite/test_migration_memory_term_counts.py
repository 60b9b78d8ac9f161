"""Upgrading a SQLite database made before the memory search read the index's token counts
(schema 11): every row is kept, and the counts are there for the memories already saved, so a
search ranks only the rows that can reach its results and finds what ranking every match
does. (PostgreSQL has no such migration: its search is unchanged.)"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from boternity import Store, open_store
from boternity.backends.sqlite.dialect import SQLITE
from boternity.models import Bot, MemoryEntry
from tests.conformance import factories as f
from tests.sqlite.test_memory_search_pruning import answered
from tests.upgrade import assert_rows_kept, latest, old_database, table_rows

WORDS = ["tea", "chess", "piano", "oslo", "greta"]


async def _fill(store: Store) -> tuple[Bot, list[MemoryEntry]]:
    bot = await store.bots.create_bot(Bot(name="Old bot"))
    saved = []
    for i in range(40):  # tea in most, greta in two
        words = [w for j, w in enumerate(WORDS) if (i + 1) % (j + 1) == 0 or i % 7 == j]
        saved.append(await store.memory.save_memory(f.memory(bot.id, " ".join(words) or "x")))
    return bot, saved


pytestmark = pytest.mark.sqlite


async def test_upgrade_keeps_every_row_and_the_search_reads_the_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = "sqlite"
    made = old_database(backend, tmp_path, monkeypatch, before="memory_term_counts", fill=_fill)
    async with made as (url, (bot, saved)):
        before = await table_rows(backend, url)
        ranked = answered(monkeypatch, "_search_candidates")
        async with open_store(url) as store:
            assert store.schema_version == latest(backend) >= 12
            await assert_rows_kept(backend, url, before)
            got = await store.memory.search_memories(bot.id, "greta and tea over chess", limit=3)
            with monkeypatch.context() as m:
                m.setattr(SQLITE, "pruning", None)
                m.setattr(SQLITE, "score_bound", None)
                every = await store.memory.search_memories(
                    bot.id, "greta and tea over chess", limit=3
                )
            assert [x.id for x in got] == [x.id for x in every]
            assert len(got) == 3 and {x.id for x in got} <= {x.id for x in saved}
        assert ranked == [True]  # from the counts of the memories saved before
        with sqlite3.connect(url) as conn:
            counts = conn.execute("SELECT doc FROM memories_fts_terms WHERE term = 'greta'")
            assert counts.fetchall() == [(sum("greta" in m.fact for m in saved),)]
