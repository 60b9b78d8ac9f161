"""boternity's framework adapters against the frameworks' own stores, through each framework's API.

    uv run --group bench python benchmarks/integrations_bench.py [--quick] [--url POSTGRES_URL]
        [--json FILE]

With --url, the PostgreSQL rows run in a new database made on that server for this run
(dropped at the end); the database the URL names is never written to.

W1  3,000 appends of one item / message, one after another (throughput):
      Agents SDK  ``add_items([item])``: the SDK's ``SQLiteSession`` (a file) and
                  ``BoternitySession`` (SQLite; and PostgreSQL with --url)
      LangChain   ``add_messages([message])``: langchain-community's ``SQLChatMessageHistory``
                  (SQLite file, sync) and ``BoternityChatMessageHistory`` (sync, from plain
                  code via ``open``; and ``aadd_messages`` on the store's own loop)
W3  the last 50 of a 100,000-item session (median and p95 latency):
      Agents SDK  ``get_items(limit=50)``
      LangChain   ``SQLChatMessageHistory.messages[-50:]`` (its API reads the whole
                  history) and ``BoternityChatMessageHistory(limit=50).messages``

The LangChain rows need the ``bench`` dependency group (langchain-community, SQLAlchemy);
without it they are skipped. Everything runs on this machine in one run; compare rows of
one run only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import tempfile
import time
import urllib.parse
import uuid
import warnings
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from agents import SQLiteSession, TResponseInputItem
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from boternity import open_store
from boternity.integrations.langchain import BoternityChatMessageHistory
from boternity.integrations.openai_agents import BoternitySession
from boternity.models import Bot

CONTENT = "The quick brown fox jumps over the lazy dog. " * 4  # ~180 characters
FILL_BATCH = 1000

warnings.filterwarnings("ignore", category=DeprecationWarning)  # langchain-community's sunset
try:
    from langchain_community.chat_message_histories import SQLChatMessageHistory
except ImportError:  # pragma: no cover - the bench group is not installed
    SQLChatMessageHistory = None


def item(i: int) -> TResponseInputItem:
    role = "user" if i % 2 == 0 else "assistant"
    return {"role": role, "content": f"{i} {CONTENT}"}  # type: ignore[return-value]


def lc_message(i: int) -> BaseMessage:
    text = f"{i} {CONTENT}"
    return HumanMessage(content=text) if i % 2 == 0 else AIMessage(content=text)


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_us": statistics.median(ordered) * 1e6,
        "p95_us": ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1e6,
    }


async def atimed(n: int, op: Callable[[int], Awaitable[Any]]) -> float:
    """n calls one after another: operations per second."""
    t0 = time.perf_counter()
    for i in range(n):
        await op(i)
    return n / (time.perf_counter() - t0)


def timed(n: int, op: Callable[[int], Any]) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        op(i)
    return n / (time.perf_counter() - t0)


async def alatencies(rounds: int, op: Callable[[], Awaitable[Any]]) -> dict[str, float]:
    await op()  # warm up
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        await op()
        out.append(time.perf_counter() - t0)
    return percentiles(out)


def latencies(rounds: int, op: Callable[[], Any]) -> dict[str, float]:
    op()
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        op()
        out.append(time.perf_counter() - t0)
    return percentiles(out)


async def make_bot(url: str) -> None:
    async with open_store(url) as store:
        if await store.bots.get_bot_by_slug("bench") is None:
            await store.bots.create_bot(Bot(name="bench"))


# --- the Agents SDK ---------------------------------------------------------------------


async def sdk_sqlite(path: Path, n: int, big: int, rounds: int) -> dict[str, Any]:
    session = SQLiteSession("w1", path)
    w1 = await atimed(n, lambda i: session.add_items([item(i)]))
    session.close()
    long = SQLiteSession("w3", path)
    for start in range(0, big, FILL_BATCH):
        await long.add_items([item(i) for i in range(start, min(big, start + FILL_BATCH))])
    w3 = await alatencies(rounds, lambda: long.get_items(limit=50))
    assert len(await long.get_items(limit=50)) == 50
    long.close()
    return {"W1_per_s": w1, "W3": w3}


async def sdk_boternity(url: str, n: int, big: int, rounds: int) -> dict[str, Any]:
    await make_bot(url)
    async with open_store(url) as store:
        session = BoternitySession("w1", store=store, bot="bench")
        await session.add_items([item(-1)])  # the session exists before timing starts
        w1 = await atimed(n, lambda i: session.add_items([item(i)]))
        long = BoternitySession("w3", store=store, bot="bench")
        for start in range(0, big, FILL_BATCH):
            await long.add_items([item(i) for i in range(start, min(big, start + FILL_BATCH))])
        w3 = await alatencies(rounds, lambda: long.get_items(limit=50))
        assert len(await long.get_items(limit=50)) == 50
    return {"W1_per_s": w1, "W3": w3}


# --- LangChain ----------------------------------------------------------------------------


def lc_sql(path: Path, n: int, big: int, rounds: int) -> dict[str, Any]:
    assert SQLChatMessageHistory is not None
    url = f"sqlite:///{path}"
    history = SQLChatMessageHistory("w1", connection=url)
    w1 = timed(n, lambda i: history.add_messages([lc_message(i)]))
    long = SQLChatMessageHistory("w3", connection=url)
    for start in range(0, big, FILL_BATCH):
        long.add_messages([lc_message(i) for i in range(start, min(big, start + FILL_BATCH))])
    w3 = latencies(rounds, lambda: long.messages[-50:])
    return {"W1_per_s": w1, "W3": w3}


def lc_boternity_sync(url: str, n: int, big: int, rounds: int) -> dict[str, Any]:
    asyncio.run(make_bot(url))
    with BoternityChatMessageHistory.open("w1", url, bot="bench") as history:
        history.add_messages([lc_message(-1)])
        w1 = timed(n, lambda i: history.add_messages([lc_message(i)]))
    with BoternityChatMessageHistory.open("w3", url, bot="bench", limit=50) as long:
        for start in range(0, big, FILL_BATCH):
            long.add_messages([lc_message(i) for i in range(start, min(big, start + FILL_BATCH))])
        w3 = latencies(rounds, lambda: long.messages)
        assert len(long.messages) == 50
    return {"W1_per_s": w1, "W3": w3}


async def lc_boternity_async(url: str, n: int, big: int, rounds: int) -> dict[str, Any]:
    await make_bot(url)
    async with open_store(url) as store:
        history = BoternityChatMessageHistory("w1-async", store=store, bot="bench")
        await history.aadd_messages([lc_message(-1)])
        w1 = await atimed(n, lambda i: history.aadd_messages([lc_message(i)]))
        long = BoternityChatMessageHistory("w3", store=store, bot="bench", limit=50)
        if not await long.aget_messages():
            for start in range(0, big, FILL_BATCH):
                batch = [lc_message(i) for i in range(start, min(big, start + FILL_BATCH))]
                await long.aadd_messages(batch)
        w3 = await alatencies(rounds, long.aget_messages)
    return {"W1_per_s": w1, "W3": w3}


@contextlib.contextmanager
def throwaway_database(url: str) -> Iterator[str]:
    """A new database on the server of ``url``, dropped afterwards."""
    import asyncpg

    name = f"boternity_intbench_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        parts = urllib.parse.urlsplit(url)
        yield urllib.parse.urlunsplit(parts._replace(path="/" + name))
    finally:
        asyncio.run(admin(f'DROP DATABASE "{name}" WITH (FORCE)'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--url", help="also run boternity's adapters on this PostgreSQL URL")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--dir", type=Path, help="where to put the database files")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        pg = stack.enter_context(throwaway_database(args.url)) if args.url else None
        bench(args, pg)


def bench(args: argparse.Namespace, pg: str | None) -> None:
    scale = 10 if args.quick else 1
    n, big, rounds = 3000 // scale, 100_000 // scale, 200 // scale
    slow_rounds = 5 if not args.quick else 3  # for stores that read the whole history
    work = Path(tempfile.mkdtemp(prefix="boternity-int-bench-", dir=args.dir))
    print(f"benchmark files in {work}")
    rows: dict[str, dict[str, Any]] = {}

    def run(label: str, fn: Callable[[], dict[str, Any]]) -> None:
        print(f"  {label} …", flush=True)
        rows[label] = fn()

    run("SDK SQLiteSession", lambda: asyncio.run(sdk_sqlite(work / "sdk.db", n, big, rounds)))
    run(
        "SDK BoternitySession (SQLite)",
        lambda: asyncio.run(sdk_boternity(str(work / "b-sdk.db"), n, big, rounds)),
    )
    if pg:
        run(
            "SDK BoternitySession (PostgreSQL)",
            lambda: asyncio.run(sdk_boternity(pg, n, big, rounds)),
        )
    if SQLChatMessageHistory is not None:
        run("LC SQLChatMessageHistory", lambda: lc_sql(work / "lc.db", n, big, slow_rounds))
    else:
        print("  LC SQLChatMessageHistory skipped: uv run --group bench … to include it")
    run(
        "LC Boternity… sync (SQLite)",
        lambda: lc_boternity_sync(str(work / "b-lc.db"), n, big, rounds),
    )
    run(
        "LC Boternity… async (SQLite)",
        lambda: asyncio.run(lc_boternity_async(str(work / "b-lc.db"), n, big, rounds)),
    )
    if pg:
        run(
            "LC Boternity… async (PostgreSQL)",
            lambda: asyncio.run(lc_boternity_async(pg, n, big, rounds)),
        )

    print()
    print(f"{'store':<36} {'W1 appends/s':>13} {'W3 median':>11} {'W3 p95':>11}")
    for label, r in rows.items():
        print(
            f"{label:<36} {r['W1_per_s']:>13,.0f} {r['W3']['median_us']:>9,.0f}µs"
            f" {r['W3']['p95_us']:>9,.0f}µs"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
