"""ChatRepository on PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg

from boternity.backends.common import (
    check_id,
    check_limit,
    check_model,
    check_page,
    check_session_key,
    with_seq,
)
from boternity.backends.postgres import rows
from boternity.backends.postgres.pool import Conn, Database, affected
from boternity.errors import NotFoundError, ValidationError
from boternity.models import MAX_BIGINT, ChatMessage, ChatSession

# Count the session on its bot and insert it in one statement: no bot, no row. A new session
# holds its first token reservation step (rows.reserved of a zero total).
_CREATE_SESSION = (
    "WITH b AS (UPDATE bots SET conversation_count = conversation_count + 1,"
    f" tokens_reserved = tokens_reserved + {rows.RESERVE_STEP} WHERE id = $2 RETURNING id)"
    f" INSERT INTO chat_sessions ({rows.SESSION_COLUMNS})"
    f" SELECT $1, b.id, {rows.placeholders(9, start=3)} FROM b RETURNING id"
)
_KEYED_SESSION = (
    f"SELECT {rows.SESSION_COLUMNS} FROM chat_sessions WHERE bot_id = $1 AND session_key = $2"
)
_CREATE_KEYED_SESSION = (
    "WITH b AS (UPDATE bots SET conversation_count = conversation_count + 1,"
    f" tokens_reserved = tokens_reserved + {rows.RESERVE_STEP} WHERE id = $2 RETURNING id)"
    f" INSERT INTO chat_sessions ({rows.SESSION_COLUMNS}, session_key)"
    f" SELECT $1, b.id, {rows.placeholders(10, start=3)} FROM b RETURNING id"
)
_GET_SESSION = f"SELECT {rows.SESSION_COLUMNS} FROM chat_sessions WHERE id = $1"
_UPDATE_SESSION = (
    "UPDATE chat_sessions SET title = $1, status = $2, ended_at = $3 WHERE id = $4"
    f" RETURNING {rows.SESSION_COLUMNS}"
)
_LIST_SESSIONS = (
    f"SELECT {rows.SESSION_COLUMNS} FROM chat_sessions WHERE bot_id = $1"
    " ORDER BY started_at DESC, id DESC LIMIT $2 OFFSET $3"
)
_ACTIVE_SESSIONS = (
    f"SELECT {rows.SESSION_COLUMNS} FROM chat_sessions WHERE bot_id = $1 AND status = 'active'"
    " ORDER BY started_at DESC, id DESC"
)
# A deleted session's tokens and activity are folded into its bot's own columns, so the bot's
# totals (summed over live sessions when read) never go down; its unused reservation is freed.
_DELETE_SESSION = (
    "WITH s AS (DELETE FROM chat_sessions WHERE id = $1"
    "  RETURNING bot_id, total_input_tokens::numeric + total_output_tokens AS tokens,"
    "   last_activity_at)"
    " UPDATE bots b SET total_tokens_used = b.total_tokens_used + s.tokens,"
    f"  tokens_reserved = b.tokens_reserved - ({rows.reserved('s.tokens')} - s.tokens)::bigint,"
    "  last_active_at = greatest(b.last_active_at, s.last_activity_at)"
    " FROM s WHERE b.id = s.bot_id"
)
# Cheap test, in bigint, of whether the session's reservation changes with this message: its
# total crossed a step, or passed 2^63 - 1 (then the reservation update fails the statement).
_CROSSED = (
    f"{rows.reserve_steps('total_input_tokens', 'total_output_tokens')}"
    f" <> {rows.reserve_steps('(total_input_tokens - $12)', '(total_output_tokens - $13)')}"
    f" OR total_input_tokens > {MAX_BIGINT} - total_output_tokens"
)
_TOTAL_AFTER = "(s.tokens_in::numeric + s.tokens_out)"
_TOTAL_BEFORE = "(s.tokens_in::numeric + s.tokens_out - $12 - $13)"
# save_message in one statement, so one round trip and one implicit transaction. Updating the
# session row first locks it: concurrent writers to one session (any process) queue there and
# each re-reads the committed counter, so seq is gap-free and totals never lose an increment.
# The bot row is normally not touched: its token total and last activity are summed from its
# sessions when read (see rows.BOT_SELECT), so sessions of one bot do not queue on one row lock
# held through every commit's WAL flush. Only when this message takes its session across a
# RESERVE_STEP is the bot's tokens_reserved raised; if that overflows bigint the whole
# statement fails, so the bot's total can never pass 2^63 - 1.
_SAVE_MESSAGE = (
    "WITH s AS ("
    "  UPDATE chat_sessions SET message_count = message_count + 1,"
    "   total_input_tokens = total_input_tokens + $12,"
    "   total_output_tokens = total_output_tokens + $13, last_activity_at = $5"
    "  WHERE id = $2"
    "  RETURNING message_count, bot_id, total_input_tokens AS tokens_in,"
    f"   total_output_tokens AS tokens_out, {_CROSSED} AS crossed),"
    " m AS ("
    "  INSERT INTO chat_messages (id, session_id, bot_id, seq, role, content, created_at,"
    "   input_tokens, output_tokens, model, stop_reason, response_ms, metadata)"
    "  SELECT $1, $2, s.bot_id, s.message_count, $3, $4, $5, $6, $7, $8, $9, $10, $11 FROM s"
    "  RETURNING seq),"
    " b AS ("
    "  UPDATE bots SET tokens_reserved = (tokens_reserved"
    f"   + {rows.reserved(_TOTAL_AFTER)} - {rows.reserved(_TOTAL_BEFORE)})::bigint"
    "  FROM s WHERE s.crossed AND bots.id = s.bot_id)"
    " SELECT seq FROM m"
)
_GET_MESSAGE = f"SELECT {rows.MESSAGE_COLUMNS} FROM chat_messages WHERE id = $1"
_GET_MESSAGES = (
    f"SELECT {rows.MESSAGE_COLUMNS} FROM chat_messages WHERE session_id = $1"
    " ORDER BY seq ASC LIMIT $2 OFFSET $3"
)
_RECENT_MESSAGES = (
    f"SELECT {rows.MESSAGE_COLUMNS} FROM chat_messages WHERE session_id = $1"
    " ORDER BY seq DESC LIMIT $2"
)
_MESSAGE_COUNT = "SELECT message_count FROM chat_sessions WHERE id = $1"
# clear_messages: the first statement locks the session (so no message can be appended while
# clearing); the second runs on a fresh snapshot taken after the lock, so it sees every message.
_RESET_COUNT = "UPDATE chat_sessions SET message_count = 0 WHERE id = $1 RETURNING id"
_CLEAR = (
    "WITH m AS (DELETE FROM chat_messages WHERE session_id = $1 RETURNING 1),"
    " c AS (DELETE FROM context_summaries WHERE session_id = $1),"
    " p AS (DELETE FROM pending_memory_extractions WHERE session_id = $1)"
    " SELECT count(*) FROM m"
)
# pop_message: messages are always seq 1..message_count, so the latest is message_count.
_POP_COUNT = (
    "UPDATE chat_sessions SET message_count = message_count - 1"
    " WHERE id = $1 AND message_count > 0 RETURNING message_count + 1"
)
_POP_MESSAGE = (
    "WITH m AS (DELETE FROM chat_messages WHERE session_id = $1 AND seq = $2"
    f"  RETURNING {rows.MESSAGE_COLUMNS}),"
    " c AS (DELETE FROM context_summaries WHERE session_id = $1 AND messages_end >= $2)"
    f" SELECT {rows.MESSAGE_COLUMNS} FROM m"
)
_COUNT_SESSIONS = "SELECT count(*) FROM chat_sessions"
_COUNT_MESSAGES = "SELECT count(*) FROM chat_messages"


def _save_params(m: ChatMessage) -> tuple[Any, ...]:
    check_model(m, ChatMessage, "save_message")
    return (
        m.id, m.session_id, m.role.value, m.content, m.created_at, m.input_tokens,
        m.output_tokens, m.model, m.stop_reason, m.response_ms, m.metadata_json(),
        m.input_tokens or 0, m.output_tokens or 0,
    )  # fmt: skip


async def _save(conn: Conn, m: ChatMessage, params: tuple[Any, ...]) -> int:
    seq: int | None = await conn.fetchval(_SAVE_MESSAGE, *params)
    if seq is None:
        raise NotFoundError(f"chat session {m.session_id} not found")
    return seq


class PostgresChatRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_session(self, session: ChatSession) -> ChatSession:
        check_model(session, ChatSession, "create_session")
        if session.message_count != 0:
            raise ValidationError("a new session must have message_count 0 (save_message counts)")
        params = rows.session_params(session)

        async def unit(conn: Conn) -> ChatSession:
            if await conn.fetchval(_CREATE_SESSION, *params) is None:
                raise NotFoundError(f"bot {session.bot_id} not found")
            return session

        return await self._db.write(
            unit,
            messages={"chat_sessions_pkey": f"a chat session with id {session.id} already exists"},
        )

    async def get_session(self, session_id: uuid.UUID) -> ChatSession | None:
        key = check_id(session_id, "session_id")
        row = await self._db.read(lambda c: c.fetchrow(_GET_SESSION, key))
        return None if row is None else rows.session(row)

    async def update_session(self, session: ChatSession) -> ChatSession:
        check_model(session, ChatSession, "update_session")
        params = (session.title, session.status.value, session.ended_at, session.id)

        async def unit(conn: Conn) -> ChatSession:
            row = await conn.fetchrow(_UPDATE_SESSION, *params)
            if row is None:
                raise NotFoundError(f"chat session {session.id} not found")
            return rows.session(row)

        return await self._db.write(unit)

    async def list_sessions(
        self, bot_id: uuid.UUID, *, limit: int | None = None, offset: int | None = None
    ) -> list[ChatSession]:
        key = check_id(bot_id, "bot_id")
        lim, off = check_page(limit, offset)
        found = await self._db.read(lambda c: c.fetch(_LIST_SESSIONS, key, lim, off), browse=True)
        return [rows.session(r) for r in found]

    async def delete_session(self, session_id: uuid.UUID) -> None:
        key = check_id(session_id, "session_id")

        async def unit(conn: Conn) -> None:
            if affected(await conn.execute(_DELETE_SESSION, key)) == 0:
                raise NotFoundError(f"chat session {session_id} not found")

        await self._db.write(unit)

    async def get_active_sessions(self, bot_id: uuid.UUID) -> list[ChatSession]:
        key = check_id(bot_id, "bot_id")
        found = await self._db.read(lambda c: c.fetch(_ACTIVE_SESSIONS, key))
        return [rows.session(r) for r in found]

    async def get_session_by_key(self, bot_id: uuid.UUID, key: str) -> ChatSession | None:
        bot = check_id(bot_id, "bot_id")
        name = check_session_key(key)
        row = await self._db.read(lambda c: c.fetchrow(_KEYED_SESSION, bot, name))
        return None if row is None else rows.session(row)

    async def get_or_create_session_by_key(self, session: ChatSession, key: str) -> ChatSession:
        check_model(session, ChatSession, "get_or_create_session_by_key")
        if session.message_count != 0:
            raise ValidationError("a new session must have message_count 0 (save_message counts)")
        params = (*rows.session_params(session), check_session_key(key))

        # Look up, else insert; an insert that loses a race waits on the unique index for the
        # winner's commit, fails (rolling back its bot counter too: one statement), and the
        # next look-up, on a fresh snapshot, finds the winner's session.
        async def unit(conn: Conn) -> ChatSession:
            while True:
                row = await conn.fetchrow(_KEYED_SESSION, session.bot_id, key)
                if row is not None:
                    return rows.session(row)
                try:
                    if await conn.fetchval(_CREATE_KEYED_SESSION, *params) is None:
                        raise NotFoundError(f"bot {session.bot_id} not found")
                except asyncpg.UniqueViolationError as exc:
                    if exc.constraint_name != "chat_sessions_session_key":
                        raise
                    continue
                return session

        return await self._db.write(
            unit,
            messages={"chat_sessions_pkey": f"a chat session with id {session.id} already exists"},
        )

    async def save_message(self, message: ChatMessage) -> ChatMessage:
        params = _save_params(message)

        async def unit(conn: Conn) -> int:
            return await _save(conn, message, params)

        seq = await self._db.write(
            unit, messages={"chat_messages_pkey": f"a message with id {message.id} already exists"}
        )
        return with_seq(message, seq)

    async def save_messages(self, messages: Sequence[ChatMessage]) -> list[ChatMessage]:
        batch = [(m, _save_params(m)) for m in messages]
        if not batch:
            return []

        async def unit(conn: Conn) -> list[int]:
            return [await _save(conn, m, params) for m, params in batch]

        seqs = await self._db.write(
            unit,
            transaction=True,
            messages={"chat_messages_pkey": "a message with one of these ids already exists"},
        )
        return [with_seq(m, seq) for m, seq in zip(messages, seqs, strict=True)]

    async def pop_message(self, session_id: uuid.UUID) -> ChatMessage | None:
        key = check_id(session_id, "session_id")

        # As in clear_messages: the first statement locks the session row; the delete runs
        # on a fresh snapshot taken after the lock, so it sees the latest committed message.
        async def unit(conn: Conn) -> ChatMessage | None:
            seq = await conn.fetchval(_POP_COUNT, key)
            if seq is None:
                if await conn.fetchval(_MESSAGE_COUNT, key) is None:
                    raise NotFoundError(f"chat session {session_id} not found")
                return None
            row = await conn.fetchrow(_POP_MESSAGE, key, seq)
            return rows.message(row)

        return await self._db.write(unit, transaction=True)

    async def get_message(self, message_id: uuid.UUID) -> ChatMessage | None:
        key = check_id(message_id, "message_id")
        row = await self._db.read(lambda c: c.fetchrow(_GET_MESSAGE, key))
        return None if row is None else rows.message(row)

    async def get_messages(
        self, session_id: uuid.UUID, *, limit: int | None = None, offset: int | None = None
    ) -> list[ChatMessage]:
        key = check_id(session_id, "session_id")
        lim, off = check_page(limit, offset)
        found = await self._db.read(lambda c: c.fetch(_GET_MESSAGES, key, lim, off), browse=True)
        return [rows.message(r) for r in found]

    async def get_recent_messages(self, session_id: uuid.UUID, limit: int) -> list[ChatMessage]:
        key = check_id(session_id, "session_id")
        lim = check_limit(limit)
        found = await self._db.read(lambda c: c.fetch(_RECENT_MESSAGES, key, lim))
        return [rows.message(r) for r in reversed(found)]

    async def get_message_count(self, session_id: uuid.UUID) -> int:
        key = check_id(session_id, "session_id")
        count = await self._db.read(lambda c: c.fetchval(_MESSAGE_COUNT, key))
        return 0 if count is None else int(count)

    async def clear_messages(self, session_id: uuid.UUID) -> int:
        key = check_id(session_id, "session_id")

        async def unit(conn: Conn) -> int:
            if await conn.fetchval(_RESET_COUNT, key) is None:
                raise NotFoundError(f"chat session {session_id} not found")
            return int(await conn.fetchval(_CLEAR, key))

        return await self._db.write(unit, transaction=True)

    async def count_sessions(self) -> int:
        return int(await self._db.read(lambda c: c.fetchval(_COUNT_SESSIONS), browse=True))

    async def count_messages(self) -> int:
        return int(await self._db.read(lambda c: c.fetchval(_COUNT_MESSAGES), browse=True))
