"""Upgrading a SQLite database whose bot rows counted every message's tokens (schema 9) to
totals read from the sessions (schema 10): every bot reads back the same tokens and last
activity, the reservations cover every live session, and new messages and deleted sessions
keep the totals."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from boternity import Store, open_store
from boternity.backends.sqlite.dialect import RESERVE_STEP
from boternity.models import Bot, ChatSession
from tests.conformance import factories as f
from tests.upgrade import latest, old_database

pytestmark = pytest.mark.sqlite


async def _fill(store: Store) -> list[ChatSession]:
    """Two bots (one made with tokens already), sessions with tokens, one of them deleted,
    and a bot with no session at all."""
    sessions = []
    for b, start in enumerate((0, 1000)):
        bot = await store.bots.create_bot(Bot(name=f"Old bot {b}", total_tokens_used=start))
        for s in range(3):
            session = await f.new_session(store, bot.id)
            for i in range(3):
                m = f.message(
                    session.id, f"m{i}", input_tokens=5 * i + s, output_tokens=RESERVE_STEP * s
                )
                await store.chat.save_message(m)
            sessions.append(session)
        await store.chat.delete_session(sessions[-1].id)
    await store.bots.create_bot(Bot(name="Idle"))
    return sessions


def _as_schema_9(path: str) -> None:
    """The bot rows as schema 9 kept them: every live session's tokens and activity counted
    in the bot's own columns too (the copy holds what a current store keeps there)."""
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE bots SET total_tokens_used = total_tokens_used + coalesce((SELECT"
            " sum(s.total_input_tokens + s.total_output_tokens) FROM chat_sessions s"
            " WHERE s.bot_id = bots.id), 0), last_active_at = (SELECT coalesce("
            " max(bots.last_active_at, max(s.last_activity_at)), bots.last_active_at,"
            " max(s.last_activity_at)) FROM chat_sessions s WHERE s.bot_id = bots.id)"
        )


def _raw(path: str) -> dict[str, tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return {
            r[0]: r[1:]
            for r in conn.execute("SELECT id, total_tokens_used, tokens_reserved FROM bots")
        }


async def test_upgrade_reads_the_same_totals_and_reserves_for_every_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = old_database(
        "sqlite", tmp_path, monkeypatch, before="bot_totals_from_sessions", fill=_fill
    )
    async with made as (url, sessions):
        _as_schema_9(url)
        with sqlite3.connect(url) as conn:
            old = {
                r[0]: (r[1], r[2])
                for r in conn.execute("SELECT id, total_tokens_used, last_active_at FROM bots")
            }
        # Per bot: 3 sessions of 3 messages, 5 * i + s tokens in and RESERVE_STEP * s out.
        step = RESERVE_STEP
        assert sorted(t for t, _ in old.values()) == [0, 9 * step + 54, 9 * step + 1054]
        async with open_store(url) as store:
            assert store.schema_version == latest("sqlite") >= 10
            bots = await store.bots.list_bots()
            assert {str(b.id): (b.total_tokens_used, b.last_active_at) for b in bots} == {
                k: (t, None if at is None else store_time(at)) for k, (t, at) in old.items()
            }
            for bot in bots:
                live = [
                    s.total_input_tokens + s.total_output_tokens
                    for s in await store.chat.list_sessions(bot.id)
                ]
                base = bot.total_tokens_used - sum(live)
                assert _raw(url)[str(bot.id)] == (
                    base,
                    base + sum((t // step + 1) * step for t in live),
                )
            # New messages and a deleted session keep the totals.
            await store.chat.save_message(f.message(sessions[0].id, "new", input_tokens=step))
            await store.chat.delete_session(sessions[1].id)
            got = await store.bots.get_bot(sessions[0].bot_id)
            assert got is not None
            assert got.total_tokens_used == old[str(sessions[0].bot_id)][0] + step


def store_time(text: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(text)
