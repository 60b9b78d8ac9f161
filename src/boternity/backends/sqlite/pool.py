"""The SQLite connection layout: one writer, N read-only readers, each on its own thread.

Every connection lives on a dedicated single-thread executor, so a unit of work (a Python
function that runs several statements) costs one thread hop, not one per statement as with
per-call async drivers. All writes go through :class:`Writer`: a queue of units drained by one
task; units waiting together are committed together (group commit), and one failing unit
never takes its neighbours down (the batch then runs again, each unit in its own SAVEPOINT).

At durability normal a commit does not wait for the disk, so a batch of small units costs
less than the hop to the writer thread and back (30-100 us on a busy machine). There, when
the writer thread is idle, the batch runs on the event-loop thread itself: the same
transaction, savepoints and error handling, but with SQLite's busy wait off, so a write lock
held by another process sends the batch to the writer thread (which waits) instead of
blocking the loop. Bounded reads (a row by key, the latest messages) do likewise on a
connection of their own.

Checkpoints (copying the WAL back into the database, with an fsync at either durability) run on
a connection and thread of their own, beside the writes: a PASSIVE checkpoint takes no write
lock, so no commit waits for one (see Checkpointer).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import queue
import sqlite3
import threading
import time
import types
import urllib.parse
from collections.abc import Callable, Coroutine, Generator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from boternity.backends.sqlite.errors import is_busy, translate
from boternity.errors import RepositoryError, StoreBusyError
from boternity.storage.dialect import (
    ALL,
    COUNT,
    NONE,
    ONE,
    VALUE,
    Conflicts,
    UnitFactory,
)
from boternity.storage.dialect import Unit as Steps

log = logging.getLogger(__name__)

T = TypeVar("T")
Unit = Callable[[sqlite3.Connection], Any]

_MAX_BATCH = 128
#: At most this many units run on the loop thread at once (larger batches go to the thread).
_INLINE_BATCH = 16
#: Commits between two checkpoints (the writer connection's own automatic checkpoint is
#: off); ~5 pages a message: SQLite's 1000 pages.
CHECKPOINT_EVERY = 200
#: When the WAL starts over, a file grown larger than this (a burst while a reader held an
#: old snapshot, say) is cut back to it; SQLite keeps it at its largest otherwise.
WAL_KEEP_BYTES = 64 * 1024 * 1024

#: Set to a list to collect how long each unit batch or read run on the event-loop thread
#: held it: (wall seconds, that thread's CPU seconds), so time lost to other processes on a
#: busy machine shows apart (benchmarks/run.py reports p50/p99/max); None: not collected.
inline_times: list[tuple[float, float]] | None = None


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.thread_time()


def _record(started: tuple[float, float] | None) -> None:
    if started is not None and inline_times is not None:
        inline_times.append((time.perf_counter() - started[0], time.thread_time() - started[1]))


#: Each connection's page cache, KiB (SQLite's default is 2,000). A search or listing over a
#: large store touches pages all over a table (the rows of 3,555 full-text matches among
#: 100,000 memories, say): with the default cache, every run of it reads most of them from
#: the OS again (~35% of the search's CPU time). The cache only grows as pages are read.
CACHE_KIB = 16_384


def configure(conn: sqlite3.Connection, *, busy_timeout_ms: int) -> None:
    """Every connection, writer or reader, gets these settings and no others."""
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")


def connect_read_only(path: Path, **options: Any) -> sqlite3.Connection:
    """A connection that can never write to the database file at ``path``."""
    uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro"
    conn: sqlite3.Connection = sqlite3.connect(uri, uri=True, **options)
    return conn


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
        except (sqlite3.OperationalError, StoreBusyError) as exc:
            if isinstance(exc, sqlite3.Error) and not is_busy(exc):
                raise
            if time.monotonic() >= deadline:
                raise _busy(what, wait) from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.25)


def _busy(what: str, wait: float) -> StoreBusyError:
    return StoreBusyError(
        f"{what}: another process kept the database busy for more than {wait:g} s"
    )


class Worker:
    """One sqlite3 connection pinned to one thread.

    A bare thread fed by a SimpleQueue, answering through call_soon_threadsafe: about half
    the cost of ``run_in_executor`` per hop, which is most of the cost of a small query.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._conn: sqlite3.Connection | None = None
        self._closing = False
        # daemon: a store the caller forgot to close must not keep the interpreter alive
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, loop, deliver = job
            try:
                result = fn(self._conn)
            except BaseException as exc:  # handed back to the event loop
                _deliver(loop, deliver, None, exc)
            else:
                _deliver(loop, deliver, result, None)
            if self._conn is None and self._closing:
                return  # the shutdown job ran: the thread ends right after answering it

    async def open(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._thread.start()

        def setup(_: sqlite3.Connection | None) -> None:
            self._conn = connect()

        await self._submit(setup)

    def post(self, fn: Callable[[Any], Any], deliver: Deliver) -> None:
        """Run ``fn(connection)`` on the thread; ``deliver(result, error)`` then runs on the
        calling event loop. The cheapest hop: no future or task in between."""
        self._jobs.put((fn, asyncio.get_running_loop(), deliver))

    def _submit(self, fn: Callable[[Any], T]) -> asyncio.Future[T]:
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()

        def settle(result: Any, exc: BaseException | None) -> None:
            if fut.done():  # the awaiting caller was cancelled
                return
            if exc is None:
                fut.set_result(result)
            else:
                fut.set_exception(exc)

        self.post(fn, settle)
        return fut

    @property
    def is_open(self) -> bool:
        return self._conn is not None

    @property
    def connection(self) -> sqlite3.Connection | None:
        """The connection, for the event-loop thread to use while this thread is idle."""
        return self._conn

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            raise RepositoryError("the store is closed")
        return await self._submit(fn)

    async def close(self) -> None:
        if not self._thread.is_alive():
            return

        def shutdown(conn: sqlite3.Connection | None) -> None:
            self._closing = True
            self._conn = None
            if conn is not None:
                conn.close()

        await self._submit(shutdown)
        # The thread returns as soon as it has answered: no executor thread needed to join.
        self._thread.join(timeout=5)


Deliver = Callable[[Any, BaseException | None], None]
_Job = tuple[Callable[[Any], Any], asyncio.AbstractEventLoop, Deliver]


def _deliver(
    loop: asyncio.AbstractEventLoop, deliver: Deliver, result: Any, exc: BaseException | None
) -> None:
    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
        loop.call_soon_threadsafe(deliver, result, exc)


def _run_batch(
    conn: sqlite3.Connection, units: list[Unit], busy_wait: float
) -> list[tuple[bool, Any]]:
    """Runs on the writer thread: one BEGIN IMMEDIATE ... COMMIT around all ``units``.

    Units run side by side first; only if one fails does the batch run again with each unit
    in a savepoint, so it fails alone (two statements less per unit in the common case).
    Some errors (disk full, I/O) make SQLite roll back the whole transaction, not just the
    statement. The unit that hit one fails alone; the others run again in a new transaction.
    """
    if len(units) == 1:
        return [_run_alone(conn, units[0], busy_wait)]
    values = _run_together(conn, units, busy_wait)
    if values is not None:
        return [(True, value) for value in values]
    outcomes: list[tuple[bool, Any] | None] = [None] * len(units)
    todo = list(range(len(units)))
    while todo:
        _begin(conn, busy_wait)
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


def _run_together(
    conn: sqlite3.Connection, units: list[Unit], busy_wait: float
) -> list[Any] | None:
    """All ``units`` in one transaction, without savepoints: their values, committed, or
    None with nothing committed when one of them failed."""
    _begin(conn, busy_wait)
    try:
        try:
            values = [unit(conn) for unit in units]
        except Exception:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return None
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return values


def _begin(conn: sqlite3.Connection, busy_wait: float) -> None:
    """BEGIN IMMEDIATE; only when another connection holds the lock, retried for up to
    ``busy_wait`` seconds (retry_busy)."""
    started = time.monotonic()
    try:
        conn.execute("BEGIN IMMEDIATE")
        return
    except sqlite3.OperationalError as exc:
        if not is_busy(exc):
            raise
        left = busy_wait - (time.monotonic() - started)
        if left <= 0:
            raise _busy("write", busy_wait) from exc
    try:
        retry_busy(lambda: conn.execute("BEGIN IMMEDIATE"), wait=left, what="write")
    except StoreBusyError as exc:
        raise _busy("write", busy_wait) from exc.__cause__


def _run_alone(conn: sqlite3.Connection, unit: Unit, busy_wait: float) -> tuple[bool, Any]:
    """One unit, its own transaction: no savepoint needed (the common, uncontended case)."""
    _begin(conn, busy_wait)
    try:
        try:
            value = unit(conn)
        except Exception as exc:
            if conn.in_transaction:  # else SQLite already rolled it all back (disk full, I/O)
                conn.execute("ROLLBACK")
            return (False, _library_error(exc))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return (True, value)


def _with_busy_timeout(
    run: Callable[[sqlite3.Connection], T], ms: int, conn: sqlite3.Connection
) -> T:
    """``run(conn)`` with SQLite's busy wait on, then off again (as the loop thread uses it)."""
    conn.execute(f"PRAGMA busy_timeout = {int(ms)}")
    try:
        return run(conn)
    finally:
        conn.execute("PRAGMA busy_timeout = 0")


def checkpoint(conn: sqlite3.Connection) -> None:
    """A PASSIVE checkpoint: it waits for nobody (busy, or failed: a later one catches up)."""
    with contextlib.suppress(sqlite3.Error):
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def _run_then_checkpoint(
    conn: sqlite3.Connection, units: list[Unit], busy_wait: float
) -> list[tuple[bool, Any]]:
    """A batch, then a checkpoint while no write of this process can start."""
    outcomes = _run_batch(conn, units, busy_wait)
    checkpoint(conn)
    return outcomes


def write_now(conn: sqlite3.Connection, unit: UnitFactory[T], busy_wait: float) -> T:
    """Run ``unit`` now, on this thread, in its own write transaction: for opening a store,
    before the Writer serves."""
    ok, value = _run_alone(conn, functools.partial(drive, unit, None), busy_wait)
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


def _library_error(exc: Exception) -> Exception:
    if isinstance(exc, sqlite3.Error):
        return translate(exc)
    return exc


class _Queued(asyncio.Future[Any]):
    """A queued write's result, which cannot be cancelled: the unit is already queued and
    will commit or fail. A cancelled caller's task is then woken once it has, and only then
    raises its CancelledError (what Task.cancel does when the awaited future refuses), so a
    cancelled caller never leaves a write in doubt, as with asyncio.shield but without its
    extra step of the event loop."""

    def cancel(self, msg: Any = None) -> bool:
        return False


class Checkpointer:
    """Checkpoints on a connection and thread of their own, beside the writes.

    The Writer asks for one every CHECKPOINT_EVERY commits (one already running makes that a
    no-op). It copies what was committed when it started, but a WAL starts over from its
    beginning (else it only grows) only at a write that finds it wholly copied, which beside
    a writer that never pauses it never is. So once it is done (``behind``), the Writer
    checkpoints itself, between two batches, where it does catch up: that one only has the
    frames committed meanwhile to copy, a fraction of the whole.
    """

    def __init__(self, worker: Worker) -> None:
        self._worker = worker
        self._running = False
        #: A checkpoint here ended: the Writer's next one catches up.
        self.behind = False

    def start(self) -> None:
        if self._running or not self._worker.is_open:
            return
        self._running = True
        self._worker.post(checkpoint, self._done)

    def _done(self, result: None, exc: BaseException | None) -> None:
        self._running = False
        self.behind = True

    async def close(self) -> None:
        await self._worker.close()


class Writer:
    """The only path to the database's write lock in this process.

    Callback-driven: an idle writer runs what is queued one loop step after the first write
    arrives (a lone writer's write at once), as one batch: on the loop thread when ``inline``
    and the batch is small, else on the writer thread, whose answer settles the callers'
    futures and sends whatever queued meanwhile as the next batch: at most one hop per batch
    and no task switches. Only one batch is ever in flight, so the loop thread uses the
    writer's connection only while the writer thread waits for work.
    """

    def __init__(
        self,
        worker: Worker,
        checkpointer: Checkpointer,
        *,
        busy_wait: float,
        inline: bool = False,
        busy_timeout_ms: int = 0,
    ) -> None:
        self._worker = worker
        self._checkpointer = checkpointer
        self._busy_wait = busy_wait
        self._queue: list[tuple[Unit, asyncio.Future[Any]]] = []
        self._in_flight = False
        self._idle_waiters: list[asyncio.Future[None]] = []
        #: Small batches run on the loop thread (durability normal only: a FULL commit
        #: waits for the disk). The connection then checkpoints only when told to.
        self.inline = inline
        self._busy_timeout_ms = busy_timeout_ms
        self._commits = 0
        self._stepped = False  # a write already ran at once in this step of the loop
        self._last_batch = 1  # units in the last batch

    def run(self, unit: Callable[[sqlite3.Connection], T]) -> Coroutine[Any, Any, T]:
        """Queue ``unit`` for a write transaction; await the result to have it once committed.
        (A plain function returning the awaitable: no coroutine frame of its own per write.)"""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = _Queued(loop=loop)
        self._queue.append((unit, fut))
        if not self._in_flight:
            self._in_flight = True
            if self.inline and self._last_batch == 1 and not self._stepped:
                # A lone writer (the last batch held one unit), and the first write of this
                # step of the loop: run it now, here. Writers that arrive later in this
                # step share the next batch, one step later; from then on, while batches
                # hold several units, every write waits that step for company.
                self._stepped = True
                loop.call_soon(self._next_step)
                self._dispatch()
            else:
                # Dispatch on the next loop step, not now: writers woken together (say, by
                # the previous batch's answer) then share one transaction.
                loop.call_soon(self._dispatch)
        return _settled(fut)

    def _next_step(self) -> None:
        self._stepped = False

    def _dispatch(self) -> None:
        batch = self._queue[:_MAX_BATCH]
        del self._queue[: len(batch)]
        self._in_flight = True
        if not self._worker.is_open:
            self._finish(batch, None, RepositoryError("the store is closed"))
            return
        units = [unit for unit, _ in batch]
        self._last_batch = len(units)
        batch_then = _run_batch
        self._commits += 1
        if self._checkpointer.behind:
            self._checkpointer.behind = False
            batch_then = _run_then_checkpoint  # on the thread: never on the loop
        elif self._commits >= CHECKPOINT_EVERY:
            self._commits = 0
            self._checkpointer.start()
        if self.inline and batch_then is _run_batch and len(batch) <= _INLINE_BATCH:
            outcomes = self._run_inline(units)
            if outcomes is not None:
                self._finish(batch, outcomes, None)
                return
        run: Callable[[sqlite3.Connection], list[tuple[bool, Any]]] = functools.partial(
            batch_then, units=units, busy_wait=self._busy_wait
        )
        if self.inline:
            # On the thread, SQLite's own busy wait is on (the loop thread runs without it).
            run = functools.partial(_with_busy_timeout, run, self._busy_timeout_ms)
        self._worker.post(run, functools.partial(self._finish, batch))

    def _run_inline(self, units: list[Unit]) -> list[tuple[bool, Any]] | None:
        """The batch, run here on the loop thread while the writer thread is idle; None when
        another process holds the write lock (the batch then goes to the thread, which
        waits for it)."""
        conn = self._worker.connection
        assert conn is not None
        started = _clock() if inline_times is not None else None
        try:
            return _run_batch(conn, units, 0)  # busy_timeout is 0 on this connection
        except StoreBusyError:
            return None
        except Exception as exc:  # as the thread would hand it back: every caller gets it
            return [(False, _library_error(exc))] * len(units)
        finally:
            _record(started)

    def _finish(
        self,
        batch: list[tuple[Unit, asyncio.Future[Any]]],
        outcomes: list[tuple[bool, Any]] | None,
        exc: BaseException | None,
    ) -> None:
        if exc is not None or outcomes is None:
            error = _library_error(exc) if isinstance(exc, Exception) else exc
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(error or RepositoryError("write failed"))
        else:
            for (_, fut), (ok, value) in zip(batch, outcomes, strict=True):
                if fut.done():
                    continue
                if ok:
                    fut.set_result(value)
                else:
                    fut.set_exception(value)
        self._in_flight = False
        if self._queue:
            self._dispatch()
        elif self._idle_waiters:
            waiters, self._idle_waiters = self._idle_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def idle(self) -> None:
        """Wait until every queued unit has been committed or failed."""
        if self._in_flight or self._queue:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._idle_waiters.append(waiter)
            await asyncio.shield(waiter)


class Readers:
    """N read-only connections handed out through a queue (one connection serialises its
    own work, so concurrent reads need several), and optionally one more for bounded reads
    on the event-loop thread (``quick``)."""

    def __init__(self, workers: list[Worker], *, busy_wait: float) -> None:
        self._free: asyncio.Queue[Worker] = asyncio.Queue()
        for worker in workers:
            self._free.put_nowait(worker)
        self._all = workers
        self._busy_wait = busy_wait
        #: A read-only connection used on the loop thread, with SQLite's busy wait off.
        self.loop_connection: sqlite3.Connection | None = None

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        worker = await self._free.get()
        try:
            return await worker.call(lambda conn: self._read(conn, fn))
        finally:
            self._free.put_nowait(worker)

    async def quick(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """A bounded read (an index lookup of at most a few hundred rows) run right here on
        the loop thread; on a reader thread when that connection is busy (another process
        recovering the WAL, say). Yields to the loop once, as a hop would."""
        conn = self.loop_connection
        if conn is not None:
            started = _clock() if inline_times is not None else None
            try:
                result = fn(conn)
            except sqlite3.OperationalError as exc:
                if not is_busy(exc):
                    raise translate(exc) from exc
            except sqlite3.Error as exc:
                raise translate(exc) from exc
            else:
                await _yield()
                return result
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                _record(started)
        return await self.run(fn)

    def _read(self, conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return retry_busy(lambda: fn(conn), wait=self._busy_wait, what="read")
        except sqlite3.Error as exc:
            raise translate(exc) from exc
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")

    async def close(self) -> None:
        conn, self.loop_connection = self.loop_connection, None
        if conn is not None:
            conn.close()
        for worker in self._all:
            await worker.close()


@types.coroutine
def _settled(fut: asyncio.Future[T]) -> Generator[Any, None, T]:
    """A write's result: at once if it already ran (after one step back to the loop, as a
    queued write takes, so a task that only writes cannot starve the others), else when it
    has. Cancelling waits for the write either way (see _Queued)."""
    if fut.done():
        yield
        return fut.result()
    return (yield from fut)


@types.coroutine
def _yield() -> Generator[None, None, None]:
    """One step back to the event loop (what ``asyncio.sleep(0)`` does, without its frame)."""
    yield


def _fetch(cursor: sqlite3.Cursor, shape: int) -> Any:
    if shape == ALL:
        return cursor.fetchall()
    if shape == ONE:
        return cursor.fetchone()
    if shape == VALUE:
        row = cursor.fetchone()
        return None if row is None else row[0]
    return cursor.rowcount if shape == COUNT else None


_DONE: Any = object()


def _finished(steps: Steps[T]) -> Steps[T]:
    """The unit's steps, then one last (_DONE, its result, None). ``yield from`` takes the
    unit's return value without raising StopIteration, and this generator returns None, which
    ``next(..., None)`` consumes without raising either: exceptions cost more than the rest of
    the driving loop together."""
    result = yield from steps
    yield _DONE, result, NONE  # type: ignore[misc]
    return None  # type: ignore[return-value]


def drive(unit: UnitFactory[T], conflicts: Conflicts, conn: sqlite3.Connection) -> T:
    """Run a unit's steps synchronously, here on the writer thread, inside the transaction
    (or savepoint) the writer opened around it. The hot path of every write: one cursor for
    the whole unit (not one per statement), the common fetches inline."""
    steps = _finished(unit())
    cursor = conn.cursor()
    execute = cursor.execute
    result: Any = None
    try:
        sql, params, shape = next(steps)
        while sql is not _DONE:
            if sql:  # an empty statement is one this dialect does not need: not run
                execute(sql, params)
                if shape == ONE:
                    result = cursor.fetchone()
                elif shape == VALUE:
                    result = cursor.fetchone()
                    result = None if result is None else result[0]
                else:
                    result = _fetch(cursor, shape)
            else:
                result = None
            sql, params, shape = steps.send(result)
        next(steps, None)
        return params  # type: ignore[return-value]  # the unit's result
    except sqlite3.Error as exc:
        raise translate(exc, conflicts) from exc
    finally:
        cursor.close()  # resets its last statement before the writer commits or rolls back


class SqliteExecutor:
    """The repository core's executor: writes through the Writer, reads on the Readers."""

    def __init__(self, writer: Writer, readers: Readers) -> None:
        self._writer = writer
        self._readers = readers

    # Plain functions handing back the Writer's or Readers' awaitable: no coroutine of their
    # own in between (a save_message is a few microseconds of Python; each frame counts).
    def read(
        self, sql: str, params: Sequence[Any], shape: int, *, browse: bool = False,
        bounded: bool = False,
    ) -> Coroutine[Any, Any, Any]:  # fmt: skip
        fn = lambda conn: _fetch(conn.execute(sql, params), shape)  # noqa: E731
        return self._readers.quick(fn) if bounded else self._readers.run(fn)

    def write(
        self, unit: UnitFactory[T], *, atomic: bool = False, conflicts: Conflicts = None
    ) -> Coroutine[Any, Any, T]:
        return self._writer.run(functools.partial(drive, unit, conflicts))
