"""boternity against its floors and its peers, every workload of issue 11, in one run.

    uv run --group bench python benchmarks/run.py [--quick] [--url POSTGRES_URL] [--out DIR]

Systems (each at the durability it really runs with; the pragmas are read back and reported):
  floors     raw sqlite3 (WAL, synchronous NORMAL and FULL, one INSERT per transaction; reads:
             boternity's own SELECT, rows as tuples), raw asyncpg (one connection per writer)
  boternity  SQLite normal and full, PostgreSQL; its Agents SDK adapter; with the chat engine's
             ownership check
  peers      OpenAI Agents SDK SQLiteSession and SQLAlchemySession (sqlite+aiosqlite),
             LangChain SQLChatMessageHistory, aiosqlite running the floor's SQL

Workloads:
  W1  appends to one session, one after another          msg/s
  W2  8 sessions appending at once                        msg/s (C1 at 8)
  C1  W2 with 1, 2, 4, 8, 16 sessions                     msg/s, plotted (c1.png)
  W3  the last 50 messages of a 100,000-message session   µs (S1 at 100,000)
  S1  W3 at 1k, 10k, 100k, 1M messages (--quick: to 100k) µs, plotted (s1.png)
  W4  the last 50 of 200 random sessions out of 20,000    µs (warm)
  M1  get_memories(limit=50), 100,000 memories            µs
  M2  search_memories over 100,000 memories               µs
  M3  hybrid memory search and a chat turn's memory recall, 100,000 memories:
      issue 12's benchmarks/memory_search_bench.py
  O1  the chat engine's ownership check (SessionLock.still_held) µs
  CLI bnity --help, bnity sessions BOT                    ms

Within each repetition every system runs once, in a rotating order, so a busy machine slows
them alike; figures are medians over repetitions (latency p95 over all samples), with this
process's CPU time per operation beside them. PostgreSQL runs in a database created for the
run on the server of --url (default $BOTERNITY_TEST_POSTGRES_URL) and dropped afterwards.
Results: results.json, results.md, s1.png, c1.png in --out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import readers as rd
from harness import report
from harness import writers as wr
from harness.common import throwaway_database
from harness.workloads import (
    FULL,
    QUICK,
    Plan,
    appends,
    cli_startup,
    memory_reads,
    ownership,
    pick,
    reads,
)

from boternity.backends.sqlite import pool

HERE = Path(__file__).resolve().parent
ALL = ("W1", "C1", "S1", "W4", "M", "M3", "O1", "CLI")


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True,
            check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "?"


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def step(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def loop_blocking(results: dict[str, Any], name: str) -> None:
    """How long boternity's SQLite units and reads held the event-loop thread during the
    workload just run (they run there at durability normal), then start counting afresh
    (an empty ``name``: only that)."""
    times, pool.inline_times = getattr(pool, "inline_times", None) or [], []
    if times and name:
        wall = sorted(t[0] for t in times)
        cpu = sorted(t[1] for t in times)
        results.setdefault("loop", {})[name] = {
            "count": len(wall),
            **{f"{k}_us": report.pct(wall, q) * 1e6 for k, q in (("p50", 0.5), ("p99", 0.99))},
            "max_us": wall[-1] * 1e6,
            **{f"cpu_{k}_us": report.pct(cpu, q) * 1e6 for k, q in (("p50", 0.5), ("p99", 0.99))},
            "cpu_max_us": cpu[-1] * 1e6,
        }


async def bench(args: argparse.Namespace, plan: Plan, only: set[str], work: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    async with contextlib.AsyncExitStack() as stack:
        pg = await stack.enter_async_context(throwaway_database(args.url)) if args.url else None
        peers = not args.no_peers
        opened: list[Any] = []

        async def start(system: Any, *more: Any) -> Any:
            await system.open(*more)
            opened.append(system)
            return system

        try:
            # --- writes ---------------------------------------------------------------
            if only & {"W1", "C1", "O1"}:
                step("opening the writers")
                normal = await start(wr.Boternity("w-normal.db", "normal"), work)
                full = await start(wr.Boternity("w-full.db", "full"), work)
                ours_pg = await start(wr.Boternity(pg), work) if pg else None
                core = [
                    await start(wr.RawSqlite("NORMAL"), work),
                    await start(wr.RawSqlite("FULL"), work),
                    normal,
                    full,
                ]
                if pg:
                    core += [await start(wr.RawAsyncpg(pg), work), ours_pg]
                if peers:
                    core += [
                        await start(wr.AioSqlite(), work),
                        await start(wr.SdkSqlite(), work),
                        await start(wr.SdkSqlAlchemy(), work),
                        await start(wr.LangChainSql(), work),
                    ]
                if "W1" in only:
                    extra = [
                        await start(wr.BoternitySdkAdapter("w-adapter.db"), work),
                        await start(wr.OwnedBoternity("w-owned.db"), work),
                    ]
                    if pg:
                        extra.append(await start(wr.OwnedBoternity(pg), work))
                    step(f"W1: {plan.w1} appends to one session x {plan.reps}")
                    loop_blocking(results, "")
                    results["W1"] = await appends(core + extra, plan, 1, plan.w1)
                    loop_blocking(results, "W1")
                if "C1" in only:
                    results["C1"] = {}
                    for k in plan.c1:
                        step(f"C1: {k} sessions x {plan.per_session} appends x {plan.reps}")
                        loop_blocking(results, "")
                        results["C1"][str(k)] = await appends(core, plan, k, plan.per_session)
                        loop_blocking(results, f"C1 at {k}")
                    if "8" in results["C1"]:
                        results["W2"] = results["C1"]["8"]
                if "O1" in only:
                    step("O1: the ownership check")
                    results["O1"] = await ownership([normal, *([ours_pg] if pg else [])], 2000)
            # --- reads ----------------------------------------------------------------
            if only & {"S1", "W4", "M"}:
                data: list[Any] = [rd.BoternitySqliteData(work / "reads.db")]
                if pg:
                    data.append(rd.BoternityPgData(pg))
                if peers and only & {"S1", "W4"}:
                    data += [
                        rd.PeerData("sdk", work / "r-sdk.db"),
                        rd.PeerData("sqla", work / "r-sqla.db"),
                        rd.PeerData("lc", work / "r-lc.db"),
                    ]
                sizes = sorted({*plan.s1, plan.w3}) if "S1" in only else []
                handles: dict[Any, dict[Any, list[str]]] = {}
                for d in data:
                    step(f"filling {type(d).__name__} {getattr(d, 'kind', d.backend)}")
                    await d.create()
                    if isinstance(d, rd.PeerData) and d.kind == "lc":
                        d_sizes = [s for s in sizes if s <= plan.lc_max]
                    else:
                        d_sizes = sizes
                    filled = await _maybe_async(d.fill, d_sizes)
                    handles[d] = {s: [h] for s, h in zip(d_sizes, filled, strict=True)}
                    if "W4" in only:
                        handles[d]["W4"] = pick(
                            await _maybe_async(d.fill, [60] * plan.w4_sessions), 200
                        )
                sqlite_data = data[0]
                pg_data = data[1] if pg else None
                by_kind = {getattr(d, "kind", ""): d for d in data}
                readers: list[Any] = [
                    await start(rd.RawSqliteReader(sqlite_data)),
                    await start(rd.BoternityReader(sqlite_data)),
                ]
                if pg_data:
                    readers += [
                        await start(rd.AsyncpgReader(pg_data)),
                        await start(rd.BoternityReader(pg_data)),
                    ]
                if peers and only & {"S1", "W4"}:
                    readers += [
                        await start(rd.AioSqliteReader(sqlite_data)),
                        await start(rd.BoternitySdkReader(sqlite_data)),
                        await start(rd.SdkSqliteReader(by_kind["sdk"])),
                        await start(rd.SqlaReader(by_kind["sqla"])),
                        await start(rd.LangChainReader(by_kind["lc"], plan.lc_max)),
                    ]
                if "S1" in only:
                    results["S1"] = {}
                    for size in sizes:
                        step(f"S1: last 50 of {size:,} x {plan.reps}")
                        loop_blocking(results, "")
                        results["S1"][str(size)] = await reads(
                            readers, plan, lambda r, s=size: handles[r.data].get(s, []), size
                        )
                        loop_blocking(results, f"S1 at {size:,}")
                    results["W3"] = results["S1"][str(plan.w3)]
                    if plan.w3 not in plan.s1:
                        del results["S1"][str(plan.w3)]
                if "W4" in only:
                    step(f"W4: 200 of {plan.w4_sessions:,} sessions x {plan.reps}")
                    loop_blocking(results, "")
                    results["W4"] = await reads(readers, plan, lambda r: handles[r.data]["W4"], 60)
                    loop_blocking(results, "W4")
                if "M" in only:
                    facts = rd.memory_facts(plan.memories)
                    results["M2_matches"] = rd.query_matches(facts)
                    mem = [rd.MemoryReaders(sqlite_data, readers[0], readers[1])]
                    step(f"M1/M2: filling {plan.memories:,} memories")
                    sqlite_data.fill_memories(facts)
                    if pg_data:
                        await pg_data.fill_memories(facts)
                        mem.append(rd.MemoryReaders(pg_data, readers[2], readers[3]))
                    step(f"M1/M2 x {plan.reps}")
                    loop_blocking(results, "")
                    results.update(await memory_reads(mem, plan))
                    loop_blocking(results, "M1, M2")
        finally:
            for system in reversed(opened):
                await system.close()
    return results


def memory_search(quick: bool, work: Path) -> dict[str, Any]:
    """M3, hybrid memory search over 100,000 memories (10,000 with --quick), as measured by
    issue 12's own benchmark, run as it is (a subprocess; its JSON is kept whole)."""
    out = work / "m3.json"
    command = [sys.executable, str(HERE / "memory_search_bench.py"), "--json", str(out)]
    done = subprocess.run(
        [*command, *(["--quick"] if quick else [])], capture_output=True, text=True
    )
    if done.returncode != 0:
        return {
            "failed": (done.stderr.strip().splitlines() or ["exit " + str(done.returncode)])[-1]
        }
    return json.loads(out.read_text())  # type: ignore[no-any-return]


async def _maybe_async(fn: Callable[..., Any], *args: Any) -> Any:
    result = fn(*args)
    return await result if asyncio.iscoroutine(result) else result


def publish(results: dict[str, Any], out: Path, *, readme: bool) -> None:
    """Ratios, results.json, results.md, the plots (and the README's figures); print them."""
    report.add_ratios(results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1, ensure_ascii=False))
    text = report.markdown(results)
    (out / "results.md").write_text(text)
    made = report.plots(results, out)
    if readme:
        path = HERE.parent / "README.md"
        images = "".join(
            f"![{p.stem.upper()}]({p.resolve().relative_to(HERE.parent).as_posix()})\n"
            for p in made
        )
        path.write_text(report.into_readme(path.read_text(), text + "\n" + images))
    print()
    print(text)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes: under two minutes")
    parser.add_argument("--reps", type=int, help="repetitions (default 3)")
    parser.add_argument("--url", default=os.environ.get("BOTERNITY_TEST_POSTGRES_URL"),
                        help="PostgreSQL server (a user who may CREATE DATABASE)")  # fmt: skip
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--no-peers", action="store_true", help="floors and boternity only")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(ALL)}")
    parser.add_argument("--out", type=Path, help="where results go (default benchmarks/results)")
    parser.add_argument("--dir", type=Path, help="where the database files go (a new temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the database files")
    parser.add_argument(
        "--readme", action="store_true", help="also put the figures and plots in README.md"
    )
    parser.add_argument(
        "--render", type=Path, metavar="JSON", help="only write the report of an earlier run"
    )
    args = parser.parse_args()
    if args.render:
        results = json.loads(args.render.read_text())
        publish(results, args.out or args.render.parent, readme=args.readme)
        return
    if args.no_postgres:
        args.url = None
    plan = QUICK if args.quick else FULL
    if args.reps:
        plan.reps = max(1, args.reps)
    only = set(args.only.upper().split(",")) if args.only else set(ALL)
    out = args.out or HERE / ("results/quick" if args.quick else "results")
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="boternity-bench-", dir=args.dir))
    started = time.perf_counter()
    meta = {
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()},"
        f" SQLite {sqlite3.sqlite_version}",
        "mode": "quick" if args.quick else "full",
        "reps": plan.reps,
        "commit": _commit(),
        "load_before": _load(),
        "w3": plan.w3,
        "w4_sessions": plan.w4_sessions,
        "memories": plan.memories,
        "postgres": bool(args.url),
    }
    step(f"database files in {work}")
    try:
        results = asyncio.run(bench(args, plan, only, work))
        if "M3" in only:
            step("M3: benchmarks/memory_search_bench.py (issue 12's hybrid search)")
            results["M3"] = memory_search(args.quick, work)
        if "CLI" in only:
            step(f"CLI start-up x {plan.cli_runs}")
            results["CLI"] = cli_startup(plan.cli_runs)
    finally:
        pool.inline_times = None
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    meta["load_after"] = _load()
    meta["seconds"] = round(time.perf_counter() - started, 1)
    results = {"meta": meta, **results}
    publish(results, out, readme=args.readme)
    step(f"done in {meta['seconds']} s; results in {out}")


if __name__ == "__main__":
    main()
