"""Who owns a live session, finding sessions whose owner died, and the extraction
high-water mark.

**Ownership.** A live session is held by its process through a :class:`SessionLock` that the
operating system (or the database server) releases by itself when the process dies. The
locks are a capability of the store (``store.session_locks()``), implemented by each backend:
an ``flock`` on ``<db>.sessions/<session_id>.lock`` next to a SQLite database
(``boternity.backends.sqlite.locks``), a session-level advisory lock on one dedicated
connection to a PostgreSQL server (``boternity.backends.postgres.locks``).

A lock can also be lost while its holder lives: the lock file deleted or replaced, the lock
connection terminated (``pg_terminate_backend``, a server restart). The engine asks
``SessionLock.still_held()`` before each write to a session and stops writing (or takes the
lock back, when nobody else used the session meanwhile) instead of interleaving with a
process that took over. This module finds sessions whose owner died
(:func:`recover_crashed_sessions`) and keeps the extraction high-water mark.

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

import logging
import uuid
from dataclasses import replace

from boternity.errors import ConflictError, RepositoryError
from boternity.models import ChatMessage, ChatSession, PendingExtraction, SessionStatus
from boternity.repositories import SessionLock, SessionLocks, Store

__all__ = [
    "EXTRACTED_THROUGH",
    "EXTRACTION_BOUNDARY",
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


def locks_for_store(store: Store) -> SessionLocks:
    """New default locks for a store (``store.session_locks()``): lock files next to a SQLite
    database, advisory locks on a dedicated connection to a PostgreSQL one. The caller closes
    them (``aclose``)."""
    return store.session_locks()


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
