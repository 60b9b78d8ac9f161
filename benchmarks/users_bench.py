"""What users cost: a user's reads must not grow with the other users of the bot.

    python benchmarks/users_bench.py [--url postgresql://…] [--users 400] [--json]

U1  get_memories(bot, user_id=U) (what recall reads every turn: U's memories and the bot's
    own) for 200 random users of one bot with USERS x 50 memories and 100 of its own, against
    the same read on a bot that holds only those 150 memories (median and p95 latency). The
    claim: the ratio stays near 1 however many users the bot has (two index ranges merged in
    order, never a scan of the other users' rows).
U2  search_memories(bot, word, user_id=U) likewise, against the small bot. The full-text
    index drives this read and is not split by bot or user (as before users), so its cost
    follows the word's matches in the whole database; the scope is a filter on them.
U3  forget_user of one user with 5 sessions x 20 messages and 50 memories (median of 20
    erasures).

SQLite in a temporary folder by default; --url runs the same on a throwaway PostgreSQL
database created on that server (dropped afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from boternity import Store, open_store
from boternity.models import Bot, ChatMessage, ChatSession, MemoryCategory, MemoryEntry, MessageRole

PER_USER = 50
SHARED = 100
PROBES = 200
WORDS = ["tea", "jazz", "lisbon", "chess", "violin", "ramen", "cats", "hiking", "python", "opera"]


def memory(bot: uuid.UUID, n: int, user: str | None) -> MemoryEntry:
    fact = f"Fact {n}: likes {WORDS[n % len(WORDS)]} and {WORDS[(n * 7) % len(WORDS)]}"
    return MemoryEntry(
        bot_id=bot, fact=fact, category=MemoryCategory.FACT, importance=1 + n % 5, user_id=user
    )


async def in_batches(items: list[Any], save: Callable[[Any], Awaitable[Any]]) -> None:
    for i in range(0, len(items), 500):  # concurrent units share commits (group commit)
        await asyncio.gather(*(save(item) for item in items[i : i + 500]))


async def fill(store: Store, users: int) -> tuple[Bot, Bot, list[str]]:
    big = await store.bots.create_bot(Bot(name=f"Crowded {uuid.uuid4().hex[:6]}"))
    small = await store.bots.create_bot(Bot(name=f"Alone {uuid.uuid4().hex[:6]}"))
    names = [f"discord:{100_000 + i}" for i in range(users)]
    rows = [memory(big.id, i, None) for i in range(SHARED)]
    rows += [memory(big.id, i, u) for k, u in enumerate(names) for i in range(k, k + PER_USER)]
    rows += [memory(small.id, i, None) for i in range(SHARED + PER_USER)]
    await in_batches(rows, store.memory.save_memory)
    return big, small, names


async def latencies(calls: list[Callable[[], Awaitable[Any]]]) -> list[float]:
    out = []
    for call in calls:
        started = time.perf_counter()
        await call()
        out.append((time.perf_counter() - started) * 1e6)
    return out


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median_us": statistics.median(ordered),
        "p95_us": ordered[int(len(ordered) * 0.95) - 1],
    }


async def erasures(store: Store, bot: Bot, count: int) -> list[float]:
    out = []
    for n in range(count):
        user = f"leaving:{n}"
        for _ in range(5):
            session = await store.chat.create_session(
                ChatSession(bot_id=bot.id, model="m", user_id=user)
            )
            await store.chat.save_messages(
                [
                    ChatMessage(session_id=session.id, role=MessageRole.USER, content=f"m{i}")
                    for i in range(20)
                ]
            )
        await in_batches(
            [memory(bot.id, 10_000 + i, user) for i in range(PER_USER)], store.memory.save_memory
        )
        started = time.perf_counter()
        deleted = await store.users.forget_user(bot.id, user)
        out.append((time.perf_counter() - started) * 1e6)
        assert deleted.memories == PER_USER and deleted.messages == 100
    return out


async def run(target: str, users: int) -> dict[str, Any]:
    async with open_store(target) as store:
        began = time.perf_counter()
        big, small, names = await fill(store, users)
        filled = time.perf_counter() - began
        probes = random.Random(7).sample(names, min(PROBES, len(names)))
        results: dict[str, Any] = {"users": users, "memories": users * PER_USER + SHARED}
        for name, crowded, alone in (
            (
                "U1",
                [lambda u=u: store.memory.get_memories(big.id, user_id=u) for u in probes],
                [lambda: store.memory.get_memories(small.id)] * len(probes),
            ),
            (
                "U2",
                [
                    lambda u=u: store.memory.search_memories(big.id, "opera", user_id=u)
                    for u in probes
                ],
                [lambda: store.memory.search_memories(small.id, "opera")] * len(probes),
            ),
        ):
            await latencies(crowded[:20] + alone[:20])  # warm caches
            one, two = summary(await latencies(crowded)), summary(await latencies(alone))
            results[name] = {
                "user_of_crowded_bot": one,
                "bot_alone": two,
                "ratio": one["median_us"] / two["median_us"],
            }
        results["U3"] = summary(await erasures(store, big, 20))
        results["fill_seconds"] = filled
        return results


@asynccontextmanager
async def database(url: str | None) -> AsyncIterator[str]:
    if url is None:
        with tempfile.TemporaryDirectory() as folder:
            yield str(Path(folder) / "users.db")
        return
    import asyncpg

    name = f"boternity_users_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            parts = urllib.parse.urlsplit(url)
            yield urllib.parse.urlunsplit(parts._replace(path="/" + name))
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a PostgreSQL server to run on (default: SQLite)")
    parser.add_argument("--users", type=int, default=400)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    async with database(args.url) as target:
        results = await run(target, args.users)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    backend = "PostgreSQL" if args.url else "SQLite"
    print(f"{backend}: {results['users']} users x {PER_USER} memories + {SHARED} of the bot's own"
          f" (filled in {results['fill_seconds']:.1f} s)")  # fmt: skip
    for name, what in (("U1", "get_memories"), ("U2", "search_memories")):
        r = results[name]
        print(
            f"{name} {what:<16} user of the crowded bot {r['user_of_crowded_bot']['median_us']:8.0f} us"
            f" (p95 {r['user_of_crowded_bot']['p95_us']:.0f}); bot alone"
            f" {r['bot_alone']['median_us']:8.0f} us; ratio {r['ratio']:.2f}"
        )
    u3 = results["U3"]
    print(f"U3 forget_user (5 sessions, 100 messages, 50 memories): {u3['median_us'] / 1000:.1f} ms"
          f" median (p95 {u3['p95_us'] / 1000:.1f} ms)")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
