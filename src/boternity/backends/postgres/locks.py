"""Session ownership for PostgreSQL: a session-level advisory lock per live session, taken
on one dedicated connection, which the server drops when that connection ends (with its
process). See :mod:`boternity.chat.liveness` for how the engine uses them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from typing import Any

import asyncpg

from boternity.errors import RepositoryError

__all__ = ["PgSessionLock", "PgSessionLocks", "advisory_key"]

log = logging.getLogger(__name__)


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
        return await self._owner._take(self._key, "taking a session lock back", held=True)

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
            self._held.clear()  # a lost connection took its locks with it
            self._conn = await asyncpg.connect(
                self._url, server_settings={"application_name": "boternity-session-locks"}
            )
        return self._conn

    async def try_acquire(self, session_id: uuid.UUID) -> PgSessionLock | None:
        key = advisory_key(session_id)
        if await self._take(key, f"session lock for {session_id}", held=False):
            return PgSessionLock(self, session_id, key)
        return None

    async def _take(self, key: int, what: str, *, held: bool) -> bool:
        """Take the lock ``key`` on this connection; ``held``: the answer when this object
        holds it already (a second holder in this process is refused, a holder keeps it)."""
        async with self._mutex:
            try:
                conn = await self._connection()
                if key in self._held:
                    return held
                if not await conn.fetchval(_PG_TRY_LOCK, key):
                    return False
            except Exception as exc:  # driver errors never leak (no URL in the message)
                raise RepositoryError(f"{what}: {exc}") from exc
            self._held.add(key)
            return True

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
