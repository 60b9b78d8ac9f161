"""The storage contract every backend implements.

Services (chat engine, memory pipeline, CLI) depend on these Protocols only, never on a
backend module. Every list has a total order: its documented keys, then ``id``.
``limit``/``offset`` are optional and independent (``offset`` without ``limit`` works).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from boternity.models import (
    Bot,
    BotCategory,
    BotStatus,
    ChatMessage,
    ChatSession,
    ContextSummary,
    MemoryEntry,
    MemoryEvent,
    PendingExtraction,
    SoulVersion,
)

DEFAULT_LEASE = timedelta(minutes=5)

_TRAILING = re.compile(r"[\s.!?;:,…]+$")


def fact_key(fact: str) -> str:
    """The form two facts are compared in, by the memory pipeline and the stores alike: case,
    inner whitespace and trailing punctuation do not make a fact new."""
    return _TRAILING.sub("", " ".join(fact.casefold().split()))


@runtime_checkable
class BotRepository(Protocol):
    async def create_bot(self, bot: Bot) -> Bot:
        """Insert a bot. ConflictError on a duplicate slug or id."""
        ...

    async def get_bot(self, bot_id: uuid.UUID) -> Bot | None: ...

    async def get_bot_by_slug(self, slug: str) -> Bot | None: ...

    async def list_bots(
        self,
        *,
        status: BotStatus | str | None = None,
        category: BotCategory | str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[Bot]:
        """Newest first (created_at DESC, id DESC)."""
        ...

    async def update_bot(self, bot: Bot) -> Bot:
        """Write the descriptive fields (name, slug, description, status, category, tags,
        user_id) and bump updated_at. Counters are owned by the store and never rolled back.
        NotFoundError; ConflictError on a slug clash."""
        ...

    async def delete_bot(self, bot_id: uuid.UUID) -> None:
        """Delete a bot and everything it owns. NotFoundError when missing."""
        ...

    async def save_soul(
        self, bot_id: uuid.UUID, content: str, *, message: str | None = None
    ) -> SoulVersion:
        """Append soul version N+1 (sha256 hash) and bump the bot's version_count."""
        ...

    async def get_soul(self, bot_id: uuid.UUID, version: int | None = None) -> SoulVersion | None:
        """The given version, or the latest when None."""
        ...

    async def list_soul_versions(self, bot_id: uuid.UUID) -> list[SoulVersion]:
        """Version ASC."""
        ...


@runtime_checkable
class ChatRepository(Protocol):
    async def create_session(self, session: ChatSession) -> ChatSession:
        """Insert a session and count it on its bot. NotFoundError for a missing bot."""
        ...

    async def get_session(self, session_id: uuid.UUID) -> ChatSession | None: ...

    async def update_session(self, session: ChatSession) -> ChatSession:
        """Write title, status and ended_at only; returns the stored row (with true counters)."""
        ...

    async def list_sessions(
        self, bot_id: uuid.UUID, *, limit: int | None = None, offset: int | None = None
    ) -> list[ChatSession]:
        """started_at DESC, id DESC."""
        ...

    async def delete_session(self, session_id: uuid.UUID) -> None:
        """Cascades to messages, summaries and queue jobs; memories survive, detached."""
        ...

    async def get_active_sessions(self, bot_id: uuid.UUID) -> list[ChatSession]:
        """Sessions with status active, started_at DESC, id DESC."""
        ...

    async def get_session_by_key(self, bot_id: uuid.UUID, key: str) -> ChatSession | None:
        """The bot's session stored under ``key`` (an integration's own session id), if any."""
        ...

    async def get_or_create_session_by_key(self, session: ChatSession, key: str) -> ChatSession:
        """The session of ``session.bot_id`` stored under ``key``; when there is none, insert
        ``session`` under that key (as create_session would) and return it. A key names at most
        one session per bot, and concurrent callers (any task or process) all get the same
        one. Deleting the session frees its key. NotFoundError for a missing bot."""
        ...

    async def save_message(self, message: ChatMessage) -> ChatMessage:
        """One transaction: assign seq, insert, bump the session's counters and totals and
        last_activity_at, and the bot's token total. Returns the message with its seq."""
        ...

    async def save_messages(self, messages: Sequence[ChatMessage]) -> list[ChatMessage]:
        """Save several messages in one transaction, in order, each exactly as save_message
        would: all are stored or none is. Returns them with their seq."""
        ...

    async def pop_message(self, session_id: uuid.UUID) -> ChatMessage | None:
        """One transaction: delete the session's latest message (highest seq), decrement
        message_count, and delete the context summaries that cover it; None when the session
        has no messages. seq stays gap-free: the next message saved gets the popped seq.
        Token totals are kept (as by clear_messages). NotFoundError for a missing session."""
        ...

    async def get_message(self, message_id: uuid.UUID) -> ChatMessage | None: ...

    async def get_messages(
        self, session_id: uuid.UUID, *, limit: int | None = None, offset: int | None = None
    ) -> list[ChatMessage]:
        """seq ASC."""
        ...

    async def get_recent_messages(self, session_id: uuid.UUID, limit: int) -> list[ChatMessage]:
        """The last ``limit`` messages, seq ASC."""
        ...

    async def get_message_count(self, session_id: uuid.UUID) -> int:
        """Messages currently in the session (0 for an unknown session)."""
        ...

    async def clear_messages(self, session_id: uuid.UUID) -> int:
        """One transaction: delete the messages, summaries and queued extraction jobs of the
        session and reset message_count; token totals are kept. Returns messages deleted."""
        ...

    async def count_sessions(self) -> int: ...

    async def count_messages(self) -> int: ...


@runtime_checkable
class MemoryRepository(Protocol):
    async def save_memory(self, entry: MemoryEntry, *, unique: bool = False) -> MemoryEntry:
        """NotFoundError when the bot, session, source message or superseding memory is
        missing; ValidationError when the session or message belongs elsewhere. ``unique``:
        ConflictError when the bot has a live memory of the same fact (``fact_key``), checked
        and inserted as one step per bot, so concurrent savers cannot both succeed."""
        ...

    async def get_memory(self, memory_id: uuid.UUID) -> MemoryEntry | None: ...

    async def get_memories(
        self,
        bot_id: uuid.UUID,
        *,
        limit: int | None = None,
        include_superseded: bool = False,
    ) -> list[MemoryEntry]:
        """importance DESC, created_at DESC, id DESC."""
        ...

    async def delete_memory(self, memory_id: uuid.UUID) -> None: ...

    async def delete_all_memories(self, bot_id: uuid.UUID) -> int: ...

    async def search_memories(
        self,
        bot_id: uuid.UUID,
        query: str,
        *,
        limit: int = 10,
        include_superseded: bool = False,
    ) -> list[MemoryEntry]:
        """Full-text search over the bot's memory facts, best match first (ties: importance
        DESC, created_at DESC, id DESC). A fact matches when it shares any word with the
        query (stop words aside). Any string is a valid query: quotes, operators and
        punctuation are treated as text, never as syntax."""
        ...

    async def get_memory_history(self, memory_id: uuid.UUID) -> list[MemoryEvent]:
        """Every recorded change to the memory, oldest first (created_at, id); still there
        after the memory is deleted."""
        ...

    async def get_memories_by_session(self, session_id: uuid.UUID) -> list[MemoryEntry]:
        """created_at ASC, id ASC (superseded ones included: this is provenance)."""
        ...

    async def supersede_memory(self, old_id: uuid.UUID, new: MemoryEntry) -> MemoryEntry:
        """Insert ``new`` and point the old memory at it, in one transaction."""
        ...

    async def save_pending_extraction(self, pending: PendingExtraction) -> PendingExtraction: ...

    async def get_pending_extractions(self, bot_id: uuid.UUID) -> list[PendingExtraction]:
        """Jobs not yet exhausted, next_attempt_at ASC, id ASC."""
        ...

    async def list_pending_extractions(
        self, *, bot_id: uuid.UUID | None = None
    ) -> list[PendingExtraction]:
        """Every job, exhausted ones included, next_attempt_at ASC, id ASC."""
        ...

    async def get_pending_extraction(self, pending_id: uuid.UUID) -> PendingExtraction | None: ...

    async def delete_pending_extraction(self, pending_id: uuid.UUID) -> None: ...

    async def update_pending_extraction(self, pending: PendingExtraction) -> PendingExtraction:
        """Write attempt_count, last_attempt_at, next_attempt_at and error_message."""
        ...

    async def claim_pending_extractions(
        self,
        *,
        limit: int = 10,
        lease: timedelta = DEFAULT_LEASE,
        now: datetime | None = None,
        bot_id: uuid.UUID | None = None,
    ) -> list[PendingExtraction]:
        """Atomically take due, non-exhausted jobs: attempt_count += 1, last_attempt_at = now,
        next_attempt_at = now + lease. Two claimers never get the same job."""
        ...

    async def complete_extraction(
        self,
        pending_id: uuid.UUID,
        memories: Sequence[MemoryEntry],
        *,
        supersedes: Mapping[uuid.UUID, uuid.UUID] | None = None,
    ) -> list[MemoryEntry]:
        """Save the memories (``supersedes`` maps a new memory's id to the live memory it
        replaces) and delete the job, in one transaction. NotFoundError if the job is gone.

        A memory whose fact its bot already holds live (or earlier in the batch; compared by
        ``fact_key``) is skipped with its supersession, checked and inserted as one step per
        bot, so concurrent workers never save a fact twice. Returns the memories saved."""
        ...

    async def save_context_summary(self, summary: ContextSummary) -> ContextSummary: ...

    async def get_latest_summary(self, session_id: uuid.UUID) -> ContextSummary | None:
        """The summary covering the highest messages_end."""
        ...

    async def list_summaries(self, session_id: uuid.UUID) -> list[ContextSummary]:
        """messages_end ASC, created_at ASC, id ASC."""
        ...
