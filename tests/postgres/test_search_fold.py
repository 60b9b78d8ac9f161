"""PostgreSQL's boternity_fold folds every character exactly as SQLite's FTS5 tokenizer does."""

from __future__ import annotations

import random
import re
from importlib import resources

import asyncpg
import pytest

from tests.fold import fold_function_sql, sqlite_fold_table

pytestmark = pytest.mark.postgres


async def test_fold_matches_sqlite_for_every_character(pg_url: str) -> None:
    folds, drops = sqlite_fold_table()
    words = [f"q{c}q" for c in [*folds, *drops]]
    expected = [f"q{folds.get(c, '')}q" for c in [*folds, *drops]]
    conn = await asyncpg.connect(pg_url)
    try:
        got = await conn.fetchval(
            "SELECT array_agg(boternity_fold(w) ORDER BY n)"
            " FROM unnest($1::text[]) WITH ORDINALITY AS t(w, n)",
            words,
        )
        # Letters SQLite leaves alone (ø, ß, æ, ł, ASCII) pass through.
        kept = await conn.fetchval("SELECT boternity_fold($1)", "Søren Straße Æsir Łódź ok")
    finally:
        await conn.close()
    assert len(folds) > 400 and len(drops) > 20
    assert [(c, g) for c, g, e in zip([*folds, *drops], got, expected, strict=True) if g != e] == []
    assert kept == "Søren Straße Æsir Łodz ok"


def _schema_3_table() -> tuple[str, str]:
    """The single translate() table boternity_fold used from schema 3 to 4."""
    sql = (
        resources.files("boternity.backends.postgres.migrations")
        .joinpath("0003_search_folds_diacritics.sql")
        .read_text(encoding="utf-8")
    )
    source, target = re.search(r"translate\(\$1, '([^']*)', '([^']*)'\)", sql).groups()  # type: ignore[union-attr]
    return source, target


async def test_fold_of_schema_5_is_the_table_of_schema_3_on_any_text(pg_url: str) -> None:
    """Schema 5 applies the table in parts, each only when the text needs it (schema 9: text
    all ASCII needs none): the result is the same for every character alone and for text
    mixing them (all parts at once)."""
    source, target = _schema_3_table()
    table = str.maketrans(source[: len(target)], target, source[len(target) :])
    bmp = [chr(i) for i in range(1, 0x10000) if not 0xD800 <= i < 0xE000]
    rng = random.Random(5)
    mixed = [
        "".join(rng.choices(source + "abc xyz ø ß 🚀", k=rng.randint(0, 80))) for _ in range(2000)
    ]
    texts = [f"q{c}q" for c in bmp] + mixed + ["", "plain ascii", source, source[::-1]]
    conn = await asyncpg.connect(pg_url)
    try:
        got = await conn.fetchval(
            "SELECT array_agg(boternity_fold(w) ORDER BY n)"
            " FROM unnest($1::text[]) WITH ORDINALITY AS t(w, n)",
            texts,
        )
    finally:
        await conn.close()
    assert [(t, g) for t, g in zip(texts, got, strict=True) if g != t.translate(table)] == []


def test_the_newest_fold_is_the_generated_one() -> None:
    """The last migration that defines boternity_fold holds what tests.fold generates, so the
    tests above (on the migrated database) and the generator agree."""
    package = resources.files("boternity.backends.postgres.migrations")
    defining = sorted(
        entry.name
        for entry in package.iterdir()
        if entry.name.endswith(".sql")
        and "FUNCTION boternity_fold" in entry.read_text(encoding="utf-8")
    )
    assert fold_function_sql() in package.joinpath(defining[-1]).read_text(encoding="utf-8")
    assert "[^[:ascii:]]" in fold_function_sql()


async def test_text_with_nothing_to_fold_comes_back_as_it_is(pg_url: str) -> None:
    ascii_texts = ["", "plain ascii", "".join(chr(i) for i in range(1, 128)), "x" * 60_000]
    conn = await asyncpg.connect(pg_url)
    try:
        got = [await conn.fetchval("SELECT boternity_fold($1)", t) for t in ascii_texts]
        mixed = await conn.fetchval("SELECT boternity_fold($1)", "Zoë in Zürich")
    finally:
        await conn.close()
    assert got == ascii_texts
    assert mixed == "Zoe in Zurich"
