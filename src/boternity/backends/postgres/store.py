"""Opening a PostgreSQL store: pools, migrations under an advisory lock."""

from __future__ import annotations

import functools
from typing import Any, Literal

import asyncpg

from boternity.backends.core import BotCore, IdsCore, MemoryCore, UserCore
from boternity.backends.migrations import load_migrations, pending_migrations
from boternity.backends.postgres.dialect import POSTGRES, PostgresChat
from boternity.backends.postgres.errors import DRIVER_ERRORS, translate
from boternity.backends.postgres.locks import PgSessionLocks
from boternity.backends.postgres.maintenance import PostgresMaintenance
from boternity.backends.postgres.pool import ACQUIRE_TIMEOUT, Conn, Connections, Database
from boternity.errors import RepositoryError, SchemaError, ValidationError
from boternity.ids import utc_now
from boternity.redact import redact_text, redact_url, url_secrets

Durability = Literal["normal", "full"]

MIGRATIONS_PACKAGE = "boternity.backends.postgres.migrations"
#: pg_advisory_xact_lock key held while migrating ("boternit" in ASCII); advisory locks are
#: per database, so this only serialises openers of the same database.
MIGRATION_LOCK = 0x626F7465726E6974

_LOCK = "SELECT pg_advisory_xact_lock($1)"
_CREATE_LEDGER = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
    " name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL)"
)
_APPLIED = "SELECT version, checksum FROM schema_migrations"
_RECORD = (
    "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)"
)
_LEDGER_EXISTS = "SELECT to_regclass('schema_migrations') IS NOT NULL"


async def migrate(conn: Conn, *, where: str) -> int:
    """Apply pending migrations, each with its record in one transaction, under an advisory
    lock, so concurrent first opens (any number of processes) run each step exactly once.
    Returns the schema version."""
    available = load_migrations(MIGRATIONS_PACKAGE)
    while True:
        async with conn.transaction():
            await conn.execute(_LOCK, MIGRATION_LOCK)
            # CREATE ... IF NOT EXISTS still takes a lock and logs a notice; skip it once done.
            if not await conn.fetchval(_LEDGER_EXISTS):
                await conn.execute(_CREATE_LEDGER)
            applied = {int(v): str(c) for v, c in await conn.fetch(_APPLIED)}
            todo = pending_migrations(available, applied, where=where)
            if not todo:
                return len(available)
            step = todo[0]
            # No arguments: the simple query protocol runs the whole file, inside this
            # transaction, so a failing step leaves nothing behind.
            try:
                await conn.execute(step.sql)
            except asyncpg.PostgresError as exc:
                raise SchemaError(
                    f"{where}: migration {step.version:04d}_{step.name} failed and was rolled"
                    f" back: {exc}"
                ) from exc
            await conn.execute(_RECORD, step.version, step.name, step.checksum, utc_now())


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

    def __init__(
        self,
        url: str,
        *,
        pool_size: int,
        read_url: str | None,
        durability: Durability,
        acquire_timeout: float = ACQUIRE_TIMEOUT,
    ) -> None:
        if durability not in ("normal", "full"):
            raise ValidationError(f"durability must be 'normal' or 'full', got {durability!r}")
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1:
            raise ValidationError(f"pool_size must be an int >= 1, got {pool_size!r}")
        if read_url is not None and not isinstance(read_url, str):
            raise ValidationError(f"read_url must be a str or None, got {type(read_url).__name__}")
        if (
            isinstance(acquire_timeout, bool)
            or not isinstance(acquire_timeout, int | float)
            or not acquire_timeout >= 0
        ):
            raise ValidationError(f"busy_wait must be a number >= 0, got {acquire_timeout!r}")
        self.url = url
        self.acquire_timeout = float(acquire_timeout)
        self.read_url = read_url
        self.durability = durability
        self.pool_size = pool_size
        self.schema_version = 0
        self._db: Database | None = None

    @property
    def db(self) -> Database:
        if self._db is None:
            raise RepositoryError("the store is not open")
        return self._db

    async def open(self) -> None:
        where = redact_url(self.url)
        pool = functools.partial(
            _connections, size=self.pool_size, durability=self.durability,
            acquire_timeout=self.acquire_timeout,
        )  # fmt: skip
        primary = await pool(self.url, role="primary")
        replica = None
        try:
            async with primary.acquire() as conn:
                self.schema_version = await migrate(conn, where=where)
            if self.read_url is not None:
                replica = await pool(self.read_url, role="read")
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
