"""SQLite's memory search ranks only the rows that match two of the query's words, and those of
the words whose bound says they could rank in (backends.sqlite.ranking,
MemoryCore._search_candidates): the results are exactly those of ranking every match."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from boternity import open_store
from boternity.backends.sqlite import ranking
from boternity.storage.migrations import load_migrations
from boternity.storage.repositories import MemoryCore
from tests.sqlite.test_memory_search_pruning import (
    fill,
    finds_what_ranking_every_match_does,
    two_bots,
)

pytestmark = pytest.mark.sqlite

COMMON = ["likes", "often", "weekend"]  # in most facts
MIDDLE = ["tea", "coffee", "gardens", "music", "chess", "piano"]
RARE = ["greta", "pottery", "oslo", "kayak", "violin", "sushi", "tango", "zoë"]
FILLER = ["my", "sister", "old", "friend", "runs", "a", "small", "shop", "near", "the", "lake"]


def _fact(rng: random.Random) -> str:
    """A few words, some repeated (a word twice scores more), rows short and long (a short
    row scores more), so the bounds are tested where they are tightest."""
    words = rng.sample(COMMON, rng.randint(0, 2)) + rng.sample(MIDDLE, rng.randint(0, 2))
    if rng.random() < 0.15:
        words.append(rng.choice(RARE))
    if rng.random() < 0.05:
        words += rng.sample(RARE, 2)
    if words and rng.random() < 0.1:
        words += [rng.choice(words)] * rng.randint(1, 3)
    words += rng.sample(FILLER, rng.choice([0, 0, 1, 3, 8]))
    rng.shuffle(words)
    return " ".join(words) or rng.choice(RARE)


async def test_ranking_the_candidates_returns_what_ranking_every_match_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.db"
    bot = await two_bots(path, _fact)
    tries: list[int] = []  # statements a search took: 1, 2, or 0 (ranked every match)
    real_read = MemoryCore._search_candidates

    async def spy(self: MemoryCore, plan: Any, params: tuple[Any, ...]) -> Any:
        calls = 0
        read = self._x.read

        async def counted(*args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            return await read(*args, **kwargs)

        self._x.read = counted  # type: ignore[method-assign]
        try:
            found = await real_read(self, plan, params)
        finally:
            del self._x.read
        tries.append(calls if found is not None else 0)
        return found

    monkeypatch.setattr(MemoryCore, "_search_candidates", spy)
    rng = random.Random(3)
    async with open_store(path) as store:
        for round_ in range(200):
            words = rng.sample(COMMON, rng.randint(0, 2)) + rng.sample(MIDDLE + RARE, 2)
            words += rng.sample(FILLER, rng.randint(0, 3))
            await finds_what_ranking_every_match_does(store, bot, words, rng, monkeypatch)
            if round_ == 100:  # a write: the counts the next searches read change
                fill(path, bot, 300, seed=4, fact=_fact)
    # Not vacuous: most searches ranked a few rows in one statement, some needed a second.
    assert tries.count(1) >= 80, tries
    assert tries.count(2) >= 5, tries


def test_the_bound_is_above_any_score_fts5_gives() -> None:
    """term_bound is above the score bm25 gives any row for one word, the word repeated in a
    row and rows short or long, with the index's own row count and mean length (read from its
    averages record) or not knowing the mean."""
    with sqlite3.connect(":memory:") as conn:
        conn.execute("CREATE VIRTUAL TABLE f USING fts5(t)")
        conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(f, row)")
        texts = ["a", "a a a a a a a a", "a b", "b b b b", "a b c d e f g h i j", "b"]
        texts += ["c d e f g h"] * 50
        conn.executemany("INSERT INTO f (t) VALUES (?)", [(t,) for t in texts])
        conn.commit()  # the averages record is written then
        (version,) = conn.execute("SELECT v FROM f_config WHERE k = 'version'").fetchone()
        (record,) = conn.execute("SELECT hex(block) FROM f_data WHERE id = 1").fetchone()
        known = ranking.averages(version, record)
        assert known == (len(texts), sum(len(t.split()) for t in texts) / len(texts))
        for word in "ab":
            worst = -min(s for (s,) in conn.execute("SELECT bm25(f) FROM f WHERE f MATCH ?", word))
            doc, cnt = conn.execute("SELECT doc, cnt FROM v WHERE term = ?", word).fetchone()
            assert ranking.term_bound(*known, doc, cnt) > worst
            assert ranking.term_bound(len(texts), float("inf"), doc, cnt) > worst
    assert ranking.averages("5", record) is None
    assert ranking.averages(version, record + "00") is None


def test_the_tokenizer_is_the_index_s() -> None:
    """The tokens looked up are those memories_fts makes: the same tokenizer as its migration,
    stems and folded accents included."""
    (created,) = [
        m
        for m in load_migrations("boternity.backends.sqlite.migrations")
        if "memories_fts USING fts5(" in m.sql
    ]
    assert f"tokenize = '{ranking.MEMORY_TOKENIZER}'" in created.sql
    assert ranking.Tokenizer()(["classes", "zoë", "greta", "foo_bar"]) == [
        ("class",),
        ("zoe",),
        ("greta",),
        ("foo", "bar"),
    ]
    assert ranking.plan(["foo_bar", "tea"], 10) is None  # two tokens: ranked whole
