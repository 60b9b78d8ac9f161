"""An event loop on a thread of its own, for commands whose main thread talks to a person.

``bnity chat`` reads the terminal with ``input()`` on the main thread (line editing, Ctrl+C
as KeyboardInterrupt, Ctrl+D as end of input) while the store, the provider, the chat
engine's title tasks and the extraction worker keep running on this loop between turns.

Imported only inside commands (it pulls in asyncio).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

T = TypeVar("T")


class LoopThread:
    """``with LoopThread() as bg: bg.call(coro)`` runs ``coro`` on the loop and waits for it.

    Ctrl+C while waiting cancels the coroutine, waits for its clean-up, and re-raises
    KeyboardInterrupt. Leaving the block cancels whatever still runs on the loop.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="bnity-loop", daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.submit(self._shutdown()).result()
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join()
            self.loop.close()

    async def _shutdown(self) -> None:
        me = asyncio.current_task()
        others = [t for t in asyncio.all_tasks() if t is not me]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        await self.loop.shutdown_asyncgens()

    def soon(self, fn: Callable[[], object]) -> None:
        """Run a plain function on the loop thread (e.g. ``turn.cancel``)."""
        self.loop.call_soon_threadsafe(fn)

    def submit(self, coro: Coroutine[Any, Any, T]) -> Job[T]:
        """Start ``coro`` on the loop as a task; the returned job resolves when it ends."""
        job: Job[T] = Job(self)

        def done(task: asyncio.Task[T]) -> None:
            if task.cancelled():
                job.future.set_exception(asyncio.CancelledError())
            elif (error := task.exception()) is not None:
                job.future.set_exception(error)
            else:
                job.future.set_result(task.result())

        def start() -> None:
            job.task = self.loop.create_task(coro)
            job.task.add_done_callback(done)

        self.loop.call_soon_threadsafe(start)
        return job

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.submit(coro).result()


class Job(Generic[T]):
    """A coroutine running on a :class:`LoopThread`, seen from another thread."""

    def __init__(self, owner: LoopThread) -> None:
        self._owner = owner
        self.future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self.task: asyncio.Task[T] | None = None  # set on the loop thread

    def cancel(self) -> None:
        """Cancel the task on the loop (its clean-up still runs)."""

        def cancel() -> None:
            if self.task is not None:
                self.task.cancel()

        self._owner.soon(cancel)

    def result(self) -> T:
        """Wait for the outcome. Ctrl+C while waiting cancels the task, waits for its clean-up
        and re-raises KeyboardInterrupt; a cancelled task raises ``asyncio.CancelledError``."""
        try:
            return self.future.result()
        except KeyboardInterrupt:
            self.cancel()
            wait_quietly(self.future)
            raise


def wait_quietly(future: concurrent.futures.Future[Any]) -> None:
    """Wait for ``future`` to settle, whatever its outcome (a second Ctrl+C stops waiting)."""
    try:
        concurrent.futures.wait([future])
    except KeyboardInterrupt:
        return


class WarningLines(logging.Handler):
    """Library warnings as one line each (``warning: ...``, control characters made visible)
    handed to ``sink``: stderr, until a chat takes them over to show them above its prompt."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.sink: Callable[[str], None] = _to_stderr

    def emit(self, record: logging.LogRecord) -> None:
        from boternity.cli.output import visible

        try:
            line = f"{record.levelname.lower()}: {' '.join(record.getMessage().split())}"
            self.sink(visible(line))
        except Exception:
            self.handleError(record)


def _to_stderr(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


@contextmanager
def warnings_to_stderr() -> Iterator[WarningLines]:
    """Library warnings (a failed title, a retried extraction) as one line each on stderr
    (or wherever the handler's ``sink`` is pointed), for as long as the block runs."""
    handler = WarningLines()
    logger = logging.getLogger("boternity")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
