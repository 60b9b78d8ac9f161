"""Which memories a SQLite memory search must rank for its first results to be exact.

FTS5's bm25 costs a lookup of the row's length for every row it scores (about half of a
search over 100,000 memories went there), and a question with one common word matches
thousands of rows. Most of them match only one of the query's words, and such a row scores
at most ``term_bound`` of that word: computed from the word's counts in the index (how many
rows hold it, how often it occurs in all: so how often it can occur in one row) and the
index's row count and mean row length. So a search ranks only the rows that match two words
or more (``pairs``, an FTS5 query) and takes the result when its last score beats every
word's bound; otherwise it ranks again with the rows of the words whose bound does not
(``must``), and failing that ranks every match. The counts come back with the result, read in
the same statement (one snapshot), so a write in between cannot make it wrong.

A row's score is bm25 over the whole query whichever rows are ranked: only the set of
rows scored changes, never how one is scored, so results and their order are those of ranking
every match, ties included.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
from dataclasses import dataclass

#: memories_fts's tokenizer (migration 0002): the words the index holds are its tokens.
MEMORY_TOKENIZER = "porter unicode61 remove_diacritics 2"
#: bm25's k1 and b (fts5_aux.c).
K1, B = 1.2, 0.75
#: Queries of more words are ranked as before (MemoryCore._search_pruned): the pairs query
#: grows with the square of the words.
MAX_PAIR_TERMS = 8
#: FTS5's on-disk format whose averages record (id 1 of memories_fts_data: the row count, then
#: the token count of each column, as varints) is read.
FTS5_VERSION = "4"
_CACHED_WORDS = 4096


class Tokenizer:
    """The tokens memories_fts makes of a word, from an FTS5 table of the same tokenizer in a
    private in-memory database (the same SQLite library, so the same tokens), cached."""

    def __init__(self, tokenize: str = MEMORY_TOKENIZER) -> None:
        self._tokenize = tokenize
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0  # a connection is never used across fork: a child opens its own
        self._cache: dict[str, tuple[str, ...]] = {}

    def __call__(self, words: list[str]) -> list[tuple[str, ...]]:
        with self._lock:
            missing = [w for w in dict.fromkeys(words) if w not in self._cache]
            if missing:
                if len(self._cache) + len(missing) > _CACHED_WORDS:
                    self._cache.clear()
                self._cache.update(zip(missing, self._tokens(missing), strict=True))
            return [self._cache[w] for w in words]

    def _tokens(self, words: list[str]) -> list[tuple[str, ...]]:
        if self._conn is None or self._pid != os.getpid():
            conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
            conn.execute(
                f"CREATE VIRTUAL TABLE words USING fts5(word, tokenize = '{self._tokenize}')"
            )
            conn.execute("CREATE VIRTUAL TABLE word_tokens USING fts5vocab(words, instance)")
            self._conn, self._pid = conn, os.getpid()
        conn = self._conn
        conn.executemany("INSERT INTO words (rowid, word) VALUES (?, ?)", enumerate(words))
        found: list[list[str]] = [[] for _ in words]
        for doc, term in conn.execute("SELECT doc, term FROM word_tokens ORDER BY doc, offset"):
            found[doc].append(term)
        conn.execute("DELETE FROM words")
        return [tuple(t) for t in found]


def term_bound(rows: int, avgdl: float, doc: int, cnt: int) -> float:
    """More than the score, as a positive number, that bm25 gives a row for a one-token phrase
    that ``doc`` of the index's ``rows`` rows hold, ``cnt`` times in all (so at most
    1 + cnt - doc times in one row), the mean row length being ``avgdl`` tokens (inf: not
    known). The phrase adds idf * f * (k1 + 1) / (f + k1 * (1 - b + b * D / avgdl)), which grows
    with its frequency f and shrinks with the row's length D >= f."""
    if doc <= 0:
        return 0.0
    idf = max(1e-6, math.log((rows - doc + 0.5) / (doc + 0.5)))
    f = 1 + max(0, cnt - doc)
    score = idf * f * (K1 + 1) / (f + K1 * (1 - B + B * f / avgdl))
    return score * (1 + 1e-9) + 1e-9


def _varint(data: bytes, at: int) -> tuple[int, int]:
    """SQLite's varint at ``at`` (1 to 9 bytes, big-endian, 7 bits a byte, the ninth all 8)."""
    value = 0
    for _ in range(8):
        byte = data[at]
        at += 1
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, at
    return (value << 8) | data[at], at + 1


def averages(version: object, record: str | None) -> tuple[int, float] | None:
    """(rows, mean tokens a row) of a one-column FTS5 index from its averages record (hex), or
    None when the format is not the one known or the record does not read as it should."""
    if str(version) != FTS5_VERSION or not record:
        return None
    try:
        data = bytes.fromhex(record)
        rows, at = _varint(data, 0)
        tokens, at = _varint(data, at)
    except (ValueError, IndexError):
        return None
    if at != len(data) or rows < 1:
        return None
    return rows, tokens / rows


@dataclass(frozen=True, slots=True)
class Plan:
    """A query's words as FTS5 phrases, in the query's order, and what to look up for each."""

    phrases: tuple[str, ...]
    tokens: tuple[str, ...]

    def candidates(self, must: frozenset[int]) -> str:
        """An FTS5 query for the rows that hold a word of ``must`` or two other words."""
        rest = [p for i, p in enumerate(self.phrases) if i not in must]
        parts = [self.phrases[i] for i in sorted(must)]
        parts += [f"({p} AND ({' OR '.join(rest[j + 1 :])}))" for j, p in enumerate(rest[:-1])]
        return " OR ".join(parts)

    def unranked(
        self, must: frozenset[int], snapshot: str, last: float | None
    ) -> frozenset[int] | None:
        """The words, not in ``must``, whose rows may rank in though only those matching two
        words or a word of ``must`` were ranked, as the index stood (``snapshot``: see
        SqliteStatements.search_candidates); ``last`` is the last result's score as a positive
        number, None when there were fewer results than asked for. None when ranking every
        match is the cheaper way to be sure (fewer results than asked for, or the rows of the
        words to add are most of the matches)."""
        if last is None:
            return None
        version, record, top_rowid, counts = json.loads(snapshot)
        known = averages(version, record)
        most = max([0, *(doc for doc, _ in counts)])
        if known is not None and known[0] >= most:
            rows, avgdl = known
        else:  # max(rowid) is at least the row count; a longer mean only raises the bound
            rows, avgdl = int(top_rowid or 0), math.inf
        unranked = frozenset(
            i
            for i, (doc, cnt) in enumerate(counts)
            if i not in must and doc > 0 and term_bound(rows, avgdl, int(doc), int(cnt)) >= last
        )
        if 2 * sum(counts[i][0] for i in must | unranked) > sum(doc for doc, _ in counts):
            return None
        return unranked


_TOKENS = Tokenizer()


def plan(terms: list[str], limit: int) -> Plan | None:
    """How to search for ``terms`` ranking only the rows that can reach the first ``limit``,
    or None when it cannot be done so (a word the tokenizer splits, too many or few words)."""
    if not 2 <= len(terms) <= MAX_PAIR_TERMS or limit > 100:
        return None
    tokens = _TOKENS(terms)
    if any(len(t) != 1 for t in tokens):
        return None
    return Plan(tuple(f'"{t}"' for t in terms), tuple(t[0] for t in tokens))
