"""boternity on SQLite against a raw sqlite3 floor, measured in one run.

    .venv/bin/python benchmarks/sqlite_bench.py [--quick] [--json FILE]

W1  3,000 save_message calls to one session, one after another (throughput)
W2  8 sessions appending concurrently, 500 messages each (throughput)
W3  get_recent_messages(50) on a 100,000-message session (median, p95 latency), and the
    same on a 1,000-message session (how latency grows with session length)
W4  the last 50 messages of 200 random sessions out of 20,000 (median, p95 latency)

The floor is plain sqlite3 on the same machine in the same run: WAL, synchronous=NORMAL,
one INSERT per transaction for writes; the same SELECT, fetched as tuples, for reads.
Ratios: throughput boternity/floor (higher is better), latency boternity/floor (lower).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from boternity import open_store
from boternity.ids import new_id, utc_now
from boternity.models import Bot, ChatMessage, ChatSession, MessageRole

CONTENT = "The quick brown fox jumps over the lazy dog. " * 4  # ~180 characters
TARGETS = {"W1": 0.35, "W2": 0.5, "W3": 4.0, "W3_growth": 1.3, "W4": 6.0}

RAW_SCHEMA = """
CREATE TABLE messages (
    id TEXT PRIMARY KEY, session_id TEXT NOT NULL, seq INTEGER NOT NULL, role TEXT NOT NULL,
    content TEXT NOT NULL, created_at TEXT NOT NULL, UNIQUE (session_id, seq)
)
"""


def raw_connection(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def raw_appends(path: Path, count: int) -> float:
    """The floor: one INSERT per transaction, messages/s."""
    conn = raw_connection(path)
    conn.execute(RAW_SCHEMA)
    session = str(uuid.uuid4())
    t0 = time.perf_counter()
    for i in range(count):
        conn.execute("BEGIN")
        conn.execute(
            "INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?)",
            (str(new_id()), session, i + 1, "user", CONTENT, utc_now().isoformat()),
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    conn.close()
    return count / elapsed


def message(session_id: uuid.UUID, i: int) -> ChatMessage:
    return ChatMessage(
        session_id=session_id,
        role=MessageRole.USER if i % 2 == 0 else MessageRole.ASSISTANT,
        content=CONTENT,
        input_tokens=10,
        output_tokens=20,
    )


async def boternity_appends(path: Path, sessions: int, per_session: int) -> float:
    async with open_store(path) as store:
        bot = await store.bots.create_bot(Bot(name=f"bench {uuid.uuid4().hex[:6]}"))
        ids = [
            (await store.chat.create_session(ChatSession(bot_id=bot.id, model="m"))).id
            for _ in range(sessions)
        ]

        async def writer(session_id: uuid.UUID) -> None:
            for i in range(per_session):
                await store.chat.save_message(message(session_id, i))

        t0 = time.perf_counter()
        await asyncio.gather(*(writer(s) for s in ids))
        elapsed = time.perf_counter() - t0
        for s in ids:
            assert await store.chat.get_message_count(s) == per_session
    return sessions * per_session / elapsed


def bulk_fill(path: Path, session_sizes: list[int]) -> list[str]:
    """Fill a boternity database directly (fast set-up for read workloads)."""
    conn = sqlite3.connect(path, isolation_level=None)
    bot_id = conn.execute("SELECT id FROM bots LIMIT 1").fetchone()[0]
    now = utc_now().isoformat(timespec="microseconds")
    ids: list[str] = []
    conn.execute("BEGIN")
    for size in session_sizes:
        sid = str(new_id())
        ids.append(sid)
        conn.execute(
            "INSERT INTO chat_sessions (id, bot_id, started_at, model, message_count)"
            " VALUES (?, ?, ?, 'm', ?)",
            (sid, bot_id, now, size),
        )
        conn.executemany(
            "INSERT INTO chat_messages (id, session_id, seq, role, content, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                (str(new_id()), sid, i, "user" if i % 2 else "assistant", CONTENT, now)
                for i in range(1, size + 1)
            ),
        )
    conn.execute("COMMIT")
    conn.close()
    return ids


RAW_RECENT = (
    "SELECT id, session_id, seq, role, content, created_at, input_tokens, output_tokens,"
    " model, stop_reason, response_ms, metadata FROM chat_messages WHERE session_id = ?"
    " ORDER BY seq DESC LIMIT 50"
)


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.95) - 1]


def raw_reads(path: Path, session_ids: list[str], rounds: int) -> list[float]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    out = []
    for i in range(rounds):
        sid = session_ids[i % len(session_ids)]
        t0 = time.perf_counter()
        rows = conn.execute(RAW_RECENT, (sid,)).fetchall()
        out.append(time.perf_counter() - t0)
        assert rows
    conn.close()
    return out


async def boternity_reads(path: Path, session_ids: list[str], rounds: int) -> list[float]:
    async with open_store(path) as store:
        keys = [uuid.UUID(s) for s in session_ids]
        await store.chat.get_recent_messages(keys[0], 50)  # warm up
        out = []
        for i in range(rounds):
            t0 = time.perf_counter()
            got = await store.chat.get_recent_messages(keys[i % len(keys)], 50)
            out.append(time.perf_counter() - t0)
            assert got
    return out


def measure(label: str, fn: Callable[[], Any]) -> Any:
    print(f"  {label} …", flush=True)
    return fn()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--dir", type=Path, help="where to put the database files")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    w1_n, w2_n = 3000 // scale, 500 // scale
    big, small, many = 100_000 // scale, 1_000, 20_000 // scale
    rounds = 2000 // scale
    workdir = Path(tempfile.mkdtemp(prefix="boternity-bench-", dir=args.dir))
    results: dict[str, Any] = {}
    print(f"benchmark files in {workdir}")

    floor_w1 = measure("W1 floor", lambda: raw_appends(workdir / "raw1.db", w1_n))
    ours_w1 = measure(
        "W1 boternity", lambda: asyncio.run(boternity_appends(workdir / "w1.db", 1, w1_n))
    )
    floor_w2 = measure("W2 floor", lambda: raw_appends(workdir / "raw2.db", 8 * w2_n))
    ours_w2 = measure(
        "W2 boternity", lambda: asyncio.run(boternity_appends(workdir / "w2.db", 8, w2_n))
    )
    results["W1"] = {
        "floor_per_s": floor_w1,
        "boternity_per_s": ours_w1,
        "ratio": ours_w1 / floor_w1,
    }
    results["W2"] = {
        "floor_per_s": floor_w2,
        "boternity_per_s": ours_w2,
        "ratio": ours_w2 / floor_w2,
    }

    reads_db = workdir / "reads.db"

    async def create_bot() -> None:
        async with open_store(reads_db) as store:
            await store.bots.create_bot(Bot(name="reader"))

    asyncio.run(create_bot())
    print("  filling read database …", flush=True)
    big_id, small_id = bulk_fill(reads_db, [big, small])
    many_ids = bulk_fill(reads_db, [60] * many)
    picks = random.Random(7).sample(many_ids, 200)

    for name, ids in (("W3", [big_id]), ("W3_small", [small_id]), ("W4", picks)):
        floor = percentiles(
            measure(f"{name} floor", lambda ids=ids: raw_reads(reads_db, ids, rounds))
        )
        ours = percentiles(
            measure(
                f"{name} boternity",
                lambda ids=ids: asyncio.run(boternity_reads(reads_db, ids, rounds)),
            )
        )
        results[name] = {
            "floor_median_us": floor[0] * 1e6,
            "floor_p95_us": floor[1] * 1e6,
            "boternity_median_us": ours[0] * 1e6,
            "boternity_p95_us": ours[1] * 1e6,
            "ratio": ours[0] / floor[0],
        }
    results["W3_growth"] = {
        "ratio": results["W3"]["boternity_median_us"] / results["W3_small"]["boternity_median_us"]
    }

    print()
    print(f"{'workload':<10} {'floor':>16} {'boternity':>16} {'ratio':>7} {'target':>8}")
    for name in ("W1", "W2"):
        r = results[name]
        print(
            f"{name:<10} {r['floor_per_s']:>12,.0f} msg/s {r['boternity_per_s']:>10,.0f} msg/s"
            f" {r['ratio']:>6.2f}x  >= {TARGETS[name]}x"
        )
    for name in ("W3", "W3_small", "W4"):
        r = results[name]
        target = f"<= {TARGETS[name]}x" if name in TARGETS else ""
        print(
            f"{name:<10} {r['floor_median_us']:>8.0f} µs (p95 {r['floor_p95_us']:>4.0f})"
            f" {r['boternity_median_us']:>6.0f} µs (p95 {r['boternity_p95_us']:>4.0f})"
            f" {r['ratio']:>6.2f}x  {target}"
        )
    print(f"{'W3 growth':<10} 100k vs 1k session: {results['W3_growth']['ratio']:.2f}x  (<= 1.3x)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
