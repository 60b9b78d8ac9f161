"""boternity on PostgreSQL versus a raw asyncpg floor, on the same server, in one run.

    python benchmarks/postgres_bench.py --url postgresql://postgres@127.0.0.1:5432/test

W1: 3,000 appends (save_message) to one session, one after another.
W2: 8 sessions appending concurrently, 500 messages each.

The floor is the least any store must do per message: one INSERT per transaction (autocommit)
into a table shaped like chat_messages (same columns, primary key and UNIQUE (session_id, seq)),
on one connection per writer. boternity additionally assigns seq and updates the session's
counters in the same transaction, and builds and validates a ChatMessage per call.

Both run in one throwaway database created on the server of --url (dropped afterwards), in
alternating slices (floor, boternity, floor, ...), so a busy machine slows both alike; each
side's throughput is its messages over the sum of its own slices' wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import urllib.parse
import uuid
from typing import Any

import asyncpg

from boternity import Store, open_store
from boternity.ids import new_id, utc_now
from boternity.models import Bot, ChatMessage, ChatSession, MessageRole

TARGETS = {"W1": 0.5, "W2": 0.6}
WORKLOADS = {"W1": (1, 3000), "W2": (8, 500)}  # (sessions, messages per session)
SLICES = 10
CONTENT = "The quick brown fox jumps over the lazy dog. " * 4  # ~180 chars, a short chat turn
METADATA = {"client": "bench", "turn": 1}

_FLOOR_TABLE = (
    "CREATE TABLE floor_messages (id uuid PRIMARY KEY, session_id uuid NOT NULL,"
    " seq bigint NOT NULL, role text NOT NULL, content text NOT NULL,"
    " created_at timestamptz NOT NULL, input_tokens bigint, output_tokens bigint,"
    " model text, stop_reason text, response_ms bigint, metadata json,"
    " UNIQUE (session_id, seq))"
)
_FLOOR_INSERT = (
    "INSERT INTO floor_messages (id, session_id, seq, role, content, created_at, input_tokens,"
    " output_tokens, metadata) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
)


def _with_database(url: str, name: str) -> str:
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(path="/" + name))


class Floor:
    """Raw asyncpg: one connection per writer, one INSERT per transaction."""

    def __init__(self, conns: list[Any]) -> None:
        self.conns = conns
        self.sessions = [new_id() for _ in conns]
        self.next_seq = [1] * len(conns)
        self.meta = json.dumps(METADATA)

    async def run(self, per_session: int) -> float:
        async def writer(i: int) -> None:
            conn, session_id = self.conns[i], self.sessions[i]
            for _ in range(per_session):
                seq = self.next_seq[i]
                self.next_seq[i] += 1
                await conn.execute(
                    _FLOOR_INSERT, new_id(), session_id, seq, "user", CONTENT, utc_now(), 12, 34,
                    self.meta,
                )  # fmt: skip

        start = time.perf_counter()
        await asyncio.gather(*(writer(i) for i in range(len(self.conns))))
        return time.perf_counter() - start


class Boternity:
    """Store.chat.save_message, one task per session, through the store's pool."""

    def __init__(self, store: Store, sessions: list[uuid.UUID]) -> None:
        self.store = store
        self.sessions = sessions

    async def run(self, per_session: int) -> float:
        async def writer(session_id: uuid.UUID) -> None:
            for _ in range(per_session):
                await self.store.chat.save_message(
                    ChatMessage(
                        session_id=session_id, role=MessageRole.USER, content=CONTENT,
                        input_tokens=12, output_tokens=34, metadata=METADATA,
                    )
                )  # fmt: skip

        start = time.perf_counter()
        await asyncio.gather(*(writer(s) for s in self.sessions))
        return time.perf_counter() - start


async def workload(url: str, sessions: int, per_session: int) -> tuple[float, float]:
    """(floor msg/s, boternity msg/s) for ``sessions`` writers of ``per_session`` each."""
    setup = await asyncpg.connect(url)
    await setup.execute(_FLOOR_TABLE)
    await setup.close()
    conns = [await asyncpg.connect(url) for _ in range(sessions)]
    try:
        async with open_store(url, pool_size=max(sessions, 2)) as store:
            bot = await store.bots.create_bot(Bot(name="Bench"))
            ids = [
                (await store.chat.create_session(ChatSession(bot_id=bot.id, model="m"))).id
                for _ in range(sessions)
            ]
            floor, ours = Floor(conns), Boternity(store, ids)
            await floor.run(20)  # warm up: connections, prepared statements, caches
            await ours.run(20)
            floor_time = ours_time = 0.0
            for _ in range(SLICES):
                floor_time += await floor.run(per_session // SLICES)
                ours_time += await ours.run(per_session // SLICES)
            for session_id in ids:  # the run must also be correct
                saved = await store.chat.get_session(session_id)
                assert saved is not None and saved.message_count == per_session + 20
    finally:
        for c in conns:
            await c.close()
    done = sessions * (per_session // SLICES) * SLICES
    return done / floor_time, done / ours_time


async def main() -> int:
    parser = argparse.ArgumentParser(description="boternity on PostgreSQL vs a raw asyncpg floor")
    parser.add_argument(
        "--url", required=True, help="PostgreSQL URL of a user who may CREATE DATABASE"
    )
    args = parser.parse_args()
    admin = await asyncpg.connect(args.url)
    failed = False
    try:
        for label, (sessions, each) in WORKLOADS.items():
            name = f"boternity_bench_{uuid.uuid4().hex[:12]}"  # generated, never input
            await admin.execute(f'CREATE DATABASE "{name}"')
            try:
                raw, ours = await workload(_with_database(args.url, name), sessions, each)
            finally:
                await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            ratio = ours / raw
            ok = ratio >= TARGETS[label]
            failed |= not ok
            print(
                f"{label} ({sessions} x {each}): floor {raw:7.0f} msg/s   boternity {ours:7.0f}"
                f" msg/s   ratio {ratio:.2f} (target >= {TARGETS[label]:.1f})"
                f" {'ok' if ok else 'BELOW TARGET'}"
            )
    finally:
        await admin.close()
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
