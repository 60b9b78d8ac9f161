"""Opening a SQLite store: file permissions, connections, migrations."""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import tempfile
from pathlib import Path

from boternity.backends.sqlite import pool as _pool
from boternity.backends.sqlite.dialect import SQLITE
from boternity.backends.sqlite.errors import translate
from boternity.backends.sqlite.locks import FileSessionLocks
from boternity.backends.sqlite.maintenance import SqliteMaintenance
from boternity.backends.sqlite.pool import (
    Checkpointer,
    Readers,
    SqliteExecutor,
    Worker,
    Writer,
    configure,
    connect_read_only,
    drive,
    retry_busy,
    write_now,
)
from boternity.errors import BoternityError, RepositoryError
from boternity.repositories import (
    BotRepository,
    ChatRepository,
    IdIndex,
    Maintenance,
    MemoryRepository,
    SessionLocks,
    StoreOptions,
    UserRepository,
)
from boternity.storage import BotCore, ChatCore, IdsCore, MemoryCore, UserCore
from boternity.storage.migrations import Migrator, load_migrations

BUSY_TIMEOUT_MS = 5_000
MIGRATIONS = "boternity.backends.sqlite.migrations"


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
    except (sqlite3.Error, RepositoryError) as exc:
        raise RepositoryError(f"cannot create SQLite database {path}: {exc}") from exc
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + "-journal")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def migrate(conn: sqlite3.Connection, *, where: str, busy_wait: float) -> int:
    """Apply pending migrations (see Migrator), each in one BEGIN IMMEDIATE transaction:
    concurrent openers serialise on the write lock, taken only when a migration is due.
    Returns the schema version."""
    m = Migrator(load_migrations(MIGRATIONS), SQLITE, where=where)
    version = retry_busy(lambda: drive(m.check, None, conn), wait=busy_wait, what="migrate")
    while version is None:
        try:
            version = write_now(conn, m.step, busy_wait)
        except BoternityError as exc:
            m.blame(exc)
            raise
    return version


class SqliteStore:
    """The open connections of one SQLite database file."""

    backend = "sqlite"

    def __init__(self, path: Path, options: StoreOptions):
        self.path = path
        self.durability = options.durability
        self.schema_version = 0
        self._busy_wait = busy_wait = options.busy_wait
        self._writer_worker = Worker("boternity-sqlite-w")
        self._checkpoint_worker = Worker("boternity-sqlite-c")
        self.checkpointer = Checkpointer(self._checkpoint_worker)
        self._reader_workers = [Worker(f"boternity-sqlite-r{i}") for i in range(options.readers)]
        self.writer = Writer(
            self._writer_worker,
            self.checkpointer,
            busy_wait=busy_wait,
            inline=self.durability == "normal",
            busy_timeout_ms=BUSY_TIMEOUT_MS,
        )
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
        return self._connect(read_only=False)

    def _connect(
        self, *, read_only: bool, busy_timeout_ms: int = BUSY_TIMEOUT_MS, writer: bool = True
    ) -> sqlite3.Connection:
        """A connection in autocommit mode (units open their own transactions), set up;
        the writer's (not read_only, writer) also switches to WAL and migrates the database.
        The checkpointer's is neither read-only nor the writer's."""
        try:
            # check_same_thread off: the loop thread uses the writer's connection while the
            # writer thread is idle (Writer.inline), and one reader's for bounded reads.
            if read_only:
                conn = connect_read_only(self.path, isolation_level=None, check_same_thread=False)
            else:
                conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise RepositoryError(f"cannot open SQLite database {self.path}: {exc}") from exc
        try:
            configure(conn, busy_timeout_ms=busy_timeout_ms)
            if not read_only and writer:
                self._set_up_writer(conn)
            else:
                # Open the WAL and its index now: a reader that is first used later (bounded
                # reads leave the reader threads idle for long) would open them then, one
                # more file descriptor appearing mid-life.
                retry_busy(
                    lambda: conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall(),
                    wait=self._busy_wait,
                    what="open",
                )
        except sqlite3.Error as exc:
            conn.close()
            raise translate(exc) from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _set_up_writer(self, conn: sqlite3.Connection) -> None:
        mode = retry_busy(
            lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone()[0],
            wait=self._busy_wait,
            what="open",
        )
        if str(mode).lower() != "wal":
            raise RepositoryError(f"{self.path}: could not switch to WAL (got {mode!r})")
        conn.execute(f"PRAGMA synchronous = {self.durability.upper()}")
        # A commit must not checkpoint (two fsyncs, on the loop thread at durability
        # normal): the Writer has the Checkpointer do it beside the writes instead.
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        conn.execute(f"PRAGMA journal_size_limit = {int(_pool.WAL_KEEP_BYTES)}")
        self.schema_version = migrate(conn, where=str(self.path), busy_wait=self._busy_wait)
        if self.writer.inline:
            # Nor wait for another process's lock on the loop thread: the writer thread does
            # (the Writer turns SQLite's busy wait on around the batches it runs).
            conn.execute("PRAGMA busy_timeout = 0")

    async def open(self) -> None:
        try:
            await self._writer_worker.open(self._connect_writer)
            await self._checkpoint_worker.open(
                functools.partial(self._connect, read_only=False, writer=False)
            )
            for worker in self._reader_workers:
                await worker.open(functools.partial(self._connect, read_only=True))
            # Bounded reads on the loop thread: never wait there for a lock (busy: a reader
            # thread takes the read, and waits).
            self.readers.loop_connection = self._connect(read_only=True, busy_timeout_ms=0)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Finish queued writes, then close the others before the writer (the last
        connection to close checkpoints the WAL)."""
        await self.writer.idle()
        await self.readers.close()
        await self.checkpointer.close()
        await self._writer_worker.close()
