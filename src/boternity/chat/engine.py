"""``ChatEngine``: session lifecycle, streaming turns, titles, the context window, liveness.

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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Sequence
from dataclasses import replace
from typing import Any, Protocol

from boternity.chat import prompt as prompts
from boternity.chat.liveness import (
    EXTRACTED_THROUGH,
    EXTRACTION_BOUNDARY,
    SessionBusyError,
    SessionLock,
    SessionLocks,
    crash_session,
    enqueue_extraction,
    locks_for_store,
    recover_crashed_sessions,
)
from boternity.chat.titles import clean_title, fallback_title, title_request
from boternity.chat.window import (
    WindowPolicy,
    conversation_limit,
    fold_count,
    request_tokens,
    summary_request,
)
from boternity.errors import ConflictError, NotFoundError, SessionLostError, ValidationError
from boternity.ids import utc_now
from boternity.llm.base import (
    ChatTurn,
    CompletionRequest,
    LlmProvider,
    StreamCollector,
    TextDelta,
)
from boternity.models import (
    Bot,
    BotStatus,
    ChatMessage,
    ChatSession,
    ContextSummary,
    MessageRole,
    SessionStatus,
)
from boternity.store import Store

__all__ = [
    "STOP_CANCELLED",
    "STOP_ERROR",
    "BotUnavailableError",
    "ChatEngine",
    "LiveSession",
    "Recall",
    "Turn",
]

log = logging.getLogger(__name__)

#: Tokens reserved for the text around a summary in its turn (see prompt.summary_turn).
_SUMMARY_WRAP = 32

#: stop_reason of a reply cut short by a provider error / by cancellation.
STOP_ERROR = "error"
STOP_CANCELLED = "cancelled"


class BotUnavailableError(ConflictError):
    """The bot is disabled or archived: no new conversations."""


BotUnavailableError.__module__ = "boternity.chat"


class QueueWorker(Protocol):
    """Processes the memory-extraction queue (``boternity.memory.ExtractionWorker``)."""

    async def run_once(self, *, bot_id: uuid.UUID | None = None) -> object: ...

    async def run_forever(
        self, *, interval: float = 5.0, bot_id: uuid.UUID | None = None
    ) -> None: ...


class Recall(Protocol):
    """Recalled memories for a turn: text lines for the ``<memories>`` section, given the bot
    and what the user just said. The memory pipeline provides one; the default is none."""

    async def __call__(self, bot: Bot, user_text: str, /) -> Sequence[str]: ...


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("memory queue work failed: %s", task.exception())


def _seq(message: ChatMessage) -> int:
    assert message.seq is not None, "stored messages have a seq"
    return message.seq


class Turn:
    """One user turn being answered, running in a task owned by its session.

    Iterate it (once) for the reply's text as it streams; ``await`` it for the stored
    assistant message. A failed reply raises the provider's error from both, after its
    partial text (if any) was stored; ``reply`` then holds that partial message. If nobody
    iterates, the turn still runs to the end and is stored.

    To stop a reply (Ctrl+C), call :meth:`cancel`: what streamed so far is stored with
    stop_reason "cancelled", and iterating or awaiting raises ``asyncio.CancelledError`` (as
    awaiting any cancelled task does). A consumer that merely stops iterating does not stop
    the reply.
    """

    def __init__(self) -> None:
        self._deltas: asyncio.Queue[str | None] = asyncio.Queue()
        self._task: asyncio.Task[ChatMessage] | None = None
        self.user_message: ChatMessage | None = None
        self.reply: ChatMessage | None = None

    @property
    def task(self) -> asyncio.Task[ChatMessage]:
        assert self._task is not None
        return self._task

    def _push(self, text: str) -> None:
        self._deltas.put_nowait(text)

    def _finish(self) -> None:
        self._deltas.put_nowait(None)

    def __aiter__(self) -> AsyncIterator[str]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[str]:
        while (piece := await self._deltas.get()) is not None:
            yield piece
        self._deltas.put_nowait(None)  # a second iteration ends at once
        await self.task  # raises the turn's error, if any

    def __await__(self) -> Generator[Any, None, ChatMessage]:
        return self.task.__await__()

    def cancel(self) -> None:
        """Stop the reply (see the class docstring)."""
        self.task.cancel()

    def done(self) -> bool:
        return self.task.done()


class LiveSession:
    """A session owned by this process. Create through ``ChatEngine.start_session`` or
    ``resume_session``; finish with ``end()`` (or ``ChatEngine.close()``)."""

    def __init__(
        self,
        engine: ChatEngine,
        session: ChatSession,
        bot: Bot,
        lock: SessionLock,
        *,
        summary: ContextSummary | None,
        window: list[ChatMessage],
        extraction_mark: int,
        activate_on_write: bool,
        first_exchange: tuple[str, str] | None,
        first_user_text: str | None,
    ) -> None:
        self._engine = engine
        self.session = session
        self.bot = bot
        self.greeting: ChatMessage | None = None
        self._lock = lock
        #: The latest summary and the messages after it: the context of the next request.
        self.summary = summary
        self.window = window
        #: Messages 1..extraction_mark are covered by queued (or done) extraction jobs.
        self.extraction_mark = extraction_mark
        self.user_turns_since_mark = 0
        # A resumed session that had ended stays as it was until a new message is written
        # (see liveness: its final job covered everything up to now).
        self._activate_on_write = activate_on_write
        self._first_exchange = first_exchange
        self._first_user_text = first_user_text
        self._title_failures = 0
        self._title_task: asyncio.Task[None] | None = None
        self._turns: set[asyncio.Task[ChatMessage]] = set()
        self._turn_lock = asyncio.Lock()
        self._row_lock = asyncio.Lock()
        self._ending = False
        self.ended = False
        #: The id of the newest message in the transcript as this process last saw it, to
        #: tell whether anyone else wrote while the lock was lost.
        self._last_id: uuid.UUID | None = None
        #: Set once ownership was lost to another process: nothing is written any more.
        self._lost: SessionLostError | None = None

    @property
    def id(self) -> uuid.UUID:
        return self.session.id

    def send(self, text: str) -> Turn:
        """Send a user message; returns the :class:`Turn` streaming the reply. Turns of one
        session run one after another, in the order they were sent."""
        return self._engine._send(self, text)

    async def ask(self, text: str) -> ChatMessage:
        """Send and wait for the stored reply (no streaming)."""
        return await self.send(text)

    async def end(self) -> ChatSession:
        return await self._engine.end_session(self)

    def __repr__(self) -> str:
        return f"LiveSession({self.id}, bot={self.bot.slug!r}, ended={self.ended})"


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
    inline with a reply.
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
            if self.worker is not None:
                self._spawn(self.worker.run_forever(interval=self.worker_interval))
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
        await self._stop_background()
        if self._owns_locks:
            await self.locks.aclose()
        if errors:
            raise errors[0]

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run queue work beside the conversation, owned by the engine until close()."""
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(_log_failure)

    async def _stop_background(self) -> None:
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def live_sessions(self) -> list[LiveSession]:
        return list(self._live.values())

    def _check_open(self) -> None:
        if self._closed:
            raise ConflictError("this ChatEngine is closed")

    async def _bot(self, bot: Bot | uuid.UUID) -> Bot:
        bot_id = bot.id if isinstance(bot, Bot) else bot
        found = await self.store.bots.get_bot(bot_id)
        if found is None:
            raise NotFoundError(f"bot {bot_id} not found")
        return found

    async def start_session(
        self, bot: Bot | uuid.UUID, *, greet: bool = False, model: str | None = None
    ) -> LiveSession:
        """A new session for an active bot, owned by this process. With ``greet`` the bot
        opens with an in-character greeting (stored as the first, assistant, message; on a
        provider error there is simply no greeting)."""
        self._check_open()
        await self.start()
        found = await self._bot(bot)
        if found.status is not BotStatus.ACTIVE:
            raise BotUnavailableError(f"bot {found.slug!r} is {found.status.value}")
        session = ChatSession(bot_id=found.id, model=(model or "").strip() or self.model)
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
        live = LiveSession(
            self,
            created,
            found,
            lock,
            summary=None,
            window=[],
            extraction_mark=0,
            activate_on_write=False,
            first_exchange=None,
            first_user_text=None,
        )
        self._live[created.id] = live
        if self.worker is not None:  # what this bot's earlier sessions left in the queue
            self._spawn(self.worker.run_once(bot_id=found.id))
        if greet:
            await self._greet(live)
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
        bot = await self._bot(session.bot_id)
        if bot.status is not BotStatus.ACTIVE:
            raise BotUnavailableError(f"bot {bot.slug!r} is {bot.status.value}")
        summary = await self.store.memory.get_latest_summary(session_id)
        start = summary.messages_end if summary is not None else 0
        window = [m for m in await chat.get_messages(session_id, offset=start) if _seq(m) > start]
        # The ended run's final extraction covered every message so far.
        last = _seq(window[-1]) if window else start
        first_exchange, first_user = None, None
        if session.title is None:
            first_exchange, first_user = _first_exchange(
                await chat.get_messages(session_id, limit=50)
            )
        newest = await chat.get_recent_messages(session_id, 1)
        live = LiveSession(
            self,
            session,
            bot,
            lock,
            summary=summary,
            window=window,
            extraction_mark=last,
            activate_on_write=True,
            first_exchange=first_exchange,
            first_user_text=first_user,
        )
        live._last_id = newest[-1].id if newest else None
        self._live[session_id] = live
        return live

    async def end_session(self, live: LiveSession) -> ChatSession:
        """Finish a session: wait for its turns and title, mark it ``completed`` (ended now),
        queue the final extraction of the messages not yet covered, release ownership."""
        if live._engine is not self:
            raise ValidationError(f"session {live.id} belongs to another ChatEngine")
        if live.ended:
            return live.session
        live._ending = True
        try:
            if live._lost is not None:
                # Not ours any more: whoever took it over ends it. Nothing is written.
                if live._turns:
                    await asyncio.gather(*live._turns, return_exceptions=True)
                if live._title_task is not None:
                    live._title_task.cancel()
                    await asyncio.gather(live._title_task, return_exceptions=True)
                return live.session
            if live._turns:
                await asyncio.gather(*live._turns, return_exceptions=True)
            await self._settle_title(live)
            async with live._turn_lock:
                # A resumed session nobody wrote to stays as it had ended.
                if not live._activate_on_write:
                    await self._update_row(live, status=SessionStatus.COMPLETED, ended_at=utc_now())
                    last = _seq(live.window[-1]) if live.window else live.extraction_mark
                    await enqueue_extraction(
                        self.store, live.session, live.extraction_mark + 1, last
                    )
                    live.extraction_mark = max(live.extraction_mark, last)
        finally:
            live.ended = True
            self._live.pop(live.id, None)
            await live._lock.release()
        return live.session

    async def clear_session(self, live: LiveSession) -> int:
        """Delete the session's messages, summaries and queued extraction jobs (the store's
        ``clear_messages``) and start its context afresh; seqs start again at 1. Returns the
        number of messages deleted. Memories already extracted are kept."""
        if live._engine is not self:
            raise ValidationError(f"session {live.id} belongs to another ChatEngine")
        if live.ended or live._ending:
            raise ConflictError(f"session {live.id} has ended")
        async with live._turn_lock:
            await self._ensure_owned(live)
            deleted = await self.store.chat.clear_messages(live.id)
            live._last_id = None
            live.summary = None
            live.window = []
            live.extraction_mark = 0
            live.user_turns_since_mark = 0
            live.greeting = None
            return deleted

    # --- ownership ---------------------------------------------------------------------------

    async def _ensure_owned(self, live: LiveSession) -> None:
        """Called before every write to a session: SessionLostError unless this process still
        owns it. A lock lost behind our back (lock file removed, lock connection terminated)
        is taken back only if it is free and nobody touched the session meanwhile; otherwise
        another process may be writing to it, and two writers must never interleave."""
        if live._lost is not None:
            raise live._lost
        lock = live._lock
        if await lock.still_held():
            return
        if await lock.reacquire():
            if await self._untouched(live):
                log.warning("session %s: its lock was lost and has been taken back", live.id)
                return
            await lock.release()
        live._lost = SessionLostError(
            f"session {live.id} was taken over by another process after this one lost its"
            " lock; nothing more is written to it here (resume it to go on)"
        )
        raise live._lost

    async def _untouched(self, live: LiveSession) -> bool:
        """True when the session is as this process left it: same status and end, and the
        same newest message (another owner marks it crashed, or writes, or ends it)."""
        current = await self.store.chat.get_session(live.id)
        newest = await self.store.chat.get_recent_messages(live.id, 1)
        return (
            current is not None
            and current.status is live.session.status
            and current.ended_at == live.session.ended_at
            and (newest[-1].id if newest else None) == live._last_id
        )

    # --- session row -------------------------------------------------------------------------

    async def _update_row(self, live: LiveSession, **changes: Any) -> None:
        # update_session writes title, status and ended_at together: apply each change to the
        # newest snapshot, one writer at a time, so a title can't roll a status back.
        async with live._row_lock:
            await self._ensure_owned(live)
            live.session = await self.store.chat.update_session(replace(live.session, **changes))

    async def _save(
        self, live: LiveSession, message: ChatMessage, *, boundary: bool = False
    ) -> ChatMessage:
        meta = dict(message.metadata or {})
        meta[EXTRACTED_THROUGH] = live.extraction_mark
        if boundary:
            meta[EXTRACTION_BOUNDARY] = True
        await self._ensure_owned(live)
        # Stamped when written, not when sent: a turn queued behind another must not move
        # last_activity_at backwards.
        saved = await self.store.chat.save_message(
            replace(message, metadata=meta, created_at=utc_now())
        )
        live._last_id = saved.id
        live.window.append(saved)
        if live._activate_on_write:
            # Written first, then activated: a crash in between leaves the session ended
            # (never two overlapping final extractions).
            live._activate_on_write = False
            await self._update_row(live, status=SessionStatus.ACTIVE, ended_at=None)
        return saved

    # --- greeting ----------------------------------------------------------------------------

    async def _greet(self, live: LiveSession) -> None:
        soul = await self.store.bots.get_soul(live.bot.id)
        system = prompts.build_system_prompt(
            bot=live.bot,
            soul=soul.content if soul else None,
            model=live.session.model,
            instructions=self.instructions,
        )
        request = CompletionRequest(
            model=live.session.model,
            system=system,
            messages=[ChatTurn("user", prompts.GREETING_REQUEST)],
            max_tokens=min(self.max_tokens, 256),
            temperature=self.temperature,
            purpose="greeting",
        )
        started = time.monotonic()
        try:
            completion = await self.provider.complete(request)
        except Exception as exc:
            log.warning("greeting for session %s failed: %s", live.id, exc)
            return
        if not completion.text.strip():
            return
        async with live._turn_lock:
            live.greeting = await self._save(
                live,
                ChatMessage(
                    session_id=live.id,
                    role=MessageRole.ASSISTANT,
                    content=completion.text.strip(),
                    input_tokens=completion.input_tokens,
                    output_tokens=completion.output_tokens,
                    model=completion.model,
                    stop_reason=completion.stop_reason,
                    response_ms=round((time.monotonic() - started) * 1000),
                ),
            )

    # --- turns -------------------------------------------------------------------------------

    def _send(self, live: LiveSession, text: str) -> Turn:
        if live._lost is not None:
            raise live._lost
        if live.ended or live._ending:
            raise ConflictError(f"session {live.id} has ended")
        self._check_open()
        if not isinstance(text, str) or not text.strip():
            raise ValidationError("a message must not be empty")
        # Validates the text (NUL, lone surrogates) before anything runs.
        message = ChatMessage(session_id=live.id, role=MessageRole.USER, content=text)
        turn = Turn()
        task = asyncio.get_running_loop().create_task(self._run_turn(live, message, turn))
        turn._task = task
        live._turns.add(task)
        task.add_done_callback(_turn_done(live))
        return turn

    async def _run_turn(self, live: LiveSession, message: ChatMessage, turn: Turn) -> ChatMessage:
        try:
            async with live._turn_lock:
                return await self._answer(live, message, turn)
        finally:
            turn._finish()

    async def _answer(self, live: LiveSession, message: ChatMessage, turn: Turn) -> ChatMessage:
        bot = await self._bot(live.bot.id)
        live.bot = bot
        # Committed before the provider is called: a crash from here on loses nothing said.
        turn.user_message = await self._save(live, message)
        live.user_turns_since_mark += 1
        if live._first_user_text is None:
            live._first_user_text = message.content
        request = await self._request(live, bot, message.content)
        model = live.session.model
        collector = StreamCollector(model)
        started = time.monotonic()
        try:
            # aclosing: a cancelled turn closes the provider's stream (and its connection) now.
            async with contextlib.aclosing(self.provider.stream(request)) as events:
                async for event in events:
                    collector.add(event)
                    if isinstance(event, TextDelta) and event.text:
                        turn._push(event.text)
        except BaseException as exc:
            stop = STOP_CANCELLED if isinstance(exc, asyncio.CancelledError) else STOP_ERROR
            # What the user saw is what was streamed to them.
            partial = collector.text
            tokens_in = max(collector.input_tokens, getattr(exc, "input_tokens", 0) or 0)
            tokens_out = max(collector.output_tokens, getattr(exc, "output_tokens", 0) or 0)
            if partial.strip():
                turn.reply = await self._save_reply(
                    live,
                    ChatMessage(
                        session_id=live.id,
                        role=MessageRole.ASSISTANT,
                        content=partial,
                        input_tokens=tokens_in,
                        output_tokens=tokens_out,
                        model=model,
                        stop_reason=stop,
                        response_ms=round((time.monotonic() - started) * 1000),
                    ),
                )
            raise
        completion = collector.completion()
        turn.reply = await self._save_reply(
            live,
            ChatMessage(
                session_id=live.id,
                role=MessageRole.ASSISTANT,
                content=completion.text,
                input_tokens=completion.input_tokens,
                output_tokens=completion.output_tokens,
                model=model,
                stop_reason=completion.stop_reason,
                response_ms=round((time.monotonic() - started) * 1000),
            ),
        )
        if completion.text.strip():
            if live._first_exchange is None:
                live._first_exchange = (message.content, completion.text)
            self._maybe_title(live)
        return turn.reply

    async def _save_reply(self, live: LiveSession, reply: ChatMessage) -> ChatMessage:
        """Store a reply; every ``extract_every`` user turns it closes an extraction range."""
        boundary = live.user_turns_since_mark >= self.extract_every
        saved = await self._save(live, reply, boundary=boundary)
        if boundary:
            await enqueue_extraction(
                self.store, live.session, live.extraction_mark + 1, _seq(saved)
            )
            live.extraction_mark = _seq(saved)
            live.user_turns_since_mark = 0
        return saved

    # --- the request: prompt, recall, window --------------------------------------------------

    async def _memories(self, bot: Bot, text: str) -> list[str]:
        if self.recall is None:
            return []
        try:
            return [str(line) for line in await self.recall(bot, text)]
        except Exception as exc:  # a memory problem must not cost the user their reply
            log.warning("memory recall failed for bot %s: %s", bot.id, exc)
            return []

    async def _request(self, live: LiveSession, bot: Bot, text: str) -> CompletionRequest:
        soul_version = await self.store.bots.get_soul(bot.id)
        soul = soul_version.content if soul_version else None
        memories = await self._memories(bot, text)
        model = live.session.model
        policy = self.window_policy
        limit = conversation_limit(self.provider, model, max_tokens=self.max_tokens, policy=policy)

        def build(
            summary: ContextSummary | None, messages: Sequence[ChatMessage]
        ) -> CompletionRequest:
            return prompts.build_request(
                bot=bot,
                soul=soul,
                model=model,
                messages=messages,
                memories=memories,
                summary=summary,
                instructions=self.instructions,
                max_tokens=self.max_tokens,
                temperature=self.temperature,
            )

        def size(request: CompletionRequest) -> int:
            return request_tokens(self.provider, request, policy)

        request = build(live.summary, live.window)
        if size(request) <= limit:
            return request
        # The system prompt, plus the summary turn's wrapper text and turn overhead.
        fixed = self.provider.count_tokens(build(live.summary, []).system or "") + _SUMMARY_WRAP
        sizes = [
            self.provider.count_tokens(m.content) + policy.message_overhead for m in live.window
        ]
        count = fold_count(sizes, fixed=fixed, limit=limit, policy=policy)
        if count:
            try:
                await self._fold(live, count)
            except Exception as exc:
                # Keep the reply going; the fold is tried again on the next turn.
                log.warning("summarising session %s failed: %s", live.id, exc)
        request = build(live.summary, live.window)
        messages = list(live.window)
        while size(request) > limit and len(messages) > 1:
            # Still too big (failed fold, long recent messages): leave the oldest out of this
            # request only. They stay stored and are folded into a summary later.
            messages.pop(0)
            request = build(live.summary, messages)
        if size(request) > limit:
            log.warning(
                "session %s: request of ~%d tokens exceeds the budget of %d",
                live.id,
                size(request),
                limit,
            )
        return request

    async def _fold(self, live: LiveSession, count: int) -> ContextSummary:
        """Fold the ``count`` oldest window messages, with the previous summary, into a new
        summary covering ``previous.messages_end + 1 .. last folded seq``."""
        folded = live.window[:count]
        previous = live.summary
        start = previous.messages_end + 1 if previous is not None else 1
        completion = await self.provider.complete(
            summary_request(
                live.session.model,
                previous.summary if previous is not None else None,
                folded,
                max_tokens=self.window_policy.summary_max_tokens,
            )
        )
        text = completion.text.strip()
        if not text:
            raise ValidationError("the model returned an empty summary")
        await self._ensure_owned(live)
        summary = await self.store.memory.save_context_summary(
            ContextSummary(
                session_id=live.id,
                summary=text,
                messages_start=min(start, _seq(folded[0])),
                messages_end=_seq(folded[-1]),
                token_count=self.provider.count_tokens(text),
            )
        )
        live.summary = summary
        live.window = live.window[count:]
        return summary

    # --- titles --------------------------------------------------------------------------------

    def _maybe_title(self, live: LiveSession) -> None:
        if live.session.title is not None or live._first_exchange is None or live._ending:
            return
        if live._title_task is not None and not live._title_task.done():
            return
        if live._title_failures >= self.title_attempts:
            return
        user_text, reply_text = live._first_exchange
        # Owned by the session: awaited (or cancelled) when it ends.
        live._title_task = asyncio.get_running_loop().create_task(
            self._make_title(live, user_text, reply_text)
        )

    async def _make_title(self, live: LiveSession, user_text: str, reply_text: str) -> None:
        try:
            completion = await self.provider.complete(
                title_request(live.session.model, user_text, reply_text)
            )
            title = clean_title(completion.text) or fallback_title(user_text)
        except Exception as exc:
            live._title_failures += 1
            log.warning(
                "title for session %s failed (attempt %d of %d): %s",
                live.id,
                live._title_failures,
                self.title_attempts,
                exc,
            )
            if live._title_failures < self.title_attempts:
                return  # tried again after the next reply
            title = fallback_title(user_text)
        if live.session.title is None:
            await self._update_row(live, title=title)

    async def _settle_title(self, live: LiveSession) -> None:
        task = live._title_task
        if task is not None and not task.done():
            done, _ = await asyncio.wait({task}, timeout=self.title_wait)
            if not done:
                task.cancel()
        if task is not None:
            with contextlib.suppress(BaseException):
                await task
        if live.session.title is None and live._first_user_text is not None:
            await self._update_row(live, title=fallback_title(live._first_user_text))


def _turn_done(live: LiveSession) -> Callable[[asyncio.Task[ChatMessage]], None]:
    def done(task: asyncio.Task[ChatMessage]) -> None:
        live._turns.discard(task)
        # The error belongs to whoever awaits the Turn; mark it seen so an unawaited turn
        # doesn't log "exception was never retrieved" (it is stored and logged here instead).
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.debug("turn in session %s failed: %s", live.id, exc)

    return done


def _first_exchange(
    messages: Sequence[ChatMessage],
) -> tuple[tuple[str, str] | None, str | None]:
    """The first user message with a non-empty, non-error reply, and the first user text."""
    first_user: str | None = None
    for i, message in enumerate(messages):
        if message.role is not MessageRole.USER:
            continue
        if first_user is None:
            first_user = message.content
        nxt = messages[i + 1] if i + 1 < len(messages) else None
        if (
            nxt is not None
            and nxt.role is MessageRole.ASSISTANT
            and nxt.content.strip()
            and nxt.stop_reason not in (STOP_ERROR, STOP_CANCELLED)
        ):
            return (message.content, nxt.content), first_user
    return None, first_user
