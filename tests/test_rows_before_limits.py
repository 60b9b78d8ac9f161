"""Rows written before the length limits existed stay readable: the limits refuse new values,
never old data (a database made by the previous release may hold longer text)."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid

from boternity import open_store
from boternity.models import (
    MAX_DESCRIPTION_LENGTH,
    MAX_FACT_LENGTH,
    MAX_TITLE_LENGTH,
    Bot,
    ChatSession,
    MemoryCategory,
    MemoryEntry,
)

LONG_DESCRIPTION = "d" * (MAX_DESCRIPTION_LENGTH + 10)
LONG_TITLE = "t" * (MAX_TITLE_LENGTH + 10)
LONG_FACT = " ".join(f"w{i}" for i in range(MAX_FACT_LENGTH // 3 + 10))

UPDATES = [
    ("UPDATE bots SET description = {p} WHERE id = {q}", LONG_DESCRIPTION, "bot"),
    ("UPDATE chat_sessions SET title = {p} WHERE id = {q}", LONG_TITLE, "session"),
    ("UPDATE session_memories SET fact = {p} WHERE id = {q}", LONG_FACT, "memory"),
]


def _write_raw(db_url: str, backend: str, ids: dict[str, uuid.UUID]) -> None:
    """Write over-long values behind boternity's back, as an older release could have."""
    if backend == "sqlite":
        conn = sqlite3.connect(db_url)
        with conn:
            for sql, value, kind in UPDATES:
                conn.execute(sql.format(p="?", q="?"), (value, str(ids[kind])))
        conn.close()
        return
    import asyncpg

    async def write() -> None:
        pg = await asyncpg.connect(db_url)
        try:
            for sql, value, kind in UPDATES:
                await pg.execute(sql.format(p="$1", q="$2"), value, ids[kind])
        finally:
            await pg.close()

    asyncio.run(write())


async def test_over_long_rows_from_before_the_limits_are_still_read(
    db_url: str, backend: str
) -> None:
    async with open_store(db_url) as store:
        bot = await store.bots.create_bot(Bot(name="Old"))
        session = await store.chat.create_session(ChatSession(bot_id=bot.id, model="m"))
        memory = await store.memory.save_memory(
            MemoryEntry(bot_id=bot.id, fact="short", category=MemoryCategory.FACT, importance=3)
        )
    ids = {"bot": bot.id, "session": session.id, "memory": memory.id}
    await asyncio.to_thread(_write_raw, db_url, backend, ids)
    async with open_store(db_url) as store:
        got = await store.bots.get_bot(bot.id)
        assert got is not None and got.description == LONG_DESCRIPTION
        assert [b.description for b in await store.bots.list_bots()] == [LONG_DESCRIPTION]
        got_session = await store.chat.get_session(session.id)
        assert got_session is not None and got_session.title == LONG_TITLE
        assert [m.fact for m in await store.memory.get_memories(bot.id)] == [LONG_FACT]
