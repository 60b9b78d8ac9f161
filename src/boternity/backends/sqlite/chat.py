"""ChatRepository on SQLite."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Sequence

from boternity.backends.common import (
    check_id,
    check_limit,
    check_model,
    check_page,
    check_session_key,
    with_seq,
)
from boternity.backends.sqlite import rows
from boternity.backends.sqlite.pool import Readers, Writer
from boternity.errors import NotFoundError, ValidationError
from boternity.models import MAX_BIGINT, ChatMessage, ChatSession

_INSERT_SESSION = (
    f"INSERT INTO chat_sessions ({rows.SESSION_COLUMNS}) VALUES ({', '.join('?' * 11)})"
)
_COUNT_CONVERSATION = "UPDATE bots SET conversation_count = conversation_count + 1 WHERE id = ?"
_GET_SESSION = f"SELECT {rows.SESSION_COLUMNS} FROM chat_sessions WHERE id = ?"
_UPDATE_SESSION = (
    "UPDATE chat_sessions SET title = ?, status = ?, ended_at = ? WHERE id = ?"
    f" RETURNING {rows.SESSION_COLUMNS}"
)
_LIST_SESSIONS = (
    f"SELECT {rows.SESSION_COLUMNS} FROM chat_sessions WHERE bot_id = ?"
    " ORDER BY started_at DESC, id DESC LIMIT ? OFFSET ?"
)
_ACTIVE_SESSIONS = (
    f"SELECT {rows.SESSION_COLUMNS} FROM chat_sessions WHERE bot_id = ? AND status = 'active'"
    " ORDER BY started_at DESC, id DESC"
)
_KEYED_SESSION = (
    f"SELECT {rows.SESSION_COLUMNS} FROM chat_sessions WHERE bot_id = ? AND session_key = ?"
)
_INSERT_KEYED_SESSION = (
    f"INSERT INTO chat_sessions ({rows.SESSION_COLUMNS}, session_key)"
    f" VALUES ({', '.join('?' * 12)})"
)
_DELETE_SESSION = "DELETE FROM chat_sessions WHERE id = ?"
# save_message: the session row is the counter, so seq, totals and activity move together.
_BUMP_SESSION = (
    "UPDATE chat_sessions SET message_count = message_count + 1,"
    " total_input_tokens = total_input_tokens + ?, total_output_tokens = total_output_tokens + ?,"
    " last_activity_at = ? WHERE id = ? RETURNING message_count, bot_id,"
    # SQLite turns an overflowing integer sum into a REAL; such a row could never be read back.
    " typeof(total_input_tokens) = 'integer' AND typeof(total_output_tokens) = 'integer'"
)
_BUMP_BOT = (
    "UPDATE bots SET total_tokens_used = total_tokens_used + ?, last_active_at = ? WHERE id = ?"
    " RETURNING typeof(total_tokens_used) = 'integer'"
)
_INSERT_MESSAGE = f"INSERT INTO chat_messages ({rows.MESSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_GET_MESSAGE = f"SELECT {rows.MESSAGE_COLUMNS} FROM chat_messages WHERE id = ?"
_GET_MESSAGES = (
    f"SELECT {rows.MESSAGE_COLUMNS} FROM chat_messages WHERE session_id = ?"
    " ORDER BY seq ASC LIMIT ? OFFSET ?"
)
_RECENT_MESSAGES = (
    f"SELECT {rows.MESSAGE_COLUMNS} FROM chat_messages WHERE session_id = ?"
    " ORDER BY seq DESC LIMIT ?"
)
_MESSAGE_COUNT = "SELECT message_count FROM chat_sessions WHERE id = ?"
# pop_message: messages are always seq 1..message_count, so the latest is message_count.
_POP_COUNT = (
    "UPDATE chat_sessions SET message_count = message_count - 1"
    " WHERE id = ? AND message_count > 0 RETURNING message_count + 1"
)
_POP_MESSAGE = (
    f"DELETE FROM chat_messages WHERE session_id = ? AND seq = ? RETURNING {rows.MESSAGE_COLUMNS}"
)
_POP_SUMMARIES = "DELETE FROM context_summaries WHERE session_id = ? AND messages_end >= ?"
_CLEAR = (
    "DELETE FROM chat_messages WHERE session_id = ?",
    "DELETE FROM context_summaries WHERE session_id = ?",
    "DELETE FROM pending_memory_extractions WHERE session_id = ?",
)


def _saver(message: ChatMessage) -> Callable[[sqlite3.Connection], int]:
    """save_message's unit of work (checked now, run on the writer thread): one message."""
    check_model(message, ChatMessage, "save_message")
    m = message
    tokens_in = m.input_tokens or 0
    tokens_out = m.output_tokens or 0
    if tokens_in + tokens_out > MAX_BIGINT:
        raise ValidationError("input_tokens + output_tokens does not fit in a 64-bit integer")
    created = rows.ts(m.created_at)
    session_key = str(m.session_id)
    insert = [
        str(m.id), session_key, 0, m.role.value, m.content, created, m.input_tokens,
        m.output_tokens, m.model, m.stop_reason, m.response_ms, m.metadata_json(),
    ]  # fmt: skip

    def unit(conn: sqlite3.Connection) -> int:
        row = conn.execute(_BUMP_SESSION, (tokens_in, tokens_out, created, session_key)).fetchone()
        if row is None:
            raise NotFoundError(f"chat session {m.session_id} not found")
        if not row[2]:
            raise ValidationError(f"chat session {m.session_id}: token totals would overflow")
        insert[2] = row[0]
        conn.execute(_INSERT_MESSAGE, insert)
        fits = conn.execute(_BUMP_BOT, (tokens_in + tokens_out, created, row[1])).fetchone()
        if not fits[0]:
            raise ValidationError(f"bot {row[1]}: total_tokens_used would overflow")
        seq: int = row[0]
        return seq

    return unit


class SqliteChatRepository:
    def __init__(self, writer: Writer, readers: Readers) -> None:
        self._writer = writer
        self._readers = readers

    async def create_session(self, session: ChatSession) -> ChatSession:
        check_model(session, ChatSession, "create_session")
        if session.message_count != 0:
            raise ValidationError("a new session must have message_count 0 (save_message counts)")
        params = rows.session_params(session)

        def unit(conn: sqlite3.Connection) -> ChatSession:
            if conn.execute(_COUNT_CONVERSATION, (params[1],)).rowcount == 0:
                raise NotFoundError(f"bot {session.bot_id} not found")
            conn.execute(_INSERT_SESSION, params)
            return session

        return await self._writer.run(unit)

    async def get_session(self, session_id: uuid.UUID) -> ChatSession | None:
        key = str(check_id(session_id, "session_id"))
        row = await self._readers.run(lambda c: c.execute(_GET_SESSION, (key,)).fetchone())
        return None if row is None else rows.session(row)

    async def update_session(self, session: ChatSession) -> ChatSession:
        check_model(session, ChatSession, "update_session")
        params = (
            session.title,
            session.status.value,
            rows.opt_ts(session.ended_at),
            str(session.id),
        )

        def unit(conn: sqlite3.Connection) -> ChatSession:
            row = conn.execute(_UPDATE_SESSION, params).fetchone()
            if row is None:
                raise NotFoundError(f"chat session {session.id} not found")
            return rows.session(row)

        return await self._writer.run(unit)

    async def list_sessions(
        self, bot_id: uuid.UUID, *, limit: int | None = None, offset: int | None = None
    ) -> list[ChatSession]:
        key = str(check_id(bot_id, "bot_id"))
        lim, off = check_page(limit, offset)
        params = (key, -1 if lim is None else lim, off)
        found = await self._readers.run(lambda c: c.execute(_LIST_SESSIONS, params).fetchall())
        return [rows.session(r) for r in found]

    async def delete_session(self, session_id: uuid.UUID) -> None:
        key = str(check_id(session_id, "session_id"))

        def unit(conn: sqlite3.Connection) -> None:
            if conn.execute(_DELETE_SESSION, (key,)).rowcount == 0:
                raise NotFoundError(f"chat session {session_id} not found")

        await self._writer.run(unit)

    async def get_active_sessions(self, bot_id: uuid.UUID) -> list[ChatSession]:
        key = str(check_id(bot_id, "bot_id"))
        found = await self._readers.run(lambda c: c.execute(_ACTIVE_SESSIONS, (key,)).fetchall())
        return [rows.session(r) for r in found]

    async def get_session_by_key(self, bot_id: uuid.UUID, key: str) -> ChatSession | None:
        params = (str(check_id(bot_id, "bot_id")), check_session_key(key))
        row = await self._readers.run(lambda c: c.execute(_KEYED_SESSION, params).fetchone())
        return None if row is None else rows.session(row)

    async def get_or_create_session_by_key(self, session: ChatSession, key: str) -> ChatSession:
        check_model(session, ChatSession, "get_or_create_session_by_key")
        if session.message_count != 0:
            raise ValidationError("a new session must have message_count 0 (save_message counts)")
        params = (*rows.session_params(session), check_session_key(key))

        # The writer holds the database's write lock for the whole unit, so no other
        # writer (in this process or another) can insert the key between look-up and insert.
        def unit(conn: sqlite3.Connection) -> ChatSession:
            row = conn.execute(_KEYED_SESSION, (params[1], key)).fetchone()
            if row is not None:
                return rows.session(row)
            if conn.execute(_COUNT_CONVERSATION, (params[1],)).rowcount == 0:
                raise NotFoundError(f"bot {session.bot_id} not found")
            conn.execute(_INSERT_KEYED_SESSION, params)
            return session

        return await self._writer.run(unit)

    async def save_message(self, message: ChatMessage) -> ChatMessage:
        save = _saver(message)
        return with_seq(message, await self._writer.run(save))

    async def save_messages(self, messages: Sequence[ChatMessage]) -> list[ChatMessage]:
        savers = [_saver(m) for m in messages]
        if not savers:
            return []
        seqs = await self._writer.run(lambda conn: [save(conn) for save in savers])
        return [with_seq(m, seq) for m, seq in zip(messages, seqs, strict=True)]

    async def pop_message(self, session_id: uuid.UUID) -> ChatMessage | None:
        sid = check_id(session_id, "session_id")
        key = str(sid)

        def unit(conn: sqlite3.Connection) -> ChatMessage | None:
            row = conn.execute(_POP_COUNT, (key,)).fetchone()
            if row is None:
                if conn.execute(_MESSAGE_COUNT, (key,)).fetchone() is None:
                    raise NotFoundError(f"chat session {session_id} not found")
                return None
            popped = conn.execute(_POP_MESSAGE, (key, row[0])).fetchone()
            conn.execute(_POP_SUMMARIES, (key, row[0]))
            return rows.message(popped, sid)

        return await self._writer.run(unit)

    async def get_message(self, message_id: uuid.UUID) -> ChatMessage | None:
        key = str(check_id(message_id, "message_id"))
        row = await self._readers.run(lambda c: c.execute(_GET_MESSAGE, (key,)).fetchone())
        return None if row is None else rows.message(row)

    async def get_messages(
        self, session_id: uuid.UUID, *, limit: int | None = None, offset: int | None = None
    ) -> list[ChatMessage]:
        sid = check_id(session_id, "session_id")
        lim, off = check_page(limit, offset)
        params = (str(sid), -1 if lim is None else lim, off)
        found = await self._readers.run(lambda c: c.execute(_GET_MESSAGES, params).fetchall())
        return [rows.message(r, sid) for r in found]

    async def get_recent_messages(self, session_id: uuid.UUID, limit: int) -> list[ChatMessage]:
        sid = check_id(session_id, "session_id")
        params = (str(sid), check_limit(limit))
        found = await self._readers.run(lambda c: c.execute(_RECENT_MESSAGES, params).fetchall())
        return [rows.message(r, sid) for r in reversed(found)]

    async def get_message_count(self, session_id: uuid.UUID) -> int:
        key = str(check_id(session_id, "session_id"))
        row = await self._readers.run(lambda c: c.execute(_MESSAGE_COUNT, (key,)).fetchone())
        return 0 if row is None else int(row[0])

    async def clear_messages(self, session_id: uuid.UUID) -> int:
        key = str(check_id(session_id, "session_id"))

        def unit(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "UPDATE chat_sessions SET message_count = 0 WHERE id = ? RETURNING message_count",
                (key,),
            ).fetchone()
            if row is None:
                raise NotFoundError(f"chat session {session_id} not found")
            deleted = int(conn.execute(_CLEAR[0], (key,)).rowcount)
            for sql in _CLEAR[1:]:
                conn.execute(sql, (key,))
            return deleted

        return await self._writer.run(unit)

    async def count_sessions(self) -> int:
        row = await self._readers.run(
            lambda c: c.execute("SELECT count(*) FROM chat_sessions").fetchone()
        )
        return int(row[0])

    async def count_messages(self) -> int:
        row = await self._readers.run(
            lambda c: c.execute("SELECT count(*) FROM chat_messages").fetchone()
        )
        return int(row[0])
