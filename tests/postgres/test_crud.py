"""A quick pass over every repository on PostgreSQL (the full contract is the conformance suite)."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest

from boternity import Store
from boternity.ids import utc_now
from boternity.models import (
    Bot,
    BotStatus,
    ChatMessage,
    ChatSession,
    ContextSummary,
    MemoryCategory,
    MemoryEntry,
    MessageRole,
    PendingExtraction,
    SessionStatus,
)
from boternity.storage.sql import RESERVE_STEP

pytestmark = pytest.mark.postgres


async def test_bots_and_souls(pg_store: Store) -> None:
    bot = await pg_store.bots.create_bot(Bot(name="Ada Bot", tags=["x", "ünï"], user_id="u1"))
    assert await pg_store.bots.get_bot(bot.id) == bot
    assert await pg_store.bots.get_bot_by_slug("ada-bot") == bot
    renamed = await pg_store.bots.update_bot(
        Bot(name="Ada", id=bot.id, status=BotStatus.ARCHIVED, conversation_count=99)
    )
    assert (renamed.slug, renamed.status, renamed.conversation_count) == ("ada", "archived", 0)
    assert renamed.updated_at > bot.updated_at
    assert await pg_store.bots.list_bots(status="archived") == [renamed]
    first = await pg_store.bots.save_soul(bot.id, "be kind")
    second = await pg_store.bots.save_soul(bot.id, "be brief", message="shorter")
    assert (first.version, second.version) == (1, 2)
    assert await pg_store.bots.get_soul(bot.id) == second
    assert await pg_store.bots.get_soul(bot.id, 1) == first
    assert await pg_store.bots.list_soul_versions(bot.id) == [first, second]
    stored = await pg_store.bots.get_bot(bot.id)
    assert stored is not None and stored.version_count == 2


async def test_sessions_messages_and_counters(pg_store: Store) -> None:
    bot = await pg_store.bots.create_bot(Bot(name="Talker"))
    session = await pg_store.chat.create_session(ChatSession(bot_id=bot.id, model="m"))
    meta = {"n": 1e308, "z": -0.0, "s": "quote ' \" \\", "nested": [{"a": None}]}
    saved = [
        await pg_store.chat.save_message(
            ChatMessage(
                session_id=session.id,
                role=MessageRole.USER,
                content=f"m{i}",
                input_tokens=2,
                output_tokens=3,
                metadata=meta,
            )
        )  # fmt: skip
        for i in range(5)
    ]
    assert [m.seq for m in saved] == [1, 2, 3, 4, 5]
    got = await pg_store.chat.get_messages(session.id, offset=1, limit=2)
    assert [m.seq for m in got] == [2, 3]
    assert got[0].metadata == meta and repr(got[0].metadata) == repr(meta)
    assert [m.seq for m in await pg_store.chat.get_recent_messages(session.id, 2)] == [4, 5]
    assert await pg_store.chat.get_message(saved[0].id) == saved[0]
    after = await pg_store.chat.get_session(session.id)
    assert after is not None
    assert (after.message_count, after.total_input_tokens, after.total_output_tokens) == (5, 10, 15)
    assert after.last_activity_at == saved[-1].created_at
    # update_session writes descriptive fields only: a stale copy cannot roll counters back.
    ended = await pg_store.chat.update_session(
        ChatSession(bot_id=bot.id, model="m", id=session.id, title="t",
                    status=SessionStatus.COMPLETED, ended_at=utc_now())
    )  # fmt: skip
    assert (ended.title, ended.message_count) == ("t", 5)
    assert await pg_store.chat.get_active_sessions(bot.id) == []
    owner = await pg_store.bots.get_bot(bot.id)
    assert owner is not None
    assert (owner.conversation_count, owner.total_tokens_used) == (1, 25)
    assert await pg_store.chat.clear_messages(session.id) == 5
    again = await pg_store.chat.save_message(
        ChatMessage(session_id=session.id, role=MessageRole.USER, content="fresh start")
    )
    assert again.seq == 1
    cleared = await pg_store.chat.get_session(session.id)
    assert cleared is not None and cleared.total_input_tokens == 10  # totals are kept


async def test_memories_queue_summaries_and_cascades(pg_store: Store) -> None:
    bot = await pg_store.bots.create_bot(Bot(name="Rememberer"))
    session = await pg_store.chat.create_session(ChatSession(bot_id=bot.id, model="m"))
    msg = await pg_store.chat.save_message(
        ChatMessage(session_id=session.id, role=MessageRole.USER, content="I like tea")
    )
    old = await pg_store.memory.save_memory(
        MemoryEntry(bot_id=bot.id, fact="likes tea", category=MemoryCategory.PREFERENCE,
                    importance=3, session_id=session.id, source_message_id=msg.id)
    )  # fmt: skip
    new = MemoryEntry(
        bot_id=bot.id, fact="likes green tea", category=MemoryCategory.PREFERENCE, importance=4
    )
    await pg_store.memory.supersede_memory(old.id, new)
    assert await pg_store.memory.get_memories(bot.id) == [new]
    assert len(await pg_store.memory.get_memories(bot.id, include_superseded=True)) == 2

    now = utc_now()
    job = await pg_store.memory.save_pending_extraction(
        PendingExtraction(session_id=session.id, bot_id=bot.id, next_attempt_at=now,
                          messages_start=1, messages_end=1)
    )  # fmt: skip
    claimed = await pg_store.memory.claim_pending_extractions(now=now, lease=timedelta(minutes=1))
    assert [(p.id, p.attempt_count) for p in claimed] == [(job.id, 1)]
    assert claimed[0].next_attempt_at == now + timedelta(minutes=1)
    assert await pg_store.memory.claim_pending_extractions(now=now) == []
    fact = MemoryEntry(
        bot_id=bot.id, fact="drinks it hot", category=MemoryCategory.FACT, importance=2,
        session_id=session.id,
    )  # fmt: skip
    assert await pg_store.memory.complete_extraction(job.id, [fact]) == [fact]
    assert await pg_store.memory.list_pending_extractions() == []

    summary = await pg_store.memory.save_context_summary(
        ContextSummary(session_id=session.id, summary="tea talk", messages_start=1,
                       messages_end=1, token_count=3)
    )  # fmt: skip
    assert await pg_store.memory.get_latest_summary(session.id) == summary

    await pg_store.chat.delete_session(session.id)
    survivors = await pg_store.memory.get_memories(bot.id, include_superseded=True)
    assert len(survivors) == 3
    assert all(m.session_id is None and m.source_message_id is None for m in survivors)
    assert await pg_store.memory.list_summaries(session.id) == []
    await pg_store.bots.delete_bot(bot.id)
    assert await pg_store.memory.get_memories(bot.id, include_superseded=True) == []


async def test_session_owned_rows_carry_their_bot_id(pg_store: Store, pg_url: str) -> None:
    """Messages, summaries and jobs store the session's bot_id (the distribution key)."""
    bot = await pg_store.bots.create_bot(Bot(name="Shard"))
    session = await pg_store.chat.create_session(ChatSession(bot_id=bot.id, model="m"))
    await pg_store.chat.save_message(
        ChatMessage(session_id=session.id, role=MessageRole.USER, content="x")
    )
    await pg_store.memory.save_context_summary(
        ContextSummary(session_id=session.id, summary="s", messages_start=1, messages_end=1,
                       token_count=1)
    )  # fmt: skip
    conn = await asyncpg.connect(pg_url)
    try:
        for table in ("chat_messages", "context_summaries"):
            owners = await conn.fetch(f"SELECT DISTINCT bot_id FROM {table}")
            assert [r[0] for r in owners] == [bot.id]
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            # A message whose bot_id disagrees with its session's is refused by the schema.
            await conn.execute(
                "INSERT INTO chat_messages (id, session_id, bot_id, seq, role, content,"
                " created_at) VALUES (gen_random_uuid(), $1, gen_random_uuid(), 9, 'user',"
                " 'x', now())",
                session.id,
            )
    finally:
        await conn.close()


async def test_bot_totals_count_every_session_and_survive_deleting_one(pg_store: Store) -> None:
    """save_message leaves the bot row alone; the bot's totals are summed when read."""
    bot = await pg_store.bots.create_bot(Bot(name="Totals", total_tokens_used=100))
    sessions = [
        await pg_store.chat.create_session(ChatSession(bot_id=bot.id, model="m")) for _ in range(2)
    ]
    last = None
    for s in sessions:
        last = await pg_store.chat.save_message(
            ChatMessage(session_id=s.id, role=MessageRole.ASSISTANT, content="x",
                        input_tokens=5, output_tokens=7)
        )  # fmt: skip
    assert last is not None
    for read in (pg_store.bots.get_bot(bot.id), pg_store.bots.get_bot_by_slug("totals")):
        got = await read
        assert got is not None
        assert (got.total_tokens_used, got.last_active_at) == (124, last.created_at)
    await pg_store.chat.delete_session(sessions[1].id)
    await pg_store.chat.clear_messages(sessions[0].id)
    [listed] = await pg_store.bots.list_bots()
    assert (listed.total_tokens_used, listed.last_active_at) == (124, last.created_at)
    updated = await pg_store.bots.update_bot(Bot(name="Totals", id=bot.id, description="d"))
    assert (updated.total_tokens_used, updated.conversation_count) == (124, 2)


async def test_token_reservations_track_every_step_crossing(pg_store: Store, pg_url: str) -> None:
    """bots.tokens_reserved == deleted sessions' tokens + per live session the next multiple
    of RESERVE_STEP above its total, whatever the message sizes (exact multiples included)."""
    step = RESERVE_STEP
    bot = await pg_store.bots.create_bot(Bot(name="Reserve", total_tokens_used=7))
    sessions = [
        await pg_store.chat.create_session(ChatSession(bot_id=bot.id, model="m")) for _ in range(3)
    ]
    sizes = [(0, 0), (step - 1, 0), (0, 1), (step, step), (1, 0), (3 * step + 5, 2), (0, step - 7)]
    for i, (tin, tout) in enumerate(sizes):
        await pg_store.chat.save_message(
            ChatMessage(session_id=sessions[i % 3].id, role=MessageRole.USER, content="t",
                        input_tokens=tin, output_tokens=tout)
        )  # fmt: skip
    await pg_store.chat.delete_session(sessions[2].id)

    conn = await asyncpg.connect(pg_url)
    try:
        reserved, base = await conn.fetchrow(
            "SELECT tokens_reserved, total_tokens_used FROM bots WHERE id = $1", bot.id
        )
    finally:
        await conn.close()
    live = []
    for s in sessions[:2]:
        got = await pg_store.chat.get_session(s.id)
        assert got is not None
        live.append(got.total_input_tokens + got.total_output_tokens)
    assert reserved == base + sum((t // step + 1) * step for t in live)
    total = await pg_store.bots.get_bot(bot.id)
    assert total is not None
    assert total.total_tokens_used == 7 + sum(a + b for a, b in sizes)


async def test_token_reservations_at_the_edges_of_a_step(pg_store: Store, pg_url: str) -> None:
    """A message that leaves its session within its step takes the statement without the bot
    row (SAVE_MESSAGE_WITHIN_STEP); one that reaches the next step exactly, or whose input and
    output each sit just below a step (their remainders add up past one), takes the whole one.
    The reservation is right after every message."""
    step = RESERVE_STEP
    bot = await pg_store.bots.create_bot(Bot(name="Edges"))
    session = await pg_store.chat.create_session(ChatSession(bot_id=bot.id, model="m"))
    conn = await asyncpg.connect(pg_url)
    try:
        total = 0
        for tin, tout in [(step - 1, step - 1), (0, 0), (1, 0), (0, 1), (step - 2, 0), (0, 1),
                          (0, 0), (step - 1, 0), (1, step), (2 * step - 1, 2 * step - 1)]:  # fmt: skip
            await pg_store.chat.save_message(
                ChatMessage(session_id=session.id, role=MessageRole.USER, content="t",
                            input_tokens=tin, output_tokens=tout)
            )  # fmt: skip
            total += tin + tout
            reserved = await conn.fetchval("SELECT tokens_reserved FROM bots WHERE id = $1", bot.id)
            assert reserved == (total // step + 1) * step, (tin, tout)
    finally:
        await conn.close()
