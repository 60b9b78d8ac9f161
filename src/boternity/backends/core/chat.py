"""ChatRepository, once for every backend."""

from __future__ import annotations

import uuid
from typing import Any

from boternity.backends.common import MAX_BIGINT, check_id, check_limit, check_model, with_seq
from boternity.backends.core.dialect import (
    ALL,
    COUNT,
    NONE,
    ONE,
    VALUE,
    Dialect,
    Executor,
    Repository,
    Unit,
    missing,
)
from boternity.backends.core.tables import MESSAGES, SESSIONS
from boternity.errors import ValidationError
from boternity.models import ChatMessage, ChatSession


class ChatCore(Repository):
    #: True where a dialect replaces _create_session and _save_message by one statement each,
    #: which then needs no explicit transaction.
    _fused = False

    def __init__(self, executor: Executor, dialect: Dialect) -> None:
        super().__init__(executor, dialect)
        self._encode_session = dialect.encoder(SESSIONS)
        self._encode_message = dialect.encoder(MESSAGES)
        self._session = dialect.decoder(SESSIONS)
        self._message = dialect.decoder(MESSAGES)
        self._message_of = dialect.decoder(MESSAGES, fixed="session_id")

    async def create_session(self, session: ChatSession) -> ChatSession:
        check_model(session, ChatSession, "create_session")
        if session.message_count != 0:
            raise ValidationError("a new session must have message_count 0 (save_message counts)")
        params = self._encode_session(session)

        def unit() -> Unit[ChatSession]:
            yield from self._create_session(params, session.bot_id)
            return session

        conflict = f"a chat session with id {session.id} already exists"
        return await self._x.write(
            unit, atomic=not self._fused, conflicts={"chat_sessions.id": conflict}
        )

    def _create_session(self, params: list[Any], bot_id: uuid.UUID) -> Unit[None]:
        """Count the session on its bot and insert it."""
        if (yield self._q.count_conversation, (params[1],), COUNT) == 0:
            raise missing("bot", bot_id)
        yield self._q.insert_session, params, NONE

    async def get_session(self, session_id: uuid.UUID) -> ChatSession | None:
        return await self._get(
            self._q.get_session, self._session, self._id(session_id, "session_id")
        )

    async def update_session(self, session: ChatSession) -> ChatSession:
        check_model(session, ChatSession, "update_session")
        s = session
        params = (s.title, s.status.value, self._opt_time(s.ended_at), self._key(s.id))
        return await self._update(
            self._q.update_session, params, self._session, "chat session", s.id
        )

    async def list_sessions(
        self, bot_id: uuid.UUID, *, limit: int | None = None, offset: int | None = None
    ) -> list[ChatSession]:
        params = (self._id(bot_id, "bot_id"), *self._page(limit, offset))
        return await self._all(self._q.list_sessions, self._session, *params, browse=True)

    async def delete_session(self, session_id: uuid.UUID) -> None:
        key = self._id(session_id, "session_id")
        await self._delete(self._q.delete_session, key, "chat session", session_id)

    async def get_active_sessions(self, bot_id: uuid.UUID) -> list[ChatSession]:
        return await self._all(self._q.active_sessions, self._session, self._id(bot_id, "bot_id"))

    async def save_message(self, message: ChatMessage) -> ChatMessage:
        check_model(message, ChatMessage, "save_message")
        if (message.input_tokens or 0) + (message.output_tokens or 0) > MAX_BIGINT:
            raise ValidationError("input_tokens + output_tokens does not fit in a 64-bit integer")
        params = self._encode_message(message)
        seq: int = await self._x.write(
            lambda: self._save_message(message, params),
            atomic=not self._fused,
            conflicts={"chat_messages.id": f"a message with id {message.id} already exists"},
        )
        return with_seq(message, seq)

    def _save_message(self, m: ChatMessage, params: list[Any]) -> Unit[int]:
        """Assign seq, insert, and bump the session's and the bot's counters; returns seq.
        The session row is the counter, so seq, totals and activity move together."""
        tokens_in, tokens_out, at = m.input_tokens or 0, m.output_tokens or 0, params[5]
        row = yield self._q.bump_session, (tokens_in, tokens_out, at, params[1]), ONE
        if row is None:
            raise missing("chat session", m.session_id)
        seq: int = row[0]
        if not row[2]:
            raise ValidationError(f"chat session {m.session_id}: token totals would overflow")
        params[2] = seq
        yield self._q.insert_message, params, NONE
        if not (yield self._q.bump_bot_tokens, (tokens_in + tokens_out, at, row[1]), VALUE):
            raise ValidationError(f"bot {row[1]}: total_tokens_used would overflow")
        return seq

    async def get_message(self, message_id: uuid.UUID) -> ChatMessage | None:
        return await self._get(
            self._q.get_message, self._message, self._id(message_id, "message_id")
        )

    async def get_messages(
        self, session_id: uuid.UUID, *, limit: int | None = None, offset: int | None = None
    ) -> list[ChatMessage]:
        sid = check_id(session_id, "session_id")
        params = (self._key(sid), *self._page(limit, offset))
        found = await self._x.read(self._q.get_messages, params, ALL, browse=True)
        return [self._message_of(r, sid) for r in found]

    async def get_recent_messages(self, session_id: uuid.UUID, limit: int) -> list[ChatMessage]:
        sid = check_id(session_id, "session_id")
        params = (self._key(sid), check_limit(limit))
        found = await self._x.read(self._q.recent_messages, params, ALL)
        return [self._message_of(r, sid) for r in reversed(found)]

    async def get_message_count(self, session_id: uuid.UUID) -> int:
        key = self._id(session_id, "session_id")
        count = await self._x.read(self._q.message_count, (key,), VALUE)
        return 0 if count is None else int(count)

    async def clear_messages(self, session_id: uuid.UUID) -> int:
        key = (self._id(session_id, "session_id"),)

        def unit() -> Unit[int]:
            # Resetting the counter first locks the session: nothing is appended meanwhile.
            if (yield self._q.reset_message_count, key, VALUE) is None:
                raise missing("chat session", session_id)
            deleted: int = yield self._q.clear_messages, key, COUNT
            yield self._q.clear_summaries, key, NONE
            yield self._q.clear_pending, key, NONE
            return deleted

        return await self._x.write(unit, atomic=True)

    async def count_sessions(self) -> int:
        return int(await self._x.read(self._q.count_sessions, (), VALUE, browse=True))

    async def count_messages(self) -> int:
        return int(await self._x.read(self._q.count_messages, (), VALUE, browse=True))
