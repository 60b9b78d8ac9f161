"""Who owns a live session, finding sessions whose owner died, and the extraction
high-water mark.

**Ownership.** A live session is held by its process through a :class:`SessionLock` that the
operating system (or the database server) releases by itself when the process dies. For
SQLite that is an ``flock`` on ``<db>.sessions/<session_id>.lock``. ``flock`` locks belong to
an open file description, so two engines in one process exclude each other too, and the
descriptor is close-on-exec, so child processes never inherit ownership. For PostgreSQL it is
a session-level advisory lock taken on one dedicated connection, which the server drops
when that connection ends (with its process).

A lock can also be lost while its holder lives: the lock file deleted or replaced, the lock
connection terminated (``pg_terminate_backend``, a server restart). The engine asks
``SessionLock.still_held()`` before each write to a session and stops writing (or takes the
lock back, when nobody else used the session meanwhile) instead of interleaving with a
process that took over. SQLite locks are named after the database's real path, so a symlink,
``..`` or relative path to one file shares its locks; a database file with several hard links
has no single name and is refused (SQLite itself keeps a separate WAL per name).

**Extraction high-water mark.** Queue jobs are deleted once done, so the mark ("messages
``1..mark`` are covered by some job") is persisted on the messages the engine writes:
every message carries ``metadata["extracted_through"]`` (the mark when it was saved), and the
reply that triggers a periodic job carries ``metadata["extraction_boundary"] = true`` (the
job ends at that message). The mark of a session is the newest message's bookkeeping (its
seq if it is a boundary, else its ``extracted_through``), or the highest ``messages_end`` of
its jobs still queued, whichever is larger. When a session ends (completed or crashed) its
final job covers everything, so a resumed session starts with ``mark = last seq``. Each write
happens *before* the job is queued (or the status changes before the final job is queued),
so a crash in between can leave a gap but never makes two jobs overlap.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from boternity.errors import ConflictError, RepositoryError
from boternity.models import ChatMessage, ChatSession, PendingExtraction, SessionStatus
from boternity.store import Store

__all__ = [
    "EXTRACTED_THROUGH",
    "EXTRACTION_BOUNDARY",
    "FileSessionLocks",
    "PgSessionLocks",
    "SessionBusyError",
    "SessionLock",
    "SessionLocks",
    "crash_session",
    "enqueue_extraction",
    "extraction_mark",
    "locks_for_store",
    "message_mark",
    "recover_crashed_sessions",
]

log = logging.getLogger(__name__)

EXTRACTED_THROUGH = "extracted_through"
EXTRACTION_BOUNDARY = "extraction_boundary"


class SessionBusyError(ConflictError):
    """The session is live in another process (or another engine of this one)."""


SessionBusyError.__module__ = "boternity.chat"


@runtime_checkable
class SessionLock(Protocol):
    """Ownership of one live session, released by itself if the holder dies."""

    @property
    def session_id(self) -> uuid.UUID: ...

    async def release(self) -> None:
        """Give up ownership (idempotent)."""
        ...

    async def still_held(self) -> bool:
        """False when ownership was lost behind the holder's back (the lock file removed or
        replaced, the lock connection gone). Asks the OS or the server, not a cached flag."""
        ...

    async def reacquire(self) -> bool:
        """After a loss: take the lock again if it is free (True), else False. The caller
        checks that nobody used the session meanwhile."""
        ...


@runtime_checkable
class SessionLocks(Protocol):
    """Where session ownership lives: :class:`FileSessionLocks` (SQLite) or
    :class:`PgSessionLocks` (PostgreSQL)."""

    async def try_acquire(self, session_id: uuid.UUID) -> SessionLock | None:
        """The lock, or None when another holder has it (in any process, this one included).
        Never waits."""
        ...

    async def aclose(self) -> None:
        """Release everything still held and free resources (idempotent)."""
        ...


class FileSessionLock:
    def __init__(
        self, session_id: uuid.UUID, path: Path, fd: int, owner: FileSessionLocks | None = None
    ) -> None:
        self._session_id = session_id
        self._path = path
        self._fd: int | None = fd
        self._owner = owner

    @property
    def session_id(self) -> uuid.UUID:
        return self._session_id

    @property
    def held(self) -> bool:
        return self._fd is not None

    def _is_current(self) -> bool:
        """True while the file at the lock's path is the one this lock holds."""
        if self._fd is None:
            return False
        try:
            current = os.stat(self._path)
        except FileNotFoundError:
            return False
        mine = os.fstat(self._fd)
        return (current.st_ino, current.st_dev) == (mine.st_ino, mine.st_dev)

    async def still_held(self) -> bool:
        return self._is_current()

    async def reacquire(self) -> bool:
        if self._is_current():
            return True
        if self._owner is None:
            return False
        self._drop(unlink=False)  # the path is no longer ours: leave whatever is there
        try:
            fresh = self._owner._try_acquire(self._session_id)
        except OSError as exc:  # e.g. the lock folder cannot be created any more
            raise RepositoryError(f"taking the session lock back: {exc}") from exc
        if fresh is None:
            return False
        # Adopt the new file and descriptor.
        self._owner._held.discard(fresh)
        self._fd, fresh._fd = fresh._fd, None
        self._owner._held.add(self)
        return True

    async def release(self) -> None:
        # Unlink while still holding the lock: a process that opened the old file locks an
        # orphan inode, notices (try_acquire compares inodes) and retries on a fresh file.
        # A file that is not ours any more (replaced behind our back) is left alone.
        self._drop(unlink=self._is_current())

    def _drop(self, *, unlink: bool) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if self._owner is not None:
            self._owner._held.discard(self)
        try:
            if unlink:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._path)
        finally:
            os.close(fd)

    def __repr__(self) -> str:
        return f"FileSessionLock({self._session_id}, held={self.held})"


class FileSessionLocks:
    """``flock`` on one file per session in ``directory`` (created 0700, files 0600).

    ``database``, when given, is the file the locks guard: it is refused while it has more
    than one hard link, since each name would get its own lock folder.
    """

    def __init__(
        self, directory: str | os.PathLike[str], *, database: str | os.PathLike[str] | None = None
    ) -> None:
        self.directory = Path(directory)
        self.database = None if database is None else Path(database)
        self._held: set[FileSessionLock] = set()

    @classmethod
    def for_database(cls, path: str | os.PathLike[str]) -> FileSessionLocks:
        """The locks of the SQLite database at ``path``, named after its real path, so every
        way of reaching the file (symlink, ``..``, relative) shares them."""
        real = os.path.realpath(os.fspath(path))
        locks = cls(Path(f"{real}.sessions"), database=real)
        locks._check_database()
        return locks

    def _check_database(self) -> None:
        if self.database is None:
            return
        try:
            links = os.stat(self.database).st_nlink
        except FileNotFoundError:
            return
        if links > 1:
            # SQLite keeps a WAL per name too: through another name the live writes are not
            # even visible.
            raise RepositoryError(
                f"{self.database} has {links} hard links: chat sessions need the database file"
                " to have one name (remove the other links, or copy the file)"
            )

    def path_for(self, session_id: uuid.UUID) -> Path:
        return self.directory / f"{session_id}.lock"

    async def try_acquire(self, session_id: uuid.UUID) -> FileSessionLock | None:
        # Every call below is non-blocking (LOCK_NB), so running them on the loop is fine.
        return self._try_acquire(session_id)

    def _try_acquire(self, session_id: uuid.UUID) -> FileSessionLock | None:
        self._check_database()
        path = self.path_for(session_id)
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise self._unusable(exc) from exc
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                raise self._unusable(exc) from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            except BaseException:
                os.close(fd)
                raise
            try:
                current = os.stat(path)
            except FileNotFoundError:
                current = None
            mine = os.fstat(fd)
            if current is None or (current.st_ino, current.st_dev) != (mine.st_ino, mine.st_dev):
                os.close(fd)  # the previous holder unlinked it after we opened it
                continue
            # For humans looking at the folder; the lock itself is what counts.
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            lock = FileSessionLock(session_id, path, fd, self)
            self._held.add(lock)
            return lock

    def _unusable(self, exc: OSError) -> RepositoryError:
        """A lock folder we cannot use (unwritable, a file in its place): say which, plainly."""
        return RepositoryError(
            f"cannot create session lock files in {self.directory}:"
            f" {exc.strerror or exc} (it must be a folder this user can write)"
        )

    async def aclose(self) -> None:
        for lock in list(self._held):
            await lock.release()

    def __repr__(self) -> str:
        return f"FileSessionLocks({str(self.directory)!r})"


_PG_TRY_LOCK = "SELECT pg_try_advisory_lock($1)"
_PG_UNLOCK = "SELECT pg_advisory_unlock($1)"
_PG_CHECK_TIMEOUT = 30.0


def advisory_key(session_id: uuid.UUID) -> int:
    """The bigint advisory-lock key of a session (a hash: UUIDv7's leading bytes are a
    timestamp, too alike to use directly)."""
    digest = hashlib.blake2b(b"boternity.session:" + session_id.bytes, digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PgSessionLock:
    def __init__(self, owner: PgSessionLocks, session_id: uuid.UUID, key: int) -> None:
        self._owner = owner
        self._session_id = session_id
        self._key = key

    @property
    def session_id(self) -> uuid.UUID:
        return self._session_id

    async def release(self) -> None:
        await self._owner._release(self._key)

    async def still_held(self) -> bool:
        return await self._owner._still_held(self._key)

    async def reacquire(self) -> bool:
        return await self._owner._reacquire(self._key)

    def __repr__(self) -> str:
        return f"PgSessionLock({self._session_id})"


class PgSessionLocks:
    """Session-level advisory locks on one dedicated connection, opened on first use.

    Not a pooled connection: a pool shares and resets its connections, and a session lock must
    live exactly as long as its holder. Advisory locks are re-entrant on one connection, so
    this object also remembers what it holds and refuses a second holder in this process.
    If the connection is lost, so is ownership: ``still_held`` finds out with a round trip
    (the client may not have noticed the server closing the socket yet), and the next
    ``try_acquire`` or ``reacquire`` reconnects.
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self._conn: Any = None
        self._held: set[int] = set()
        self._mutex = asyncio.Lock()  # one connection runs one query at a time

    async def _connection(self) -> Any:
        if self._conn is None or self._conn.is_closed():
            import asyncpg  # the optional PostgreSQL dependency

            self._held.clear()  # a lost connection took its locks with it
            self._conn = await asyncpg.connect(
                self._url, server_settings={"application_name": "boternity-session-locks"}
            )
        return self._conn

    async def try_acquire(self, session_id: uuid.UUID) -> PgSessionLock | None:
        key = advisory_key(session_id)
        async with self._mutex:
            try:
                conn = await self._connection()
                if key in self._held:
                    return None
                if not await conn.fetchval(_PG_TRY_LOCK, key):
                    return None
            except Exception as exc:  # driver errors never leak (no URL in the message)
                raise RepositoryError(f"session lock for {session_id}: {exc}") from exc
            self._held.add(key)
            return PgSessionLock(self, session_id, key)

    async def _still_held(self, key: int) -> bool:
        async with self._mutex:
            conn = self._conn
            if key not in self._held or conn is None or conn.is_closed():
                return False
            try:
                # Bounded: a server that stopped answering cannot vouch for the lock either.
                await conn.fetchval("SELECT 1", timeout=_PG_CHECK_TIMEOUT)
            except Exception as exc:  # whatever the driver says, the connection is gone
                log.warning("the session-lock connection was lost: %s", exc)
                self._drop_connection()
                return False
            return True

    async def _reacquire(self, key: int) -> bool:
        async with self._mutex:
            try:
                conn = await self._connection()
                if key in self._held:  # the connection (and the lock) never went away
                    return True
                if not await conn.fetchval(_PG_TRY_LOCK, key):
                    return False
            except Exception as exc:
                raise RepositoryError(f"taking a session lock back: {exc}") from exc
            self._held.add(key)
            return True

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        self._held.clear()
        if conn is not None:
            conn.terminate()

    async def _release(self, key: int) -> None:
        async with self._mutex:
            if key not in self._held:
                return
            self._held.discard(key)
            conn = self._conn
            if conn is None or conn.is_closed():
                return
            try:
                await conn.fetchval(_PG_UNLOCK, key)
            except Exception as exc:
                import asyncpg

                if conn.is_closed() or not isinstance(exc, asyncpg.PostgresError):
                    # The connection is gone (or unusable): the server dropped its locks.
                    self._drop_connection()
                    return
                raise RepositoryError(f"releasing a session lock: {exc}") from exc

    async def aclose(self) -> None:
        async with self._mutex:
            conn, self._conn = self._conn, None
            self._held.clear()
            if conn is not None and not conn.is_closed():
                try:
                    await conn.close()  # the server drops every lock it held
                except Exception:  # already dropped by the server: nothing left to release
                    conn.terminate()

    def __repr__(self) -> str:
        return f"PgSessionLocks(held={len(self._held)})"


def locks_for_store(store: Store) -> SessionLocks:
    """New default locks for a store: lock files next to a SQLite database; advisory locks
    on a dedicated connection to a PostgreSQL one. The caller closes them (``aclose``)."""
    if store.backend == "sqlite":
        path: Any = getattr(store, "path", None)
        if not isinstance(path, str | os.PathLike):
            raise RepositoryError("this SQLite store does not say where its file is")
        return FileSessionLocks.for_database(path)
    if store.backend in ("postgresql", "postgres"):  # the name is settling on main
        url: Any = getattr(store, "url", None)
        if not isinstance(url, str):
            raise RepositoryError("this PostgreSQL store does not say where its database is")
        return PgSessionLocks(url)
    raise RepositoryError(
        f"session liveness locks are not implemented for the {store.backend} backend;"
        " pass locks= to ChatEngine"
    )


# --- extraction high-water mark --------------------------------------------------------------


def message_mark(message: ChatMessage) -> int | None:
    """What a message the engine wrote says about the mark, or None if it says nothing."""
    meta = message.metadata or {}
    if meta.get(EXTRACTION_BOUNDARY) is True and message.seq is not None:
        return message.seq
    through = meta.get(EXTRACTED_THROUGH)
    if isinstance(through, int) and not isinstance(through, bool):
        return through
    return None


async def extraction_mark(store: Store, session: ChatSession) -> tuple[int, int]:
    """``(mark, last_seq)`` of a session, from the stored messages and queued jobs (see the
    module docstring)."""
    recent = await store.chat.get_recent_messages(session.id, 64)
    last = (recent[-1].seq or 0) if recent else 0
    mark: int | None = None
    for message in reversed(recent):
        mark = message_mark(message)
        if mark is not None:
            break
    if mark is None and len(recent) == 64:
        # Someone else wrote the newest messages: look at the whole transcript.
        for message in reversed(await store.chat.get_messages(session.id)):
            mark = message_mark(message)
            if mark is not None:
                break
    best = mark or 0
    for job in await store.memory.list_pending_extractions(bot_id=session.bot_id):
        if job.session_id != session.id:
            continue
        # A job without a range covers the whole session as it is when the worker runs it.
        best = max(best, last if job.messages_end is None else job.messages_end)
    return min(best, last), last


async def enqueue_extraction(
    store: Store, session: ChatSession, start: int, end: int
) -> PendingExtraction | None:
    """Queue extraction of ``start..end`` (nothing when the range is empty)."""
    if end < start:
        return None
    job = PendingExtraction(
        session_id=session.id, bot_id=session.bot_id, messages_start=start, messages_end=end
    )
    return await store.memory.save_pending_extraction(job)


async def crash_session(store: Store, session_id: uuid.UUID) -> ChatSession | None:
    """Mark an active session ``crashed`` (ended when it was last active) and queue its final
    extraction. The caller holds the session's lock. None if it is not active any more."""
    current = await store.chat.get_session(session_id)
    if current is None or current.status is not SessionStatus.ACTIVE:
        return None
    mark, last = await extraction_mark(store, current)
    crashed = await store.chat.update_session(
        replace(
            current,
            status=SessionStatus.CRASHED,
            ended_at=current.last_activity_at or current.started_at,
        )
    )
    await enqueue_extraction(store, crashed, mark + 1, last)
    log.info("session %s was left active by a dead process: marked crashed", session_id)
    return crashed


async def recover_crashed_sessions(
    store: Store, locks: SessionLocks, *, bot_id: uuid.UUID | None = None
) -> list[ChatSession]:
    """Mark every active session whose owner is gone (its lock can be taken) as crashed and
    queue its final extraction. A session whose lock is held (live elsewhere) is not touched.
    Returns the sessions marked crashed."""
    bot_ids = [bot.id for bot in await store.bots.list_bots()] if bot_id is None else [bot_id]
    recovered: list[ChatSession] = []
    for bid in bot_ids:
        for session in await store.chat.get_active_sessions(bid):
            try:
                lock = await locks.try_acquire(session.id)
            except RepositoryError as exc:  # e.g. the lock connection dropped: next time
                log.warning("could not check session %s: %s", session.id, exc)
                continue
            if lock is None:
                continue
            try:
                crashed = await crash_session(store, session.id)
            except RepositoryError as exc:
                # One bad session must not keep every other from being recovered (or the
                # engine from starting); it stays active and is tried again next time.
                log.warning("could not recover session %s: %s", session.id, exc)
                continue
            finally:
                await lock.release()
            if crashed is not None:
                recovered.append(crashed)
    return recovered
