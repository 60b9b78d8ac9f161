"""boternity on PostgreSQL versus a raw asyncpg floor, on the same server, in one run.

    python benchmarks/postgres_bench.py --url postgresql://postgres@127.0.0.1:5432/test

W1: 3,000 appends (save_message) to one session, one after another.
W2: 8 sessions appending concurrently, 500 messages each.

The floor is the least any store must do per message: one INSERT per transaction into a
table shaped like chat_messages, on one connection per writer. boternity additionally assigns
seq and updates the session's and the bot's counters in the same transaction. Each workload
runs in a throwaway database created on the server of --url and dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from boternity import open_store
from boternity.ids import new_id, utc_now
from boternity.models import Bot, ChatMessage, ChatSession, MessageRole

TARGETS = {"W1": 0.5, "W2": 0.6}
CONTENT = "The quick brown fox jumps over the lazy dog. " * 4  # ~180 chars, a short chat turn
METADATA = {"client": "bench", "turn": 1}

_FLOOR_TABLE = (
    "CREATE TABLE floor_messages (id uuid PRIMARY KEY, session_id uuid NOT NULL,"
    " seq bigint NOT NULL, role text NOT NULL, content text NOT NULL,"
    " created_at timestamptz NOT NULL, input_tokens bigint, output_tokens bigint, metadata json)"
)
_FLOOR_INSERT = (
    "INSERT INTO floor_messages (id, session_id, seq, role, content, created_at, input_tokens,"
    " output_tokens, metadata) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
)


def _with_database(url: str, name: str) -> str:
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(path="/" + name))


async def _in_fresh_database(url: str, run: Callable[[str], Awaitable[float]]) -> float:
    name = f"boternity_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')  # generated name, not input
        try:
            return await run(_with_database(url, name))
        finally:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def _message(session_id: uuid.UUID) -> ChatMessage:
    return ChatMessage(
        session_id=session_id, role=MessageRole.USER, content=CONTENT, input_tokens=12,
        output_tokens=34, metadata=METADATA,
    )  # fmt: skip


async def floor(url: str, sessions: int, per_session: int) -> float:
    """Messages per second for raw single-INSERT transactions, one connection per session."""
    setup = await asyncpg.connect(url)
    await setup.execute(_FLOOR_TABLE)
    await setup.close()
    conns = [await asyncpg.connect(url) for _ in range(sessions)]
    meta = json.dumps(METADATA)
    try:

        async def writer(conn: Any) -> None:
            session_id = new_id()
            for seq in range(1, per_session + 1):
                await conn.execute(
                    _FLOOR_INSERT, new_id(), session_id, seq, "user", CONTENT, utc_now(), 12, 34,
                    meta,
                )  # fmt: skip

        start = time.perf_counter()
        await asyncio.gather(*(writer(c) for c in conns))
        elapsed = time.perf_counter() - start
    finally:
        for c in conns:
            await c.close()
    return sessions * per_session / elapsed


async def boternity(url: str, sessions: int, per_session: int) -> float:
    """Messages per second through Store.chat.save_message, one task per session."""
    async with open_store(url, pool_size=max(sessions, 2)) as store:
        bot = await store.bots.create_bot(Bot(name="Bench"))
        ids = [
            (await store.chat.create_session(ChatSession(bot_id=bot.id, model="m"))).id
            for _ in range(sessions)
        ]

        async def writer(session_id: uuid.UUID) -> None:
            for _ in range(per_session):
                await store.chat.save_message(_message(session_id))

        start = time.perf_counter()
        await asyncio.gather(*(writer(s) for s in ids))
        elapsed = time.perf_counter() - start
        for session_id in ids:  # the run must also be correct
            saved = await store.chat.get_session(session_id)
            assert saved is not None and saved.message_count == per_session
    return sessions * per_session / elapsed


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--url", required=True, help="a PostgreSQL URL whose user may CREATE DATABASE")
    parser.add_argument("--rounds", type=int, default=2, help="best of N rounds (default 2)")
    args = parser.parse_args()
    workloads = {"W1": (1, 3000), "W2": (8, 500)}
    failed = False
    for label, (sessions, each) in workloads.items():
        best_floor = best_ours = 0.0
        for _ in range(args.rounds):
            raw = await _in_fresh_database(args.url, lambda u: floor(u, sessions, each))  # noqa: B023
            ours = await _in_fresh_database(args.url, lambda u: boternity(u, sessions, each))  # noqa: B023
            best_floor, best_ours = max(best_floor, raw), max(best_ours, ours)
        ratio = best_ours / best_floor
        ok = ratio >= TARGETS[label]
        failed |= not ok
        print(
            f"{label} ({sessions} session(s) x {each}): floor {best_floor:8.0f} msg/s"
            f"   boternity {best_ours:8.0f} msg/s   ratio {ratio:.2f}"
            f" (target >= {TARGETS[label]:.1f}) {'ok' if ok else 'BELOW TARGET'}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
