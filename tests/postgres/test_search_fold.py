"""PostgreSQL's boternity_fold folds every character exactly as SQLite's FTS5 tokenizer does."""

from __future__ import annotations

import asyncpg
import pytest

from tests.fold import sqlite_fold_table

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
