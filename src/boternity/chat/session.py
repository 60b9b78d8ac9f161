"""``LiveSession``: one session owned by this process, its state, its turns and its writes;
``Turn``: one reply being streamed.

Create sessions with :class:`~boternity.chat.ChatEngine` (``start_session``,
``resume_session``): the engine holds the settings (provider, store, budgets) and the list of
live sessions; everything that happens inside one session is here. Every write to a session
is made after the ownership check (:meth:`LiveSession._ensure_owned`), so a process that lost
its lock never interleaves with the one that took the session over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from boternity.chat import prompt as prompts
from boternity.chat.liveness import (
    EXTRACTED_THROUGH,
    EXTRACTION_BOUNDARY,
    SessionLock,
    enqueue_extraction,
)
from boternity.chat.titles import SessionTitler
from boternity.chat.window import ContextWindow
from boternity.errors import ConflictError, NotFoundError, SessionLostError, ValidationError
from boternity.ids import utc_now
from boternity.llm.base import ChatTurn, CompletionRequest, StreamCollector, TextDelta
from boternity.models import (
    Bot,
    ChatMessage,
    ChatSession,
    ContextSummary,
    MessageRole,
    PendingExtraction,
    SessionStatus,
)
from boternity.store import Store

if TYPE_CHECKING:
    from boternity.chat.engine import ChatEngine

__all__ = [
    "STOP_CANCELLED",
    "STOP_ERROR",
    "LiveSession",
    "Turn",
    "load_bot",
    "seq_of",
]

log = logging.getLogger(__name__)

#: stop_reason of a reply cut short by a provider error / by cancellation.
STOP_ERROR = "error"
STOP_CANCELLED = "cancelled"


def seq_of(message: ChatMessage) -> int:
    """A stored message's seq."""
    assert message.seq is not None, "stored messages have a seq"
    return message.seq


async def load_bot(store: Store, bot_id: uuid.UUID) -> Bot:
    """The bot as stored now; NotFoundError if it is gone."""
    found = await store.bots.get_bot(bot_id)
    if found is None:
        raise NotFoundError(f"bot {bot_id} not found")
    return found


#: What a turn runs: given the turn and a function that streams a piece of reply text.
TurnRunner = Callable[["Turn", Callable[[str], None]], Coroutine[Any, Any, ChatMessage]]


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

    def __init__(self, run: TurnRunner) -> None:
        self._deltas: asyncio.Queue[str | None] = asyncio.Queue()
        self.user_message: ChatMessage | None = None
        self.reply: ChatMessage | None = None
        self._task = asyncio.get_running_loop().create_task(self._run(run))

    async def _run(self, run: TurnRunner) -> ChatMessage:
        try:
            return await run(self, self._deltas.put_nowait)
        finally:
            self._deltas.put_nowait(None)

    @property
    def task(self) -> asyncio.Task[ChatMessage]:
        return self._task

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
    """A session owned by this process: its state, its turns, its writes. Create through
    ``ChatEngine.start_session`` or ``resume_session``; finish with ``end()`` (or
    ``ChatEngine.close()``).

    Every write first checks that this process still owns the session (see
    :meth:`_ensure_owned`); once it was lost, nothing more is written here."""

    def __init__(
        self,
        engine: ChatEngine,
        session: ChatSession,
        bot: Bot,
        lock: SessionLock,
        *,
        on_end: Callable[[LiveSession], None],
        summary: ContextSummary | None = None,
        window: Sequence[ChatMessage] = (),
        extraction_mark: int = 0,
        activate_on_write: bool = False,
        first_exchange: tuple[str, str] | None = None,
        first_user_text: str | None = None,
        last_id: uuid.UUID | None = None,
    ) -> None:
        self._engine = engine
        self._store = engine.store
        self._provider = engine.provider
        self.session = session
        self.bot = bot
        self.greeting: ChatMessage | None = None
        self._lock = lock
        self._on_end = on_end
        #: The latest summary and the messages after it: the context of the next request.
        self.context = ContextWindow(
            engine.provider,
            engine.window_policy,
            session.id,
            save_summary=self._save_summary,
            summary=summary,
            messages=window,
        )
        self.titler = SessionTitler(
            engine.provider,
            session.model,
            attempts=engine.title_attempts,
            wait=engine.title_wait,
            titled=lambda: self.session.title is not None,
            save=lambda title: self._update_row(title=title),
            first_exchange=first_exchange,
            first_user_text=first_user_text,
            label=session.id,
        )
        #: Messages 1..extraction_mark are covered by queued (or done) extraction jobs.
        self.extraction_mark = extraction_mark
        self.user_turns_since_mark = 0
        #: The extraction job ``end()`` queued for the rest of the session (None: nothing
        #: was left to extract, or the session has not ended here).
        self.final_job: PendingExtraction | None = None
        # A resumed session that had ended stays as it was until a new message is written
        # (see liveness: its final job covered everything up to now).
        self._activate_on_write = activate_on_write
        self._turns: set[asyncio.Task[ChatMessage]] = set()
        self._turn_lock = asyncio.Lock()
        self._row_lock = asyncio.Lock()
        self._ending = False
        self.ended = False
        #: The id of the newest message in the transcript as this process last saw it, to
        #: tell whether anyone else wrote while the lock was lost.
        self._last_id = last_id
        #: Set once ownership was lost to another process: nothing is written any more.
        self._lost: SessionLostError | None = None

    @property
    def id(self) -> uuid.UUID:
        return self.session.id

    @property
    def engine(self) -> ChatEngine:
        return self._engine

    @property
    def summary(self) -> ContextSummary | None:
        """The latest summary of the session's older messages."""
        return self.context.summary

    @property
    def window(self) -> list[ChatMessage]:
        """The messages after the latest summary."""
        return self.context.messages

    def __repr__(self) -> str:
        return f"LiveSession({self.id}, bot={self.bot.slug!r}, ended={self.ended})"

    # --- turns -------------------------------------------------------------------------------

    def send(self, text: str) -> Turn:
        """Send a user message; returns the :class:`Turn` streaming the reply. Turns of one
        session run one after another, in the order they were sent."""
        if self._lost is not None:
            raise self._lost
        if self.ended or self._ending:
            raise ConflictError(f"session {self.id} has ended")
        if self._engine.closed:
            raise ConflictError("this ChatEngine is closed")
        if not isinstance(text, str) or not text.strip():
            raise ValidationError("a message must not be empty")
        # Validates the text (NUL, lone surrogates) before anything runs.
        message = ChatMessage(session_id=self.id, role=MessageRole.USER, content=text)

        async def run(turn: Turn, emit: Callable[[str], None]) -> ChatMessage:
            async with self._turn_lock:
                return await self._answer(message, turn, emit)

        turn = Turn(run)
        self._turns.add(turn.task)
        turn.task.add_done_callback(self._turn_done)
        return turn

    async def ask(self, text: str) -> ChatMessage:
        """Send and wait for the stored reply (no streaming)."""
        return await self.send(text)

    def _turn_done(self, task: asyncio.Task[ChatMessage]) -> None:
        self._turns.discard(task)
        # The error belongs to whoever awaits the Turn; mark it seen so an unawaited turn
        # doesn't log "exception was never retrieved" (it is stored and logged here instead).
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.debug("turn in session %s failed: %s", self.id, exc)

    async def _answer(
        self, message: ChatMessage, turn: Turn, emit: Callable[[str], None]
    ) -> ChatMessage:
        bot = await load_bot(self._store, self.bot.id)
        self.bot = bot
        # Committed before the provider is called: a crash from here on loses nothing said.
        turn.user_message = await self._save(message)
        self.user_turns_since_mark += 1
        self.titler.saw_user(message.content)
        request = await self._request(bot, message.content)
        model = self.session.model
        collector = StreamCollector(model)
        started = time.monotonic()

        def reply(text: str, tokens_in: int, tokens_out: int, stop: str) -> ChatMessage:
            return ChatMessage(
                session_id=self.id,
                role=MessageRole.ASSISTANT,
                content=text,
                input_tokens=tokens_in,
                output_tokens=tokens_out,
                model=model,
                stop_reason=stop,
                response_ms=round((time.monotonic() - started) * 1000),
            )

        try:
            # aclosing: a cancelled turn closes the provider's stream (and its connection) now.
            async with contextlib.aclosing(self._provider.stream(request)) as events:
                async for event in events:
                    collector.add(event)
                    if isinstance(event, TextDelta) and event.text:
                        emit(event.text)
        except BaseException as exc:
            stop = STOP_CANCELLED if isinstance(exc, asyncio.CancelledError) else STOP_ERROR
            # What the user saw is what was streamed to them.
            partial = collector.text
            tokens_in = max(collector.input_tokens, getattr(exc, "input_tokens", 0) or 0)
            tokens_out = max(collector.output_tokens, getattr(exc, "output_tokens", 0) or 0)
            if partial.strip():
                turn.reply = await self._save_reply(reply(partial, tokens_in, tokens_out, stop))
            raise
        completion = collector.completion()
        turn.reply = await self._save_reply(
            reply(
                completion.text,
                completion.input_tokens,
                completion.output_tokens,
                completion.stop_reason,
            )
        )
        if completion.text.strip() and not self._ending:
            self.titler.saw_reply(message.content, completion.text)
        return turn.reply

    async def _save_reply(self, reply: ChatMessage) -> ChatMessage:
        """Store a reply; every ``extract_every`` user turns it closes an extraction range."""
        boundary = self.user_turns_since_mark >= self._engine.extract_every
        saved = await self._save(reply, boundary=boundary)
        if boundary:
            await enqueue_extraction(
                self._store, self.session, self.extraction_mark + 1, seq_of(saved)
            )
            self.extraction_mark = seq_of(saved)
            self.user_turns_since_mark = 0
        return saved

    # --- the request: prompt, recall, window --------------------------------------------------

    async def _memories(self, bot: Bot, text: str) -> list[str]:
        recall = self._engine.recall
        if recall is None:
            return []
        try:
            return [str(line) for line in await recall(bot, text, user_id=self.session.user_id)]
        except Exception as exc:  # a memory problem must not cost the user their reply
            log.warning("memory recall failed for bot %s: %s", bot.id, exc)
            return []

    async def _request(self, bot: Bot, text: str) -> CompletionRequest:
        engine = self._engine
        soul_version = await self._store.bots.get_soul(bot.id)
        soul = soul_version.content if soul_version else None
        memories = await self._memories(bot, text)
        model = self.session.model

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
                instructions=engine.instructions,
                max_tokens=engine.max_tokens,
                temperature=engine.temperature,
            )

        return await self.context.request(build, model=model, max_tokens=engine.max_tokens)

    # --- greeting ----------------------------------------------------------------------------

    async def greet(self) -> ChatMessage | None:
        """The bot opens with an in-character greeting, stored as an assistant message (on a
        provider error or an empty reply there is simply no greeting)."""
        engine = self._engine
        soul = await self._store.bots.get_soul(self.bot.id)
        system = prompts.build_system_prompt(
            bot=self.bot,
            soul=soul.content if soul else None,
            model=self.session.model,
            instructions=engine.instructions,
        )
        request = CompletionRequest(
            model=self.session.model,
            system=system,
            messages=[ChatTurn("user", prompts.GREETING_REQUEST)],
            max_tokens=min(engine.max_tokens, 256),
            temperature=engine.temperature,
            purpose="greeting",
        )
        started = time.monotonic()
        try:
            completion = await self._provider.complete(request)
        except Exception as exc:
            log.warning("greeting for session %s failed: %s", self.id, exc)
            return None
        if not completion.text.strip():
            return None
        async with self._turn_lock:
            self.greeting = await self._save(
                ChatMessage(
                    session_id=self.id,
                    role=MessageRole.ASSISTANT,
                    content=completion.text.strip(),
                    input_tokens=completion.input_tokens,
                    output_tokens=completion.output_tokens,
                    model=completion.model,
                    stop_reason=completion.stop_reason,
                    response_ms=round((time.monotonic() - started) * 1000),
                ),
            )
        return self.greeting

    # --- ending and clearing ------------------------------------------------------------------

    async def end(self) -> ChatSession:
        """Finish the session: wait for its turns and title, mark it ``completed`` (ended
        now), queue the final extraction of the messages not yet covered (``final_job``),
        release ownership. A session lost to another process is left to its new owner."""
        if self.ended:
            return self.session
        self._ending = True
        try:
            if self._lost is not None:
                # Not ours any more: whoever took it over ends it. Nothing is written.
                if self._turns:
                    await asyncio.gather(*self._turns, return_exceptions=True)
                await self.titler.cancel()
                return self.session
            if self._turns:
                await asyncio.gather(*self._turns, return_exceptions=True)
            await self.titler.settle()
            async with self._turn_lock:
                # A resumed session nobody wrote to stays as it had ended.
                if not self._activate_on_write:
                    try:
                        await self._update_row(status=SessionStatus.COMPLETED, ended_at=utc_now())
                    except SessionLostError:
                        # Taken over since the last write: as above, its new owner ends it.
                        return self.session
                    window = self.context.messages
                    last = seq_of(window[-1]) if window else self.extraction_mark
                    self.final_job = await enqueue_extraction(
                        self._store, self.session, self.extraction_mark + 1, last
                    )
                    self.extraction_mark = max(self.extraction_mark, last)
        finally:
            self.ended = True
            self._on_end(self)
            await self._lock.release()
        return self.session

    async def clear(self) -> int:
        """Delete the session's messages, summaries and queued extraction jobs (the store's
        ``clear_messages``) and start its context afresh; seqs start again at 1. Returns the
        number of messages deleted. Memories already extracted are kept."""
        if self.ended or self._ending:
            raise ConflictError(f"session {self.id} has ended")
        async with self._turn_lock:
            await self._ensure_owned()
            deleted = await self._store.chat.clear_messages(self.id)
            self._last_id = None
            self.context.reset()
            self.extraction_mark = 0
            self.user_turns_since_mark = 0
            self.greeting = None
            return deleted

    # --- writes, each after the ownership check -----------------------------------------------

    async def _ensure_owned(self) -> None:
        """Called before every write to the session: SessionLostError unless this process
        still owns it. A lock lost behind our back (lock file removed, lock connection
        terminated) is taken back only if it is free and nobody touched the session meanwhile;
        otherwise another process may be writing to it, and two writers must never interleave."""
        if self._lost is not None:
            raise self._lost
        lock = self._lock
        if await lock.still_held():
            return
        if await lock.reacquire():
            if await self._untouched():
                log.warning("session %s: its lock was lost and has been taken back", self.id)
                return
            await lock.release()
        self._lost = SessionLostError(
            f"session {self.id} was taken over by another process after this one lost its"
            " lock; nothing more is written to it here (resume it to go on)"
        )
        raise self._lost

    async def _untouched(self) -> bool:
        """True when the session is as this process left it: same status and end, and the
        same newest message (another owner marks it crashed, or writes, or ends it)."""
        current = await self._store.chat.get_session(self.id)
        newest = await self._store.chat.get_recent_messages(self.id, 1)
        return (
            current is not None
            and current.status is self.session.status
            and current.ended_at == self.session.ended_at
            and (newest[-1].id if newest else None) == self._last_id
        )

    async def _update_row(self, **changes: Any) -> None:
        # update_session writes title, status and ended_at together: apply each change to the
        # newest snapshot, one writer at a time, so a title can't roll a status back.
        async with self._row_lock:
            await self._ensure_owned()
            self.session = await self._store.chat.update_session(replace(self.session, **changes))

    async def _save(self, message: ChatMessage, *, boundary: bool = False) -> ChatMessage:
        meta = dict(message.metadata or {})
        meta[EXTRACTED_THROUGH] = self.extraction_mark
        if boundary:
            meta[EXTRACTION_BOUNDARY] = True
        await self._ensure_owned()
        # Stamped when written, not when sent: a turn queued behind another must not move
        # last_activity_at backwards.
        saved = await self._store.chat.save_message(
            replace(message, metadata=meta, created_at=utc_now())
        )
        self._last_id = saved.id
        self.context.add(saved)
        if self._activate_on_write:
            # Written first, then activated: a crash in between leaves the session ended
            # (never two overlapping final extractions).
            self._activate_on_write = False
            await self._update_row(status=SessionStatus.ACTIVE, ended_at=None)
        return saved

    async def _save_summary(self, summary: ContextSummary) -> ContextSummary:
        await self._ensure_owned()
        return await self._store.memory.save_context_summary(summary)
