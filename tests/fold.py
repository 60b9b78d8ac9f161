"""What SQLite's FTS5 tokenizer (unicode61 remove_diacritics 2) folds, read from SQLite itself.

PostgreSQL's search folds with a translate() table made from this (migration 0003); the tests
compare the two over every character, so the backends find the same memories for accented
words. Run as a script to print the table: ``python -m tests.fold``; with ``--function``, the
faster boternity_fold of migration 0009 (the same folds, applied in parts; text with no
character outside ASCII, which has nothing to fold, returned as it is).
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


#: The parts boternity_fold applies one after another (schema 5): translate() compares each
#: character of the text with every entry of its table, so a part is small and is applied only
#: when the text holds one of its characters.
FOLD_PARTS = (
    ("Latin-1", 0x00, 0x100),
    ("Latin Extended-A", 0x100, 0x180),
    ("Latin Extended-B", 0x180, 0x250),
    ("Latin Extended Additional, first half", 0x1E00, 0x1E80),
    ("Latin Extended Additional, second half", 0x1E80, 0x1F00),
)


def fold_function_sql() -> str:
    """boternity_fold as migration 0009 defines it: the same folds as translate_sql(), in
    parts (FOLD_PARTS, then the rest, then the dropped marks), after one test that returns
    text of ASCII characters only as it is (every folded character is outside ASCII)."""
    folds, drops = sqlite_fold_table()
    parts: list[tuple[str, str, str]] = []
    left = dict(folds)
    for name, low, high in FOLD_PARTS:
        part = {c: t for c, t in left.items() if low <= ord(c) < high}
        parts.append((name, "".join(part), "".join(part.values())))
        left = {c: t for c, t in left.items() if c not in part}
    parts.append(
        ("the rest (Greek symbols, U+1FBE, U+212B)", "".join(left), "".join(left.values()))
    )
    parts.append(("combining marks, dropped", "".join(drops), ""))
    steps = "".join(
        f"    -- {name}\n    IF t ~ '[{source}]' THEN t := translate(t, '{source}', '{target}'); END IF;\n"
        for name, source, target in parts
    )
    return (
        "CREATE OR REPLACE FUNCTION boternity_fold(text) RETURNS text\n"
        "    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE\n"
        "    AS $fold$\nDECLARE\n    t text := $1;\nBEGIN\n"
        "    -- nothing to fold (most chat text): one scan instead of one per part\n"
        "    IF t !~ '[^[:ascii:]]' THEN RETURN t; END IF;\n"
        f"{steps}    RETURN t;\nEND\n$fold$;"
    )


if __name__ == "__main__":
    import sys

    print(fold_function_sql() if sys.argv[1:] == ["--function"] else translate_sql())
