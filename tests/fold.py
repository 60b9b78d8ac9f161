"""What SQLite's FTS5 tokenizer (unicode61 remove_diacritics 2) folds, read from SQLite itself.

PostgreSQL's search folds with a translate() table made from this (migration 0003); the tests
compare the two over every character, so the backends find the same memories for accented
words. Run as a script to print the table: ``python -m tests.fold``.
"""

from __future__ import annotations

import sqlite3

TOKENIZER = "unicode61 remove_diacritics 2"


def sqlite_fold_table() -> tuple[dict[str, str], list[str]]:
    """(letter -> the letter SQLite indexes it as, where that is not just its lowercase;
    combining marks SQLite drops from inside a word)."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute(f"CREATE VIRTUAL TABLE t USING fts5(x, tokenize = '{TOKENIZER}')")
        conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
        # The Basic Multilingual Plane: SQLite folds nothing above U+212B (the Angstrom sign).
        codes = [i for i in range(0x80, 0x10000) if not 0xD800 <= i < 0xE000]
        # Each character between two q's: a letter stays inside the word, a mark may vanish.
        conn.executemany(
            "INSERT INTO t (rowid, x) VALUES (?, ?)", [(i, f"q{chr(i)}q") for i in codes]
        )
        terms: dict[int, list[str]] = {}
        for term, doc in conn.execute("SELECT term, doc FROM v"):
            terms.setdefault(doc, []).append(term)
    finally:
        conn.close()
    folds: dict[str, str] = {}
    drops: list[str] = []
    for code in codes:
        char, found = chr(code), terms.get(code)
        if found == ["qq"]:
            drops.append(char)
        elif found is not None and len(found) == 1 and len(found[0]) == 3:
            inner = found[0][1]
            if inner not in (char, char.lower()):
                folds[char] = inner
    return folds, drops


def translate_sql() -> str:
    """The translate() call that folds like SQLite, for the migration."""
    folds, drops = sqlite_fold_table()
    source = "".join(folds) + "".join(drops)
    target = "".join(folds.values())
    return f"translate($1, '{source}', '{target}')"


if __name__ == "__main__":
    print(translate_sql())
