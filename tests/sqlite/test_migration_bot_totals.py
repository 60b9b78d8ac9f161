"""Upgrading a SQLite database whose messages each updated their bot's row (schema 10) to
bot totals counted in batches (schema 11): every row is kept, each bot's totals read the
same, its token reservation is what its sessions hold, and the totals stay exact after."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest

from boternity import Store, open_store
from boternity.errors import ValidationError
from boternity.models import MAX_BIGINT, Bot
from boternity.storage.sql import RESERVE_STEP, reserved
from tests.conformance import factories as f
from tests.sqlite.test_bot_totals import _check, _db
from tests.upgrade import assert_rows_kept, latest, old_database, table_rows

pytestmark = pytest.mark.sqlite


async def _fill(store: Store) -> dict[str, Any]:
    """Three bots: one with a deleted session, one past a reservation step, one to be made a
    few tokens short of 2^63 - 1; every message counted on its bot, as schema 10 did at once."""
    plain = await f.new_bot(store)
    big = await f.new_bot(store)
    full = await store.bots.create_bot(Bot(name="Full"))
    kept, dropped = await f.new_session(store, plain.id), await f.new_session(store, plain.id)
    for i in range(5):
        for s in (kept, dropped):
            await store.chat.save_message(f.message(s.id, f"m{i}", input_tokens=i, output_tokens=1))
    await store.chat.delete_session(dropped.id)
    crossing = await f.new_session(store, big.id)
    await store.chat.save_message(f.message(crossing.id, "big", input_tokens=RESERVE_STEP + 3))
    last = await f.new_session(store, full.id)
    await store.chat.save_message(f.message(last.id, "almost", input_tokens=5))
    # A session's deletion counts every waiting message on its bot: the rows copied into the
    # old schema then hold what schema 10 held (every message counted).
    await store.chat.delete_session((await f.new_session(store, plain.id)).id)
    return {
        "used": {plain.id: 30, big.id: RESERVE_STEP + 3, full.id: MAX_BIGINT - 10},
        "sessions": (kept, crossing, last),
    }


async def test_upgrade_keeps_every_total_and_reserves_what_sessions_hold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = old_database("sqlite", tmp_path, monkeypatch, before="bot_totals_in_batches", fill=_fill)
    async with made as (url, filled):
        with sqlite3.connect(url) as conn:
            names = {r for (r,) in conn.execute("SELECT name FROM sqlite_master")}
        assert "messages_counted" not in names
        kept, crossing, last = filled["sessions"]
        with sqlite3.connect(url) as conn:  # schema 10 counted up to 2^63 - 1 exactly
            conn.execute(
                "UPDATE bots SET total_tokens_used = ? WHERE id = ?",
                (MAX_BIGINT - 10, str(last.bot_id)),
            )
        before = await table_rows("sqlite", url, skip={"tokens_reserved"})
        used: dict[uuid.UUID, int] = filled["used"]
        async with open_store(url) as store:
            assert store.schema_version == latest("sqlite") >= 11
            await assert_rows_kept("sqlite", url, before, added={"tokens_reserved"})
            stored, mark, top = _db(Path(url))
            assert mark == top  # every message was counted already
            assert stored[str(crossing.bot_id)][1] == reserved(RESERVE_STEP + 3)
            assert stored[str(last.bot_id)][1] == MAX_BIGINT  # capped, not past 2^63 - 1
            await _check(store, Path(url), used)
            for i in range(70):  # past a batch: counted on the bot row, and waiting
                await store.chat.save_message(f.message(kept.id, f"new {i}", output_tokens=2))
            used[kept.bot_id] += 140
            await store.chat.pop_message(kept.id)
            await _check(store, Path(url), used)
            await store.chat.save_message(f.message(last.id, "fits", input_tokens=9))
            used[last.bot_id] += 9
            with pytest.raises(ValidationError):  # its session would reserve past 2^63 - 1
                await store.chat.save_message(
                    f.message(last.id, "one more", input_tokens=RESERVE_STEP)
                )
            await _check(store, Path(url), used)
