"""Upgrading a database made before message search (schema 4): every row is kept and every
old message is found, on every backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from boternity import Store, open_store
from boternity.models import ChatMessage, ChatSession, MessageRole
from tests.conformance import factories as f
from tests.upgrade import assert_rows_kept, fill, latest, old_database, table_rows


async def _fill_with_zoe(store: Store) -> tuple[list[ChatSession], ChatMessage]:
    sessions = await fill(store)  # 12 messages "old message b.s.i ✓"
    zoe = await store.chat.save_message(
        ChatMessage(
            session_id=sessions[3].id,
            role=MessageRole.ASSISTANT,
            content="Your sister Zoë lives in Zürich, " + "lorem ipsum " * 5000 + "late",
        )
    )
    return sessions, zoe


async def test_upgrade_indexes_every_old_message(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = old_database(
        backend, tmp_path, monkeypatch, before="message_search", fill=_fill_with_zoe
    )
    async with made as (url, (sessions, zoe)):
        await _search_old_messages(url, backend, sessions, zoe)


async def _search_old_messages(
    url: str, backend: str, sessions: list[ChatSession], zoe: ChatMessage
) -> None:
    async with open_store(url) as store:
        assert store.schema_version == latest(backend) >= 5
        hits = await store.chat.search_messages("old", limit=100)
        assert len(hits) == 12
        assert {(h.session_id, h.seq) for h in hits} == {
            (s.id, seq) for s in sessions for seq in (1, 2, 3)
        }
        assert all(h.snippet.startswith("old message") for h in hits)
        assert all(h.parts()[0] == ("old", True) for h in hits)
        # Folded and stemmed like new messages; the bot filter works on old rows.
        [hit] = await store.chat.search_messages("zoe zurich live")
        assert (hit.message_id, hit.bot_id, hit.length) == (
            zoe.id,
            sessions[3].bot_id,
            len(zoe.content),
        )
        assert [text for text, marked in hit.parts() if marked] == ["Zoë", "lives", "Zürich"]
        assert await store.chat.search_messages("late") == []  # past the first 50,000
        first_bot = await store.chat.search_messages("old", bot_id=sessions[0].bot_id)
        assert len(first_bot) == 6
        # Old messages leave the index as new ones do.
        await store.chat.pop_message(sessions[3].id)
        assert await store.chat.search_messages("zoe") == []
        await store.chat.clear_messages(sessions[0].id)
        assert len(await store.chat.search_messages("old", limit=100)) == 9
        new = await store.chat.save_message(f.message(sessions[0].id, "a new message"))
        assert [h.message_id for h in await store.chat.search_messages("new")] == [new.id]


async def test_upgrade_keeps_every_row(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with old_database(backend, tmp_path, monkeypatch, before="message_search", fill=fill) as (
        url,
        _,
    ):
        # memory_version and user_id: added by later migrations (0006, 0007).
        added = {"content_tsv", "memory_version", "user_id", "changes_pruned_to", "tokens_reserved"}
        before = await table_rows(backend, url, skip=added)
        assert sum(len(rows) for rows in before.values()) > 30
        async with open_store(url) as store:
            assert store.schema_version == latest(backend)
        await assert_rows_kept(backend, url, before, added=added)
