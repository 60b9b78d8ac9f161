"""MemoryRepository on PostgreSQL: memories, the extraction queue and context summaries."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from boternity.backends.common import (
    check_id,
    check_limit,
    check_model,
    check_not_remembered,
    check_page,
    claim_window,
    drop_remembered,
    search_terms,
)
from boternity.backends.postgres import rows
from boternity.backends.postgres.pool import Conn, Database, affected
from boternity.errors import ConflictError, NotFoundError, ValidationError
from boternity.ids import new_id, utc_now
from boternity.models import (
    MAX_EXTRACTION_ATTEMPTS,
    ContextSummary,
    MemoryActor,
    MemoryEntry,
    MemoryEvent,
    MemoryEventKind,
    PendingExtraction,
)
from boternity.repositories import DEFAULT_LEASE

_INSERT_MEMORY = (
    f"INSERT INTO session_memories ({rows.MEMORY_COLUMNS}) VALUES ({rows.placeholders(10)})"
)
# Everything a new memory refers to, in one round trip, so errors name what is wrong.
_MEMORY_REFS = (
    "SELECT EXISTS (SELECT 1 FROM bots WHERE id = $1),"
    " (SELECT bot_id FROM chat_sessions WHERE id = $2),"
    " (SELECT session_id FROM chat_messages WHERE id = $3),"
    " (SELECT bot_id FROM chat_messages WHERE id = $3),"
    " (SELECT bot_id FROM session_memories WHERE id = $4),"
    " EXISTS (SELECT 1 FROM session_memories WHERE id = $5)"
)
_GET_MEMORY = f"SELECT {rows.MEMORY_COLUMNS} FROM session_memories WHERE id = $1"
_GET_MEMORIES = (
    f"SELECT {rows.MEMORY_COLUMNS} FROM session_memories"
    " WHERE bot_id = $1 AND ($2 OR superseded_by IS NULL)"
    " ORDER BY importance DESC, created_at DESC, id DESC LIMIT $3"
)
_MEMORIES_BY_SESSION = (
    f"SELECT {rows.MEMORY_COLUMNS} FROM session_memories WHERE session_id = $1"
    " ORDER BY created_at ASC, id ASC"
)
_DELETE_MEMORY = "DELETE FROM session_memories WHERE id = $1 RETURNING bot_id, fact"
_DELETE_ALL_MEMORIES = "DELETE FROM session_memories WHERE bot_id = $1 RETURNING id, fact"
# Read before the delete: ON DELETE SET NULL makes these live again.
_SUPERSEDED_BY = "SELECT id, fact FROM session_memories WHERE superseded_by = $1 FOR UPDATE"
# Locks the old memory, so two supersedes of one memory cannot both succeed.
_LOCK_OLD = "SELECT bot_id, superseded_by, fact FROM session_memories WHERE id = $1 FOR UPDATE"
_INSERT_HISTORY = (
    f"INSERT INTO memory_history ({rows.HISTORY_COLUMNS}) VALUES ({rows.placeholders(9)})"
)
_HISTORY = (
    f"SELECT {rows.HISTORY_COLUMNS} FROM memory_history WHERE memory_id = $1"
    " ORDER BY created_at ASC, id ASC"
)
# The query is built from plain words joined by "or" (see search_terms), so
# websearch_to_tsquery can never see an operator from the user.
# boternity_fold (migration 0003) folds diacritics as SQLite's tokenizer does, on both sides.
_SEARCH = (
    f"SELECT {', '.join('m.' + c.strip() for c in rows.MEMORY_COLUMNS.split(','))}"
    " FROM session_memories m, websearch_to_tsquery('english', boternity_fold($2)) q"
    " WHERE m.bot_id = $1 AND m.fact_tsv @@ q AND ($3 OR m.superseded_by IS NULL)"
    " ORDER BY ts_rank(m.fact_tsv, q) DESC, m.importance DESC, m.created_at DESC, m.id DESC"
    " LIMIT $4"
)
_SUPERSEDE = "UPDATE session_memories SET superseded_by = $1 WHERE id = $2"
_LIVE_FACTS = "SELECT id, fact FROM session_memories WHERE bot_id = $1 AND superseded_by IS NULL"
# Transaction-scoped, in the two-int key space (apart from the bigint keys of session and
# migration locks): first int "mem" in ASCII, second a hash of the bot id.
_LOCK_BOT = "SELECT pg_advisory_xact_lock($1::int4, $2::int4)"
_BOT_LOCK_CLASS = 0x6D656D
# The session's bot is checked in the same statement: no session, no row; wrong bot, no insert.
_SAVE_PENDING = (
    "WITH s AS (SELECT bot_id FROM chat_sessions WHERE id = $2),"
    " i AS ("
    f"  INSERT INTO pending_memory_extractions ({rows.PENDING_COLUMNS})"
    f"  SELECT $1, $2, s.bot_id, {rows.placeholders(7, start=4)} FROM s WHERE s.bot_id = $3)"
    " SELECT bot_id FROM s"
)
_PENDING_FOR_BOT = (
    f"SELECT {rows.PENDING_COLUMNS} FROM pending_memory_extractions"
    " WHERE bot_id = $1 AND attempt_count < $2 ORDER BY next_attempt_at ASC, id ASC"
)
_ALL_PENDING = (
    f"SELECT {rows.PENDING_COLUMNS} FROM pending_memory_extractions"
    " WHERE ($1::uuid IS NULL OR bot_id = $1) ORDER BY next_attempt_at ASC, id ASC"
)
_GET_PENDING = f"SELECT {rows.PENDING_COLUMNS} FROM pending_memory_extractions WHERE id = $1"
_DELETE_PENDING = "DELETE FROM pending_memory_extractions WHERE id = $1"
_UPDATE_PENDING = (
    "UPDATE pending_memory_extractions SET attempt_count = $1, last_attempt_at = $2,"
    f" next_attempt_at = $3, error_message = $4 WHERE id = $5 RETURNING {rows.PENDING_COLUMNS}"
)
# SKIP LOCKED: a job another claimer is taking right now is passed over, not waited for; one
# it already took is no longer due when re-checked, so two claimers never share a job.
_CLAIM = (
    "WITH due AS ("
    "  SELECT id FROM pending_memory_extractions"
    "  WHERE next_attempt_at <= $1 AND attempt_count < $3 AND ($4::uuid IS NULL OR bot_id = $4)"
    "  ORDER BY next_attempt_at ASC, id ASC LIMIT $5 FOR UPDATE SKIP LOCKED)"
    " UPDATE pending_memory_extractions p"
    " SET attempt_count = p.attempt_count + 1, last_attempt_at = $1, next_attempt_at = $2"
    " FROM due WHERE p.id = due.id"
    f" RETURNING {', '.join('p.' + c.strip() for c in rows.PENDING_COLUMNS.split(','))}"
)
# A summary may only cover messages the session has; checked in the inserting statement.
_SAVE_SUMMARY = (
    "WITH s AS (SELECT bot_id, message_count FROM chat_sessions WHERE id = $2),"
    " i AS ("
    "  INSERT INTO context_summaries (id, session_id, bot_id, summary, messages_start,"
    "   messages_end, token_count, created_at)"
    "  SELECT $1, $2, s.bot_id, $3, $4, $5, $6, $7 FROM s WHERE s.message_count >= $5)"
    " SELECT message_count FROM s"
)
_LATEST_SUMMARY = (
    f"SELECT {rows.SUMMARY_COLUMNS} FROM context_summaries WHERE session_id = $1"
    " ORDER BY messages_end DESC, created_at DESC, id DESC LIMIT 1"
)
_LIST_SUMMARIES = (
    f"SELECT {rows.SUMMARY_COLUMNS} FROM context_summaries WHERE session_id = $1"
    " ORDER BY messages_end ASC, created_at ASC, id ASC"
)

_MEMORY_MESSAGES = {"session_memories_pkey": "a memory with this id already exists"}


async def _record(
    conn: Conn,
    memory_id: uuid.UUID,
    bot_id: uuid.UUID,
    fact: str,
    event: MemoryEventKind,
    actor: MemoryActor,
    *,
    job_id: uuid.UUID | None = None,
    related: uuid.UUID | None = None,
) -> None:
    """One memory_history row, in the transaction of the change it records."""
    await conn.execute(
        _INSERT_HISTORY, new_id(), memory_id, bot_id, event.value, actor.value, fact, job_id,
        related, utc_now(),
    )  # fmt: skip


async def _insert_memory(conn: Conn, m: MemoryEntry, *, job_id: uuid.UUID | None = None) -> None:
    """Name the missing or foreign parent instead of a bare foreign-key failure."""
    row = await conn.fetchrow(
        _MEMORY_REFS, m.bot_id, m.session_id, m.source_message_id, m.superseded_by, m.id
    )
    bot_ok, session_bot, message_session, message_bot, newer_bot, taken = row
    if not bot_ok:
        raise NotFoundError(f"bot {m.bot_id} not found")
    if m.session_id is not None:
        if session_bot is None:
            raise NotFoundError(f"chat session {m.session_id} not found")
        if session_bot != m.bot_id:
            raise ValidationError(f"chat session {m.session_id} belongs to another bot")
    if m.source_message_id is not None:
        if message_session is None:
            raise NotFoundError(f"source message {m.source_message_id} not found")
        if message_bot != m.bot_id or (
            m.session_id is not None and message_session != m.session_id
        ):
            raise ValidationError(
                f"source message {m.source_message_id} is not in this memory's session"
            )
    if m.superseded_by is not None:
        if newer_bot is None:
            raise NotFoundError(f"superseding memory {m.superseded_by} not found")
        if newer_bot != m.bot_id:
            raise ValidationError(f"superseding memory {m.superseded_by} belongs to another bot")
    if taken:
        raise ConflictError(f"a memory with id {m.id} already exists")
    await conn.execute(_INSERT_MEMORY, *rows.memory_params(m))
    if job_id is not None:
        actor = MemoryActor.EXTRACTION
    else:
        actor = MemoryActor.USER if m.is_manual else MemoryActor.SYSTEM
    await _record(conn, m.id, m.bot_id, m.fact, MemoryEventKind.ADDED, actor, job_id=job_id)


async def _supersede(
    conn: Conn, old_id: uuid.UUID, new: MemoryEntry, *, job_id: uuid.UUID | None = None
) -> None:
    row = await conn.fetchrow(_LOCK_OLD, old_id)
    if row is None:
        raise NotFoundError(f"memory {old_id} not found")
    if row[0] != new.bot_id:
        raise ValidationError(f"memory {old_id} belongs to another bot")
    if row[1] is not None:
        raise ConflictError(f"memory {old_id} is already superseded by {row[1]}")
    if old_id == new.id:
        raise ValidationError("a memory cannot supersede itself")
    await conn.execute(_SUPERSEDE, new.id, old_id)
    actor = MemoryActor.EXTRACTION if job_id is not None else MemoryActor.USER
    await _record(
        conn, old_id, row[0], row[2], MemoryEventKind.SUPERSEDED, actor, job_id=job_id,
        related=new.id,
    )  # fmt: skip


async def _locked_live_facts(conn: Conn, bot_id: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
    """(id, fact) of the bot's live memories, for a duplicate check in the saving transaction,
    after taking the bot's lock: check and insert are one step per bot (READ COMMITTED: this
    statement sees what the previous lock holder committed)."""
    digest = hashlib.blake2b(bot_id.bytes, digest_size=4).digest()
    await conn.execute(_LOCK_BOT, _BOT_LOCK_CLASS, int.from_bytes(digest, "big", signed=True))
    return [(r[0], r[1]) for r in await conn.fetch(_LIVE_FACTS, bot_id)]


def _check_memory(entry: object, what: str = "memory") -> MemoryEntry:
    return check_model(entry, MemoryEntry, what)


class PostgresMemoryRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- memories ---------------------------------------------------------------------

    async def save_memory(self, entry: MemoryEntry, *, unique: bool = False) -> MemoryEntry:
        m = _check_memory(entry)

        async def unit(conn: Conn) -> MemoryEntry:
            if unique:
                check_not_remembered(m, await _locked_live_facts(conn, m.bot_id))
            await _insert_memory(conn, m)
            return m

        return await self._db.write(unit, transaction=True, messages=_MEMORY_MESSAGES)

    async def get_memory(self, memory_id: uuid.UUID) -> MemoryEntry | None:
        key = check_id(memory_id, "memory_id")
        row = await self._db.read(lambda c: c.fetchrow(_GET_MEMORY, key))
        return None if row is None else rows.memory(row)

    async def get_memories(
        self,
        bot_id: uuid.UUID,
        *,
        limit: int | None = None,
        include_superseded: bool = False,
    ) -> list[MemoryEntry]:
        key = check_id(bot_id, "bot_id")
        lim, _ = check_page(limit, None)
        params = (key, bool(include_superseded), lim)
        found = await self._db.read(lambda c: c.fetch(_GET_MEMORIES, *params), browse=True)
        return [rows.memory(r) for r in found]

    async def delete_memory(self, memory_id: uuid.UUID) -> None:
        key = check_id(memory_id, "memory_id")

        async def unit(conn: Conn) -> None:
            restored = await conn.fetch(_SUPERSEDED_BY, key)
            row = await conn.fetchrow(_DELETE_MEMORY, key)
            if row is None:
                raise NotFoundError(f"memory {memory_id} not found")
            bot, fact = row
            for old_id, old_fact in restored:
                await _record(
                    conn, old_id, bot, old_fact, MemoryEventKind.RESTORED, MemoryActor.USER,
                    related=key,
                )  # fmt: skip
            await _record(conn, key, bot, fact, MemoryEventKind.DELETED, MemoryActor.USER)

        await self._db.write(unit, transaction=True)

    async def delete_all_memories(self, bot_id: uuid.UUID) -> int:
        key = check_id(bot_id, "bot_id")

        async def unit(conn: Conn) -> int:
            deleted = await conn.fetch(_DELETE_ALL_MEMORIES, key)
            for memory_id, fact in deleted:
                await _record(conn, memory_id, key, fact, MemoryEventKind.DELETED, MemoryActor.USER)
            return len(deleted)

        return await self._db.write(unit, transaction=True)

    async def search_memories(
        self,
        bot_id: uuid.UUID,
        query: str,
        *,
        limit: int = 10,
        include_superseded: bool = False,
    ) -> list[MemoryEntry]:
        key = check_id(bot_id, "bot_id")
        check_limit(limit)
        terms = search_terms(query)
        if not terms or limit == 0:
            return []
        params = (key, " or ".join(terms), bool(include_superseded), limit)
        found = await self._db.read(lambda c: c.fetch(_SEARCH, *params), browse=True)
        return [rows.memory(r) for r in found]

    async def get_memory_history(self, memory_id: uuid.UUID) -> list[MemoryEvent]:
        key = check_id(memory_id, "memory_id")
        found = await self._db.read(lambda c: c.fetch(_HISTORY, key), browse=True)
        return [rows.history(r) for r in found]

    async def get_memories_by_session(self, session_id: uuid.UUID) -> list[MemoryEntry]:
        key = check_id(session_id, "session_id")
        found = await self._db.read(lambda c: c.fetch(_MEMORIES_BY_SESSION, key), browse=True)
        return [rows.memory(r) for r in found]

    async def supersede_memory(self, old_id: uuid.UUID, new: MemoryEntry) -> MemoryEntry:
        old = check_id(old_id, "old_id")
        m = _check_memory(new, "new")
        if m.superseded_by is not None:
            raise ValidationError("the superseding memory must itself be live")

        async def unit(conn: Conn) -> MemoryEntry:
            await _insert_memory(conn, m)
            await _supersede(conn, old, m)
            return m

        return await self._db.write(unit, transaction=True, messages=_MEMORY_MESSAGES)

    # --- the extraction queue ---------------------------------------------------------

    async def save_pending_extraction(self, pending: PendingExtraction) -> PendingExtraction:
        check_model(pending, PendingExtraction, "save_pending_extraction")
        p = pending
        params = rows.pending_params(p)

        async def unit(conn: Conn) -> PendingExtraction:
            owner = await conn.fetchval(_SAVE_PENDING, p.id, p.session_id, p.bot_id, *params[3:])
            if owner is None:
                raise NotFoundError(f"chat session {p.session_id} not found")
            if owner != p.bot_id:
                raise ValidationError(f"chat session {p.session_id} belongs to another bot")
            return p

        return await self._db.write(
            unit,
            messages={
                "pending_memory_extractions_pkey": f"a pending extraction with id {p.id}"
                " already exists"
            },
        )

    async def get_pending_extractions(self, bot_id: uuid.UUID) -> list[PendingExtraction]:
        key = check_id(bot_id, "bot_id")
        found = await self._db.read(
            lambda c: c.fetch(_PENDING_FOR_BOT, key, MAX_EXTRACTION_ATTEMPTS)
        )
        return [rows.pending(r) for r in found]

    async def list_pending_extractions(
        self, *, bot_id: uuid.UUID | None = None
    ) -> list[PendingExtraction]:
        key = None if bot_id is None else check_id(bot_id, "bot_id")
        found = await self._db.read(lambda c: c.fetch(_ALL_PENDING, key), browse=True)
        return [rows.pending(r) for r in found]

    async def get_pending_extraction(self, pending_id: uuid.UUID) -> PendingExtraction | None:
        key = check_id(pending_id, "pending_id")
        row = await self._db.read(lambda c: c.fetchrow(_GET_PENDING, key))
        return None if row is None else rows.pending(row)

    async def delete_pending_extraction(self, pending_id: uuid.UUID) -> None:
        key = check_id(pending_id, "pending_id")

        async def unit(conn: Conn) -> None:
            if affected(await conn.execute(_DELETE_PENDING, key)) == 0:
                raise NotFoundError(f"pending extraction {pending_id} not found")

        await self._db.write(unit)

    async def update_pending_extraction(self, pending: PendingExtraction) -> PendingExtraction:
        check_model(pending, PendingExtraction, "update_pending_extraction")
        p = pending
        params = (p.attempt_count, p.last_attempt_at, p.next_attempt_at, p.error_message, p.id)

        async def unit(conn: Conn) -> PendingExtraction:
            row = await conn.fetchrow(_UPDATE_PENDING, *params)
            if row is None:
                raise NotFoundError(f"pending extraction {p.id} not found")
            return rows.pending(row)

        return await self._db.write(unit)

    async def claim_pending_extractions(
        self,
        *,
        limit: int = 10,
        lease: timedelta = DEFAULT_LEASE,
        now: datetime | None = None,
        bot_id: uuid.UUID | None = None,
    ) -> list[PendingExtraction]:
        check_limit(limit)
        at, until = claim_window(now, lease)
        bot_key = None if bot_id is None else check_id(bot_id, "bot_id")
        params = (at, until, MAX_EXTRACTION_ATTEMPTS, bot_key, limit)

        async def unit(conn: Conn) -> list[PendingExtraction]:
            return [rows.pending(r) for r in await conn.fetch(_CLAIM, *params)]

        claimed = await self._db.write(unit)
        claimed.sort(key=lambda p: (p.created_at, p.id))
        return claimed

    async def complete_extraction(
        self,
        pending_id: uuid.UUID,
        memories: Sequence[MemoryEntry],
        *,
        supersedes: Mapping[uuid.UUID, uuid.UUID] | None = None,
    ) -> list[MemoryEntry]:
        job = check_id(pending_id, "pending_id")
        batch = [_check_memory(m) for m in memories]
        replaced = dict(supersedes or {})
        by_id = {m.id: m for m in batch}
        for added in replaced:
            if added not in by_id:
                raise ValidationError(f"supersedes names {added}, which is not in this batch")

        async def unit(conn: Conn) -> list[MemoryEntry]:
            if affected(await conn.execute(_DELETE_PENDING, job)) == 0:
                # Another worker finished it (its lease ran out): saving again would duplicate.
                raise NotFoundError(f"pending extraction {job} not found (already completed?)")
            live = [
                (bot, fact)
                for bot in sorted({m.bot_id for m in batch})  # one lock order: no deadlock
                for _, fact in await _locked_live_facts(conn, bot)
            ]
            kept, links = drop_remembered(batch, replaced, live)
            for m in kept:
                await _insert_memory(conn, m, job_id=job)
            for added, old_id in links.items():
                await _supersede(conn, old_id, by_id[added], job_id=job)
            return kept

        return await self._db.write(unit, transaction=True, messages=_MEMORY_MESSAGES)

    # --- context summaries --------------------------------------------------------------

    async def save_context_summary(self, summary: ContextSummary) -> ContextSummary:
        check_model(summary, ContextSummary, "save_context_summary")
        s = summary
        params = (
            s.id, s.session_id, s.summary, s.messages_start, s.messages_end, s.token_count,
            s.created_at,
        )  # fmt: skip

        async def unit(conn: Conn) -> ContextSummary:
            count = await conn.fetchval(_SAVE_SUMMARY, *params)
            if count is None:
                raise NotFoundError(f"chat session {s.session_id} not found")
            if s.messages_end > count:
                raise ValidationError(
                    f"summary covers up to message {s.messages_end}, "
                    f"but the session has {count} messages"
                )
            return s

        return await self._db.write(
            unit,
            messages={"context_summaries_pkey": f"a context summary with id {s.id} already exists"},
        )

    async def get_latest_summary(self, session_id: uuid.UUID) -> ContextSummary | None:
        key = check_id(session_id, "session_id")
        row = await self._db.read(lambda c: c.fetchrow(_LATEST_SUMMARY, key))
        return None if row is None else rows.summary(row)

    async def list_summaries(self, session_id: uuid.UUID) -> list[ContextSummary]:
        key = check_id(session_id, "session_id")
        found = await self._db.read(lambda c: c.fetch(_LIST_SUMMARIES, key), browse=True)
        return [rows.summary(r) for r in found]
