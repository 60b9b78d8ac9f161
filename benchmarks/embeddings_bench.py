"""How fast the local embedder (WordLlama, offline) embeds short memory facts.

    .venv/bin/python benchmarks/embeddings_bench.py [--quick] [--facts 20000] [--runs 5]

Embeds ``--facts`` distinct short facts (5 to 12 words, like extracted memories) through
``LocalEmbedder.embed`` (batches of 256 in a worker thread, as the library runs it) and prints
the model load time, then the median and best throughput in facts per second over ``--runs``
runs, and the latency of one query embedding (what a recall adds). ``--quick``: 2,000 facts,
2 runs. The throughput of embedding and storing memories (what the worker and ``bnity
memories reembed`` do) is in memory_search_bench.py.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time

from boternity.embeddings import LocalEmbedder

NAMES = ["Ana", "Ben", "Chloé", "Dmitri", "Eun-ji", "Farid", "Greta", "Hiro", "Ines", "Jonas"]
THINGS = ["cat", "dog", "bicycle", "garden", "sister", "job", "flat", "guitar", "car", "team"]
VERBS = ["likes", "is called", "lives near", "works with", "was given", "is learning about"]
OBJECTS = ["Miso", "a bank in Lisbon", "jazz records", "the night shift", "hiking boots", "tea"]


def facts(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        out.append(
            f"{rng.choice(NAMES)}'s {rng.choice(THINGS)} {rng.choice(VERBS)}"
            f" {rng.choice(OBJECTS)} since {1990 + i % 35}"
        )
    return out


async def run(count: int, runs: int) -> None:
    embedder = LocalEmbedder()
    started = time.perf_counter()
    await embedder.embed(["warm up"])
    print(f"model load + first embedding: {(time.perf_counter() - started) * 1000:.0f} ms")
    texts = facts(count)
    rates = []
    for _ in range(runs):
        started = time.perf_counter()
        await embedder.embed(texts)
        rates.append(count / (time.perf_counter() - started))
    print(
        f"{count} short facts: median {statistics.median(rates):,.0f} facts/s,"
        f" best {max(rates):,.0f} facts/s"
    )
    latencies = []
    for _ in range(200):
        started = time.perf_counter()
        await embedder.embed(["what pets do I have?"])
        latencies.append((time.perf_counter() - started) * 1000)
    print(f"one query: median {statistics.median(latencies):.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facts", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2,000 facts, 2 runs")
    args = parser.parse_args()
    if args.quick:
        args.facts, args.runs = 2_000, 2
    asyncio.run(run(args.facts, args.runs))


if __name__ == "__main__":
    main()
