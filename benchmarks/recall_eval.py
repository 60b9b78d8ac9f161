"""Memory recall and the near-duplicate threshold, measured on the labelled recall set.

How often search finds the memory a question is about (tests/memory/recall_set.json), and
where the near-duplicate threshold should sit.

    .venv/bin/python benchmarks/recall_eval.py [--json [FILE]]

- recall@5 over the set's questions for the library's search (``MemorySearch``) in each mode,
  text, semantic (the ``local`` embedder) and hybrid: every fact saved in one bot of a fresh
  SQLite store and embedded as the worker does; over the whole bot (the facts the bot's
  own), and as each persona's conversation sees them (the facts the personas' own, each
  question searched in its persona's user scope);
- for each threshold t, the precision and recall of "a duplicate when cosine >= t" over the
  set's near-duplicate pairs (positives) and unrelated pairs (negatives), and the default it
  picks: the lowest t that flags no unrelated pair of the set. Precision comes first because a
  false duplicate is never saved (the memory is lost), while a missed duplicate only keeps a
  redundant line that recall and supersession cope with. The best-F1 t is shown for comparison.

``--json`` prints the figures as JSON instead of the tables; ``--json FILE`` writes them to FILE
and prints the tables.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from boternity import Store, open_store
from boternity.embeddings import Embedder, LocalEmbedder
from boternity.memory import SEARCH_MODES, MemorySearch, SearchMode
from boternity.models import Bot, MemoryCategory, MemoryEntry

SET_PATH = Path(__file__).resolve().parents[1] / "tests" / "memory" / "recall_set.json"
K = 5
#: The thresholds the table covers (cosine similarity, 0.30 to 0.99).
THRESHOLDS = tuple(round(0.30 + 0.01 * i, 2) for i in range(70))

#: Question id -> fact ids, best match first.
Rankings = dict[str, list[str]]


@dataclass(frozen=True, slots=True)
class Persona:
    name: str
    user_id: str
    about: str


@dataclass(frozen=True, slots=True)
class Fact:
    id: str
    user_id: str
    fact: str
    category: str
    importance: int


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    user_id: str
    question: str
    targets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Pair:
    a: str
    b: str
    kind: str | None = None  # unrelated pairs: "topic" or "value"


@dataclass(frozen=True, slots=True)
class RecallSet:
    about: tuple[str, ...]
    personas: tuple[Persona, ...]
    facts: tuple[Fact, ...]
    questions: tuple[Question, ...]
    near_duplicates: tuple[Pair, ...]
    unrelated: tuple[Pair, ...]


def load_set(path: Path = SET_PATH) -> RecallSet:
    """The set as written (its rules are checked by tests/memory/test_recall_set.py)."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    return RecallSet(
        about=tuple(raw["about"]),
        personas=tuple(Persona(**p) for p in raw["personas"]),
        facts=tuple(Fact(**f) for f in raw["facts"]),
        questions=tuple(
            Question(q["id"], q["user_id"], q["question"], tuple(q["targets"]))
            for q in raw["questions"]
        ),
        near_duplicates=tuple(Pair(**p) for p in raw["near_duplicates"]),
        unrelated=tuple(Pair(**p) for p in raw["unrelated"]),
    )


# --- recall ---------------------------------------------------------------------------------


def recall_at(k: int, rankings: Rankings, questions: Sequence[Question]) -> float:
    """The mean over questions of the share of a question's targets among its first k results."""
    shares = [len(set(q.targets) & set(rankings[q.id][:k])) / len(q.targets) for q in questions]
    return sum(shares) / len(shares)


def misses(k: int, rankings: Rankings, questions: Sequence[Question]) -> list[str]:
    """The questions with a target outside their first k results."""
    return [q.id for q in questions if not set(q.targets) <= set(rankings[q.id][:k])]


async def filled_bot(
    store: Store, recall_set: RecallSet, embedder: Embedder | None = None, *, users: bool = False
) -> tuple[Bot, dict[uuid.UUID, str]]:
    """Every fact of the set saved in one new bot of ``store`` (the bot's own, or with
    ``users`` its persona's) and, with an ``embedder``, embedded as the worker does
    (``EmbeddingBackfill``); the bot, and each memory's fact id."""
    from boternity.memory import EmbeddingBackfill

    bot = await store.bots.create_bot(Bot(name=f"Recall set {uuid.uuid4().hex[:8]}"))
    fact_of = {}
    for f in recall_set.facts:
        entry = MemoryEntry(
            bot_id=bot.id,
            fact=f.fact,
            category=MemoryCategory(f.category),
            importance=f.importance,
            user_id=f.user_id if users else None,
        )
        fact_of[(await store.memory.save_memory(entry)).id] = f.id
    if embedder is not None:
        await EmbeddingBackfill(store, embedder).run(bot_id=bot.id)
    return bot, fact_of


async def library_rankings(
    store: Store,
    recall_set: RecallSet,
    embedder: Embedder | None,
    modes: Sequence[SearchMode] = SEARCH_MODES,
    *,
    users: bool = False,
) -> dict[SearchMode, Rankings]:
    """The library's own search (``MemorySearch``) in each mode, for every question, over one
    bot holding every fact (``filled_bot``): the bot's own facts, searched as a conversation
    without a user sees them; with ``users``, each persona's facts its own, each question
    searched as a conversation with its persona (the library's user scope)."""
    bot, fact_of = await filled_bot(store, recall_set, embedder, users=users)
    search = MemorySearch(store, embedder)
    rankings: dict[SearchMode, Rankings] = {}
    for mode in modes:
        rankings[mode] = {}
        for q in recall_set.questions:
            found = await search.search(
                bot.id,
                q.question,
                mode=mode,
                limit=len(fact_of),
                user_id=q.user_id if users else None,
            )
            assert found.mode == mode, found.notice
            rankings[mode][q.id] = [fact_of[h.memory.id] for h in found]
    return rankings


async def text_rankings(store: Store, recall_set: RecallSet) -> Rankings:
    """The library's text search (no embedder) for every question."""
    return (await library_rankings(store, recall_set, None, ("text",)))["text"]


async def semantic_rankings(embedder: Embedder, recall_set: RecallSet) -> Rankings:
    """Every fact ranked per question by cosine similarity of their embeddings, computed here
    (numpy): what the library's semantic search must agree with."""
    import numpy as np

    facts = np.stack(await embedder.embed([f.fact for f in recall_set.facts]))
    questions = np.stack(await embedder.embed([q.question for q in recall_set.questions]))
    order = np.argsort(-(questions @ facts.T), axis=1, kind="stable")
    return {
        q.id: [recall_set.facts[j].id for j in row]
        for q, row in zip(recall_set.questions, order, strict=True)
    }


# --- the near-duplicate threshold -----------------------------------------------------------


async def pair_cosines(embedder: Embedder, pairs: Sequence[Pair]) -> list[float]:
    """The cosine similarity of each pair (embeddings are unit vectors: a dot product)."""
    a = await embedder.embed([p.a for p in pairs])
    b = await embedder.embed([p.b for p in pairs])
    return [float(x @ y) for x, y in zip(a, b, strict=True)]


@dataclass(frozen=True, slots=True)
class ThresholdRow:
    """ "Duplicate when cosine >= threshold", scored on the set's pairs. With nothing flagged,
    precision is 1.0 (no false duplicate) and recall 0."""

    threshold: float
    precision: float
    recall: float
    f1: float
    duplicates_found: int
    false_duplicates: int


def threshold_table(
    duplicates: Sequence[float], unrelated: Sequence[float], thresholds: Sequence[float]
) -> list[ThresholdRow]:
    rows = []
    for t in thresholds:
        found = sum(c >= t for c in duplicates)
        false = sum(c >= t for c in unrelated)
        precision = found / (found + false) if found + false else 1.0
        recall = found / len(duplicates)
        f1 = 2 * precision * recall / (precision + recall) if found else 0.0
        rows.append(ThresholdRow(t, precision, recall, f1, found, false))
    return rows


def chosen_threshold(rows: Sequence[ThresholdRow]) -> ThresholdRow | None:
    """The lowest threshold that flags no unrelated pair (None when every one does)."""
    return next(
        (r for r in sorted(rows, key=lambda r: r.threshold) if not r.false_duplicates), None
    )


def best_f1(rows: Sequence[ThresholdRow]) -> ThresholdRow:
    """The threshold with the best F1 (ties: the higher threshold, fewer lost memories)."""
    return max(rows, key=lambda r: (r.f1, r.threshold))


# --- the report -----------------------------------------------------------------------------


async def evaluate(recall_set: RecallSet, embedder: Embedder, store: Store) -> dict[str, Any]:
    rankings = await library_rankings(store, recall_set, embedder)
    scoped = await library_rankings(store, recall_set, embedder, users=True)
    semantic = rankings["semantic"]
    duplicates = await pair_cosines(embedder, recall_set.near_duplicates)
    unrelated = await pair_cosines(embedder, recall_set.unrelated)
    rows = threshold_table(duplicates, unrelated, THRESHOLDS)
    chosen = chosen_threshold(rows)
    questions = recall_set.questions

    def scores(mode: SearchMode) -> dict[str, float]:
        return {
            "bot": recall_at(K, rankings[mode], questions),
            "persona": recall_at(K, scoped[mode], questions),
        }

    def closest(pairs: Sequence[Pair], cosines: Sequence[float], lowest: bool) -> list[Any]:
        ranked = sorted(zip(cosines, pairs, strict=True), key=lambda x: x[0], reverse=not lowest)
        return [{"cosine": c, "a": p.a, "b": p.b, "kind": p.kind} for c, p in ranked[:5]]

    return {
        "embedder": embedder.model,
        "set": {
            "personas": len(recall_set.personas),
            "facts": len(recall_set.facts),
            "questions": len(questions),
            "near_duplicates": len(recall_set.near_duplicates),
            "unrelated": len(recall_set.unrelated),
        },
        "k": K,
        "recall": {mode: scores(mode) for mode in SEARCH_MODES},
        "semantic_misses": {
            "bot": misses(K, semantic, questions),
            "persona": misses(K, scoped["semantic"], questions),
        },
        "thresholds": [asdict(r) for r in rows],
        "chosen_threshold": asdict(chosen) if chosen else None,
        "best_f1_threshold": asdict(best_f1(rows)),
        "hardest_near_duplicates": closest(recall_set.near_duplicates, duplicates, lowest=True),
        "hardest_unrelated": closest(recall_set.unrelated, unrelated, lowest=False),
    }


def print_report(figures: dict[str, Any]) -> None:
    s, recall = figures["set"], figures["recall"]
    print(
        f"recall set: {s['personas']} personas, {s['facts']} facts, {s['questions']} questions,"
        f" {s['near_duplicates']} near-duplicate and {s['unrelated']} unrelated pairs"
    )
    print(f"\nrecall@{figures['k']}            whole bot   persona's own (user scope)")
    for name, label in (
        ("text", "text"),
        ("semantic", f"semantic ({figures['embedder']})"),
        ("hybrid", "hybrid"),
    ):
        print(f"  {label:<36} {recall[name]['bot']:6.1%}   {recall[name]['persona']:6.1%}")
    for scope, ids in figures["semantic_misses"].items():
        print(f"  semantic misses ({scope}, {len(ids)}): {', '.join(ids)}")
    print("\nnear duplicate when cosine >= t")
    print("     t  precision  recall     F1  found  false")
    chosen, best = figures["chosen_threshold"], figures["best_f1_threshold"]
    marked = {r["threshold"] for r in (chosen, best) if r}
    for row in figures["thresholds"]:
        if round(row["threshold"] * 100) % 5 == 0 or row["threshold"] in marked:
            print(
                f"  {row['threshold']:.2f}     {row['precision']:6.3f}  {row['recall']:6.3f}"
                f" {row['f1']:6.3f}  {row['duplicates_found']:5d}  {row['false_duplicates']:5d}"
            )
    if chosen:
        print(
            f"chosen (lowest t with no false duplicate): {chosen['threshold']:.2f},"
            f" precision {chosen['precision']:.3f}, recall {chosen['recall']:.3f}"
        )
    else:
        print("chosen: none (an unrelated pair scores at least 0.99)")
    print(
        f"best F1: {best['threshold']:.2f}, precision {best['precision']:.3f},"
        f" recall {best['recall']:.3f}, F1 {best['f1']:.3f}"
    )
    for title, key in (
        ("near duplicates scoring lowest", "hardest_near_duplicates"),
        ("unrelated pairs scoring highest", "hardest_unrelated"),
    ):
        print(f"{title}:")
        for p in figures[key]:
            print(f"  {p['cosine']:.3f}  {p['a']!r} / {p['b']!r}")


async def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        async with open_store(Path(scratch) / "recall.db") as store, LocalEmbedder() as embedder:
            return await evaluate(load_set(), embedder, store)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="FILE",
        help="print the figures as JSON (or write them to FILE and print the tables)",
    )
    args = parser.parse_args()
    figures = asyncio.run(run())
    if args.json == "-":
        json.dump(figures, sys.stdout, indent=2, ensure_ascii=False)
        print()
        return
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, ensure_ascii=False))
    print_report(figures)


if __name__ == "__main__":
    main()
