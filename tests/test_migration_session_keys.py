"""Upgrading a database made before session keys: every row is kept, on every backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from boternity import Store, open_store
from boternity.backends.migrations import load_migrations
from boternity.models import Bot, ChatMessage, ChatSession, MessageRole
from tests.conformance import factories as f
from tests.old_schema import PACKAGES, old_database, table_rows

#: Columns added by session keys and later migrations: absent before, NULL after.
SKIP = {"session_key", "user_id"}


async def _fill(store: Store) -> list[ChatSession]:
    sessions = []
    for b in range(2):
        bot = await store.bots.create_bot(Bot(name=f"Old bot {b}", tags=["x"]))
        await store.bots.save_soul(bot.id, "You are kind.")
        for s in range(2):
            session = await store.chat.create_session(ChatSession(bot_id=bot.id, model="m"))
            sessions.append(session)
            for i in range(3):
                m = await store.chat.save_message(
                    ChatMessage(
                        session_id=session.id,
                        role=MessageRole.USER if i % 2 == 0 else MessageRole.ASSISTANT,
                        content=f"old message {b}.{s}.{i} ✓",
                        input_tokens=i,
                        output_tokens=1,
                        metadata={"n": i, "nested": [1.5, None, "é"]},
                    )
                )
            memory = await store.memory.save_memory(
                f.memory(bot.id, f"fact {b}.{s}", session_id=session.id, source_message_id=m.id)
            )
            await store.memory.supersede_memory(
                memory.id, f.memory(bot.id, f"newer fact {b}.{s}", session_id=session.id)
            )
            await store.memory.save_context_summary(f.summary(session.id, 1, 2))
            await store.memory.save_pending_extraction(f.pending(bot.id, session.id))
    return sessions


async def test_upgrade_keeps_every_row_and_old_sessions_work(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = old_database(backend, tmp_path, monkeypatch, before_migration="session_keys", fill=_fill)
    async with made as (url, sessions):
        await _upgrade_and_check(backend, url, sessions)


async def _upgrade_and_check(backend: str, url: str, sessions: list[ChatSession]) -> None:
    # Columns added after session keys are not in the old database at all.
    before = await table_rows(backend, url, skip=SKIP)
    assert sum(len(rows) for rows in before.values()) > 30
    async with open_store(url) as store:
        assert store.schema_version == len(load_migrations(PACKAGES[backend]))
        after = await table_rows(backend, url, skip=SKIP)
        assert after.keys() == before.keys()
        for table in before:
            assert after[table] == before[table], table
        # Old sessions have no key; new keyed sessions and pops work beside them.
        old_session = sessions[0]
        keyed = await store.chat.get_or_create_session_by_key(
            ChatSession(bot_id=old_session.bot_id, model="m"), "new-key"
        )
        assert keyed.id not in {s.id for s in sessions}
        popped = await store.chat.pop_message(old_session.id)
        assert popped is not None and popped.seq == 3
        assert (await store.chat.save_message(f.message(old_session.id))).seq == 3
