"""Timing helpers and the message every system stores."""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

CONTENT = "The quick brown fox jumps over the lazy dog. " * 4  # ~180 characters, a short chat turn
METADATA = {"client": "bench", "turn": 1}


@dataclass
class Sample:
    """One timed slice: ``ops`` operations in ``wall`` seconds using ``cpu`` seconds of this
    process's CPU time (every thread: the writer and reader threads count too), and
    ``server`` seconds of the database server's (PostgreSQL: the system's own backends)."""

    ops: int
    wall: float
    cpu: float
    server: float | None = None

    @property
    def per_s(self) -> float:
        return self.ops / self.wall

    @property
    def cpu_us(self) -> float:
        return self.cpu / self.ops * 1e6


async def timed(
    ops: int, work: Callable[[], Awaitable[Any]], server_pids: list[int] | None = None
) -> Sample:
    s0 = process_cpu(server_pids) if server_pids else None
    c0, t0 = time.process_time(), time.perf_counter()
    await work()
    t1, c1 = time.perf_counter(), time.process_time()
    server = process_cpu(server_pids) - s0 if server_pids and s0 is not None else None
    return Sample(ops, t1 - t0, c1 - c0, server)


def process_cpu(pids: list[int]) -> float:
    """CPU seconds of these processes so far (Linux /proc; 0 for gone ones): the scheduler's
    nanosecond count of time on a CPU where the kernel keeps it (schedstat), else user +
    system time in clock ticks, 10 ms each: too coarse for a slice of a few hundred
    messages spread over 8 server processes."""
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/schedstat") as f:
                total += int(f.read().split()[0]) / 1e9
            continue
        except (OSError, ValueError, IndexError):
            pass
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


async def latencies(rounds: int, op: Callable[[int], Awaitable[Any]]) -> tuple[list[float], float]:
    """``rounds`` calls one after another: each call's seconds, and the CPU µs per call."""
    await op(0)  # warm: statements prepared, pages cached
    out = []
    c0 = time.process_time()
    for i in range(rounds):
        t0 = time.perf_counter()
        await op(i)
        out.append(time.perf_counter() - t0)
    return out, (time.process_time() - c0) / rounds * 1e6


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def with_database(url: str, name: str) -> str:
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(path="/" + name))


@contextlib.asynccontextmanager
async def throwaway_database(url: str) -> AsyncIterator[str]:
    """A new database on the server of ``url`` (dropped afterwards): the database the URL
    names is never written to."""
    import asyncpg

    name = f"boternity_bench_{uuid.uuid4().hex[:12]}"  # generated, never input
    admin = await asyncpg.connect(url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield with_database(url, name)
        finally:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def rotate(items: list[Any], rep: int) -> list[Any]:
    """The systems in a different order each repetition: none always runs first or last."""
    k = rep % len(items) if items else 0
    return items[k:] + items[:k]


async def run_sync(fn: Callable[[], Any]) -> Any:
    """A synchronous call, as a coroutine (the loop is blocked while it runs, as it is for a
    synchronous library used from async code)."""
    return fn()


def gather(*aws: Awaitable[Any]) -> Awaitable[list[Any]]:
    return asyncio.gather(*aws)
