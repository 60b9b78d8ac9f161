"""The storage contract every backend implements.

Services (chat engine, memory pipeline, CLI) depend on these Protocols only, never on a
backend module. Every list has a total order: its documented keys, then ``id``.
``limit``/``offset`` are optional and independent (``offset`` without ``limit`` works).
"""

from __future__ import annotations

import enum
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, runtime_checkable

from boternity.errors import ValidationError
from boternity.models import (
    Bot,
    BotCategory,
    BotStatus,
    ChatMessage,
    ChatSession,
    ContextSummary,
    MemoryEntry,
    MemoryEvent,
    MessageHit,
    PendingExtraction,
    SoulVersion,
)

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from boternity.config import DatabaseTarget
    from boternity.embeddings.base import Vector

DEFAULT_LEASE = timedelta(minutes=5)

_TRAILING = re.compile(r"[\s.!?;:,…]+$")


def fact_key(fact: str) -> str:
    """The form two facts are compared in, by the memory pipeline and the stores alike: case,
    inner whitespace and trailing punctuation do not make a fact new."""
    return _TRAILING.sub("", " ".join(fact.casefold().split()))


# --- users: who may see what (docs/users.md) ----------------------------------------------------


class AnyUser(enum.Enum):
    """The type of :data:`ANY_USER`."""

    ANY_USER = "any user"


#: ``user_id=ANY_USER``: every user's rows, for admin listings (``bnity memories``, ``bnity
#: sessions``); never for what goes into a conversation.
ANY_USER: Final = AnyUser.ANY_USER

#: Whose rows a read returns: a user's id, None (no user), or ANY_USER.
UserScope = str | None | Literal[AnyUser.ANY_USER]


def visible(viewer: str | None, owner: str | None) -> bool:
    """The scope rule: a conversation with ``viewer`` (None: a session without a user) sees a
    memory of ``owner`` when the memory is the bot's own (no user) or the viewer's. The stores
    apply it in SQL (``storage/sql.py``: visible_to, select_visible)."""
    return owner is None or owner == viewer


def may_supersede(new_owner: str | None, old_owner: str | None) -> bool:
    """A memory only replaces a memory of the same user, and a user-less one only a user-less
    one: no conversation retires another person's memory, nor a fact about the bot's world
    that every conversation relies on (a user's correction of it is that user's memory)."""
    return new_owner == old_owner


@dataclass(frozen=True, slots=True)
class UserCounts:
    """Rows of one user of one bot, by kind: what :meth:`UserRepository.forget_user` deleted
    or :meth:`UserRepository.count_user` found."""

    sessions: int = 0
    messages: int = 0
    summaries: int = 0
    jobs: int = 0  # queued extraction jobs of the user's sessions
    memories: int = 0
    history: int = 0  # memory-history rows, of deleted memories too
    embeddings: int = 0  # the memories' vectors, of every model

    @property
    def total(self) -> int:
        return (
            self.sessions + self.messages + self.summaries + self.jobs + self.memories
            + self.history + self.embeddings
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class StoredEmbedding:
    """That a memory has a vector of ``model`` (its numbers are derived from the fact, which
    an export holds already)."""

    memory_id: uuid.UUID
    model: str
    dimension: int


@dataclass(frozen=True, slots=True)
class UserData:
    """Everything stored for one user of one bot (a data-subject export): each list in time
    order; messages, summaries and jobs by session, then in session order."""

    bot_id: uuid.UUID
    user_id: str
    sessions: list[ChatSession] = field(default_factory=list)
    messages: list[ChatMessage] = field(default_factory=list)
    summaries: list[ContextSummary] = field(default_factory=list)
    jobs: list[PendingExtraction] = field(default_factory=list)
    memories: list[MemoryEntry] = field(default_factory=list)  # superseded ones included
    history: list[MemoryEvent] = field(default_factory=list)
    embeddings: list[StoredEmbedding] = field(default_factory=list)


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
        """Insert a session (with its user, if any: it never changes) and count it on its bot.
        NotFoundError for a missing bot."""
        ...

    async def get_session(self, session_id: uuid.UUID) -> ChatSession | None: ...

    async def update_session(self, session: ChatSession) -> ChatSession:
        """Write title, status and ended_at only; returns the stored row (with true counters)."""
        ...

    async def list_sessions(
        self,
        bot_id: uuid.UUID,
        *,
        user_id: UserScope = ANY_USER,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[ChatSession]:
        """started_at DESC, id DESC. ``user_id``: only the sessions of exactly that user
        (None: the sessions without a user); ANY_USER: all of them."""
        ...

    async def list_all_sessions(
        self, *, user_id: UserScope = ANY_USER, limit: int | None = None, offset: int | None = None
    ) -> list[ChatSession]:
        """Every bot's sessions in one list (of exactly ``user_id``, as list_sessions),
        started_at DESC, id DESC."""
        ...

    async def get_sessions_by_ids(
        self, session_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, ChatSession]:
        """The sessions among ``session_ids`` that exist, by id, in one query."""
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
        one. Deleting the session frees its key. NotFoundError for a missing bot;
        ConflictError when the key names a session of another user (``session.user_id``)."""
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

    async def get_messages_by_ids(
        self, message_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, ChatMessage]:
        """The messages among ``message_ids`` that exist, by id, in one query."""
        ...

    async def get_first_and_last_messages(
        self, session_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[ChatMessage, ChatMessage]]:
        """Each session's first and last message (the same one when it has one), by session
        id, in one query; sessions without messages (or unknown) are left out."""
        ...

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

    async def count_sessions(self, *, bot_id: uuid.UUID | None = None) -> int:
        """Sessions in the store, or of one bot (a count, not a listing)."""
        ...

    async def count_messages(self) -> int: ...

    async def search_messages(
        self,
        query: str,
        *,
        bot_id: uuid.UUID | None = None,
        user_id: UserScope = ANY_USER,
        limit: int = 20,
    ) -> list[MessageHit]:
        """Full-text search over the messages of every session (of one bot with ``bot_id``;
        of one user's sessions with ``user_id``: a user's transcripts are theirs alone; None:
        the sessions without a user, as everywhere else; ANY_USER, the default: all),
        best match first, then newest (created_at DESC, id DESC). A message matches when it
        shares any word with the query (stop words aside; words are stemmed, and case and
        diacritics folded, as by search_memories); the first SEARCHED_CHARS (50,000)
        characters of each message are searched. Any string is a valid query: quotes,
        operators and punctuation are treated as text, never as syntax. Deleted messages
        (clear_messages, pop_message, deleted sessions and bots) are never found."""
        ...


@runtime_checkable
class MemoryRepository(Protocol):
    async def save_memory(self, entry: MemoryEntry, *, unique: bool = False) -> MemoryEntry:
        """NotFoundError when the bot, session, source message or superseding memory is
        missing; ValidationError when the session or message belongs elsewhere, or to another
        user than ``entry.user_id`` (a memory from a session is the session's user's), or the
        superseding memory is another user's. ``unique``: ConflictError when a conversation
        with the entry's user already sees a live memory of the same fact (``fact_key``),
        checked and inserted as one step per bot, so concurrent savers cannot both succeed."""
        ...

    async def get_memory(self, memory_id: uuid.UUID) -> MemoryEntry | None: ...

    async def get_memories(
        self,
        bot_id: uuid.UUID,
        *,
        user_id: UserScope = None,
        limit: int | None = None,
        include_superseded: bool = False,
    ) -> list[MemoryEntry]:
        """The bot's memories as a conversation with ``user_id`` sees them: that user's and
        the bot's user-less ones; None (a session without a user): only the user-less ones;
        ANY_USER: every memory of the bot (admin listings). importance DESC, created_at DESC,
        id DESC."""
        ...

    async def count_memories(
        self, bot_id: uuid.UUID, *, user_id: UserScope = ANY_USER, include_superseded: bool = False
    ) -> int:
        """How many memories ``get_memories(bot_id, user_id=…)`` would list without a limit;
        by default every memory of the bot, whoever's (a count for admin displays)."""
        ...

    async def delete_memory(self, memory_id: uuid.UUID) -> None: ...

    async def delete_all_memories(self, bot_id: uuid.UUID) -> int:
        """Delete every memory of the bot, whoever's (each deletion is in the history)."""
        ...

    async def search_memories(
        self,
        bot_id: uuid.UUID,
        query: str,
        *,
        user_id: UserScope = None,
        limit: int = 10,
        include_superseded: bool = False,
        match_all: bool = False,
    ) -> list[MemoryEntry]:
        """Full-text search over the bot's memory facts that a conversation with ``user_id``
        sees (as get_memories), best match first (ties: importance DESC, created_at DESC, id
        DESC). A fact matches when it shares any word with the query (stop words aside); with
        ``match_all``, only when it has every one. Any string is a valid query: quotes,
        operators and punctuation are treated as text, never as syntax."""
        ...

    async def get_memory_history(self, memory_id: uuid.UUID) -> list[MemoryEvent]:
        """Every recorded change to the memory, oldest first (created_at, id); still there
        after the memory is deleted."""
        ...

    async def get_memories_by_session(self, session_id: uuid.UUID) -> list[MemoryEntry]:
        """created_at ASC, id ASC (superseded ones included: this is provenance)."""
        ...

    async def supersede_memory(self, old_id: uuid.UUID, new: MemoryEntry) -> MemoryEntry:
        """Insert ``new`` and point the old memory at it, in one transaction. ValidationError
        when the old memory is another user's (``may_supersede``)."""
        ...

    async def save_embeddings(
        self, model: str, embeddings: Sequence[tuple[uuid.UUID, Vector]]
    ) -> int:
        """Store each memory's vector made by ``model`` (one row per memory and model,
        replacing that model's earlier one), in one transaction; returns how many were
        stored (a memory deleted meanwhile is skipped). Vectors are 1-D lists or arrays of
        finite numbers, all of one length (1..16384), kept as unit-length float32.
        ValidationError otherwise. Deleting a memory deletes its embeddings."""
        ...

    async def memories_without_embedding(
        self,
        model: str,
        *,
        bot_id: uuid.UUID | None = None,
        limit: int = 100,
        dimension: int | None = None,
    ) -> list[MemoryEntry]:
        """Up to ``limit`` memories (of one bot, or of every bot) with no vector of
        ``model``: live ones first, then importance DESC, created_at DESC, id. With
        ``dimension``, a vector of another length counts as none (the model changed its
        dimension under one name: those vectors are never searched)."""
        ...

    async def count_without_embedding(
        self, model: str, *, bot_id: uuid.UUID | None = None, dimension: int | None = None
    ) -> int:
        """How many memories (of one bot, or of every bot) have no vector of ``model``
        (of length ``dimension``, when given)."""
        ...

    async def without_embedding_among(
        self, model: str, memory_ids: Iterable[uuid.UUID]
    ) -> set[uuid.UUID]:
        """Those of ``memory_ids`` that have no vector of ``model`` (unknown ids included),
        in one read."""
        ...

    async def live_embeddings(
        self, bot_id: uuid.UUID, model: str, *, user_id: UserScope = None
    ) -> tuple[list[uuid.UUID], NDArray[np.float32]]:
        """The bot's live memories that a conversation with ``user_id`` sees (as
        get_memories) and that have a vector of ``model``: their ids, and their vectors as
        the rows of one float32 matrix (read-only). NotFoundError for a missing bot."""
        ...

    async def nearest_memories(
        self,
        bot_id: uuid.UUID,
        model: str,
        vector: Vector,
        *,
        user_id: UserScope = None,
        limit: int = 10,
        include_superseded: bool = False,
    ) -> list[tuple[MemoryEntry, float]]:
        """The ``limit`` live memories (superseded ones too if asked) that a conversation with
        ``user_id`` sees (as get_memories: that user's and the bot's own; None, the default:
        the bot's own; ANY_USER: all) whose vectors of ``model`` are closest to ``vector`` by
        cosine similarity, with it, closest first.
        Exact, not approximate. The bot's vectors are kept in the process between calls
        and read again when any process changed its memories. Memories without a vector of
        ``model`` are not found. NotFoundError for a missing bot; EmbeddingDimensionError
        when ``vector`` is not as long as the stored ones."""
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
        repeats: Mapping[uuid.UUID, uuid.UUID] | None = None,
    ) -> list[MemoryEntry]:
        """Save the memories (``supersedes`` maps a new memory's id to the live memory it
        replaces, which must be of the same user) and delete the job, in one transaction.
        NotFoundError if the job is gone.

        A memory whose fact a conversation with its user already sees live (or earlier in the
        batch; compared by ``fact_key``) is skipped with its supersession, checked and inserted
        as one step per bot, so concurrent workers never save a fact twice. ``repeats`` maps a
        new memory's id to the live memory it says again in other words (a near-duplicate):
        it is skipped too while its user still sees that memory live, and saved otherwise.
        Each memory skipped for a live one is recorded in that memory's history (``repeated``,
        with its own words and its user). Returns the memories saved."""
        ...

    async def save_context_summary(self, summary: ContextSummary) -> ContextSummary: ...

    async def get_latest_summary(self, session_id: uuid.UUID) -> ContextSummary | None:
        """The summary covering the highest messages_end."""
        ...

    async def list_summaries(self, session_id: uuid.UUID) -> list[ContextSummary]:
        """messages_end ASC, created_at ASC, id ASC."""
        ...


@runtime_checkable
class UserRepository(Protocol):
    """One user's data of one bot, for the requests a deployed bot must answer: what do you
    hold about me (export), and forget me (erasure). ``user_id`` is a user's id, never None."""

    async def count_user(self, bot_id: uuid.UUID, user_id: str) -> UserCounts:
        """What :meth:`forget_user` would delete now."""
        ...

    async def forget_user(self, bot_id: uuid.UUID, user_id: str) -> UserCounts:
        """Delete, in one transaction, the user's sessions with their messages, summaries and
        queued extraction jobs, the user's memories (with their full-text index entries and
        embeddings) and every memory-history row of the user's memories; every process's
        cached vectors drop them at its next search (``memory_changes`` keeps, per erased
        memory, its id alone). Nothing of another user or of the
        bot's own (user-less) memories is touched; the bot's token totals keep what the
        sessions used (as delete_session does). Returns what was deleted (all 0: nothing
        stored)."""
        ...

    async def export_user(self, bot_id: uuid.UUID, user_id: str) -> UserData:
        """Everything :meth:`forget_user` would delete, as models. Several reads: a session
        written meanwhile may be caught half-way."""
        ...


# --- backend capabilities ---------------------------------------------------------------------
# What services need from a backend beyond the repositories. Each backend implements them in
# its own package; nothing above ``boternity.backends`` knows which backend it talks to.


@runtime_checkable
class SessionLock(Protocol):
    """Ownership of one live session, released by itself if the holder dies."""

    @property
    def session_id(self) -> uuid.UUID: ...

    async def release(self) -> None:
        """Give up ownership (idempotent)."""
        ...

    async def still_held(self) -> bool:
        """False when ownership was lost behind the holder's back (the lock file removed or
        replaced, the lock connection gone). Asks the OS or the server, not a cached flag."""
        ...

    async def reacquire(self) -> bool:
        """After a loss: take the lock again if it is free (True), else False. The caller
        checks that nobody used the session meanwhile."""
        ...


@runtime_checkable
class SessionLocks(Protocol):
    """Where session ownership lives (see :mod:`boternity.chat.liveness`): lock files next to
    a SQLite database, advisory locks on a PostgreSQL server. Made by
    :meth:`Store.session_locks`."""

    async def try_acquire(self, session_id: uuid.UUID) -> SessionLock | None:
        """The lock, or None when another holder has it (in any process, this one included).
        Never waits."""
        ...

    async def aclose(self) -> None:
        """Release everything still held and free resources (idempotent)."""
        ...


#: Maintenance a backend may not offer; :meth:`Backend.unsupported` says why not.
MaintenanceOperation = Literal["backup", "integrity_check"]


@dataclass(frozen=True, slots=True)
class ForeignKeyProblem:
    """A row pointing at a parent row that does not exist."""

    table: str
    rowid: int | None
    parent: str
    fk_index: int


@dataclass(frozen=True, slots=True)
class IntegrityReport:
    """What :meth:`Maintenance.integrity_check` found: nothing, when ``ok``."""

    problems: list[str] = field(default_factory=list)
    foreign_keys: list[ForeignKeyProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.foreign_keys


@dataclass(frozen=True, slots=True)
class BackupReport:
    """A finished, checked copy: how many tables it holds."""

    tables: int


@dataclass(frozen=True, slots=True)
class StoreDetails:
    """What a backend can say about its database beyond row counts: ``fields`` (stable names,
    plain JSON values) and the same for people as ``(label, value)`` lines."""

    fields: dict[str, Any] = field(default_factory=dict)
    lines: list[tuple[str, str]] = field(default_factory=list)


@runtime_checkable
class Maintenance(Protocol):
    """Looking after an open store's database: what ``bnity db`` runs."""

    async def table_counts(self) -> dict[str, int]:
        """Rows in every table of the schema, as the database lists them (not a fixed list),
        by table name. Tables the database keeps for its own bookkeeping are left out."""
        ...

    async def details(self) -> StoreDetails:
        """Files and sizes, pages, server version: whatever the backend can tell."""
        ...

    async def integrity_check(self) -> IntegrityReport:
        """Check the whole database (structure, foreign keys), reading only.
        UnsupportedError on a backend that leaves this to its own tools."""
        ...

    async def backup(self, dest: Path) -> BackupReport:
        """Write a consistent, checked copy of the database, as it is now, to ``dest`` (a new
        or empty file; the caller makes the write atomic), while the store stays in use.
        UnsupportedError on a backend that leaves this to its own tools."""
        ...


class Store(Protocol):
    """An open database: four repositories, where they live, and the backend's
    capabilities."""

    @property
    def backend(self) -> str:
        """'sqlite' or 'postgresql': for people to read, never to branch on."""
        ...

    @property
    def bots(self) -> BotRepository: ...

    @property
    def chat(self) -> ChatRepository: ...

    @property
    def memory(self) -> MemoryRepository: ...

    @property
    def users(self) -> UserRepository: ...

    @property
    def schema_version(self) -> int: ...

    @property
    def maintenance(self) -> Maintenance: ...

    @property
    def ids(self) -> IdIndex: ...

    def session_locks(self) -> SessionLocks:
        """New locks for live sessions of this database (the caller closes them with
        ``aclose``): they must end with their holder's process, whatever ends it."""
        ...

    async def close(self) -> None: ...


IdKind = Literal["bot", "session", "memory", "job"]


@runtime_checkable
class IdIndex(Protocol):
    """Ids by prefix, answered from the primary-key index: what resolving a typed id prefix
    and printing unique prefixes need, without listing rows."""

    async def with_prefix(
        self,
        kind: IdKind,
        digits: str,
        *,
        bot_id: uuid.UUID | None = None,
        limit: int = 10,
    ) -> list[uuid.UUID]:
        """Ids of ``kind`` whose 32 hex digits start with ``digits`` (lowercase, no hyphens),
        in id order, at most ``limit``; ``bot_id`` narrows sessions to one bot."""
        ...

    async def neighbours(
        self, kind: IdKind, ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[uuid.UUID | None, uuid.UUID | None]]:
        """For each of ``ids`` (stored or not), the ids of ``kind`` just before and just after
        it in id order, in one query."""
        ...


@dataclass(frozen=True, slots=True)
class StoreOptions:
    """How to open a store (see ``open_store``); checked when built, before anything is
    opened, the same for every backend. Each backend uses those that concern it."""

    durability: Literal["normal", "full"] = "normal"
    readers: int = 4  # SQLite: reader threads
    pool_size: int = 10  # PostgreSQL: connections
    read_url: str | None = None  # PostgreSQL: a read replica for browse reads
    busy_wait: float = 60.0  # seconds to wait for the database before StoreBusyError

    def __post_init__(self) -> None:
        if self.durability not in ("normal", "full"):
            raise ValidationError(f"durability must be 'normal' or 'full', got {self.durability!r}")
        for name in ("readers", "pool_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValidationError(f"{name} must be an int >= 1, got {value!r}")
        if self.read_url is not None and not isinstance(self.read_url, str):
            raise ValidationError(
                f"read_url must be a str or None, got {type(self.read_url).__name__}"
            )
        wait = self.busy_wait
        if isinstance(wait, bool) or not isinstance(wait, int | float) or not wait >= 0:
            raise ValidationError(f"busy_wait must be a number >= 0, got {wait!r}")


@runtime_checkable
class Backend(Protocol):
    """A kind of store, before one is open: how to open it, what it cannot do."""

    @property
    def name(self) -> str: ...

    async def open(self, target: DatabaseTarget, options: StoreOptions) -> Store:
        """Open (creating and migrating if needed) the database ``target`` names."""
        ...

    def unsupported(self, operation: MaintenanceOperation) -> str | None:
        """Why this backend does not offer ``operation`` and what to use instead (no
        connection needed), or None when it does."""
        ...

    def schema_version_on_disk(self, target: DatabaseTarget) -> int | None:
        """Migrations applied to ``target`` before opening it (0 for a new or empty
        database), or None when the backend cannot tell without connecting."""
        ...

    def quick_slugs(self, target: DatabaseTarget, prefix: str, limit: int) -> list[str]:
        """Bot slugs starting with ``prefix`` (at most ``limit``), read at once without
        opening a store, for shell completion; [] when that is not possible quickly."""
        ...

    def own_paths(self, target: DatabaseTarget) -> tuple[set[Path], set[Path]]:
        """``(files, folders)`` on this machine that belong to the database ``target``
        (its file and the files and folders kept beside it, each both as named and
        resolved), which nothing else may write into; empty sets for a server."""
        ...
