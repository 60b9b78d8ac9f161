"""Upgrading a database made before session keys: every row is kept, on every backend."""

from __future__ import annotations

import pytest

from boternity import open_store
from boternity.models import ChatSession
from tests.conformance import factories as f
from tests.upgrade import assert_rows_kept, blank, fill, latest, old_schema, table_rows

__all__ = ["blank"]  # the fixture


async def test_upgrade_keeps_every_row_and_old_sessions_work(
    blank: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    backend, url = blank
    version = old_schema(monkeypatch, backend, before="session_keys")
    async with open_store(url) as store:
        assert store.schema_version == version
        sessions = await fill(store)
    before = await table_rows(backend, url)
    assert sum(len(rows) for rows in before.values()) > 30
    monkeypatch.undo()

    async with open_store(url) as store:
        assert store.schema_version == latest(backend)
        # Later migrations add columns too (message search: content_tsv on PostgreSQL; memory
        # embeddings: bots.memory_version).
        added = {"session_key", "content_tsv", "memory_version"}
        await assert_rows_kept(backend, url, before, added=added)
        # Old sessions have no key; new keyed sessions and pops work beside them.
        old_session = sessions[0]
        keyed = await store.chat.get_or_create_session_by_key(
            ChatSession(bot_id=old_session.bot_id, model="m"), "new-key"
        )
        assert keyed.id not in {s.id for s in sessions}
        popped = await store.chat.pop_message(old_session.id)
        assert popped is not None and popped.seq == 3
        assert (await store.chat.save_message(f.message(old_session.id))).seq == 3
