"""Upgrading a database made before session keys: every row is kept, on every backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from boternity import open_store
from boternity.models import ChatSession
from tests.conformance import factories as f
from tests.upgrade import assert_rows_kept, fill, latest, old_database, table_rows


async def test_upgrade_keeps_every_row_and_old_sessions_work(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = old_database(backend, tmp_path, monkeypatch, before="session_keys", fill=fill)
    async with made as (url, sessions):
        await _upgrade_and_check(backend, url, sessions)


async def _upgrade_and_check(backend: str, url: str, sessions: list[ChatSession]) -> None:
    # Later migrations add columns too (message search: content_tsv on PostgreSQL; memory
    # embeddings: bots.memory_version; users).
    added = {
        "session_key",
        "content_tsv",
        "memory_version",
        "user_id",
        "changes_pruned_to",
        "tokens_reserved",
    }
    before = await table_rows(backend, url, skip=added)
    assert sum(len(rows) for rows in before.values()) > 30
    async with open_store(url) as store:
        assert store.schema_version == latest(backend)
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
