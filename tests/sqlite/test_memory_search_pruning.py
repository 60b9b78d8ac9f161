"""SQLite's memory search leaves out the rows that match only common terms when they cannot
rank in (MemoryCore._search_pruned, for queries of more words than the pairs take, here made
to run for every query): the results are exactly those of ranking every match."""

from __future__ import annotations

import random
import sqlite3
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from boternity import Store, open_store
from boternity.backends.sqlite.dialect import SQLITE, bm25_bound
from boternity.models import Bot
from boternity.storage.repositories import MemoryCore

COMMON = ["likes", "often", "weekend"]  # in most facts
MIDDLE = ["tea", "coffee", "garden", "music", "chess", "piano"]
RARE = ["greta", "pottery", "oslo", "kayak", "violin", "sushi", "tango"]


def _words(rng: random.Random) -> str:
    words = rng.sample(COMMON, rng.randint(1, 3)) + rng.sample(MIDDLE, rng.randint(0, 2))
    if rng.random() < 0.08:
        words.append(rng.choice(RARE))
    if rng.random() < 0.1:
        words += rng.sample(RARE, 2)
    rng.shuffle(words)
    return " ".join(words)


def fill(
    path: Path, bot: uuid.UUID, count: int, seed: int, fact: Callable[[random.Random], str] = _words
) -> None:
    """Facts of a few words, many repeated word for word (equal scores, so the order falls to
    importance, time and id), some superseded, some another user's."""
    rng = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    rows = []
    ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(count)]
    for i, key in enumerate(ids):
        words = fact(rng)
        superseded = ids[i - 1] if i and rng.random() < 0.05 else None
        user = rng.choice(["ana", "ben"]) if rng.random() < 0.2 else None
        when = start + timedelta(seconds=rng.randint(0, 50))  # equal times too
        rows.append((key, str(bot), words, rng.randint(1, 5),
                     when.isoformat(timespec="microseconds"), superseded, user))  # fmt: skip
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO session_memories (id, bot_id, fact, category, importance, created_at,"
            " superseded_by, user_id) VALUES (?, ?, ?, 'fact', ?, ?, ?, ?)",
            rows,
        )


async def two_bots(path: Path, fact: Callable[[random.Random], str] = _words) -> uuid.UUID:
    """A new store at ``path`` with a bot of 3,000 memories (returned) and another of 1,000
    (the index is shared: its counts include these)."""
    async with open_store(path) as store:
        bot = (await store.bots.create_bot(Bot(name="b"))).id
        other = (await store.bots.create_bot(Bot(name="o"))).id
    fill(path, bot, 3000, seed=1, fact=fact)
    fill(path, other, 1000, seed=2, fact=fact)
    return bot


def answered(monkeypatch: pytest.MonkeyPatch, method: str) -> list[bool]:
    """Whether each call of MemoryCore's ``method`` (a way to search that may decline: None)
    answered, from now on."""
    calls: list[bool] = []
    real = getattr(MemoryCore, method)

    async def spy(self: MemoryCore, *args: Any) -> Any:
        found = await real(self, *args)
        calls.append(found is not None)
        return found

    monkeypatch.setattr(MemoryCore, method, spy)
    return calls


async def finds_what_ranking_every_match_does(
    store: Store,
    bot: uuid.UUID,
    words: list[str],
    rng: random.Random,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A search for ``words`` (shuffled), with options drawn from ``rng``, finds the memories
    the full query does, in its order."""
    query = " ".join(rng.sample(words, len(words)))
    options: dict[str, Any] = {
        "limit": rng.choice([1, 3, 10, 40]),
        "user_id": rng.choice([None, "ana"]),
        "include_superseded": rng.random() < 0.3,
    }
    got = await store.memory.search_memories(bot, query, **options)
    with monkeypatch.context() as m:
        m.setattr(SQLITE, "pruning", None)
        m.setattr(SQLITE, "score_bound", None)
        every = await store.memory.search_memories(bot, query, **options)
    assert [x.id for x in got] == [x.id for x in every], (query, options)


async def test_pruned_search_returns_what_ranking_every_match_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.db"
    bot = await two_bots(path)
    pruned = answered(monkeypatch, "_search_pruned")
    monkeypatch.setattr(SQLITE, "pruning", None)  # the pairs (test_memory_search_candidates)
    rng = random.Random(3)
    async with open_store(path) as store:
        for _ in range(150):
            words = rng.sample(COMMON, rng.randint(0, 2)) + rng.sample(MIDDLE + RARE, 2)
            await finds_what_ranking_every_match_does(store, bot, words, rng, monkeypatch)
    # Not vacuous: most queries with a common word were answered without ranking its rows.
    assert sum(pruned) >= 30, pruned


def test_the_bound_is_above_any_score_fts5_gives() -> None:
    """bm25_bound(counts, N) is above the score of a row holding each of those terms, for
    every row (as repeated words and short rows score highest)."""
    with sqlite3.connect(":memory:") as conn:
        conn.execute("CREATE VIRTUAL TABLE f USING fts5(t)")
        texts = ["a", "a a a a a a a a", "a b", "b b b b", "a b c d e f g h i j"] + ["c d"] * 50
        conn.executemany("INSERT INTO f (t) VALUES (?)", [(t,) for t in texts])
        worst = -min(s for (s,) in conn.execute("SELECT bm25(f) FROM f WHERE f MATCH 'a OR b'"))
        counts = [conn.execute("SELECT count(*) FROM f WHERE f MATCH ?", (w,)).fetchone()[0]
                  for w in "ab"]  # fmt: skip
    assert bm25_bound(counts, len(texts)) > worst
