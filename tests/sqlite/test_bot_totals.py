"""SQLite counts a bot's tokens and activity 64 messages at a time (migration 0011): the bot
row holds the messages at or below the mark (messages_counted.up_to), a read adds those above
it. Whatever happens to the messages (saved one by one or together, popped, cleared, deleted
with their session, erased with their user, the newest deleted and their rowids reused), what
a bot read says is exact: every token ever saved, the latest activity; and the token
reservation that bounds it stays what it must be."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest

from boternity import Store, open_store
from boternity.models import MAX_BIGINT, Bot
from boternity.storage.sql import RESERVE_STEP, reserved
from tests.conformance import factories as f

pytestmark = pytest.mark.sqlite

#: Messages are counted on their bot this many at a time (the migration's batch trigger).
BATCH = 64


def _db(path: Path) -> tuple[dict[str, tuple[int, int]], int, int]:
    """(bot id -> (total_tokens_used, tokens_reserved) as stored), the mark, the largest
    rowid; checking that every message above the mark is one not yet counted."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT id, total_tokens_used, tokens_reserved FROM bots")
        bots = {b: (total, reserve) for b, total, reserve in rows}
        (mark,) = conn.execute("SELECT up_to FROM messages_counted").fetchone()
        (top,) = conn.execute("SELECT coalesce(max(rowid), 0) FROM chat_messages").fetchone()
    assert mark <= top  # the next message's rowid is above the mark
    return bots, mark, top


async def _check(store: Store, path: Path, used: dict[uuid.UUID, int]) -> None:
    """Every bot read says ``used`` (tokens ever saved, by bot), whichever way it is read,
    and each reservation is its deleted sessions' tokens plus its live sessions' steps (at
    most 2^63 - 1: what an upgrade gives a bot already that close)."""
    listed = {b.id: b for b in await store.bots.list_bots()}
    stored, _, _ = _db(path)
    for bot_id, tokens in used.items():
        got = await store.bots.get_bot(bot_id)
        assert got is not None
        assert got.total_tokens_used == listed[bot_id].total_tokens_used == tokens
        assert got.last_active_at == listed[bot_id].last_active_at
        renamed = await store.bots.update_bot(got)
        assert (renamed.total_tokens_used, renamed.last_active_at) == (
            tokens,
            got.last_active_at,
        )
        live = [
            s.total_input_tokens + s.total_output_tokens
            for s in await store.chat.list_sessions(bot_id)
        ]
        expected = tokens - sum(live) + sum(reserved(t) for t in live)
        assert stored[str(bot_id)][1] == min(expected, MAX_BIGINT)  # capped by an upgrade


async def test_bot_totals_are_exact_through_every_way_messages_come_and_go(
    tmp_path: Path,
) -> None:
    path = tmp_path / "b.db"
    async with open_store(path) as store:
        ana, ben = await f.new_bot(store), await f.new_bot(store)
        sessions = [await f.new_session(store, b.id) for b in (ana, ana, ben, ben)]
        used = {ana.id: 0, ben.id: 0}
        owner = {s.id: s.bot_id for s in sessions}

        async def save(s: uuid.UUID, n: int, tokens: int = 3) -> None:
            for i in range(n):
                await store.chat.save_message(f.message(s, f"m{i}", input_tokens=tokens))
                used[owner[s]] += tokens

        await save(sessions[0].id, 5)
        assert _db(path)[1] == 0  # nothing counted on the bot rows yet
        await _check(store, path, used)
        await save(sessions[2].id, BATCH)  # the 64th message counts all up to it
        _, mark, top = _db(path)
        assert (mark, top) == (BATCH, BATCH + 5)
        await _check(store, path, used)
        await save(sessions[1].id, 3, tokens=RESERVE_STEP)  # crosses steps: reserved more
        await store.chat.pop_message(sessions[1].id)  # a waiting one goes: still counted
        await store.chat.pop_message(sessions[2].id)  # a counted one goes
        await _check(store, path, used)
        await store.chat.clear_messages(sessions[3].id)
        await save(sessions[3].id, 2)
        await store.chat.clear_messages(sessions[3].id)  # waiting ones, the newest
        await save(sessions[3].id, 1, tokens=11)  # reuses a rowid at or below the old mark
        await _check(store, path, used)
        await store.chat.save_messages(
            [f.message(sessions[0].id, "x", output_tokens=2) for _ in range(70)]
        )
        used[ana.id] += 140
        await store.chat.delete_session(sessions[0].id)  # waiting messages among them
        await _check(store, path, used)
        await save(sessions[1].id, 2)
        latest = await store.chat.save_message(f.message(sessions[1].id, "last"))
        got = await store.bots.get_bot(ana.id)
        assert got is not None and got.last_active_at == latest.created_at
        await store.bots.delete_bot(ben.id)
        del used[ben.id]
        await _check(store, path, used)
        gone = await store.bots.get_bot(ben.id)
        assert gone is None


async def test_an_erased_users_waiting_messages_stay_counted(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    async with open_store(path) as store:
        bot = await store.bots.create_bot(Bot(name="Erase", total_tokens_used=5))
        mine = await f.new_session(store, bot.id, user_id="u1")
        other = await f.new_session(store, bot.id)
        for s in (mine, other, mine):
            await store.chat.save_message(f.message(s.id, "hi", input_tokens=10))
        await store.users.forget_user(bot.id, "u1")
        await _check(store, path, {bot.id: 35})


async def test_a_session_crossing_a_step_raises_the_reservation_only_then(
    tmp_path: Path,
) -> None:
    """The bot row is written by a message only when its session crosses a step."""
    path = tmp_path / "b.db"
    async with open_store(path) as store:
        s = await f.new_session(store)
        statements: list[str] = []
        await store.writer.run(lambda conn: conn.set_trace_callback(statements.append))  # type: ignore[attr-defined]
        await store.chat.save_message(f.message(s.id, "small", input_tokens=RESERVE_STEP - 1))
        assert not [q for q in statements if "UPDATE bots" in q]
        await store.chat.save_message(f.message(s.id, "crosses", output_tokens=1))
        assert len([q for q in statements if "UPDATE bots" in q]) == 1
        await store.writer.run(lambda conn: conn.set_trace_callback(None))  # type: ignore[attr-defined]
        bots, _, _ = _db(path)
        assert [reserve for _, reserve in bots.values()] == [2 * RESERVE_STEP]
