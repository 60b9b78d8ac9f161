"""The SQLite connection layout: one writer, N read-only readers, each on its own thread.

Every connection lives on a dedicated single-thread executor, so a unit of work (a Python
function that runs several statements) costs one thread hop, not one per statement as with
per-call async drivers. All writes go through :class:`Writer`: a queue of units drained by one
task; units waiting together are committed together (group commit), each in its own
SAVEPOINT so one failing unit never takes its neighbours down.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, TypeVar

from boternity.backends.sqlite.errors import is_busy, translate
from boternity.errors import BoternityError, StoreBusyError

log = logging.getLogger(__name__)

T = TypeVar("T")
Unit = Callable[[sqlite3.Connection], Any]
Durability = Literal["normal", "full"]

_MAX_BATCH = 128


def configure(conn: sqlite3.Connection, *, busy_timeout_ms: int) -> None:
    """Every connection, writer or reader, gets these settings and no others."""
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    conn.execute("PRAGMA foreign_keys = ON")


def retry_busy(fn: Callable[[], T], *, wait: float, what: str) -> T:
    """Run ``fn``, retrying while another process holds a lock, for at most ``wait`` seconds.

    busy_timeout already waits inside SQLite; this outer loop covers the cases it does not
    (WAL recovery, a lock held longer than busy_timeout) and turns the last failure into a
    StoreBusyError instead of a bare "database is locked".
    """
    deadline = time.monotonic() + wait
    delay = 0.005
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
            if time.monotonic() >= deadline:
                raise StoreBusyError(
                    f"{what}: another process kept the database busy for more than {wait:g} s"
                ) from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.25)


class Worker:
    """One sqlite3 connection pinned to one thread."""

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._conn: sqlite3.Connection | None = None

    async def open(self, connect: Callable[[], sqlite3.Connection]) -> None:
        loop = asyncio.get_running_loop()
        self._conn = await loop.run_in_executor(self._executor, connect)

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn
        if conn is None:
            raise RuntimeError("connection is not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, conn)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=True)


def _run_batch(
    conn: sqlite3.Connection, units: list[Unit], busy_wait: float
) -> list[tuple[bool, Any]]:
    """Runs on the writer thread: one BEGIN IMMEDIATE ... COMMIT around all ``units``.

    Some errors (disk full, I/O) make SQLite roll back the whole transaction, not just the
    statement. The unit that hit one fails alone; the others run again in a new transaction.
    """
    outcomes: list[tuple[bool, Any] | None] = [None] * len(units)
    todo = list(range(len(units)))
    while todo:
        retry_busy(lambda: conn.execute("BEGIN IMMEDIATE"), wait=busy_wait, what="write")
        done: dict[int, tuple[bool, Any]] = {}
        try:
            for i in todo:
                conn.execute("SAVEPOINT unit")
                try:
                    value = units[i](conn)
                except Exception as exc:
                    if not conn.in_transaction:
                        # SQLite rolled everything back; no ROLLBACK TO is possible (it
                        # would fail and hide this error).
                        outcomes[i] = (False, _library_error(exc))
                        break
                    conn.execute("ROLLBACK TO unit")
                    conn.execute("RELEASE unit")
                    done[i] = (False, _library_error(exc))
                else:
                    conn.execute("RELEASE unit")
                    done[i] = (True, value)
            else:
                conn.execute("COMMIT")
                for i, outcome in done.items():
                    outcomes[i] = outcome
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        todo = [i for i in todo if outcomes[i] is None]
    return [outcome for outcome in outcomes if outcome is not None]


def _library_error(exc: Exception) -> Exception:
    if isinstance(exc, sqlite3.Error):
        return translate(exc)
    return exc


class Writer:
    """The only path to the database's write lock in this process."""

    def __init__(self, worker: Worker, *, busy_wait: float) -> None:
        self._worker = worker
        self._busy_wait = busy_wait
        self._queue: list[tuple[Unit, asyncio.Future[Any]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def run(self, unit: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``unit`` in a write transaction and return its result once committed."""
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((unit, fut))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain(), name="boternity-sqlite-writer")
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            # The unit is already queued: let it finish, so a cancelled caller never leaves
            # a write in doubt, then re-raise the cancellation.
            with contextlib.suppress(BoternityError):
                await fut
            raise

    async def _drain(self) -> None:
        while self._queue:
            batch = self._queue[:_MAX_BATCH]
            del self._queue[: len(batch)]
            units = [unit for unit, _ in batch]
            try:
                outcomes = await self._worker.call(
                    functools.partial(_run_batch, units=units, busy_wait=self._busy_wait)
                )
            except Exception as exc:
                error = _library_error(exc)
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(error)
                continue
            for (_, fut), (ok, value) in zip(batch, outcomes, strict=True):
                if fut.done():
                    continue
                if ok:
                    fut.set_result(value)
                else:
                    fut.set_exception(value)

    async def idle(self) -> None:
        """Wait until every queued unit has been committed or failed."""
        while self._drainer is not None and not self._drainer.done():
            await asyncio.shield(self._drainer)


class Readers:
    """N read-only connections handed out through a queue (one connection serialises its
    own work, so concurrent reads need several)."""

    def __init__(self, workers: list[Worker], *, busy_wait: float) -> None:
        self._free: asyncio.Queue[Worker] = asyncio.Queue()
        for worker in workers:
            self._free.put_nowait(worker)
        self._all = workers
        self._busy_wait = busy_wait

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        worker = await self._free.get()
        try:
            return await worker.call(lambda conn: self._read(conn, fn))
        finally:
            self._free.put_nowait(worker)

    def _read(self, conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return retry_busy(lambda: fn(conn), wait=self._busy_wait, what="read")
        except sqlite3.Error as exc:
            raise translate(exc) from exc
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")

    async def close(self) -> None:
        for worker in self._all:
            await worker.close()
