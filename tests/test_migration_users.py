"""Upgrading a database made before users: every row is kept, on every backend, and what it
held becomes the bots' own (no user): seen by every conversation, never erased with a user."""

from __future__ import annotations

from pathlib import Path

import pytest

from boternity import Store, open_store
from boternity.models import Bot, ChatMessage, ChatSession, MessageRole
from boternity.repositories import ANY_USER
from tests.conformance import factories as f
from tests.upgrade import column_values, latest, old_database, table_rows


async def _fill(store: Store) -> Bot:
    """What a database of the previous release holds: sessions (one keyed), messages,
    summaries, queued jobs, memories (one superseded, one deleted: history), for two bots."""
    first = None
    for b in range(2):
        bot = await store.bots.create_bot(Bot(name=f"Old bot {b}", user_id=f"owner {b}"))
        first = first or bot
        await store.bots.save_soul(bot.id, "You are kind.")
        for s in range(2):
            session = await store.chat.get_or_create_session_by_key(
                ChatSession(bot_id=bot.id, model="m"), f"key {s}"
            )
            said = await store.chat.save_messages(
                [
                    ChatMessage(
                        session_id=session.id,
                        role=MessageRole.USER if i % 2 == 0 else MessageRole.ASSISTANT,
                        content=f"old message {b}.{s}.{i} ✓",
                        input_tokens=i,
                        output_tokens=1,
                    )
                    for i in range(3)
                ]
            )
            memory = await store.memory.save_memory(
                f.memory(bot.id, f"Likes tea {b}.{s}", session_id=session.id,
                         source_message_id=said[0].id)
            )  # fmt: skip
            await store.memory.supersede_memory(
                memory.id, f.memory(bot.id, f"Likes coffee {b}.{s}", session_id=session.id)
            )
            gone = await store.memory.save_memory(f.memory(bot.id, f"Gone {b}.{s}"))
            await store.memory.delete_memory(gone.id)
            await store.memory.save_context_summary(f.summary(session.id, 1, 2))
            await store.memory.save_pending_extraction(f.pending(bot.id, session.id))
    assert first is not None
    return first


async def test_upgrade_keeps_every_row_and_makes_them_the_bots_own(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = old_database(backend, tmp_path, monkeypatch, before="users", fill=_fill)
    async with made as (url, bot):
        # user_id is new but for bots (their owner): compared apart, below.
        before = await table_rows(
            backend, url, skip={"user_id", "changes_pruned_to", "tokens_reserved"}
        )
        assert sum(len(rows) for rows in before.values()) > 40
        assert (await column_values(backend, url, "user_id")) == {"bots": {"owner 0", "owner 1"}}
        async with open_store(url) as store:
            assert store.schema_version == latest(backend)
            after = await table_rows(
                backend, url, skip={"user_id", "changes_pruned_to", "tokens_reserved"}
            )
            assert after.keys() == before.keys()
            for table in before:
                assert after[table] == before[table], table
            added = await column_values(backend, url, "user_id")
            assert added.pop("bots") == {"owner 0", "owner 1"}
            assert added == {
                "chat_sessions": {None},
                "session_memories": {None},
                "memory_history": {None},
            }
            await _old_rows_are_the_bots_own(store, bot)


async def _old_rows_are_the_bots_own(store: Store, bot: Bot) -> None:
    old = await store.memory.get_memories(bot.id, user_id=ANY_USER)
    assert len(old) == 2
    # Every conversation sees the old memories, with a user or without.
    assert await store.memory.get_memories(bot.id) == old
    assert await store.memory.get_memories(bot.id, user_id="discord:1") == old
    found = await store.memory.search_memories(bot.id, "coffee", user_id="discord:1")
    assert {m.id for m in found} == {m.id for m in old}
    # Old sessions are sessions without a user; their keys still name them.
    sessions = await store.chat.list_sessions(bot.id, user_id=None)
    assert len(sessions) == 2 and await store.chat.list_sessions(bot.id, user_id="x") == []
    keyed = await store.chat.get_or_create_session_by_key(f.session(bot.id), "key 0")
    assert keyed.id in {s.id for s in sessions}
    # Nothing old belongs to a user, so nothing is erased with one; new users work beside.
    assert (await store.users.forget_user(bot.id, "discord:1")).total == 0
    new = await f.new_session(store, bot.id, user_id="discord:1")
    mine = await store.memory.save_memory(
        f.memory(bot.id, "Likes jazz", session_id=new.id, user_id="discord:1")
    )
    assert await store.memory.get_memories(bot.id) == old
    assert mine in await store.memory.get_memories(bot.id, user_id="discord:1")
