"""Upgrading a PostgreSQL database of schema 8 to schema 9 (boternity_fold returns ASCII
text at once): every row and every stored vector is kept, and old and new messages, plain and
accented, are found alike."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from boternity import Store, open_store
from boternity.models import ChatSession
from tests.conformance import factories as f
from tests.upgrade import assert_rows_kept, latest, old_database, table_rows

pytestmark = pytest.mark.postgres


async def _fill(store: Store) -> ChatSession:
    session = await f.new_session(store)
    for text in ("plain old words", "Zoë lives in Zürich", "naïve café owner"):
        await store.chat.save_message(f.message(session.id, text))
    return session


async def _vectors(url: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        return [r[0] for r in await conn.fetch("SELECT content_tsv::text FROM chat_messages")]
    finally:
        await conn.close()


async def test_upgrade_keeps_rows_and_vectors_and_finds_old_and_new_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = old_database("postgres", tmp_path, monkeypatch, before="fold_ascii_at_once", fill=_fill)
    async with made as (url, session):
        before, vectors = await table_rows("postgres", url), await _vectors(url)
        async with open_store(url) as store:
            assert store.schema_version == latest("postgres") >= 9
            await assert_rows_kept("postgres", url, before)
            await store.chat.save_message(f.message(session.id, "new words, Zoë again"))
            assert sorted((await _vectors(url))[:3]) == sorted(vectors)
            for query, found in (("zoe", 2), ("zurich", 1), ("naive cafe", 1), ("words", 2)):
                assert len(await store.chat.search_messages(query)) == found, query
