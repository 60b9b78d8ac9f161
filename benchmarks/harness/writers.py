"""Systems that append messages (W1, W2, C1): the floors, boternity and the peers.

Each keeps its connections open for the whole run; ``sessions(k)`` gives k fresh sessions,
``append(session, i)`` stores one message and returns once the system says it is stored,
and ``run`` appends to several sessions at once the way that system's users would.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

from boternity import open_store
from boternity.ids import new_id, utc_now
from boternity.models import Bot, ChatMessage, ChatSession, MessageRole
from harness.common import CONTENT, METADATA, run_sync

SYNC_NAMES = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}

#: The floor's table: shaped like chat_messages (same columns, keys and UNIQUE).
FLOOR_TABLE = (
    "CREATE TABLE floor_messages (id TEXT PRIMARY KEY, session_id TEXT NOT NULL,"
    " seq INTEGER NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL, created_at TEXT NOT NULL,"
    " input_tokens INTEGER, output_tokens INTEGER, model TEXT, stop_reason TEXT,"
    " response_ms INTEGER, metadata TEXT, UNIQUE (session_id, seq))"
)
FLOOR_INSERT = (
    "INSERT INTO floor_messages (id, session_id, seq, role, content, created_at, input_tokens,"
    " output_tokens, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
PG_FLOOR_TABLE = (
    "CREATE TABLE floor_messages (id uuid PRIMARY KEY, session_id uuid NOT NULL,"
    " seq bigint NOT NULL, role text NOT NULL, content text NOT NULL,"
    " created_at timestamptz NOT NULL, input_tokens bigint, output_tokens bigint,"
    " model text, stop_reason text, response_ms bigint, metadata json,"
    " UNIQUE (session_id, seq))"
)
PG_FLOOR_INSERT = (
    "INSERT INTO floor_messages (id, session_id, seq, role, content, created_at, input_tokens,"
    " output_tokens, metadata) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
)
_META = json.dumps(METADATA)


def sqlite_pragmas(conn: Any) -> dict[str, str]:
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    sync = conn.execute("PRAGMA synchronous").fetchone()[0]
    return {"journal_mode": str(mode).upper(), "synchronous": SYNC_NAMES.get(sync, str(sync))}


def role(i: int) -> MessageRole:
    return MessageRole.USER if i % 2 == 0 else MessageRole.ASSISTANT


def sdk_item(i: int) -> Any:
    return {"role": role(i).value, "content": f"{i} {CONTENT}"}


def lc_message(i: int) -> Any:
    from langchain_core.messages import AIMessage, HumanMessage

    text = f"{i} {CONTENT}"
    return HumanMessage(content=text) if i % 2 == 0 else AIMessage(content=text)


class Appender:
    label = ""
    group = "peer"  # floor | boternity | peer
    backend = "sqlite"
    #: Messages this system appends, as a share of the workload's count (slow peers append
    #: fewer: a rate needs no more, and the run stays short).
    scale = 1.0
    pragmas: dict[str, str]

    def __init__(self) -> None:
        self.pragmas = {}
        self._names = itertools.count()

    async def open(self, work: Path) -> None: ...

    async def sessions(self, k: int) -> list[Any]:
        raise NotImplementedError

    async def append(self, session: Any, i: int) -> None:
        raise NotImplementedError

    async def run(self, sessions: list[Any], per_session: int) -> None:
        """Every session appends ``per_session`` messages, all sessions at once."""

        async def one(s: Any) -> None:
            for i in range(per_session):
                await self.append(s, i)

        await asyncio.gather(*(one(s) for s in sessions))

    async def close(self) -> None: ...

    def server_pids(self) -> list[int]:
        """The database server processes serving this system (PostgreSQL backends)."""
        return []


class RawSqlite(Appender):
    """The floor: sqlite3, WAL, one INSERT per transaction, one connection."""

    group = "floor"

    def __init__(self, synchronous: str) -> None:
        super().__init__()
        self.synchronous = synchronous
        self.durability = synchronous.lower()
        self.label = f"sqlite3 floor ({synchronous})"

    async def open(self, work: Path) -> None:
        self.conn = sqlite3.connect(work / f"floor-{self.durability}.db", isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        self.conn.execute(FLOOR_TABLE)
        self.pragmas = sqlite_pragmas(self.conn)

    async def sessions(self, k: int) -> list[Any]:
        return [[str(uuid.uuid4()), 0] for _ in range(k)]

    async def append(self, session: Any, i: int) -> None:
        session[1] += 1
        conn = self.conn
        conn.execute("BEGIN")
        conn.execute(
            FLOOR_INSERT,
            (str(new_id()), session[0], session[1], role(i).value, CONTENT,
             utc_now().isoformat(), 10, 20, _META),
        )  # fmt: skip
        conn.execute("COMMIT")

    async def close(self) -> None:
        self.conn.close()


class AioSqlite(Appender):
    """aiosqlite with the floor's SQL and pragmas: one connection shared by every task, each
    INSERT its own transaction (autocommit)."""

    label = "aiosqlite (floor's SQL)"
    durability = "normal"

    async def open(self, work: Path) -> None:
        import aiosqlite

        self.conn = await aiosqlite.connect(work / "aiosqlite.db", isolation_level=None)
        await self.conn.execute("PRAGMA journal_mode = WAL")
        await self.conn.execute("PRAGMA synchronous = NORMAL")
        await self.conn.execute(FLOOR_TABLE)
        mode = await (await self.conn.execute("PRAGMA journal_mode")).fetchone()
        sync = await (await self.conn.execute("PRAGMA synchronous")).fetchone()
        assert mode is not None and sync is not None
        self.pragmas = {"journal_mode": str(mode[0]).upper(), "synchronous": SYNC_NAMES[sync[0]]}

    async def sessions(self, k: int) -> list[Any]:
        return [[str(uuid.uuid4()), 0] for _ in range(k)]

    async def append(self, session: Any, i: int) -> None:
        session[1] += 1
        await self.conn.execute(
            FLOOR_INSERT,
            (str(new_id()), session[0], session[1], role(i).value, CONTENT,
             utc_now().isoformat(), 10, 20, _META),
        )  # fmt: skip

    async def close(self) -> None:
        await self.conn.close()


class Boternity(Appender):
    """``store.chat.save_message`` on SQLite (normal or full) or PostgreSQL."""

    group = "boternity"

    def __init__(self, target: str | Path, durability: str = "normal") -> None:
        super().__init__()
        self.target = target
        self.durability = durability
        self.backend = "postgres" if str(target).startswith("postgresql") else "sqlite"
        name = "PostgreSQL" if self.backend == "postgres" else f"SQLite {durability}"
        self.label = f"boternity {name}"

    async def open(self, work: Path) -> None:
        self._stack = contextlib.AsyncExitStack()
        target = self.target if self.backend == "postgres" else work / str(self.target)
        self.store = await self._stack.enter_async_context(
            open_store(target, durability=self.durability, pool_size=20)  # type: ignore[arg-type]
        )
        self.bot = await self.store.bots.create_bot(Bot(name=f"bench {uuid.uuid4().hex[:6]}"))
        if self.backend == "sqlite":
            conn = sqlite3.connect(work / str(self.target))
            self.pragmas = sqlite_pragmas(conn)
            self.pragmas["synchronous"] = self.durability.upper()  # per connection: the store's
            conn.close()
        else:
            self.pragmas = {"synchronous_commit": "on"}

    async def sessions(self, k: int) -> list[Any]:
        return [
            (await self.store.chat.create_session(ChatSession(bot_id=self.bot.id, model="m"))).id
            for _ in range(k)
        ]

    async def append(self, session: Any, i: int) -> None:
        await self.store.chat.save_message(
            ChatMessage(
                session_id=session, role=role(i), content=CONTENT, input_tokens=10,
                output_tokens=20, metadata=METADATA,
            )
        )  # fmt: skip

    async def close(self) -> None:
        await self._stack.aclose()

    def server_pids(self) -> list[int]:
        if self.backend != "postgres":
            return []
        pool = self.store._db.primary  # type: ignore[attr-defined]  # a peek, for figures
        return [c.get_server_pid() for c in pool._idle]


class OwnedBoternity(Boternity):
    """As the chat engine writes: ``SessionLock.still_held()`` before each save_message."""

    async def open(self, work: Path) -> None:
        await super().open(work)
        self.locks = self.store.session_locks()
        self.label += " + ownership check"
        self._held: dict[Any, Any] = {}

    async def sessions(self, k: int) -> list[Any]:
        ids = await super().sessions(k)
        for s in ids:
            self._held[s] = await self.locks.try_acquire(s)
        return ids

    async def append(self, session: Any, i: int) -> None:
        assert await self._held[session].still_held()
        await super().append(session, i)

    async def close(self) -> None:
        for lock in self._held.values():
            await lock.release()
        await self.locks.aclose()
        await super().close()


class RawAsyncpg(Appender):
    """The PostgreSQL floor: raw asyncpg, one connection per writer, one INSERT per
    transaction (autocommit)."""

    group = "floor"
    backend = "postgres"
    label = "asyncpg floor"
    durability = "pg"

    def __init__(self, url: str, connections: int = 16) -> None:
        super().__init__()
        self.url = url
        self.count = connections

    async def open(self, work: Path) -> None:
        import asyncpg

        self.conns = [await asyncpg.connect(self.url) for _ in range(self.count)]
        await self.conns[0].execute(PG_FLOOR_TABLE)
        self.pragmas = {
            "synchronous_commit": await self.conns[0].fetchval("SHOW synchronous_commit")
        }

    async def sessions(self, k: int) -> list[Any]:
        return [[self.conns[n], new_id(), 0] for n in range(k)]

    async def append(self, session: Any, i: int) -> None:
        session[2] += 1
        await session[0].execute(
            PG_FLOOR_INSERT, new_id(), session[1], session[2], role(i).value, CONTENT,
            utc_now(), 10, 20, _META,
        )  # fmt: skip

    async def close(self) -> None:
        for c in self.conns:
            await c.close()

    def server_pids(self) -> list[int]:
        return [c.get_server_pid() for c in self.conns]


class SdkSqlite(Appender):
    """OpenAI Agents SDK ``SQLiteSession`` (a file): ``add_items([item])``."""

    label = "Agents SDK SQLiteSession"
    durability = "full"

    async def open(self, work: Path) -> None:
        self.path = work / "sdk.db"
        self.open_sessions: list[Any] = []

    async def sessions(self, k: int) -> list[Any]:
        from agents import SQLiteSession

        made = [SQLiteSession(f"w{next(self._names)}", self.path) for _ in range(k)]
        self.open_sessions += made
        if not self.pragmas:
            self.pragmas = sqlite_pragmas(made[0]._get_connection())
        return made

    async def append(self, session: Any, i: int) -> None:
        await session.add_items([sdk_item(i)])

    async def close(self) -> None:
        for s in self.open_sessions:
            s.close()


class SdkSqlAlchemy(Appender):
    """OpenAI Agents SDK ``SQLAlchemySession`` on SQLite through aiosqlite."""

    label = "Agents SDK SQLAlchemySession"
    durability = "full"
    scale = 0.25

    async def open(self, work: Path) -> None:
        from sqlalchemy.ext.asyncio import create_async_engine

        self.engine = create_async_engine(f"sqlite+aiosqlite:///{work / 'sqla.db'}")

    async def sessions(self, k: int) -> list[Any]:
        from agents.extensions.memory.sqlalchemy_session import SQLAlchemySession

        made = [
            SQLAlchemySession(f"w{next(self._names)}", engine=self.engine, create_tables=True)
            for _ in range(k)
        ]
        if not self.pragmas:
            await made[0].get_items()  # creates the tables, configures the connection
            async with self.engine.connect() as conn:
                mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
                sync = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar()
            self.pragmas = {"journal_mode": str(mode).upper(), "synchronous": SYNC_NAMES[sync]}
        return made

    async def append(self, session: Any, i: int) -> None:
        await session.add_items([sdk_item(i)])

    async def close(self) -> None:
        await self.engine.dispose()


class LangChainSql(Appender):
    """langchain-community ``SQLChatMessageHistory`` on a SQLite file, its synchronous API
    (``add_messages([message])``); several sessions at once run on threads."""

    label = "LangChain SQLChatMessageHistory"
    durability = "full"
    scale = 0.25

    async def open(self, work: Path) -> None:
        self.url = f"sqlite:///{work / 'lc.db'}"

    async def sessions(self, k: int) -> list[Any]:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from langchain_community.chat_message_histories import SQLChatMessageHistory

        made = [
            SQLChatMessageHistory(f"w{next(self._names)}", connection=self.url) for _ in range(k)
        ]
        if not self.pragmas:
            with made[0].engine.connect() as conn:
                self.pragmas = sqlite_pragmas(conn.connection.dbapi_connection)
        return made

    async def append(self, session: Any, i: int) -> None:
        await run_sync(lambda: session.add_messages([lc_message(i)]))

    async def run(self, sessions: list[Any], per_session: int) -> None:
        def one(s: Any) -> None:
            for i in range(per_session):
                s.add_messages([lc_message(i)])

        if len(sessions) == 1:
            one(sessions[0])
        else:
            await asyncio.gather(*(asyncio.to_thread(one, s) for s in sessions))


class BoternitySdkAdapter(Boternity):
    """boternity through its Agents SDK adapter (``BoternitySession.add_items``), SQLite."""

    group = "boternity"

    def __init__(self, target: str | Path) -> None:
        super().__init__(target)
        self.label = "boternity SQLite normal, Agents SDK adapter"

    async def sessions(self, k: int) -> list[Any]:
        from boternity.integrations.openai_agents import BoternitySession

        made = [
            BoternitySession(f"w{next(self._names)}", store=self.store, bot=self.bot.id)
            for _ in range(k)
        ]
        for s in made:
            await s.add_items([sdk_item(-1)])  # the session exists before timing starts
        return made

    async def append(self, session: Any, i: int) -> None:
        await session.add_items([sdk_item(i)])
