"""Upgrading a SQLite database whose message index queued new messages (schema 8) to the mark
(schema 9): the messages still waiting are indexed, every row is kept, and every message, old
or new, is found; deleting old ones leaves the index in step."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from boternity import Store, open_store
from boternity.models import ChatSession
from tests.conformance import factories as f
from tests.sqlite.test_message_index import BATCH, _state
from tests.upgrade import assert_rows_kept, latest, old_database, table_rows

#: Columns added by later migrations (memory_changes_pruned).
LATER = {"changes_pruned_to", "tokens_reserved"}

pytestmark = pytest.mark.sqlite


async def _fill(store: Store) -> list[ChatSession]:
    """Two sessions, BATCH + 6 messages: a batch indexed, the rest waiting."""
    sessions = [await f.new_session(store), await f.new_session(store)]
    for i in range(BATCH + 6):
        await store.chat.save_message(f.message(sessions[i % 2].id, f"old message {i} Zoë"))
    return sessions


async def test_upgrade_indexes_the_waiting_messages_and_keeps_every_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = old_database("sqlite", tmp_path, monkeypatch, before="message_index_mark", fill=_fill)
    async with made as (url, sessions):
        with sqlite3.connect(url) as conn:  # schema 8: a batch indexed, 6 waiting
            assert conn.execute("SELECT count(*) FROM messages_to_index").fetchone() == (6,)
            assert conn.execute("SELECT count(*) FROM messages_fts_docsize").fetchone() == (BATCH,)
        before = await table_rows("sqlite", url, skip=LATER)
        async with open_store(url) as store:
            assert store.schema_version == latest("sqlite") >= 9
            assert _state(Path(url)) == (BATCH + 6, 0)  # the waiting ones indexed
            await assert_rows_kept("sqlite", url, before, added=LATER)
            hits = await store.chat.search_messages("old zoe", limit=1000)
            assert len(hits) == BATCH + 6
            await store.chat.pop_message(sessions[1].id)  # the latest, indexed
            await store.chat.clear_messages(sessions[0].id)
            assert _state(Path(url)) == (BATCH // 2 + 2, 0)
            new = await store.chat.save_message(f.message(sessions[1].id, "a new message"))
            assert [h.message_id for h in await store.chat.search_messages("new")] == [new.id]
        assert _state(Path(url)) == (BATCH // 2 + 3, 0)
        with sqlite3.connect(url) as conn:
            names = {r for (r,) in conn.execute("SELECT name FROM sqlite_master")}
        assert "messages_to_index" not in names
