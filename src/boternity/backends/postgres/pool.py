"""The connection pools of one PostgreSQL store and the one place driver errors are caught.

Writes and every read a write depends on go to the primary pool, so a caller always reads its
own writes; browse reads (lists, pages) may go to a replica pool when ``read_url`` is given.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar

import asyncpg

from boternity.backends.postgres.errors import DRIVER_ERRORS, RETRYABLE, sqlstate, translate
from boternity.errors import BoternityError

T = TypeVar("T")


class Conn(Protocol):
    """The part of asyncpg.Connection the repositories use (asyncpg ships no types)."""

    async def fetch(self, query: str, *args: Any) -> list[Any]: ...
    async def fetchrow(self, query: str, *args: Any) -> Any: ...
    async def fetchval(self, query: str, *args: Any) -> Any: ...
    async def execute(self, query: str, *args: Any) -> str: ...
    def transaction(self) -> Any: ...


Unit = Callable[[Conn], Awaitable[T]]

#: Deadlocks and serialization failures roll the transaction back; rerunning is safe.
_ATTEMPTS = 4


class Database:
    def __init__(self, primary: asyncpg.Pool, replica: asyncpg.Pool | None = None) -> None:
        self.primary = primary
        self.replica = replica or primary

    async def read(self, unit: Unit[T], *, browse: bool = False) -> T:
        """Run a read; ``browse`` reads may be served by the replica and lag behind."""
        pool = self.replica if browse else self.primary
        try:
            async with pool.acquire() as conn:
                return await unit(conn)
        except DRIVER_ERRORS as exc:
            raise translate(exc) from exc

    async def write(
        self,
        unit: Unit[T],
        *,
        transaction: bool = False,
        messages: Mapping[str, str] | None = None,
    ) -> T:
        """Run ``unit`` on the primary and return once it is committed.

        A single statement is its own transaction (one round trip); ``transaction=True`` wraps
        several. A cancelled caller does not cancel the write: it is let finish, so it is never
        left in doubt, and the cancellation is then re-raised.
        """
        task = asyncio.ensure_future(self._write(unit, transaction, messages))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            with contextlib.suppress(BoternityError):
                await task
            raise

    async def _write(
        self, unit: Unit[T], transaction: bool, messages: Mapping[str, str] | None
    ) -> T:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                async with self.primary.acquire() as conn:
                    if not transaction:
                        return await unit(conn)
                    async with conn.transaction():
                        return await unit(conn)
            except DRIVER_ERRORS as exc:
                if sqlstate(exc) in RETRYABLE and attempt < _ATTEMPTS:
                    await asyncio.sleep(0.005 * attempt)
                    continue
                raise translate(exc, messages) from exc
        raise AssertionError("unreachable")

    async def close(self) -> None:
        pools: list[Any] = [self.primary]
        if self.replica is not self.primary:
            pools.append(self.replica)
        for pool in pools:
            with contextlib.suppress(*DRIVER_ERRORS):
                await pool.close()


def affected(status: str) -> int:
    """Rows touched, from a command status such as ``DELETE 3``."""
    return int(status.rsplit(" ", 1)[-1])
