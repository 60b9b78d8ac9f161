"""``ChatEngine``: starting, resuming and ending sessions, and the memory-queue worker.

    async with ChatEngine(store, provider) as engine:      # recovers crashed sessions
        live = await engine.start_session(bot, greet=True)
        turn = live.send("Hello!")
        async for text in turn:                            # the reply, as it streams
            print(text, end="")
        reply = await turn                                 # the stored assistant message
        await live.end()                                   # or engine.close() ends them all

Crash safety: the user message is committed before the provider is called, the reply when
its stream ends (a failed stream's partial text with stop_reason "error"), and the session is
owned through a lock the OS drops when the process dies, so the next engine to start marks
it ``crashed`` and queues its final memory extraction.

What happens inside one session is :class:`~boternity.chat.session.LiveSession`: its context
window is a :class:`~boternity.chat.window.ContextWindow`, its title a
:class:`~boternity.chat.titles.SessionTitler`; ownership and crash recovery are
``boternity.chat.liveness``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Coroutine, Sequence
from typing import Any, Protocol

from boternity.chat.liveness import (
    SessionBusyError,
    SessionLock,
    SessionLocks,
    crash_session,
    locks_for_store,
    recover_crashed_sessions,
)
from boternity.chat.session import (
    STOP_CANCELLED,
    STOP_ERROR,
    LiveSession,
    load_bot,
    seq_of,
)
from boternity.chat.titles import first_exchange
from boternity.chat.window import WindowPolicy
from boternity.errors import ConflictError, NotFoundError, ValidationError
from boternity.llm.base import LlmProvider
from boternity.models import Bot, BotStatus, ChatSession, SessionStatus
from boternity.store import Store

__all__ = [
    "BotUnavailableError",
    "ChatEngine",
    "QueueReport",
    "QueueWorker",
    "Recall",
]

log = logging.getLogger(__name__)


class BotUnavailableError(ConflictError):
    """The bot is disabled or archived: no new conversations."""


BotUnavailableError.__module__ = "boternity.chat"


class QueueReport(Protocol):
    """What one pass over the memory-extraction queue did
    (``boternity.memory.WorkerReport``)."""

    @property
    def claimed(self) -> int: ...
    @property
    def completed(self) -> int: ...
    @property
    def failed(self) -> int: ...
    @property
    def exhausted(self) -> int: ...
    @property
    def memories_saved(self) -> int: ...
    @property
    def superseded(self) -> int: ...
    @property
    def dropped(self) -> int: ...
    @property
    def repeated(self) -> int: ...


class QueueWorker(Protocol):
    """Processes the memory-extraction queue (``boternity.memory.ExtractionWorker``)."""

    async def run_once(self, *, bot_id: uuid.UUID | None = None) -> QueueReport: ...

    async def run_forever(
        self, *, interval: float = 5.0, bot_id: uuid.UUID | None = None
    ) -> None: ...


class Recall(Protocol):
    """Recalled memories for a turn: text lines for the ``<memories>`` section, given the bot,
    what the user just said and the session's user (None: a session without a user), whose
    scope the lines must respect (docs/users.md). The memory pipeline provides one; the
    default is none."""

    async def __call__(
        self, bot: Bot, user_text: str, /, *, user_id: str | None
    ) -> Sequence[str]: ...


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("memory queue work failed: %s", task.exception())


def _check_available(bot: Bot) -> None:
    if bot.status is not BotStatus.ACTIVE:
        raise BotUnavailableError(f"bot {bot.slug!r} is {bot.status.value}")


class ChatEngine:
    """Chat sessions over a :class:`~boternity.store.Store` and an
    :class:`~boternity.llm.LlmProvider`.

    ``model`` defaults to the provider's. ``max_tokens``/``temperature`` are per reply.
    ``window`` sets the context budget and summarisation; ``recall`` supplies memory lines for
    the prompt; ``extract_every`` user turns a memory-extraction job is queued;
    ``title_attempts`` bounds title generation before the fallback title; ``locks`` overrides
    where session ownership lives (default: :func:`~boternity.chat.liveness.locks_for_store`,
    closed with the engine; locks passed in are the caller's to close);
    ``instructions`` replaces the default ``<instructions>`` text (``{name}`` is the bot's);
    ``worker`` drains the memory-extraction queue while the engine runs (every
    ``worker_interval`` seconds, and for a bot as soon as a session starts with it), never
    inline with a reply. With ``start_worker=False`` its background loop waits for
    :meth:`start_worker` (e.g. after a foreground :meth:`run_queue` at start-up).
    The engine does not own the store or the provider: the caller closes them.
    """

    def __init__(
        self,
        store: Store,
        provider: LlmProvider,
        *,
        model: str | None = None,
        max_tokens: int = 1024,
        temperature: float | None = None,
        window: WindowPolicy | None = None,
        recall: Recall | None = None,
        extract_every: int = 10,
        title_attempts: int = 3,
        title_wait: float = 10.0,
        locks: SessionLocks | None = None,
        instructions: str | None = None,
        worker: QueueWorker | None = None,
        worker_interval: float = 5.0,
        start_worker: bool = True,
    ) -> None:
        if max_tokens < 1:
            raise ValidationError(f"max_tokens must be >= 1, got {max_tokens}")
        if extract_every < 1:
            raise ValidationError(f"extract_every must be >= 1, got {extract_every}")
        if title_attempts < 1:
            raise ValidationError(f"title_attempts must be >= 1, got {title_attempts}")
        self.store = store
        self.provider = provider
        self.model = (model or "").strip() or provider.default_model
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.window_policy = window or WindowPolicy()
        self.recall = recall
        self.extract_every = extract_every
        self.title_attempts = title_attempts
        self.title_wait = title_wait
        self.instructions = instructions
        self._owns_locks = locks is None
        self.locks = locks if locks is not None else locks_for_store(store)
        self.worker = worker
        self.worker_interval = worker_interval
        self._autostart_worker = start_worker
        self._worker_loop: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._live: dict[uuid.UUID, LiveSession] = {}
        self._started = False
        self._start_lock = asyncio.Lock()
        self._closed = False

    # --- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> ChatEngine:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> list[ChatSession]:
        """Recover sessions left active by dead processes (once per engine); returns them."""
        async with self._start_lock:  # sessions started meanwhile wait for the sweep
            if self._started:
                return []
            recovered = await recover_crashed_sessions(self.store, self.locks)
            self._started = True
            if self._autostart_worker:
                self.start_worker()
        if recovered:
            log.info("marked %d crashed session(s)", len(recovered))
        return recovered

    async def close(self) -> None:
        """End every session this engine still has open (completed, final extraction)."""
        self._closed = True
        errors: list[BaseException] = []
        for live in list(self._live.values()):
            try:
                await self.end_session(live)
            except Exception as exc:  # end the others anyway
                log.warning("could not end session %s: %s", live.id, exc)
                errors.append(exc)
        await self.stop_worker()
        if self._owns_locks:
            await self.locks.aclose()
        if errors:
            raise errors[0]

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def live_sessions(self) -> list[LiveSession]:
        return list(self._live.values())

    def _check_open(self) -> None:
        if self._closed:
            raise ConflictError("this ChatEngine is closed")

    # --- the memory-extraction worker ---------------------------------------------------------

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run queue work beside the conversation, owned by the engine until stop_worker()."""
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(_log_failure)
        return task

    def start_worker(self) -> None:
        """Start the worker's background loop (idempotent; nothing without a worker)."""
        if self.worker is None or self._closed:
            return
        if self._worker_loop is None or self._worker_loop.done():
            work = self.worker.run_forever(interval=self.worker_interval)  # survives failed passes
            self._worker_loop = self._spawn(work)

    @property
    def worker_task(self) -> asyncio.Task[None] | None:
        """The worker's background loop, while started (None once stopped)."""
        return self._worker_loop

    async def stop_worker(self) -> None:
        """Stop all background queue work (the loop and passes started for new sessions);
        jobs it had claimed go back to the queue when their lease runs out."""
        self._worker_loop = None
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _worker_or_fail(self) -> QueueWorker:
        if self.worker is None:
            raise ConflictError("this ChatEngine has no memory-extraction worker")
        return self.worker

    async def run_queue(self, *, bot_id: uuid.UUID | None = None) -> QueueReport:
        """One pass over the due jobs (of ``bot_id``'s sessions, or all), now; its report."""
        return await self._worker_or_fail().run_once(bot_id=bot_id)

    async def final_extraction(self, session: LiveSession | ChatSession) -> QueueReport:
        """For leaving: stop the background work, then run the ended session's final job
        (``LiveSession.final_job``, with any other due job of its bot) now; its report. What
        is not done (cancelled, e.g. by a timeout) stays queued."""
        worker = self._worker_or_fail()
        bot_id = session.bot.id if isinstance(session, LiveSession) else session.bot_id
        await self.stop_worker()
        return await worker.run_once(bot_id=bot_id)

    # --- sessions ----------------------------------------------------------------------------

    async def start_session(
        self,
        bot: Bot | uuid.UUID,
        *,
        greet: bool = False,
        model: str | None = None,
        user_id: str | None = None,
    ) -> LiveSession:
        """A new session for an active bot, owned by this process. ``user_id``: the person
        it is with (the application's own key, e.g. "discord:81234"): only their memories and
        the bot's own are recalled, and what is extracted from it is theirs; None for a
        session without a user, which sees only the bot's own memories. With ``greet`` the bot
        opens with an in-character greeting (stored as the first, assistant, message; on a
        provider error there is simply no greeting)."""
        self._check_open()
        await self.start()
        found = await load_bot(self.store, bot.id if isinstance(bot, Bot) else bot)
        _check_available(found)
        session = ChatSession(
            bot_id=found.id, model=(model or "").strip() or self.model, user_id=user_id
        )
        # Own the session before it exists: a recovering process must never see it active
        # with a free lock.
        lock = await self.locks.try_acquire(session.id)
        if lock is None:  # a fresh UUIDv7 is nobody's
            raise SessionBusyError(f"session {session.id} is already locked")
        try:
            created = await self.store.chat.create_session(session)
        except BaseException:
            await lock.release()
            raise
        live = LiveSession(self, created, found, lock, on_end=self._forget)
        self._live[created.id] = live
        if self.worker is not None:  # what this bot's earlier sessions left in the queue
            self._spawn(self.worker.run_once(bot_id=found.id))
        if greet:
            await live.greet()
        return live

    async def resume_session(self, session_id: uuid.UUID) -> LiveSession:
        """Continue a session: its latest summary and the messages after it are the context.
        A session that crashed without being recovered yet is recovered first.
        SessionBusyError if it is live elsewhere."""
        self._check_open()
        await self.start()
        if session_id in self._live:
            raise SessionBusyError(f"session {session_id} is already open in this engine")
        lock = await self.locks.try_acquire(session_id)
        if lock is None:
            raise SessionBusyError(f"session {session_id} is live in another process")
        try:
            return await self._resume_locked(session_id, lock)
        except BaseException:
            await lock.release()
            raise

    async def _resume_locked(self, session_id: uuid.UUID, lock: SessionLock) -> LiveSession:
        chat = self.store.chat
        session = await chat.get_session(session_id)
        if session is None:
            raise NotFoundError(f"chat session {session_id} not found")
        if session.status is SessionStatus.ACTIVE:
            # Its owner is gone (we hold the lock): finish that run first.
            await crash_session(self.store, session_id)
            session = await chat.get_session(session_id)
            if session is None:
                raise NotFoundError(f"chat session {session_id} not found")
        bot = await load_bot(self.store, session.bot_id)
        _check_available(bot)
        summary = await self.store.memory.get_latest_summary(session_id)
        start = summary.messages_end if summary is not None else 0
        window = [m for m in await chat.get_messages(session_id, offset=start) if seq_of(m) > start]
        # The ended run's final extraction covered every message so far.
        last = seq_of(window[-1]) if window else start
        exchange, first_user = None, None
        if session.title is None:
            exchange, first_user = first_exchange(
                await chat.get_messages(session_id, limit=50), failed=(STOP_ERROR, STOP_CANCELLED)
            )
        newest = await chat.get_recent_messages(session_id, 1)
        live = LiveSession(
            self,
            session,
            bot,
            lock,
            on_end=self._forget,
            summary=summary,
            window=window,
            extraction_mark=last,
            activate_on_write=True,
            first_exchange=exchange,
            first_user_text=first_user,
            last_id=newest[-1].id if newest else None,
        )
        self._live[session_id] = live
        return live

    def _forget(self, live: LiveSession) -> None:
        self._live.pop(live.id, None)

    def _own(self, live: LiveSession) -> LiveSession:
        if live.engine is not self:
            raise ValidationError(f"session {live.id} belongs to another ChatEngine")
        return live

    async def end_session(self, live: LiveSession) -> ChatSession:
        """``live.end()``: see :meth:`LiveSession.end`."""
        return await self._own(live).end()

    async def clear_session(self, live: LiveSession) -> int:
        """``live.clear()``: see :meth:`LiveSession.clear`."""
        return await self._own(live).clear()
