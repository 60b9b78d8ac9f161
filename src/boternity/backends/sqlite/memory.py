"""MemoryRepository on SQLite: memories, the extraction queue and context summaries."""

from __future__ import annotations

import sqlite3
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
from boternity.backends.sqlite import rows
from boternity.backends.sqlite.pool import Readers, Writer
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
    f"INSERT INTO session_memories ({rows.MEMORY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_GET_MEMORY = f"SELECT {rows.MEMORY_COLUMNS} FROM session_memories WHERE id = ?"
_GET_MEMORIES = (
    f"SELECT {rows.MEMORY_COLUMNS} FROM session_memories"
    " WHERE bot_id = ? AND (? OR superseded_by IS NULL)"
    " ORDER BY importance DESC, created_at DESC, id DESC LIMIT ?"
)
_MEMORIES_BY_SESSION = (
    f"SELECT {rows.MEMORY_COLUMNS} FROM session_memories WHERE session_id = ?"
    " ORDER BY created_at ASC, id ASC"
)
_SUPERSEDE = "UPDATE session_memories SET superseded_by = ? WHERE id = ?"
_LIVE_FACTS = "SELECT id, fact FROM session_memories WHERE bot_id = ? AND superseded_by IS NULL"
_SEARCH = (
    f"SELECT {', '.join('m.' + c for c in rows.MEMORY_COLUMNS.split(', '))}"
    " FROM memories_fts JOIN session_memories m ON m.rowid = memories_fts.rowid"
    " WHERE memories_fts MATCH ? AND m.bot_id = ? AND (? OR m.superseded_by IS NULL)"
    " ORDER BY bm25(memories_fts), m.importance DESC, m.created_at DESC, m.id DESC LIMIT ?"
)
_INSERT_HISTORY = (
    f"INSERT INTO memory_history ({rows.HISTORY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_HISTORY = (
    f"SELECT {rows.HISTORY_COLUMNS} FROM memory_history WHERE memory_id = ?"
    " ORDER BY created_at ASC, id ASC"
)
_INSERT_PENDING = (
    f"INSERT INTO pending_memory_extractions ({rows.PENDING_COLUMNS})"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_PENDING_FOR_BOT = (
    f"SELECT {rows.PENDING_COLUMNS} FROM pending_memory_extractions"
    " WHERE bot_id = ? AND attempt_count < ? ORDER BY next_attempt_at ASC, id ASC"
)
_ALL_PENDING = (
    f"SELECT {rows.PENDING_COLUMNS} FROM pending_memory_extractions"
    " WHERE (?1 IS NULL OR bot_id = ?1) ORDER BY next_attempt_at ASC, id ASC"
)
_GET_PENDING = f"SELECT {rows.PENDING_COLUMNS} FROM pending_memory_extractions WHERE id = ?"
_UPDATE_PENDING = (
    "UPDATE pending_memory_extractions SET attempt_count = ?, last_attempt_at = ?,"
    f" next_attempt_at = ?, error_message = ? WHERE id = ? RETURNING {rows.PENDING_COLUMNS}"
)
# One statement under the write lock: the rows it picks are updated before any other
# claimer (task or process) can start its own transaction.
_CLAIM = (
    "UPDATE pending_memory_extractions"
    " SET attempt_count = attempt_count + 1, last_attempt_at = ?1, next_attempt_at = ?2"
    " WHERE id IN (SELECT id FROM pending_memory_extractions"
    "  WHERE next_attempt_at <= ?1 AND attempt_count < ?3 AND (?4 IS NULL OR bot_id = ?4)"
    "  ORDER BY next_attempt_at ASC, id ASC LIMIT ?5)"
    f" RETURNING {rows.PENDING_COLUMNS}"
)
_INSERT_SUMMARY = (
    f"INSERT INTO context_summaries ({rows.SUMMARY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_LATEST_SUMMARY = (
    f"SELECT {rows.SUMMARY_COLUMNS} FROM context_summaries WHERE session_id = ?"
    " ORDER BY messages_end DESC, created_at DESC, id DESC LIMIT 1"
)
_LIST_SUMMARIES = (
    f"SELECT {rows.SUMMARY_COLUMNS} FROM context_summaries WHERE session_id = ?"
    " ORDER BY messages_end ASC, created_at ASC, id ASC"
)


def _check_memory_refs(conn: sqlite3.Connection, m: MemoryEntry) -> None:
    """Name the missing or foreign parent instead of a bare foreign-key failure."""
    if conn.execute("SELECT 1 FROM bots WHERE id = ?", (str(m.bot_id),)).fetchone() is None:
        raise NotFoundError(f"bot {m.bot_id} not found")
    if m.session_id is not None:
        row = conn.execute(
            "SELECT bot_id FROM chat_sessions WHERE id = ?", (str(m.session_id),)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"chat session {m.session_id} not found")
        if row[0] != str(m.bot_id):
            raise ValidationError(f"chat session {m.session_id} belongs to another bot")
    if m.source_message_id is not None:
        row = conn.execute(
            "SELECT s.id, s.bot_id FROM chat_messages m JOIN chat_sessions s ON s.id = m.session_id"
            " WHERE m.id = ?",
            (str(m.source_message_id),),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"source message {m.source_message_id} not found")
        if row[1] != str(m.bot_id) or (m.session_id is not None and row[0] != str(m.session_id)):
            raise ValidationError(
                f"source message {m.source_message_id} is not in this memory's session"
            )
    if m.superseded_by is not None:
        row = conn.execute(
            "SELECT bot_id FROM session_memories WHERE id = ?", (str(m.superseded_by),)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"superseding memory {m.superseded_by} not found")
        if row[0] != str(m.bot_id):
            raise ValidationError(f"superseding memory {m.superseded_by} belongs to another bot")


def _record(
    conn: sqlite3.Connection,
    memory_id: str,
    bot_id: str,
    fact: str,
    event: MemoryEventKind,
    actor: MemoryActor,
    *,
    job_id: uuid.UUID | None = None,
    related: str | None = None,
) -> None:
    """One memory_history row, in the transaction of the change it records."""
    conn.execute(
        _INSERT_HISTORY,
        (str(new_id()), memory_id, bot_id, event.value, actor.value, fact,
         rows.opt_uid(job_id), related, rows.ts(utc_now())),
    )  # fmt: skip


def _insert_memory(
    conn: sqlite3.Connection, m: MemoryEntry, *, job_id: uuid.UUID | None = None
) -> None:
    _check_memory_refs(conn, m)
    if conn.execute("SELECT 1 FROM session_memories WHERE id = ?", (str(m.id),)).fetchone():
        raise ConflictError(f"a memory with id {m.id} already exists")
    conn.execute(_INSERT_MEMORY, rows.memory_params(m))
    if job_id is not None:
        actor = MemoryActor.EXTRACTION
    else:
        actor = MemoryActor.USER if m.is_manual else MemoryActor.SYSTEM
    _record(conn, str(m.id), str(m.bot_id), m.fact, MemoryEventKind.ADDED, actor, job_id=job_id)


def _supersede(
    conn: sqlite3.Connection,
    old_id: uuid.UUID,
    new: MemoryEntry,
    *,
    job_id: uuid.UUID | None = None,
) -> None:
    row = conn.execute(
        "SELECT bot_id, superseded_by, fact FROM session_memories WHERE id = ?", (str(old_id),)
    ).fetchone()
    if row is None:
        raise NotFoundError(f"memory {old_id} not found")
    if row[0] != str(new.bot_id):
        raise ValidationError(f"memory {old_id} belongs to another bot")
    if row[1] is not None:
        raise ConflictError(f"memory {old_id} is already superseded by {row[1]}")
    if old_id == new.id:
        raise ValidationError("a memory cannot supersede itself")
    conn.execute(_SUPERSEDE, (str(new.id), str(old_id)))
    actor = MemoryActor.EXTRACTION if job_id is not None else MemoryActor.USER
    _record(
        conn, str(old_id), row[0], row[2], MemoryEventKind.SUPERSEDED, actor,
        job_id=job_id, related=str(new.id),
    )  # fmt: skip


def _locked_live_facts(conn: sqlite3.Connection, bot_id: uuid.UUID) -> list[tuple[str, str]]:
    """(id, fact) of the bot's live memories, for a duplicate check in the saving unit: the
    single writer runs one unit at a time, so check and insert are one step per bot."""
    return conn.execute(_LIVE_FACTS, (str(bot_id),)).fetchall()


def _check_memory(entry: object, what: str = "memory") -> MemoryEntry:
    return check_model(entry, MemoryEntry, what)


class SqliteMemoryRepository:
    def __init__(self, writer: Writer, readers: Readers) -> None:
        self._writer = writer
        self._readers = readers

    # --- memories ---------------------------------------------------------------------

    async def save_memory(self, entry: MemoryEntry, *, unique: bool = False) -> MemoryEntry:
        m = _check_memory(entry)

        def unit(conn: sqlite3.Connection) -> MemoryEntry:
            if unique:
                check_not_remembered(m, _locked_live_facts(conn, m.bot_id))
            _insert_memory(conn, m)
            return m

        return await self._writer.run(unit)

    async def get_memory(self, memory_id: uuid.UUID) -> MemoryEntry | None:
        key = str(check_id(memory_id, "memory_id"))
        row = await self._readers.run(lambda c: c.execute(_GET_MEMORY, (key,)).fetchone())
        return None if row is None else rows.memory(row)

    async def get_memories(
        self,
        bot_id: uuid.UUID,
        *,
        limit: int | None = None,
        include_superseded: bool = False,
    ) -> list[MemoryEntry]:
        key = str(check_id(bot_id, "bot_id"))
        lim, _ = check_page(limit, None)
        params = (key, bool(include_superseded), -1 if lim is None else lim)
        found = await self._readers.run(lambda c: c.execute(_GET_MEMORIES, params).fetchall())
        return [rows.memory(r) for r in found]

    async def delete_memory(self, memory_id: uuid.UUID) -> None:
        key = str(check_id(memory_id, "memory_id"))

        def unit(conn: sqlite3.Connection) -> None:
            row = conn.execute(
                "SELECT bot_id, fact FROM session_memories WHERE id = ?", (key,)
            ).fetchone()
            if row is None:
                raise NotFoundError(f"memory {memory_id} not found")
            # The memories this one superseded become live again (superseded_by SET NULL).
            for old_id, old_fact in conn.execute(
                "SELECT id, fact FROM session_memories WHERE superseded_by = ?", (key,)
            ).fetchall():
                _record(
                    conn, old_id, row[0], old_fact, MemoryEventKind.RESTORED, MemoryActor.USER,
                    related=key,
                )  # fmt: skip
            _record(conn, key, row[0], row[1], MemoryEventKind.DELETED, MemoryActor.USER)
            conn.execute("DELETE FROM session_memories WHERE id = ?", (key,))

        await self._writer.run(unit)

    async def delete_all_memories(self, bot_id: uuid.UUID) -> int:
        key = str(check_id(bot_id, "bot_id"))

        def unit(conn: sqlite3.Connection) -> int:
            doomed = conn.execute(
                "SELECT id, fact FROM session_memories WHERE bot_id = ?", (key,)
            ).fetchall()
            for memory_id, fact in doomed:
                _record(conn, memory_id, key, fact, MemoryEventKind.DELETED, MemoryActor.USER)
            conn.execute("DELETE FROM session_memories WHERE bot_id = ?", (key,))
            return len(doomed)

        return await self._writer.run(unit)

    async def search_memories(
        self,
        bot_id: uuid.UUID,
        query: str,
        *,
        limit: int = 10,
        include_superseded: bool = False,
    ) -> list[MemoryEntry]:
        key = str(check_id(bot_id, "bot_id"))
        check_limit(limit)
        terms = search_terms(query)
        if not terms or limit == 0:
            return []
        # Each term quoted: FTS5 reads it as a plain string, never as query syntax.
        match = " OR ".join(f'"{t}"' for t in terms)
        params = (match, key, bool(include_superseded), limit)
        found = await self._readers.run(lambda c: c.execute(_SEARCH, params).fetchall())
        return [rows.memory(r) for r in found]

    async def get_memory_history(self, memory_id: uuid.UUID) -> list[MemoryEvent]:
        key = str(check_id(memory_id, "memory_id"))
        found = await self._readers.run(lambda c: c.execute(_HISTORY, (key,)).fetchall())
        return [rows.history(r) for r in found]

    async def get_memories_by_session(self, session_id: uuid.UUID) -> list[MemoryEntry]:
        key = str(check_id(session_id, "session_id"))
        found = await self._readers.run(
            lambda c: c.execute(_MEMORIES_BY_SESSION, (key,)).fetchall()
        )
        return [rows.memory(r) for r in found]

    async def supersede_memory(self, old_id: uuid.UUID, new: MemoryEntry) -> MemoryEntry:
        old = check_id(old_id, "old_id")
        m = _check_memory(new, "new")
        if m.superseded_by is not None:
            raise ValidationError("the superseding memory must itself be live")

        def unit(conn: sqlite3.Connection) -> MemoryEntry:
            _insert_memory(conn, m)
            _supersede(conn, old, m)
            return m

        return await self._writer.run(unit)

    # --- the extraction queue ---------------------------------------------------------

    async def save_pending_extraction(self, pending: PendingExtraction) -> PendingExtraction:
        check_model(pending, PendingExtraction, "save_pending_extraction")
        p = pending

        def unit(conn: sqlite3.Connection) -> PendingExtraction:
            row = conn.execute(
                "SELECT bot_id FROM chat_sessions WHERE id = ?", (str(p.session_id),)
            ).fetchone()
            if row is None:
                raise NotFoundError(f"chat session {p.session_id} not found")
            if row[0] != str(p.bot_id):
                raise ValidationError(f"chat session {p.session_id} belongs to another bot")
            conn.execute(_INSERT_PENDING, rows.pending_params(p))
            return p

        return await self._writer.run(unit)

    async def get_pending_extractions(self, bot_id: uuid.UUID) -> list[PendingExtraction]:
        key = str(check_id(bot_id, "bot_id"))
        found = await self._readers.run(
            lambda c: c.execute(_PENDING_FOR_BOT, (key, MAX_EXTRACTION_ATTEMPTS)).fetchall()
        )
        return [rows.pending(r) for r in found]

    async def list_pending_extractions(
        self, *, bot_id: uuid.UUID | None = None
    ) -> list[PendingExtraction]:
        key = None if bot_id is None else str(check_id(bot_id, "bot_id"))
        found = await self._readers.run(lambda c: c.execute(_ALL_PENDING, (key,)).fetchall())
        return [rows.pending(r) for r in found]

    async def get_pending_extraction(self, pending_id: uuid.UUID) -> PendingExtraction | None:
        key = str(check_id(pending_id, "pending_id"))
        row = await self._readers.run(lambda c: c.execute(_GET_PENDING, (key,)).fetchone())
        return None if row is None else rows.pending(row)

    async def delete_pending_extraction(self, pending_id: uuid.UUID) -> None:
        key = str(check_id(pending_id, "pending_id"))

        def unit(conn: sqlite3.Connection) -> None:
            sql = "DELETE FROM pending_memory_extractions WHERE id = ?"
            if conn.execute(sql, (key,)).rowcount == 0:
                raise NotFoundError(f"pending extraction {pending_id} not found")

        await self._writer.run(unit)

    async def update_pending_extraction(self, pending: PendingExtraction) -> PendingExtraction:
        check_model(pending, PendingExtraction, "update_pending_extraction")
        p = pending
        params = (
            p.attempt_count, rows.opt_ts(p.last_attempt_at), rows.ts(p.next_attempt_at),
            p.error_message, str(p.id),
        )  # fmt: skip

        def unit(conn: sqlite3.Connection) -> PendingExtraction:
            row = conn.execute(_UPDATE_PENDING, params).fetchone()
            if row is None:
                raise NotFoundError(f"pending extraction {p.id} not found")
            return rows.pending(row)

        return await self._writer.run(unit)

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
        bot_key = None if bot_id is None else str(check_id(bot_id, "bot_id"))
        params = (rows.ts(at), rows.ts(until), MAX_EXTRACTION_ATTEMPTS, bot_key, limit)
        found = await self._writer.run(lambda c: c.execute(_CLAIM, params).fetchall())
        claimed = [rows.pending(r) for r in found]
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

        def unit(conn: sqlite3.Connection) -> list[MemoryEntry]:
            deleted = conn.execute(
                "DELETE FROM pending_memory_extractions WHERE id = ?", (str(job),)
            ).rowcount
            if deleted == 0:
                # Another worker finished it (its lease ran out): saving again would duplicate.
                raise NotFoundError(f"pending extraction {job} not found (already completed?)")
            live = [
                (bot, fact)
                for bot in sorted({m.bot_id for m in batch})
                for _, fact in _locked_live_facts(conn, bot)
            ]
            kept, links = drop_remembered(batch, replaced, live)
            for m in kept:
                _insert_memory(conn, m, job_id=job)
            for added, old_id in links.items():
                _supersede(conn, old_id, by_id[added], job_id=job)
            return kept

        return await self._writer.run(unit)

    # --- context summaries --------------------------------------------------------------

    async def save_context_summary(self, summary: ContextSummary) -> ContextSummary:
        check_model(summary, ContextSummary, "save_context_summary")
        s = summary
        params = (
            str(s.id), str(s.session_id), s.summary, s.messages_start, s.messages_end,
            s.token_count, rows.ts(s.created_at),
        )  # fmt: skip

        def unit(conn: sqlite3.Connection) -> ContextSummary:
            row = conn.execute(_MESSAGE_COUNT, (params[1],)).fetchone()
            if row is None:
                raise NotFoundError(f"chat session {s.session_id} not found")
            if s.messages_end > row[0]:
                raise ValidationError(
                    f"summary covers up to message {s.messages_end}, "
                    f"but the session has {row[0]} messages"
                )
            conn.execute(_INSERT_SUMMARY, params)
            return s

        return await self._writer.run(unit)

    async def get_latest_summary(self, session_id: uuid.UUID) -> ContextSummary | None:
        key = str(check_id(session_id, "session_id"))
        row = await self._readers.run(lambda c: c.execute(_LATEST_SUMMARY, (key,)).fetchone())
        return None if row is None else rows.summary(row)

    async def list_summaries(self, session_id: uuid.UUID) -> list[ContextSummary]:
        key = str(check_id(session_id, "session_id"))
        found = await self._readers.run(lambda c: c.execute(_LIST_SUMMARIES, (key,)).fetchall())
        return [rows.summary(r) for r in found]


_MESSAGE_COUNT = "SELECT message_count FROM chat_sessions WHERE id = ?"
