"""M3: hybrid memory search over 100,000 memories of one bot, with the local embedder.

    .venv/bin/python benchmarks/memory_search_bench.py [--quick] [--memories N]
        [--queries 200] [--db URL] [--json FILE] [--profile]

Fills a fresh SQLite database (or ``--db``, e.g. a PostgreSQL URL of an empty database) with
N distinct short facts for one bot (through the library: ``save_memory``), embeds them all
with the local embedder (``EmbeddingBackfill``, as the worker and ``bnity memories reembed``
do: that is the embedding throughput, facts/s, database writes included), then measures:

- cold: the first search (reads the bot's vectors into the process),
- hybrid / semantic / text: median and p95 latency of ``MemorySearch.search`` (query
  embedding included) over ``--queries`` paraphrase-like questions,
- after a change: the first search after another handle (as another process would) added an
  embedded memory and superseded one (only what changed is read),
- recall: median and p95 of one chat turn's ``MemoryRecall`` (the prompt's memory lines
  within the default budget: the most important memories that could fit, and the hybrid
  search's hits for the turn, query embedding included).

Targets: hybrid median <= 25 ms (M3) and recall median <= 30 ms at 100,000 memories. ``--profile`` runs pyinstrument over
the searches of the three modes and prints where time goes (it is in the bench group:
``uv run --group bench python benchmarks/memory_search_bench.py --profile``; recall too).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from boternity import Store, open_store
from boternity.embeddings import LocalEmbedder
from boternity.memory import EmbeddingBackfill, MemoryRecall, MemorySearch
from boternity.models import Bot, MemoryEntry

TARGET_MS = 25.0
RECALL_TARGET_MS = 30.0

PEOPLE = [
    "Ana", "Ben", "Chloé", "Dmitri", "Eun-ji", "Farid", "Greta", "Hiro", "Ines", "Jonas",
    "Kemal", "Lucía", "Mateo", "Nadia", "Olga", "Pavel", "Quinn", "Rosa", "Sami", "Tomás",
]  # fmt: skip
RELATIONS = [
    "", "sister ", "brother ", "mother ", "father ", "friend ", "colleague ", "neighbour ",
    "daughter ", "son ", "partner ", "boss ",
]  # fmt: skip
FACTS = [
    "has a cat called {name}", "owns a dog named {name}", "keeps two goldfish",
    "works as a nurse at {place}", "is a software engineer at {place}", "teaches maths in {city}",
    "lives in {city}", "moved to {city} in {year}", "grew up near {city}",
    "is allergic to peanuts", "does not eat meat", "loves spicy ramen", "drinks green tea",
    "plays the cello", "is learning Japanese", "runs marathons", "collects jazz records",
    "was born in {year}", "got married in {year}", "prefers short answers",
    "supports {team}", "drives an old Volvo", "rides a bicycle to work", "is afraid of flying",
    "reads science fiction", "hates cold weather", "visited {city} last summer",
]  # fmt: skip
NAMES = ["Miso", "Tofu", "Pepper", "Luna", "Biscuit", "Rex", "Nori", "Olive"]
PLACES = ["a hospital", "a bank", "a bakery", "a startup", "the city library", "a law firm"]
CITIES = ["Lisbon", "Berlin", "Kyoto", "Zürich", "Porto", "Oslo", "Lima", "Cairo", "Seoul"]
TEAMS = ["Benfica", "Arsenal", "the Lakers", "Boca Juniors"]
QUESTIONS = [
    "what pets do they have?", "who is a vegetarian?", "where does someone work?",
    "which city did they move to?", "what music do they like?", "any food allergies?",
    "what instrument does someone play?", "how do they commute?", "which language are they studying?",
    "what sports team do they follow?", "when were they born?", "what do they like to drink?",
]  # fmt: skip


def facts(count: int, seed: int = 12) -> list[str]:
    rng = random.Random(seed)
    out: set[str] = set()
    while len(out) < count:
        template = rng.choice(FACTS).format(
            name=rng.choice(NAMES),
            place=rng.choice(PLACES),
            city=rng.choice(CITIES),
            year=rng.randrange(1950, 2025),
            team=rng.choice(TEAMS),
        )
        who = rng.choice(PEOPLE)
        relation = rng.choice(RELATIONS)
        subject = f"{who}'s {relation.strip()}" if relation else who
        out.add(f"{subject} {template} ({len(out)})")
    return sorted(out, key=lambda _: rng.random())


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": statistics.median(ordered),
        "p95_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))],
    }


async def fill(store: Store, bot: Bot, texts: list[str]) -> float:
    started = time.perf_counter()
    for start in range(0, len(texts), 500):
        chunk = texts[start : start + 500]
        await asyncio.gather(
            *(
                store.memory.save_memory(
                    MemoryEntry(bot_id=bot.id, fact=t, category="fact", importance=3)
                )
                for t in chunk
            )
        )
    return time.perf_counter() - started


async def timed(search: MemorySearch, bot: Bot, queries: list[str], mode: str) -> list[float]:
    samples = []
    for q in queries:
        started = time.perf_counter()
        await search.search(bot.id, q, mode=mode)  # type: ignore[arg-type]
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"memories": args.memories}
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or str(Path(tmp) / "bench.db")
        async with open_store(db) as store, LocalEmbedder() as embedder:
            bot = await store.bots.create_bot(Bot(name="Bench"))
            texts = facts(args.memories)
            seconds = await fill(store, bot, texts)
            print(f"filled {args.memories:,} memories in {seconds:.1f} s")

            await embedder.embed(["warm up"])
            backfill = EmbeddingBackfill(store, embedder, batch=1024)
            started = time.perf_counter()
            report = await backfill.run(bot_id=bot.id)
            seconds = time.perf_counter() - started
            assert report.embedded == args.memories, report
            results["embed_facts_per_s"] = args.memories / seconds
            print(
                f"embedded and stored {args.memories:,} facts in {seconds:.1f} s:"
                f" {results['embed_facts_per_s']:,.0f} facts/s"
            )

            search = MemorySearch(store, embedder)
            started = time.perf_counter()
            await search.search(bot.id, "what pets do I have?")
            results["cold_ms"] = (time.perf_counter() - started) * 1000
            print(f"first search (reads the vectors): {results['cold_ms']:.0f} ms")

            rng = random.Random(3)
            queries = [rng.choice(QUESTIONS) for _ in range(args.queries)]
            profiler = None
            if args.profile:
                from pyinstrument import Profiler

                profiler = Profiler(async_mode="enabled")
                profiler.start()
            for mode in ("hybrid", "semantic", "text"):
                stats = percentiles(await timed(search, bot, queries, mode))
                results[mode] = stats
                print(
                    f"{mode:>8}: median {stats['median_ms']:.2f} ms, p95 {stats['p95_ms']:.2f} ms"
                )
            recall = MemoryRecall(store, embedder=embedder)
            samples = []
            for q in queries:
                started = time.perf_counter()
                lines = await recall(bot, q, user_id=None)
                samples.append((time.perf_counter() - started) * 1000)
                assert lines, "recall found nothing"
            results["recall"] = stats = percentiles(samples)
            print(f"  recall: median {stats['median_ms']:.2f} ms, p95 {stats['p95_ms']:.2f} ms")
            if profiler is not None:
                profiler.stop()
                print(profiler.output_text(unicode=True, color=False, show_all=False))

            # Changes made through another handle (as by another process): a new embedded
            # memory and a supersession; the next search reads only what changed. 5 rounds.
            after: list[float] = []
            for round_ in range(5):
                async with open_store(db) as other:
                    added = await other.memory.save_memory(
                        MemoryEntry(
                            bot_id=bot.id,
                            fact=f"Ana adopted parrot number {round_}",
                            category="fact",
                            importance=3,
                        )
                    )
                    (vector,) = await embedder.embed([added.fact])
                    await other.memory.save_embeddings(embedder.model, [(added.id, vector)])
                    old = (await other.memory.get_memories(bot.id, limit=2))[1]  # not the new one
                    await other.memory.supersede_memory(
                        old.id,
                        MemoryEntry(
                            bot_id=bot.id, fact=f"{old.fact}, still", category="fact", importance=3
                        ),
                    )
                started = time.perf_counter()
                found = await search.search(bot.id, added.fact, mode="semantic", limit=1)
                after.append((time.perf_counter() - started) * 1000)
                assert found.hits[0].memory.id == added.id
            results["after_change_ms"] = statistics.median(after)
            print(
                "first search after another handle changed the bot's memories (reads what"
                f" changed): median {results['after_change_ms']:.1f} ms of 5"
            )
    median = results["hybrid"]["median_ms"]
    verdict = "met" if median <= TARGET_MS else "MISSED"
    print(f"M3 hybrid median {median:.2f} ms (target <= {TARGET_MS:.0f} ms at 100,000): {verdict}")
    median = results["recall"]["median_ms"]
    verdict = "met" if median <= RECALL_TARGET_MS else "MISSED"
    print(
        f"recall median {median:.2f} ms (target <= {RECALL_TARGET_MS:.0f} ms at 100,000): {verdict}"
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 memories, 50 queries")
    parser.add_argument("--memories", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--db", help="an empty database to fill (default: a temporary SQLite file)")
    parser.add_argument("--json", type=Path, help="write the results as JSON to this file")
    parser.add_argument("--profile", action="store_true", help="pyinstrument the searches")
    args = parser.parse_args()
    if args.quick:
        args.memories, args.queries = 10_000, 50
    results = asyncio.run(run(args))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
