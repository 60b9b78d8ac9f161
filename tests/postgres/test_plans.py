"""Query plans of reads that must stay bounded however many rows a bot has."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from boternity import Store
from boternity.backends.postgres.dialect import POSTGRES
from boternity.ids import new_id
from boternity.models import Bot

pytestmark = pytest.mark.postgres


def _scanned(plan: dict[str, Any]) -> int:
    """Rows that the plan's scans of session_memories returned, over every loop."""
    own = 0
    if plan.get("Relation Name") == "session_memories":
        own = plan["Actual Rows"] * plan["Actual Loops"] + plan.get("Rows Removed by Filter", 0)
    return own + sum(_scanned(p) for p in plan.get("Plans", []))


@pytest.mark.parametrize("cache_mode", ["force_custom_plan", "force_generic_plan"])
@pytest.mark.parametrize("user", [None, "u1"])
async def test_get_memories_reads_no_more_rows_than_it_returns(
    pg_store: Store, pg_url: str, cache_mode: str, user: str | None
) -> None:
    """get_memories(bot, limit=50) reads each owner's memories in index order and stops: it
    does not scan and sort every memory of the bot (as PostgreSQL did for a top-level UNION
    ALL of the two owners)."""
    bot = (await pg_store.bots.create_bot(Bot(name="b"))).id
    start = datetime(2025, 1, 1, tzinfo=UTC)
    rows = [
        (new_id(), bot, f"fact {i}", "fact", 1 + i % 5, start + timedelta(seconds=i), False,
         "u1" if i % 10 == 0 else None)
        for i in range(5_000)
    ]  # fmt: skip
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.copy_records_to_table(
            "session_memories", records=rows,
            columns=["id", "bot_id", "fact", "category", "importance", "created_at",
                     "is_manual", "user_id"],
        )  # fmt: skip
        await conn.execute("ANALYZE session_memories")
        await conn.execute(f"SET plan_cache_mode = {cache_mode}")
        explained = await conn.fetchval(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + POSTGRES.sql.get_memories, bot, False, user, 50
        )
    finally:
        await conn.close()
    plan = json.loads(explained)[0]["Plan"]
    assert _scanned(plan) <= 100, json.dumps(plan, indent=1)
    # And the rows are those the rule says, in order.
    got = await pg_store.memory.get_memories(bot, user_id=user, limit=50)
    seen = [r for r in rows if r[7] in (None, user)]
    expected = sorted(seen, key=lambda r: (r[4], r[5], r[0]), reverse=True)[:50]
    assert [m.id for m in got] == [r[0] for r in expected]
