"""The connections of one PostgreSQL store and the one place driver errors are caught.

Writes and every read a write depends on go to the primary pool, so a caller always reads its
own writes; browse reads (lists, pages) may go to a replica pool when ``read_url`` is given.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from typing import Any, Protocol, TypeVar

from boternity.backends.postgres.errors import (
    DRIVER_ERRORS,
    RETRYABLE,
    connection_lost,
    sqlstate,
    translate,
)
from boternity.errors import BoternityError, RepositoryError, StoreBusyError
from boternity.storage.dialect import ALL, COUNT, ONE, VALUE, Conflicts, UnitFactory, shielded

T = TypeVar("T")


class Conn(Protocol):
    """The part of asyncpg.Connection the repositories use (asyncpg ships no types)."""

    async def fetch(self, query: str, *args: Any) -> list[Any]: ...
    async def fetchrow(self, query: str, *args: Any) -> Any: ...
    async def fetchval(self, query: str, *args: Any) -> Any: ...
    async def execute(self, query: str, *args: Any) -> str: ...
    def transaction(self) -> Any: ...


#: Deadlocks and serialization failures roll the transaction back; rerunning is safe.
_ATTEMPTS = 4


#: How long a caller waits for a free connection by default (``busy_wait`` of open_store).
ACQUIRE_TIMEOUT = 60.0


class Connections:
    """A small LIFO pool of asyncpg connections to one server, opened on demand.

    asyncpg's own Pool wraps every checkout in a proxy and a reset coroutine, which cost more
    client CPU than the statement itself on a fast loopback append. This pool can be this
    simple because every use runs inside a shielded task (see Database): a checkout is never
    cancelled halfway, so a connection is given back idle, or dropped when it broke.
    A caller that finds every connection busy for ``acquire_timeout`` seconds gets
    StoreBusyError instead of waiting forever behind stuck work.
    """

    def __init__(
        self,
        connect: Callable[[], Awaitable[Any]],
        size: int,
        *,
        acquire_timeout: float = ACQUIRE_TIMEOUT,
    ) -> None:
        self._connect = connect
        self._size = size
        self.acquire_timeout = acquire_timeout
        self._idle: list[Any] = []
        self._open = 0  # idle + checked out + being opened
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False

    async def get(self) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.acquire_timeout
        while True:
            if self._closed:
                raise RepositoryError("the store is closed")
            while self._idle:
                conn = self._idle.pop()
                if not conn.is_closed():
                    return conn
                self._open -= 1
            if self._open < self._size:
                self._open += 1
                try:
                    return await self._connect()
                except BaseException:
                    self._open -= 1
                    self._wake()
                    raise
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, max(0.0, deadline - loop.time()))
            except TimeoutError:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # woken as the wait ran out: pass the turn on
                raise StoreBusyError(
                    f"no PostgreSQL connection became free within {self.acquire_timeout:g} s"
                    f" (all {self._size} in use); raise pool_size or busy_wait"
                ) from None

    def put(self, conn: Any, *, broken: bool = False) -> None:
        if broken or self._closed or conn.is_closed():
            self._open -= 1
            conn.terminate()
        else:
            self._idle.append(conn)
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[Any]:
        """A connection for the duration of the block (for tests and tools)."""
        conn = await self.get()
        try:
            yield conn
        except BaseException:
            self.put(conn, broken=True)
            raise
        self.put(conn)

    async def close(self) -> None:
        """Close idle connections now; ones still in use are closed when given back."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            self._open -= 1
            with contextlib.suppress(*DRIVER_ERRORS):
                await conn.close(timeout=5)
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)


class Database:
    """The repository core's executor on PostgreSQL."""

    def __init__(self, primary: Connections, replica: Connections | None = None) -> None:
        self.primary = primary
        self.replica = replica or primary

    # Plain functions returning the awaitable: no coroutine frame of their own per call.
    def read(
        self, sql: str, params: Sequence[Any], shape: int, *, browse: bool = False,
        bounded: bool = False,
    ) -> Coroutine[Any, Any, Any]:  # fmt: skip
        """One statement; ``browse`` reads may be served by the replica and lag behind.
        (``bounded`` changes nothing here: every read is one round trip.)"""
        pool = self.replica if browse else self.primary
        return shielded(self._run(pool, lambda c: _step(c, sql, params, shape), False))

    def run(self, fn: Callable[[Conn], Awaitable[T]]) -> Coroutine[Any, Any, T]:
        """A read that needs the connection itself (maintenance: several catalog queries)."""
        return shielded(self._run(self.primary, fn, False))

    def write(
        self, unit: UnitFactory[T], *, atomic: bool = False, conflicts: Conflicts = None
    ) -> Coroutine[Any, Any, T]:
        """Run ``unit`` on the primary and return once it is committed.

        A single statement is its own transaction (one round trip); ``atomic`` units run in
        one. A cancelled caller does not cancel the write: it is let finish, so it is never
        left in doubt, and the cancellation is then re-raised.
        """
        return shielded(self._run(self.primary, lambda c: drive(c, unit), atomic, conflicts))

    async def _run(
        self,
        pool: Connections,
        unit: Callable[[Conn], Awaitable[T]],
        transaction: bool,
        conflicts: Conflicts = None,
    ) -> T:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                conn = await pool.get()
            except DRIVER_ERRORS as exc:
                raise RepositoryError(f"could not connect to the database: {exc}") from exc
            try:
                if transaction:
                    async with conn.transaction():
                        result = await unit(conn)
                else:
                    result = await unit(conn)
            except DRIVER_ERRORS as exc:
                pool.put(conn, broken=connection_lost(exc))
                if sqlstate(exc) in RETRYABLE and attempt < _ATTEMPTS:
                    await asyncio.sleep(0.005 * attempt)
                    continue
                raise translate(exc, conflicts) from exc
            except BaseException as exc:
                # A library error raised by the unit leaves the connection idle (a transaction
                # rolled back); anything else (cancellation at shutdown) may not.
                library = isinstance(exc, BoternityError)
                pool.put(conn, broken=not library or conn.is_in_transaction())
                raise
            pool.put(conn)
            return result
        raise AssertionError("unreachable")

    async def close(self) -> None:
        await self.primary.close()
        if self.replica is not self.primary:
            await self.replica.close()


async def _step(conn: Conn, sql: str, params: Sequence[Any], shape: int) -> Any:
    if not sql:  # a statement this dialect does not need
        return None
    if shape == ALL:
        return await conn.fetch(sql, *params)
    if shape == ONE:
        return await conn.fetchrow(sql, *params)
    if shape == VALUE:
        return await conn.fetchval(sql, *params)
    status = await conn.execute(sql, *params)  # "DELETE 3": rows touched
    return int(status.rsplit(" ", 1)[-1]) if shape == COUNT else None


async def drive(conn: Conn, unit: UnitFactory[T]) -> T:
    """Run a unit's steps, one await each, on one connection (in the transaction around it
    when atomic). A retried unit starts again from a fresh generator."""
    steps = unit()
    try:
        step = next(steps)
        while True:
            step = steps.send(await _step(conn, *step))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
