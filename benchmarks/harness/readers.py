"""Systems that read the latest messages (W3, W4, S1) and memories (M1, M2), and the data
they read.

A *dataset* is one database filled once per run, in bulk (filling is not measured): each
session's rows as that system itself writes them. Several readers may share one dataset:
the floors read boternity's own tables with the same SQL boternity runs, so they read the
same rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from boternity import open_store
from boternity.backends.postgres.dialect import POSTGRES
from boternity.backends.sqlite.dialect import SQLITE
from boternity.ids import new_id
from boternity.models import Bot
from boternity.storage.checks import search_terms
from harness.common import CONTENT
from harness.writers import SYNC_NAMES, lc_message, sdk_item, sqlite_pragmas

_BASE = datetime(2025, 1, 1, tzinfo=UTC)
_BATCH = 20_000


def _times(n: int) -> list[datetime]:
    return [_BASE + timedelta(milliseconds=i) for i in range(n)]


# --- datasets ------------------------------------------------------------------------------


class BoternitySqliteData:
    """A boternity SQLite database: sessions and memories written straight into its tables."""

    backend = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._keys = itertools.count()

    async def create(self) -> None:
        async with open_store(self.path) as store:
            self.bot = (await store.bots.create_bot(Bot(name="reader"))).id
            self.memory_bot = (await store.bots.create_bot(Bot(name="memories"))).id

    def fill(self, sizes: list[int]) -> list[str]:
        """Sessions of these sizes; a handle is the session id (its key is ``k`` + handle)."""
        conn = sqlite3.connect(self.path, isolation_level=None)
        ids: list[str] = []
        conn.execute("BEGIN")
        for size in sizes:
            sid = str(new_id())
            ids.append(sid)
            times = [t.isoformat(timespec="microseconds") for t in _times(size)]
            conn.execute(
                "INSERT INTO chat_sessions (id, bot_id, started_at, model, message_count,"
                " session_key) VALUES (?, ?, ?, 'm', ?, ?)",
                (sid, str(self.bot), times[0] if times else _BASE.isoformat(), size, "k" + sid),
            )
            conn.executemany(
                "INSERT INTO chat_messages (id, session_id, seq, role, content, created_at,"
                " input_tokens, output_tokens) VALUES (?, ?, ?, ?, ?, ?, 10, 20)",
                (
                    (str(new_id()), sid, i + 1, "user" if i % 2 == 0 else "assistant",
                     f"{i} {CONTENT}", times[i])
                    for i in range(size)
                ),
            )  # fmt: skip
        conn.execute("COMMIT")
        conn.close()
        return ids

    def fill_memories(self, facts: list[str]) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.execute("BEGIN")
        rng = random.Random(3)
        times = _times(len(facts))
        conn.executemany(
            "INSERT INTO session_memories (id, bot_id, fact, category, importance, created_at)"
            " VALUES (?, ?, ?, 'fact', ?, ?)",
            (
                (str(new_id()), str(self.memory_bot), f, rng.randint(1, 5),
                 times[i].isoformat(timespec="microseconds"))
                for i, f in enumerate(facts)
            ),
        )  # fmt: skip
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
        conn.close()


class BoternityPgData:
    """A boternity PostgreSQL database, filled with COPY."""

    backend = "postgres"

    def __init__(self, url: str) -> None:
        self.url = url

    async def create(self) -> None:
        async with open_store(self.url) as store:
            self.bot = (await store.bots.create_bot(Bot(name="reader"))).id
            self.memory_bot = (await store.bots.create_bot(Bot(name="memories"))).id

    async def fill(self, sizes: list[int]) -> list[str]:
        import asyncpg

        conn = await asyncpg.connect(self.url)
        ids: list[str] = []
        try:
            sessions, messages = [], []
            for size in sizes:
                sid = new_id()
                ids.append(str(sid))
                sessions.append((sid, self.bot, _BASE, size, "m"))
                for i, t in enumerate(_times(size)):
                    role = "user" if i % 2 == 0 else "assistant"
                    messages.append(
                        (new_id(), sid, self.bot, i + 1, role, f"{i} {CONTENT}", t, 10, 20)
                    )
                    if len(messages) >= _BATCH:
                        await self._flush(conn, sessions, messages)
            await self._flush(conn, sessions, messages)
            await conn.execute("ANALYZE chat_messages")
        finally:
            await conn.close()
        return ids

    @staticmethod
    async def _flush(conn: Any, sessions: list[Any], messages: list[Any]) -> None:
        if sessions:
            await conn.copy_records_to_table(
                "chat_sessions", records=sessions,
                columns=["id", "bot_id", "started_at", "message_count", "model"],
            )  # fmt: skip
            sessions.clear()
        if messages:
            await conn.copy_records_to_table(
                "chat_messages", records=messages,
                columns=["id", "session_id", "bot_id", "seq", "role", "content", "created_at",
                         "input_tokens", "output_tokens"],
            )  # fmt: skip
            messages.clear()

    async def fill_memories(self, facts: list[str]) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.url)
        rng = random.Random(3)
        try:
            await conn.copy_records_to_table(
                "session_memories",
                records=[
                    (new_id(), self.memory_bot, f, "fact", rng.randint(1, 5), t, False)
                    for f, t in zip(facts, _times(len(facts)), strict=True)
                ],
                columns=["id", "bot_id", "fact", "category", "importance", "created_at",
                         "is_manual"],
            )  # fmt: skip
            await conn.execute("ANALYZE session_memories")
        finally:
            await conn.close()


class PeerData:
    """A peer's own SQLite file, its tables made by the peer, rows written in its format."""

    backend = "sqlite"

    def __init__(self, kind: str, path: Path) -> None:
        self.kind = kind  # sdk | sqla | lc
        self.path = path

    async def create(self) -> None:
        if self.kind == "sdk":
            from agents import SQLiteSession

            SQLiteSession("init", self.path).close()
        elif self.kind == "sqla":
            from agents.extensions.memory.sqlalchemy_session import SQLAlchemySession
            from sqlalchemy.ext.asyncio import create_async_engine

            engine = create_async_engine(f"sqlite+aiosqlite:///{self.path}")
            await SQLAlchemySession("init", engine=engine, create_tables=True).get_items()
            await engine.dispose()
        else:
            _lc_history("init", f"sqlite:///{self.path}").clear()

    def fill(self, sizes: list[int]) -> list[str]:
        conn = sqlite3.connect(self.path, isolation_level=None)
        ids: list[str] = []
        conn.execute("BEGIN")
        for size in sizes:
            sid = f"s{uuid.uuid4().hex}"
            ids.append(sid)
            if self.kind == "lc":
                from langchain_core.messages import message_to_dict

                rows = ((sid, json.dumps(message_to_dict(lc_message(i)))) for i in range(size))
                conn.executemany(
                    "INSERT INTO message_store (session_id, message) VALUES (?, ?)", rows
                )
                continue
            conn.execute("INSERT INTO agent_sessions (session_id) VALUES (?)", (sid,))
            stamps = [t.strftime("%Y-%m-%d %H:%M:%S") for t in _times(size)]
            conn.executemany(
                "INSERT INTO agent_messages (session_id, message_data, created_at) VALUES (?, ?, ?)",
                ((sid, json.dumps(sdk_item(i)), stamps[i]) for i in range(size)),
            )
        conn.execute("COMMIT")
        conn.close()
        return ids


def _lc_history(session_id: str, url: str) -> Any:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from langchain_community.chat_message_histories import SQLChatMessageHistory
    return SQLChatMessageHistory(session_id, connection=url)


# --- readers -------------------------------------------------------------------------------


class Reader:
    label = ""
    group = "peer"
    #: The longest session it is asked to read (those that load the whole history).
    max_size: int | None = None
    pragmas: dict[str, str]

    def __init__(self, data: Any) -> None:
        self.data = data
        self.pragmas = {}

    async def open(self) -> None: ...

    async def prepare(self, handles: list[str]) -> None:
        """Set up whatever reading these sessions needs (not measured)."""

    async def recent(self, handle: str) -> int:
        """The latest 50 messages of a session; returns how many came back."""
        raise NotImplementedError

    async def close(self) -> None: ...


class RawSqliteReader(Reader):
    """The floor: the statement boternity runs, rows returned as plain tuples."""

    group = "floor"
    label = "sqlite3 floor"
    recent_sql = SQLITE.sql.recent_messages

    async def open(self) -> None:
        self.conn = sqlite3.connect(
            f"file:{self.data.path}?mode=ro", uri=True, isolation_level=None
        )
        self.pragmas = sqlite_pragmas(self.conn)

    async def recent(self, handle: str) -> int:
        return len(self.conn.execute(self.recent_sql, (handle, 50)).fetchall())

    def query(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        return self.conn.execute(sql, params).fetchall()

    async def close(self) -> None:
        self.conn.close()


class AioSqliteReader(Reader):
    label = "aiosqlite (floor's SQL)"

    async def open(self) -> None:
        import aiosqlite

        self.conn = await aiosqlite.connect(f"file:{self.data.path}?mode=ro", uri=True)
        mode = await (await self.conn.execute("PRAGMA journal_mode")).fetchone()
        sync = await (await self.conn.execute("PRAGMA synchronous")).fetchone()
        assert mode is not None and sync is not None
        self.pragmas = {"journal_mode": str(mode[0]).upper(), "synchronous": SYNC_NAMES[sync[0]]}

    async def recent(self, handle: str) -> int:
        async with self.conn.execute(SQLITE.sql.recent_messages, (handle, 50)) as cursor:
            return len(await cursor.fetchall())

    async def close(self) -> None:
        await self.conn.close()


class BoternityReader(Reader):
    group = "boternity"

    def __init__(self, data: Any) -> None:
        super().__init__(data)
        name = "PostgreSQL" if data.backend == "postgres" else "SQLite"
        self.label = f"boternity {name}"

    async def open(self) -> None:
        self._stack = contextlib.AsyncExitStack()
        target = self.data.url if self.data.backend == "postgres" else self.data.path
        self.store = await self._stack.enter_async_context(open_store(target))
        self._ids: dict[str, uuid.UUID] = {}

    async def prepare(self, handles: list[str]) -> None:
        self._ids.update((h, uuid.UUID(h)) for h in handles)

    async def recent(self, handle: str) -> int:
        return len(await self.store.chat.get_recent_messages(self._ids[handle], 50))

    async def close(self) -> None:
        await self._stack.aclose()


class BoternitySdkReader(BoternityReader):
    """boternity through its Agents SDK adapter: ``BoternitySession.get_items(limit=50)``."""

    def __init__(self, data: Any) -> None:
        super().__init__(data)
        self.label = "boternity SQLite, Agents SDK adapter"

    async def prepare(self, handles: list[str]) -> None:
        from boternity.integrations.openai_agents import BoternitySession

        self._sessions = getattr(self, "_sessions", {})
        for h in handles:
            self._sessions[h] = BoternitySession("k" + h, store=self.store, bot=self.data.bot)

    async def recent(self, handle: str) -> int:
        return len(await self._sessions[handle].get_items(limit=50))


class AsyncpgReader(Reader):
    group = "floor"
    label = "asyncpg floor"
    recent_sql = POSTGRES.sql.recent_messages

    async def open(self) -> None:
        import asyncpg

        self.conn = await asyncpg.connect(self.data.url)

    async def recent(self, handle: str) -> int:
        return len(await self.conn.fetch(self.recent_sql, uuid.UUID(handle), 50))

    async def query(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        return list(await self.conn.fetch(sql, *params))

    async def close(self) -> None:
        await self.conn.close()


class SdkSqliteReader(Reader):
    label = "Agents SDK SQLiteSession"

    async def prepare(self, handles: list[str]) -> None:
        from agents import SQLiteSession

        self._sessions = getattr(self, "_sessions", {})
        for h in handles:
            self._sessions[h] = SQLiteSession(h, self.data.path)
        if not self.pragmas:
            self.pragmas = sqlite_pragmas(self._sessions[handles[0]]._get_connection())

    async def recent(self, handle: str) -> int:
        return len(await self._sessions[handle].get_items(limit=50))

    async def close(self) -> None:
        for s in getattr(self, "_sessions", {}).values():
            s.close()


class SqlaReader(Reader):
    label = "Agents SDK SQLAlchemySession"

    async def open(self) -> None:
        from sqlalchemy.ext.asyncio import create_async_engine

        self.engine = create_async_engine(f"sqlite+aiosqlite:///{self.data.path}")
        self._sessions: dict[str, Any] = {}

    async def prepare(self, handles: list[str]) -> None:
        from agents.extensions.memory.sqlalchemy_session import SQLAlchemySession

        for h in handles:
            self._sessions[h] = SQLAlchemySession(h, engine=self.engine)

    async def recent(self, handle: str) -> int:
        return len(await self._sessions[handle].get_items(limit=50))

    async def close(self) -> None:
        await self.engine.dispose()


class LangChainReader(Reader):
    """``SQLChatMessageHistory.messages[-50:]``: its API reads the whole history."""

    label = "LangChain SQLChatMessageHistory"

    def __init__(self, data: Any, max_size: int) -> None:
        super().__init__(data)
        self.max_size = max_size
        self._histories: dict[str, Any] = {}

    async def prepare(self, handles: list[str]) -> None:
        for h in handles:
            self._histories[h] = _lc_history(h, f"sqlite:///{self.data.path}")

    async def recent(self, handle: str) -> int:
        return len(self._histories[handle].messages[-50:])


# --- memories ------------------------------------------------------------------------------

_SYLLABLES = ["ka", "lo", "mi", "ve", "ro", "sa", "ti", "nu", "de", "pa", "zo", "ri", "fe",
              "gu", "ha", "jo", "ku", "le", "mo", "ne"]  # fmt: skip
_PSEUDO = [a + b + c for a in _SYLLABLES for b in _SYLLABLES for c in ("n", "r", "s", "l")]
_NAMES = [f"{a}{b}" for a in ("Ana", "Ben", "Cleo", "Dmitri", "Eun", "Farid", "Greta", "Hiro",
          "Ines", "Jonas", "Kofi", "Lena", "Mateo", "Nadia", "Omar", "Priya", "Quinn", "Rosa",
          "Sven", "Tomas", "Uma", "Vera", "Wei", "Yara", "Zoe")
          for b in ["", *_SYLLABLES[:19]]]  # fmt: skip
_THINGS = ["cat", "dog", "bicycle", "garden", "sister", "brother", "job", "flat", "guitar",
           "car", "team", "piano", "boat", "camera", "novel", "laptop", "kitchen", "violin",
           "daughter", "son", "mother", "father", "landlord", "doctor", "manager",
           *_PSEUDO[:75]]  # fmt: skip
_VERBS = ["likes", "is called", "lives near", "works with", "was given", "is learning about",
          "hates", "collects", "repairs", "dreams about", "writes about", "paints"]  # fmt: skip
_HOBBIES = ["jazz", "tea", "hiking", "chess", "sushi", "opera", "tennis", "pottery", "sailing",
            "climbing", *_PSEUDO[100:390]]  # fmt: skip
_KINDS = ["records", "clubs", "lessons", "books", "trips", "festivals", "shops", "classes",
          "videos", "podcasts", *_PSEUDO[400:440]]  # fmt: skip
#: What a user might say to the bot: the memory search's query (its words, less stop words:
#: sister ~1% of the facts, pottery ~0.3%, classes ~2%, Greta 0.2%).
SEARCH_QUERY = "does my sister still go to the pottery classes with Greta?"


def memory_facts(count: int, seed: int = 11) -> list[str]:
    """Short facts as extraction writes them, from a vocabulary of ~1,000 words: a name is
    in 0.2% of them, a thing 1%, a hobby 0.3%, a kind (classes, clubs…) 2%."""
    rng = random.Random(seed)
    return [
        f"{rng.choice(_NAMES)}'s {rng.choice(_THINGS)} {rng.choice(_VERBS)}"
        f" {rng.choice(_HOBBIES)} {rng.choice(_KINDS)} since {1970 + i % 55}"
        for i in range(count)
    ]


def query_matches(facts: list[str]) -> int:
    """How many facts hold at least one of the search's words (what ranking must score)."""
    words = set(search_terms(SEARCH_QUERY))
    return sum(1 for f in facts if words & set(search_terms(f)))


class MemoryReaders:
    """M1 and M2 on one backend: boternity and the raw driver, the same statements."""

    def __init__(self, data: Any, floor: Any, ours: BoternityReader) -> None:
        self.data, self.floor, self.ours = data, floor, ours
        dialect = POSTGRES if data.backend == "postgres" else SQLITE
        self.memories_sql = dialect.sql.get_memories
        self.search_sql = dialect.sql.search
        self.search_text = dialect.search_text(search_terms(SEARCH_QUERY), False)
        self.bot: Any = data.memory_bot if data.backend == "postgres" else str(data.memory_bot)

    async def floor_memories(self) -> int:
        # bot, include superseded, user (None: the bot's own memories), limit
        return len(await self._floor_query(self.memories_sql, (self.bot, False, None, 50)))

    async def ours_memories(self) -> int:
        return len(await self.ours.store.memory.get_memories(self.data.memory_bot, limit=50))

    async def floor_search(self) -> int:
        # bot, query, include superseded, limit, every user, user (None: the bot's own)
        params = (self.bot, self.search_text, False, 10, False, None)
        return len(await self._floor_query(self.search_sql, params))

    async def ours_search(self) -> int:
        return len(await self.ours.store.memory.search_memories(self.data.memory_bot, SEARCH_QUERY))

    async def _floor_query(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        result = self.floor.query(sql, params)
        return list(await result) if asyncio.iscoroutine(result) else result
