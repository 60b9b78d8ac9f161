"""SQLite reads a bot's token total and last activity from its sessions (migration 0010):
save_message leaves the bot row alone, and tokens_reserved keeps the total within 64 bits."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from boternity import open_store
from boternity.backends.sqlite.dialect import RESERVE_STEP
from boternity.errors import ValidationError
from boternity.models import MAX_BIGINT, Bot, ChatMessage, ChatSession, MessageRole

pytestmark = pytest.mark.sqlite


def _bot_row(path: Path, bot_id: object) -> tuple[int, int, str | None]:
    """(total_tokens_used, tokens_reserved, last_active_at) as stored."""
    with sqlite3.connect(path) as conn:
        row = conn.execute(
            "SELECT total_tokens_used, tokens_reserved, last_active_at FROM bots WHERE id = ?",
            (str(bot_id),),
        ).fetchone()
    return row  # type: ignore[no-any-return]


def _message(session: ChatSession, tin: int, tout: int) -> ChatMessage:
    return ChatMessage(
        session_id=session.id, role=MessageRole.USER, content="t", input_tokens=tin,
        output_tokens=tout,
    )  # fmt: skip


async def test_token_reservations_track_every_step_crossing(tmp_path: Path) -> None:
    """tokens_reserved == deleted sessions' tokens + per live session the next multiple of
    RESERVE_STEP above its total, whatever the message sizes (exact multiples included); the
    bot row holds only what deleted sessions left, and save_message never writes it."""
    path, step = tmp_path / "b.db", RESERVE_STEP
    async with open_store(path) as store:
        bot = await store.bots.create_bot(Bot(name="Reserve", total_tokens_used=7))
        sessions = [
            await store.chat.create_session(ChatSession(bot_id=bot.id, model="m")) for _ in range(3)
        ]
        assert _bot_row(path, bot.id) == (7, 7 + 3 * step, None)
        sizes = [(0, 0), (step - 1, 0), (0, 1), (step, step), (1, 0), (3 * step + 5, 2)]
        sizes.append((0, step - 7))
        for i, (tin, tout) in enumerate(sizes):
            await store.chat.save_message(_message(sessions[i % 3], tin, tout))
        live, active = [], []
        for s in sessions:
            got = await store.chat.get_session(s.id)
            assert got is not None and got.last_activity_at is not None
            live.append(got.total_input_tokens + got.total_output_tokens)
            active.append(got.last_activity_at)
        assert _bot_row(path, bot.id) == (7, 7 + sum((t // step + 1) * step for t in live), None)
        read = await store.bots.get_bot(bot.id)
        assert read is not None and read.total_tokens_used == 7 + sum(live)
        assert read.last_active_at == max(active)
        await store.chat.delete_session(sessions[2].id)  # its tokens and activity stay
        base = 7 + live[2]
        assert _bot_row(path, bot.id)[:2] == (
            base, base + sum((t // step + 1) * step for t in live[:2])
        )  # fmt: skip
        assert _bot_row(path, bot.id)[2] is not None
        again = await store.bots.get_bot(bot.id)
        assert again is not None
        assert (again.total_tokens_used, again.last_active_at) == (
            read.total_tokens_used, read.last_active_at
        )  # fmt: skip


async def test_a_session_the_reservation_cannot_hold_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    async with open_store(path) as store:
        bot = await store.bots.create_bot(
            Bot(name="Full", total_tokens_used=MAX_BIGINT - RESERVE_STEP // 2)
        )
        with pytest.raises(ValidationError, match="would overflow"):
            await store.chat.create_session(ChatSession(bot_id=bot.id, model="m"))
        read = await store.bots.get_bot(bot.id)
        assert read is not None and read.conversation_count == 0
        assert await store.chat.list_sessions(bot.id) == []
