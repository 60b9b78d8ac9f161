"""Every row of a database, read past the store: to check what an operation left, table by
table, on every backend (tables a migration adds are found, not listed)."""

from __future__ import annotations

import sqlite3
from typing import Any

import asyncpg

Rows = dict[str, list[dict[str, Any]]]


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


async def all_rows(url: str) -> Rows:
    """The rows of every ordinary table but the migration ledger, by table, as dicts. On
    SQLite the full-text index's shadow tables are left out (see :func:`fts_matches`)."""
    if is_postgres(url):
        conn = await asyncpg.connect(url)
        try:
            names = [
                r[0]
                for r in await conn.fetch(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                    " AND tablename <> 'schema_migrations'"
                )
            ]
            return {t: [dict(r) for r in await conn.fetch(f'SELECT * FROM "{t}"')] for t in names}
        finally:
            await conn.close()
    with sqlite3.connect(url) as conn:
        conn.row_factory = sqlite3.Row
        # (schema, name, type, columns, without rowid, strict)
        tables = [
            (r[1], not r[4])
            for r in conn.execute("PRAGMA main.table_list")
            if r[2] == "table" and r[1] != "schema_migrations" and not r[1].startswith("sqlite_")
        ]
        # With the rowid, which SQLite's own bookkeeping tables refer to (messages_to_index).
        with_rowid = 'rowid AS "(rowid)", '
        return {
            t: [dict(r) for r in conn.execute(f'SELECT {with_rowid if rowid else ""}* FROM "{t}"')]
            for t, rowid in tables
        }


async def _count_matches(url: str, word: str, bot_id: Any, postgres: str, sqlite: str) -> int:
    """Run the backend's count of index entries for ``word`` (``$1``/``?1``) in ``bot_id``
    (``$2``/``?2``): ``postgres`` or ``sqlite`` text."""
    if is_postgres(url):
        conn = await asyncpg.connect(url)
        try:
            count: int = await conn.fetchval(postgres, word, bot_id)
            return count
        finally:
            await conn.close()
    with sqlite3.connect(url) as conn:
        return int(conn.execute(sqlite, (f'"{word}"', str(bot_id))).fetchone()[0])


async def message_fts_matches(url: str, word: str, bot_id: Any) -> int:
    """As :func:`fts_matches`, for the messages' full-text index (found through their
    sessions); on SQLite, messages still waiting to be indexed are not in it."""
    return await _count_matches(
        url,
        word,
        bot_id,
        "SELECT count(*) FROM chat_messages m JOIN chat_sessions s ON s.id = m.session_id"
        " WHERE s.bot_id = $2 AND m.content_tsv @@ to_tsquery('english', boternity_fold($1))",
        "SELECT count(*) FROM messages_fts f LEFT JOIN chat_messages m ON m.rowid = f.rowid"
        " LEFT JOIN chat_sessions s ON s.id = m.session_id WHERE messages_fts MATCH ?1"
        " AND (m.rowid IS NULL OR s.bot_id = ?2)",
    )


async def fts_matches(url: str, word: str, bot_id: Any) -> int:
    """How many entries the memories' full-text index holds for ``word`` among the memories of
    ``bot_id``: on SQLite the FTS5 index itself, where an entry left behind by a deleted row
    counts whatever its bot; on PostgreSQL the indexed column."""
    return await _count_matches(
        url,
        word,
        bot_id,
        "SELECT count(*) FROM session_memories WHERE bot_id = $2"
        " AND fact_tsv @@ to_tsquery('english', boternity_fold($1))",
        "SELECT count(*) FROM memories_fts f LEFT JOIN session_memories m"
        " ON m.rowid = f.rowid WHERE memories_fts MATCH ?1"
        " AND (m.rowid IS NULL OR m.bot_id = ?2)",
    )


def _key(value: Any) -> str:
    """Ids compare as text (SQLite stores text, PostgreSQL uuid)."""
    return "" if value is None else str(value)


def owned_by(rows: Rows, bot_id: Any, user_id: str) -> dict[str, list[dict[str, Any]]]:
    """The rows of one user of one bot, by table: rows of the bot marked with the user, and
    every row of that user's sessions. (The bots table's user_id is the bot's owner, not a
    user of the bot.)"""
    bot = _key(bot_id)
    sessions = {
        _key(r["id"])
        for r in rows["chat_sessions"]
        if _key(r["bot_id"]) == bot and r["user_id"] == user_id
    }

    # SQLite's rowids of the user's messages, which its search bookkeeping refers to.
    messages = {
        r.get("(rowid)") for r in rows["chat_messages"] if _key(r["session_id"]) in sessions
    }
    # Every memory the user ever had (deleted ones are in the history): embeddings and the
    # vector caches' change notes refer to them by id.
    memories = {
        _key(r["memory_id"])
        for r in rows["memory_history"]
        if _key(r["bot_id"]) == bot and r["user_id"] == user_id
    }

    def mine(row: dict[str, Any]) -> bool:
        if _key(row.get("session_id")) in sessions:
            return True
        if "message_rowid" in row:
            return row["message_rowid"] in messages
        if "memory_id" in row and _key(row["memory_id"]) in memories:
            return True
        return "user_id" in row and _key(row.get("bot_id")) == bot and row["user_id"] == user_id

    return {t: [r for r in found if mine(r)] for t, found in rows.items() if t != "bots"}


def _sorted(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(repr(sorted(r.items())) for r in rows)


def check_erased(before: Rows, after: Rows, bot_id: Any, user_id: str) -> dict[str, int]:
    """Assert, table by table, that ``after`` is ``before`` without exactly the rows of
    ``user_id`` of ``bot_id`` (the bots table aside: its totals may absorb deleted sessions;
    and SQLite's marks of messages indexed and counted, which come down when the newest
    messages go: see tests/sqlite/test_message_index.py). The vector caches' change notes (memory_changes)
    gain one row per erased memory, its id alone. Returns how many rows went, by table."""
    assert after.keys() == before.keys()
    gone = owned_by(before, bot_id, user_id)
    erased = {_key(r["id"]) for r in gone["session_memories"]}
    for table, rows in before.items():
        if table in ("bots", "messages_indexed", "messages_counted"):
            continue
        kept = [r for r in rows if r not in gone[table]]
        now = after[table]
        if table == "memory_changes":
            notes = [r for r in now if r not in kept]
            assert sorted(_key(r["memory_id"]) for r in notes) == sorted(erased)
            now = [r for r in now if r not in notes]
        assert _sorted(now) == _sorted(kept), f"table {table}"
    return {t: len(rows) for t, rows in gone.items()}
