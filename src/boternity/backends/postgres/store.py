"""Opening a PostgreSQL store: pools, migrations under an advisory lock."""

from __future__ import annotations

import functools
from typing import Any, Literal

import asyncpg

from boternity.backends.postgres.dialect import POSTGRES, PostgresChat
from boternity.backends.postgres.errors import DRIVER_ERRORS, translate
from boternity.backends.postgres.locks import PgSessionLocks
from boternity.backends.postgres.maintenance import PostgresMaintenance
from boternity.backends.postgres.pool import Conn, Connections, Database, drive
from boternity.errors import RepositoryError
from boternity.redact import redact_text, redact_url, url_secrets
from boternity.repositories import StoreOptions
from boternity.storage import BotCore, IdsCore, MemoryCore, UserCore
from boternity.storage.migrations import Migrator, load_migrations

Durability = Literal["normal", "full"]

MIGRATIONS_PACKAGE = "boternity.backends.postgres.migrations"


async def migrate(conn: Conn, *, where: str) -> int:
    """Apply pending migrations (see Migrator), each in one transaction under an advisory
    lock. A script runs whole (no arguments: the simple query protocol), inside that
    transaction, so a failing one leaves nothing behind. Returns the schema version."""
    m = Migrator(load_migrations(MIGRATIONS_PACKAGE), POSTGRES, where=where)
    version = await drive(conn, m.check)
    while version is None:
        try:
            async with conn.transaction():
                version = await drive(conn, m.step)
        except asyncpg.PostgresError as exc:
            m.blame(exc)
            raise
    return version


async def _connections(
    url: str, *, size: int, durability: Durability, role: str, acquire_timeout: float
) -> Connections:
    """A pool for ``url`` with its first connection open, so a bad URL fails here."""
    settings = {"application_name": f"boternity-{role}"}
    if durability == "full":
        # Even if the server was configured for asynchronous commit, boternity's commits
        # wait for the WAL flush.
        settings["synchronous_commit"] = "on"

    async def connect() -> Any:
        return await asyncpg.connect(url, server_settings=settings)

    pool = Connections(connect, size, acquire_timeout=acquire_timeout)
    try:
        pool.put(await pool.get())
    except DRIVER_ERRORS as exc:
        error = translate(exc)
        detail = redact_text(str(exc), url_secrets(url))
        raise type(error)(f"cannot open PostgreSQL database {redact_url(url)}: {detail}") from exc
    return pool


class PostgresStore:
    """The pools of one PostgreSQL database (and optionally its read replica)."""

    backend = "postgresql"

    def __init__(self, url: str, options: StoreOptions) -> None:
        self.url = url
        self.options = options
        self.schema_version = 0
        self._db: Database | None = None

    @property
    def db(self) -> Database:
        if self._db is None:
            raise RepositoryError("the store is not open")
        return self._db

    async def open(self) -> None:
        where, o = redact_url(self.url), self.options
        pool = functools.partial(
            _connections, size=o.pool_size, durability=o.durability,
            acquire_timeout=float(o.busy_wait),
        )  # fmt: skip
        primary = await pool(self.url, role="primary")
        replica = None
        try:
            async with primary.acquire() as conn:
                self.schema_version = await migrate(conn, where=where)
            if o.read_url is not None:
                replica = await pool(o.read_url, role="read")
        except DRIVER_ERRORS as exc:
            await Database(primary).close()
            raise translate(exc) from exc
        except BaseException:
            await Database(primary).close()
            raise
        self._db = Database(primary, replica)
        self.bots = BotCore(self._db, POSTGRES)
        self.chat = PostgresChat(self._db, POSTGRES)
        self.memory = MemoryCore(self._db, POSTGRES)
        self.users = UserCore(self._db, POSTGRES)
        self.ids = IdsCore(self._db, POSTGRES)
        self.maintenance = PostgresMaintenance(self._db)

    def session_locks(self) -> PgSessionLocks:
        """Advisory locks on a dedicated connection (opened on first use)."""
        return PgSessionLocks(self.url)

    async def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            await db.close()
