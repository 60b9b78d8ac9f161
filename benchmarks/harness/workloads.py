"""The workloads: every system of a workload runs in each repetition, in a rotating order, and
each figure is the median over repetitions (p95 over every sample for latencies).
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.common import Sample, latencies, median, pct, rotate, timed
from harness.readers import MemoryReaders, Reader
from harness.writers import Appender

Row = dict[str, Any]


@dataclass
class Plan:
    """Sizes of one run (``--quick`` shrinks them)."""

    reps: int
    w1: int  # messages per repetition, one session
    per_session: int  # messages per session per repetition, W2 and C1
    c1: tuple[int, ...]
    s1: tuple[int, ...]
    w3: int
    w4_sessions: int
    memories: int
    read_rounds: int  # reads per repetition, at most
    read_budget: float  # seconds per repetition and system, at most (slow peers read less)
    cli_runs: int
    lc_max: int  # the longest session LangChain's full-history read is asked for
    notes: list[str] = field(default_factory=list)


FULL = Plan(reps=3, w1=3000, per_session=500, c1=(1, 2, 4, 8, 16),
            s1=(1_000, 10_000, 100_000, 1_000_000), w3=100_000, w4_sessions=20_000,
            memories=100_000, read_rounds=1000, read_budget=1.0, cli_runs=10,
            lc_max=100_000)  # fmt: skip
QUICK = Plan(reps=3, w1=400, per_session=60, c1=(1, 2, 4, 8, 16),
             s1=(1_000, 10_000, 100_000), w3=100_000, w4_sessions=2_000, memories=100_000,
             read_rounds=200, read_budget=0.25, cli_runs=5, lc_max=10_000)  # fmt: skip


def _row(system: Any, **more: Any) -> Row:
    return {"group": system.group, "durability": getattr(system, "durability", ""),
            "backend": getattr(getattr(system, "data", system), "backend", "sqlite"), "pragmas": system.pragmas, **more}  # fmt: skip


def _throughput(system: Appender, samples: list[Sample]) -> Row:
    server = [s.server / s.ops * 1e6 for s in samples if s.server is not None]
    return _row(
        system,
        value=median([s.per_s for s in samples]),
        cpu_us=median([s.cpu_us for s in samples]),
        **({"server_cpu_us": median(server)} if server else {}),
        reps=[round(s.per_s) for s in samples],
    )


async def appends(systems: list[Appender], plan: Plan, k: int, per_session: int) -> dict[str, Row]:
    """k sessions appending at once, ``per_session`` messages each, per repetition."""
    samples: dict[str, list[Sample]] = {s.label: [] for s in systems}
    failed: dict[str, str] = {}
    for s in systems:  # warm up: connections, statement caches
        await _guard(failed, s, lambda s=s: _warm(s, k))
    for rep in range(plan.reps):
        for s in rotate(systems, rep):
            if s.label in failed:
                continue
            n = max(5, int(per_session * s.scale))

            async def slice_(s: Appender = s, n: int = n) -> None:
                sessions = await s.sessions(k)
                samples[s.label].append(
                    await timed(k * n, lambda: s.run(sessions, n), s.server_pids())
                )

            await _guard(failed, s, slice_)
    return {
        s.label: _row(s, value=None, failed=failed[s.label])
        if s.label in failed
        else _throughput(s, samples[s.label])
        for s in systems
    }


async def _warm(s: Appender, k: int) -> None:
    await s.run(await s.sessions(k), 5)


async def _guard(failed: dict[str, str], system: Any, work: Callable[[], Awaitable[Any]]) -> None:
    """Run ``work``; a system that fails is reported with its error (a peer that cannot take
    the workload, say ``database is locked``), not measured further, and the run goes on."""
    try:
        await work()
    except Exception as exc:
        text = str(getattr(exc, "orig", None) or exc).splitlines()[0][:120]
        failed[system.label] = f"{type(getattr(exc, 'orig', None) or exc).__name__}: {text}"
        print(f"  {system.label} failed: {failed[system.label]}", flush=True)


async def reads(
    readers: list[Reader],
    plan: Plan,
    handles: Callable[[Reader], list[str]],
    size: int,
) -> dict[str, Row]:
    """Each reader reads its sessions' latest 50 messages, over and over."""
    out: dict[str, Row] = {}
    eligible = [r for r in readers if r.max_size is None or size <= r.max_size]
    pooled: dict[str, list[float]] = {r.label: [] for r in eligible}
    medians: dict[str, list[float]] = {r.label: [] for r in eligible}
    cpus: dict[str, list[float]] = {r.label: [] for r in eligible}
    for r in eligible:
        await r.prepare(handles(r))
        for h in handles(r):  # warm: every session read once
            await r.recent(h)
    for rep in range(plan.reps):
        for r in rotate(eligible, rep):
            hs = handles(r)
            t0 = time.perf_counter()
            got = await r.recent(hs[0])
            first = time.perf_counter() - t0
            assert got == min(50, size), (r.label, got)
            rounds = max(3, min(plan.read_rounds, int(plan.read_budget / max(first, 1e-6))))
            lat, cpu = await latencies(rounds, lambda i, r=r, hs=hs: r.recent(hs[i % len(hs)]))
            pooled[r.label] += lat
            medians[r.label].append(median(lat))
            cpus[r.label].append(cpu)
    for r in eligible:
        out[r.label] = _row(
            r,
            value=median(medians[r.label]) * 1e6,
            p95=pct(pooled[r.label], 0.95) * 1e6,
            cpu_us=median(cpus[r.label]),
            reps=[round(m * 1e6, 1) for m in medians[r.label]],
        )
    for r in readers:
        if r not in eligible:
            out[r.label] = _row(r, value=None, skipped=f"reads the whole history; > {r.max_size:,}")
    return out


async def memory_reads(backends: list[MemoryReaders], plan: Plan) -> dict[str, dict[str, Row]]:
    """M1 get_memories(limit=50) and M2 search_memories, each against the raw query."""
    pairs: list[tuple[str, str, Any, Callable[[], Awaitable[int]]]] = []
    for m in backends:
        pairs += [
            ("M1", m.floor.label, m.floor, m.floor_memories),
            ("M1", m.ours.label, m.ours, m.ours_memories),
            ("M2", m.floor.label, m.floor, m.floor_search),
            ("M2", m.ours.label, m.ours, m.ours_search),
        ]
    med: dict[tuple[str, str], list[float]] = {}
    pooled: dict[tuple[str, str], list[float]] = {}
    cpus: dict[tuple[str, str], list[float]] = {}
    for rep in range(plan.reps):
        for name, label, _, op in rotate(pairs, rep):
            lat, cpu = await latencies(min(plan.read_rounds, 300), lambda i, op=op: op())
            med.setdefault((name, label), []).append(median(lat))
            pooled.setdefault((name, label), []).extend(lat)
            cpus.setdefault((name, label), []).append(cpu)
    out: dict[str, dict[str, Row]] = {"M1": {}, "M2": {}}
    for name, label, system, _ in pairs:
        key = (name, label)
        out[name][label] = _row(
            system, value=median(med[key]) * 1e6, p95=pct(pooled[key], 0.95) * 1e6,
            cpu_us=median(cpus[key]), reps=[round(m * 1e6, 1) for m in med[key]],
        )  # fmt: skip
    return out


async def ownership(stores: list[Any], rounds: int) -> dict[str, Row]:
    """The chat engine's check before every write: ``SessionLock.still_held()``."""
    out: dict[str, Row] = {}
    for s in stores:
        (session,) = await s.sessions(1)
        locks = s.store.session_locks()
        lock = await locks.try_acquire(session)
        assert lock is not None
        lat, cpu = await latencies(rounds, lambda i, lock=lock: lock.still_held())
        await lock.release()
        await locks.aclose()
        out[f"{s.label}: still_held()"] = _row(
            s, value=median(lat) * 1e6, p95=pct(lat, 0.95) * 1e6, cpu_us=cpu
        )
    return out


def cli_startup(runs: int) -> dict[str, Row]:
    """``bnity --help`` and ``bnity sessions BOT`` as real subprocesses (a database holding
    one bot and 50 sessions), median of ``runs`` after a warm-up run."""
    from cli_startup import timed as run_timed  # benchmarks/cli_startup.py

    bnity = str(Path(sys.executable).parent / "bnity")
    work = Path(tempfile.mkdtemp(prefix="boternity-cli-bench-"))
    db = work / "cli.db"
    asyncio.run(_cli_database(db))
    # As installed packages run: with their bytecode cached (pip compiles at install; a
    # shell with PYTHONDONTWRITEBYTECODE, as here, would compile ~110 modules on every start).
    env = {**os.environ, "BOTERNITY_DATABASE_URL": str(db)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    out: dict[str, Row] = {}
    for label, command in (
        ("python -c pass", [sys.executable, "-c", "pass"]),
        ("bnity --help", [bnity, "--help"]),
        ("bnity sessions BOT", [bnity, "sessions", "bench"]),
    ):
        samples = run_timed(command, runs, env=env)
        out[label] = {"group": "cli", "value": median(samples) * 1e3, "p90": pct(samples, 0.9) * 1e3,
                      "pragmas": {}}  # fmt: skip
    return out


async def _cli_database(db: Path) -> None:
    from boternity import open_store
    from boternity.models import Bot, ChatMessage, ChatSession, MessageRole

    async with open_store(db) as store:
        bot = await store.bots.create_bot(Bot(name="bench"))
        for _ in range(50):
            session = await store.chat.create_session(ChatSession(bot_id=bot.id, model="m"))
            await store.chat.save_message(
                ChatMessage(session_id=session.id, role=MessageRole.USER, content="hello")
            )


def pick(ids: list[str], count: int, seed: int = 7) -> list[str]:
    return random.Random(seed).sample(ids, min(count, len(ids)))
