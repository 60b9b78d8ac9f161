"""Opening a SQLite store: file permissions, connections, migrations."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
import urllib.parse
from pathlib import Path

from boternity.backends.core import BotCore, ChatCore, IdsCore, MemoryCore, UserCore
from boternity.backends.migrations import load_migrations, pending_migrations
from boternity.backends.sqlite.dialect import SQLITE, ts
from boternity.backends.sqlite.errors import translate
from boternity.backends.sqlite.locks import FileSessionLocks
from boternity.backends.sqlite.maintenance import SqliteMaintenance
from boternity.backends.sqlite.pool import (
    Durability,
    Readers,
    SqliteExecutor,
    Worker,
    Writer,
    configure,
    retry_busy,
)
from boternity.errors import RepositoryError, SchemaError, ValidationError
from boternity.ids import utc_now
from boternity.repositories import (
    BotRepository,
    ChatRepository,
    IdIndex,
    Maintenance,
    MemoryRepository,
    SessionLocks,
    UserRepository,
)

BUSY_TIMEOUT_MS = 5_000


def make_private_dirs(folder: Path) -> None:
    """Create ``folder`` and every missing parent 0700 (``Path.mkdir(parents=True)`` would
    give the parents the default mode, readable by everyone)."""
    missing: list[Path] = []
    while not folder.exists():
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    for each in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            each.mkdir(mode=0o700)


def _create_database(path: Path, *, busy_wait: float) -> None:
    """Make a new database file whole or not at all.

    The schema is built in an owner-only (0600) temporary file next to the target, then
    hard-linked into place, which fails if another process got there first. A failure (a
    full disk, say) leaves neither a 0-byte nor a half-migrated database behind. The target
    is the resolved path, so a dangling symlink's target is created 0600 too. SQLite gives
    its -wal and -shm files the database file's permissions.
    """
    target = Path(os.path.realpath(path))
    if target.exists():
        return
    make_private_dirs(target.parent)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".new", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            configure(conn, busy_timeout_ms=BUSY_TIMEOUT_MS)
            # Nobody else can see this file: no journal on disk, one fsync at the end.
            conn.execute("PRAGMA journal_mode = MEMORY").fetchone()
            conn.execute("PRAGMA synchronous = OFF")
            migrate(conn, where=str(path), busy_wait=busy_wait)
        finally:
            conn.close()
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, target)
        except FileExistsError:
            pass  # another process created it first: use theirs
        except OSError:
            # No hard links here (some network or FAT file systems): let SQLite create it
            # in place, 0600 from the start.
            with contextlib.suppress(FileExistsError):
                os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except sqlite3.Error as exc:
        raise RepositoryError(f"cannot create SQLite database {path}: {exc}") from exc
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + "-journal")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def _applied(conn: sqlite3.Connection) -> dict[int, str]:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
        " name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    return _recorded(conn)


def _recorded(conn: sqlite3.Connection) -> dict[int, str]:
    """What ``schema_migrations`` records, read without a write lock ({} before the first)."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    ).fetchone()
    if exists is None:
        return {}
    return {v: c for v, c in conn.execute("SELECT version, checksum FROM schema_migrations")}


def _statements(sql: str) -> list[str]:
    """Split on complete statements (sqlite3.complete_statement keeps trigger bodies whole)."""
    out: list[str] = []
    buffer = ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                out.append(buffer.strip())
            buffer = ""
    if buffer.split("--")[0].strip():
        raise SchemaError(f"migration ends with an incomplete statement: {buffer.strip()[:80]!r}")
    return out


def migrate(conn: sqlite3.Connection, *, where: str, busy_wait: float) -> int:
    """Apply pending migrations, each with its record in one BEGIN IMMEDIATE transaction.

    The write lock is taken only when a migration is due. Concurrent openers serialise on
    it and re-read what is applied inside it, so each step runs exactly once. Returns the
    schema version.
    """
    available = load_migrations("boternity.backends.sqlite.migrations")
    # Read first, without the write lock: a read-only command must not wait for another
    # process's write transaction just to learn that nothing is due.
    recorded = retry_busy(lambda: _recorded(conn), wait=busy_wait, what="migrate")
    if not pending_migrations(available, recorded, where=where):
        return len(available)
    while True:
        retry_busy(lambda: conn.execute("BEGIN IMMEDIATE"), wait=busy_wait, what="migrate")
        try:
            todo = pending_migrations(available, _applied(conn), where=where)
            if not todo:
                conn.execute("COMMIT")
                return len(available)
            step = todo[0]
            for statement in _statements(step.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum, applied_at)"
                " VALUES (?, ?, ?, ?)",
                (step.version, step.name, step.checksum, ts(utc_now())),
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


class SqliteStore:
    """The open connections of one SQLite database file."""

    backend = "sqlite"

    def __init__(self, path: Path, *, durability: Durability, readers: int, busy_wait: float):
        if durability not in ("normal", "full"):
            raise ValidationError(f"durability must be 'normal' or 'full', got {durability!r}")
        if isinstance(readers, bool) or not isinstance(readers, int) or readers < 1:
            raise ValidationError(f"readers must be an int >= 1, got {readers!r}")
        self.path = path
        self.durability = durability
        self.schema_version = 0
        self._busy_wait = busy_wait
        self._writer_worker = Worker("boternity-sqlite-w")
        self._reader_workers = [Worker(f"boternity-sqlite-r{i}") for i in range(readers)]
        self.writer = Writer(self._writer_worker, busy_wait=busy_wait)
        self.readers = Readers(self._reader_workers, busy_wait=busy_wait)
        # Typed as the contract: Store's attributes are mutable, so mypy wants the same types.
        executor = SqliteExecutor(self.writer, self.readers)
        self.bots: BotRepository = BotCore(executor, SQLITE)
        self.chat: ChatRepository = ChatCore(executor, SQLITE)
        self.memory: MemoryRepository = MemoryCore(executor, SQLITE)
        self.users: UserRepository = UserCore(executor, SQLITE)
        self.ids: IdIndex = IdsCore(executor, SQLITE)
        self.maintenance: Maintenance = SqliteMaintenance(path, self.readers)

    def session_locks(self) -> SessionLocks:
        """``flock`` files in ``<real path of the database>.sessions/``."""
        return FileSessionLocks.for_database(self.path)

    def _connect_writer(self) -> sqlite3.Connection:
        try:
            _create_database(self.path, busy_wait=self._busy_wait)
        except OSError as exc:
            raise RepositoryError(f"cannot create SQLite database {self.path}: {exc}") from exc
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        except sqlite3.Error as exc:
            raise RepositoryError(f"cannot open SQLite database {self.path}: {exc}") from exc
        try:
            configure(conn, busy_timeout_ms=BUSY_TIMEOUT_MS)
            mode = retry_busy(
                lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone()[0],
                wait=self._busy_wait,
                what="open",
            )
            if str(mode).lower() != "wal":
                raise RepositoryError(f"{self.path}: could not switch to WAL (got {mode!r})")
            conn.execute(f"PRAGMA synchronous = {self.durability.upper()}")
            self.schema_version = migrate(conn, where=str(self.path), busy_wait=self._busy_wait)
        except sqlite3.Error as exc:
            conn.close()
            raise translate(exc) from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _connect_reader(self) -> sqlite3.Connection:
        uri = f"file:{urllib.parse.quote(str(self.path.resolve()))}?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=True)
        except sqlite3.Error as exc:
            raise RepositoryError(f"cannot open SQLite database {self.path}: {exc}") from exc
        try:
            configure(conn, busy_timeout_ms=BUSY_TIMEOUT_MS)
        except sqlite3.Error as exc:
            conn.close()
            raise translate(exc) from exc
        return conn

    async def open(self) -> None:
        try:
            await self._writer_worker.open(self._connect_writer)
            for worker in self._reader_workers:
                await worker.open(self._connect_reader)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Finish queued writes, then close readers before the writer (the last connection
        to close checkpoints the WAL)."""
        await self.writer.idle()
        await self.readers.close()
        await self._writer_worker.close()
