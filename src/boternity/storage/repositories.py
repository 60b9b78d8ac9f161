"""BotRepository, ChatRepository and MemoryRepository, once for every backend.

Argument checks, error messages, business rules and result mapping live here; each unit of
work is a generator of steps (see dialect.py) that every backend's executor runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from boternity.errors import ConflictError, ValidationError
from boternity.ids import new_id, utc_now
from boternity.models import (
    FIRST_TIME,
    MAX_BIGINT,
    MAX_EXTRACTION_ATTEMPTS,
    Bot,
    BotCategory,
    BotStatus,
    ChatMessage,
    ChatSession,
    ContextSummary,
    MemoryActor,
    MemoryEntry,
    MemoryEvent,
    MemoryEventKind,
    MessageHit,
    MessageRole,
    PendingExtraction,
    SoulVersion,
    check_enum,
    check_vector,
    soul_hash,
)
from boternity.repositories import (
    ANY_USER,
    DEFAULT_LEASE,
    StoredEmbedding,
    UserCounts,
    UserData,
    UserScope,
    may_supersede,
)
from boternity.storage.checks import (
    check_id,
    check_limit,
    check_model,
    check_not_remembered,
    check_scope,
    check_session_key,
    check_slug,
    check_user,
    check_version,
    claim_window,
    drop_remembered,
    search_terms,
)
from boternity.storage.dialect import (
    ALL,
    COUNT,
    NONE,
    ONE,
    QUICK_ROWS,
    VALUE,
    Dialect,
    Executor,
    Repository,
    Step,
    Unit,
    id_taken,
    missing,
)
from boternity.storage.search import snippet
from boternity.storage.sql import MESSAGE_FILTERS, RESERVE_STEP, reserved
from boternity.storage.tables import (
    BOTS,
    HISTORY,
    MEMORIES,
    MESSAGES,
    PENDING,
    SESSIONS,
    SOULS,
    SUMMARIES,
    TAGS,
    TIME,
    UUID,
    copy_with,
)
from boternity.storage.vectors import (
    KEEP_VERSIONS,
    PRUNE_EVERY,
    THREAD_FLOATS,
    BotVectors,
    VectorCache,
    build,
    check_embedding_model,
    nearest,
    to_bytes,
)

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

#: The lists of a UserData, one per kind of row.
_USER_DATA_LISTS = tuple(
    f.name for f in dataclasses.fields(UserData) if f.name not in ("bot_id", "user_id")
)


class BotCore(Repository):
    def __init__(self, executor: Executor, dialect: Dialect) -> None:
        super().__init__(executor, dialect)
        self._encode = dialect.encoder(BOTS)
        self._bot = dialect.decoder(BOTS)
        self._soul = dialect.decoder(SOULS)

    async def create_bot(self, bot: Bot) -> Bot:
        check_model(bot, Bot, "create_bot")
        params = self._encode(bot)

        def unit() -> Unit[Bot]:
            yield self._q.insert_bot, params, NONE
            return bot

        return await self._x.write(
            unit,
            conflicts=lambda: {
                "bots.id": f"a bot with id {bot.id} already exists",
                "bots.slug": f"a bot with slug {bot.slug!r} already exists",
            },
        )

    async def get_bot(self, bot_id: uuid.UUID) -> Bot | None:
        return await self._get(self._q.get_bot, self._bot, self._id(bot_id, "bot_id"))

    async def get_bot_by_slug(self, slug: str) -> Bot | None:
        return await self._get(self._q.get_bot_by_slug, self._bot, check_slug(slug))

    async def list_bots(
        self,
        *,
        status: BotStatus | str | None = None,
        category: BotCategory | str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[Bot]:
        st = None if status is None else check_enum(BotStatus, status, "status").value
        cat = None if category is None else check_enum(BotCategory, category, "category").value
        params = (st, cat, *self._page(limit, offset))
        return await self._all(self._q.list_bots, self._bot, *params, browse=True)

    async def update_bot(self, bot: Bot) -> Bot:
        check_model(bot, Bot, "update_bot")
        params = (
            bot.name, bot.slug, bot.description, bot.status.value, bot.category.value,
            self._d.adapter(TAGS)(bot.tags), bot.user_id, self._time(utc_now()), self._key(bot.id),
        )  # fmt: skip
        conflict = lambda: {"bots.slug": f"another bot already has slug {bot.slug!r}"}  # noqa: E731
        return await self._update(self._q.update_bot, params, self._bot, "bot", bot.id, conflict)

    async def delete_bot(self, bot_id: uuid.UUID) -> None:
        await self._delete(self._q.delete_bot, self._id(bot_id, "bot_id"), "bot", bot_id)

    async def save_soul(
        self, bot_id: uuid.UUID, content: str, *, message: str | None = None
    ) -> SoulVersion:
        bid = check_id(bot_id, "bot_id")
        # Built once here so bad text is refused before anything is written.
        draft = SoulVersion(
            bot_id=bid, content=content, version=1, hash=soul_hash(content), message=message
        )
        key, at = self._key(bid), self._time(draft.created_at)

        def unit() -> Unit[int]:
            # The first statement locks the bot row, so the second sees every version
            # committed before it and picks N+1.
            if (yield self._q.bump_soul_count, (key, at), VALUE) is None:
                raise missing("bot", bot_id)
            insert = (self._key(draft.id), key, content, draft.hash, message, at)
            version: int = yield self._q.insert_soul, insert, VALUE
            return version

        return dataclasses.replace(draft, version=await self._x.write(unit, atomic=True))

    async def get_soul(self, bot_id: uuid.UUID, version: int | None = None) -> SoulVersion | None:
        key = self._id(bot_id, "bot_id")
        if version is None:
            return await self._get(self._q.latest_soul, self._soul, key)
        return await self._get(self._q.get_soul, self._soul, key, check_version(version))

    async def list_soul_versions(self, bot_id: uuid.UUID) -> list[SoulVersion]:
        key = self._id(bot_id, "bot_id")
        return await self._all(self._q.list_souls, self._soul, key, browse=True)


_with_seq = copy_with(ChatMessage, "seq")


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
        self._uuid = dialect.from_db.get(UUID) or _as_uuid
        self._from_time = dialect.from_db.get(TIME) or _same_value

    async def create_session(self, session: ChatSession) -> ChatSession:
        return await self._new_session(session, None, "create_session")

    async def get_or_create_session_by_key(self, session: ChatSession, key: str) -> ChatSession:
        key = check_session_key(key)
        return await self._new_session(session, key, "get_or_create_session_by_key")

    async def _new_session(self, session: ChatSession, key: str | None, where: str) -> ChatSession:
        check_model(session, ChatSession, where)
        if session.message_count != 0:
            raise ValidationError("a new session must have message_count 0 (save_message counts)")
        params = self._encode_session(session)

        def unit() -> Unit[ChatSession]:
            while True:  # a keyed session another writer created meanwhile is the one
                if key is not None:
                    row = yield self._q.keyed_session, (params[1], key), ONE
                    if row is not None:
                        return _same_user(self._session(row), session.user_id, key)
                if (yield from self._create_session(params, key, session.bot_id)):
                    return session

        conflicts = id_taken(SESSIONS, "chat session", session.id)
        return await self._x.write(unit, atomic=not self._fused, conflicts=conflicts)

    def _create_session(self, params: list[Any], key: str | None, bot: uuid.UUID) -> Unit[bool]:
        """Count the session on its bot and insert it, under ``key`` if not None. False when
        the key was taken first: never here, as this runs in the transaction that found the
        key free, but possible where a dialect inserts without that look-up held."""
        if (yield self._q.count_conversation, (params[1],), COUNT) == 0:
            raise (yield from self._not_counted(params[1], bot))
        if key is None:
            yield self._q.insert_session, params, NONE
        else:
            yield self._q.insert_keyed_session, [*params, key], NONE
        return True

    def _not_counted(self, key: Any, bot: uuid.UUID) -> Unit[Exception]:
        """Why a new session could not be counted on its bot: there is no such bot, or the
        bot's total is so close to 2^63 - 1 that no session can reserve tokens on it."""
        if (yield self._q.bot_exists, (key,), VALUE):
            return ValidationError(
                f"bot {bot}: its tokens, with {RESERVE_STEP} reserved for each live session,"
                f" are within {RESERVE_STEP} of 2^63 - 1: no new session fits"
            )
        return missing("bot", bot)

    async def get_session_by_key(self, bot_id: uuid.UUID, key: str) -> ChatSession | None:
        params = (self._id(bot_id, "bot_id"), check_session_key(key))
        return await self._get(self._q.keyed_session, self._session, *params)

    async def get_session(self, session_id: uuid.UUID) -> ChatSession | None:
        key = self._id(session_id, "session_id")
        return await self._get(self._q.get_session, self._session, key)

    async def update_session(self, session: ChatSession) -> ChatSession:
        check_model(session, ChatSession, "update_session")
        s = session
        params = (s.title, s.status.value, self._opt_time(s.ended_at), self._key(s.id))
        return await self._update(
            self._q.update_session, params, self._session, "chat session", s.id
        )

    async def list_sessions(
        self,
        bot_id: uuid.UUID,
        *,
        user_id: UserScope = ANY_USER,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[ChatSession]:
        q, key = self._q, self._id(bot_id, "bot_id")
        choice = (q.list_sessions, q.user_sessions, q.userless_sessions)
        return await self._sessions(choice, (key,), user_id, limit, offset)

    async def list_all_sessions(
        self, *, user_id: UserScope = ANY_USER, limit: int | None = None, offset: int | None = None
    ) -> list[ChatSession]:
        q = self._q
        choice = (q.list_all_sessions, q.all_user_sessions, q.all_userless_sessions)
        return await self._sessions(choice, (), user_id, limit, offset)

    async def _sessions(
        self,
        statements: tuple[str, str, str],
        head: tuple[Any, ...],
        user_id: UserScope,
        limit: int | None,
        offset: int | None,
    ) -> list[ChatSession]:
        """A page of sessions whose user is ``user_id`` (statements: for any user, one user,
        no user; each bound with ``head``, [the user,] limit and offset)."""
        user, page = check_scope(user_id), self._page(limit, offset)
        every, one, none = statements
        if user is ANY_USER:
            sql, params = every, (*head, *page)
        elif user is None:
            sql, params = none, (*head, *page)
        else:
            sql, params = one, (*head, user, *page)
        return await self._all(sql, self._session, *params, browse=True)

    async def get_sessions_by_ids(
        self, session_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, ChatSession]:
        return await self._by_ids(
            self._q.sessions_by_ids, self._session, session_ids, "session_ids"
        )

    async def delete_session(self, session_id: uuid.UUID) -> None:
        key = self._id(session_id, "session_id")
        await self._delete(self._q.delete_session, key, "chat session", session_id)

    async def get_active_sessions(self, bot_id: uuid.UUID) -> list[ChatSession]:
        return await self._all(self._q.active_sessions, self._session, self._id(bot_id, "bot_id"))

    def _message_params(self, m: ChatMessage) -> tuple[list[Any], tuple[int, int]]:
        """A message checked and bound, and its input and output tokens (0 for None)."""
        check_model(m, ChatMessage, "save_message")
        tokens = (m.input_tokens or 0, m.output_tokens or 0)
        if tokens[0] + tokens[1] > MAX_BIGINT:
            raise ValidationError("input_tokens + output_tokens does not fit in a 64-bit integer")
        return self._encode_message(m), tokens

    async def save_message(self, message: ChatMessage) -> ChatMessage:
        seq: int = await self._x.write(
            functools.partial(self._save_message, message, *self._message_params(message)),
            atomic=not self._fused,
            conflicts=id_taken(MESSAGES, "message", message.id),
        )
        return _with_seq(message, seq)

    async def save_messages(self, messages: Sequence[ChatMessage]) -> list[ChatMessage]:
        batch = [(m, *self._message_params(m)) for m in messages]
        if not batch:
            return []

        def unit() -> Unit[list[int]]:
            seqs = []
            for each in batch:
                seqs.append((yield from self._save_message(*each)))
            return seqs

        seqs = await self._x.write(unit, atomic=True, conflicts=id_taken(MESSAGES, "message"))
        return [_with_seq(m, seq) for m, seq in zip(messages, seqs, strict=True)]

    def _save_message(
        self, m: ChatMessage, params: list[Any], tokens: tuple[int, int]
    ) -> Unit[int]:
        """Assign seq, insert, and bump the session's and the bot's counters; returns seq.
        The session row is the counter, so seq, totals and activity move together.
        ``tokens``: input and output tokens, 0 for None."""
        (tokens_in, tokens_out), at = tokens, params[5]
        row = yield self._q.bump_session, (tokens_in, tokens_out, at, params[1]), ONE
        if row is None:
            raise missing("chat session", m.session_id)
        seq: int = row[0]
        if not row[2]:
            raise ValidationError(f"chat session {m.session_id}: token totals would overflow")
        params[2] = seq
        yield self._q.insert_message, params, NONE
        # The bot's row is written only when the session crosses a reservation step.
        total = row[3] + row[4]
        before = total - tokens_in - tokens_out
        if total // RESERVE_STEP != before // RESERVE_STEP or total > MAX_BIGINT:
            grow = reserved(total) - reserved(before)
            if grow > MAX_BIGINT or not (
                yield self._q.reserve_tokens, (grow, row[1], MAX_BIGINT - grow), VALUE
            ):
                raise ValidationError(f"bot {row[1]}: total_tokens_used would overflow")
        return seq

    async def pop_message(self, session_id: uuid.UUID) -> ChatMessage | None:
        sid = check_id(session_id, "session_id")
        key = (self._key(sid),)

        def unit() -> Unit[ChatMessage | None]:
            # As in clear_messages: the first statement locks the session row.
            seq = yield self._q.pop_count, key, VALUE
            if seq is None:
                if (yield self._q.message_count, key, VALUE) is None:
                    raise missing("chat session", session_id)
                return None
            row = yield self._q.pop_message, (*key, seq), ONE
            yield self._q.pop_summaries, (*key, seq), NONE
            return self._message_of(row, sid)

        return await self._x.write(unit, atomic=True)

    async def get_message(self, message_id: uuid.UUID) -> ChatMessage | None:
        key = self._id(message_id, "message_id")
        return await self._get(self._q.get_message, self._message, key)

    async def get_messages_by_ids(
        self, message_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, ChatMessage]:
        return await self._by_ids(
            self._q.messages_by_ids, self._message, message_ids, "message_ids"
        )

    async def get_first_and_last_messages(
        self, session_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[ChatMessage, ChatMessage]]:
        bound = self._id_list(session_ids, "session_ids")
        if bound is None:
            return {}
        ends: dict[uuid.UUID, tuple[ChatMessage, ChatMessage]] = {}
        for row in await self._x.read(self._q.first_and_last_messages, (bound,), ALL, browse=True):
            m = self._message(row)  # by session, then seq: a session's first row is its first
            ends[m.session_id] = (ends[m.session_id][0] if m.session_id in ends else m, m)
        return ends

    async def get_messages(
        self, session_id: uuid.UUID, *, limit: int | None = None, offset: int | None = None
    ) -> list[ChatMessage]:
        sid = check_id(session_id, "session_id")
        params = (self._key(sid), *self._page(limit, offset))
        found = await self._x.read(self._q.get_messages, params, ALL, browse=True)
        return self._message_of.many(found, sid)

    async def get_recent_messages(self, session_id: uuid.UUID, limit: int) -> list[ChatMessage]:
        sid = check_id(session_id, "session_id")
        params = (self._key(sid), check_limit(limit))
        found = await self._x.read(
            self._q.recent_messages, params, ALL, bounded=params[1] <= QUICK_ROWS
        )
        return self._message_of.many(reversed(found), sid)

    async def get_message_count(self, session_id: uuid.UUID) -> int:
        key = self._id(session_id, "session_id")
        count = await self._x.read(self._q.message_count, (key,), VALUE, bounded=True)
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

    async def count_sessions(self, *, bot_id: uuid.UUID | None = None) -> int:
        if bot_id is None:
            return await self._count(self._q.count_sessions)
        return await self._count(self._q.count_bot_sessions, self._id(bot_id, "bot_id"))

    async def count_messages(self) -> int:
        return await self._count(self._q.count_messages)

    async def search_messages(
        self,
        query: str,
        *,
        bot_id: uuid.UUID | None = None,
        user_id: UserScope = ANY_USER,
        limit: int = 20,
    ) -> list[MessageHit]:
        scope = check_scope(user_id)
        # One value per MESSAGE_FILTERS entry, in its order (None: any).
        filters = {
            "bot_id": None if bot_id is None else self._id(bot_id, "bot_id"),
            "user_id": None if scope is None or scope is ANY_USER else scope,
            "without_user": True if scope is None else None,
        }
        check_limit(limit)
        terms = search_terms(query)
        if not terms or limit == 0:
            return []
        params = (self._d.search_text(terms, False), limit, *(filters[f] for f in MESSAGE_FILTERS))
        if self._q.index_waiting:  # so the latest messages are found too
            await self._x.write(self._index_waiting, atomic=True)
        rows = await self._x.read(self._q.search_messages, params, ALL, browse=True)
        return [self._hit(row) for row in rows]

    def _index_waiting(self) -> Unit[None]:
        yield self._q.index_waiting, (), NONE
        yield self._q.clear_waiting, (), NONE

    def _hit(self, row: Sequence[Any]) -> MessageHit:
        message_id, session_id, seq, role, at, length, start, bot, user, marked = row
        text, marks = snippet(
            start, marked, in_content=self._q.marks_in_content, length=int(length)
        )
        return MessageHit(
            message_id=self._uuid(message_id),
            session_id=self._uuid(session_id),
            bot_id=self._uuid(bot),
            user_id=user,
            seq=int(seq),
            role=MessageRole(role),
            created_at=self._from_time(at),
            length=int(length),
            snippet=text,
            marks=marks,
        )


def _same_user(found: ChatSession, user_id: str | None, key: str) -> ChatSession:
    """The session stored under ``key``, if it is ``user_id``'s: a key never hands one
    person's conversation to another."""
    if found.user_id != user_id:
        raise ConflictError(
            f"session key {key!r} names a session of another user (session {found.id})"
        )
    return found


_memory_conflict = id_taken(MEMORIES, "memory")


def _check_memory(entry: object, what: str = "memory") -> MemoryEntry:
    return check_model(entry, MemoryEntry, what)


def _check_owner(m: MemoryEntry, session_user: str | None, where: str) -> None:
    """A memory from a session belongs to the session's user (provenance and owner agree)."""
    if m.user_id != session_user:
        raise ValidationError(
            f"memory user_id does not match the user of {where}"
            " (a memory from a session belongs to the session's user)"
        )


def _bot_then_user(pair: tuple[uuid.UUID, str | None]) -> tuple[uuid.UUID, bool, str]:
    bot, user = pair
    return bot, user is not None, user or ""


class MemoryCore(Repository):
    def __init__(self, executor: Executor, dialect: Dialect) -> None:
        super().__init__(executor, dialect)
        self._encode_memory = dialect.encoder(MEMORIES)
        self._encode_pending = dialect.encoder(PENDING)
        self._memory = dialect.decoder(MEMORIES)
        self._pending = dialect.decoder(PENDING)
        self._summary = dialect.decoder(SUMMARIES)
        self._event = dialect.decoder(HISTORY)
        self._vectors = VectorCache()

    # --- units -------------------------------------------------------------------------

    def _record(
        self, memory: Any, bot: Any, user: str | None, fact: str, event: MemoryEventKind,
        actor: MemoryActor, *, job: Any = None, related: Any = None,
    ) -> Step:  # fmt: skip
        """One memory_history row (ids as bound), in the transaction of the change; ``user``:
        the memory's, so erasing the user erases its history too."""
        row = (self._key(new_id()), memory, bot, event.value, actor.value, fact, job, related,
               self._time(utc_now()), user)  # fmt: skip
        return self._q.insert_history, row, NONE

    def _insert_memory(self, m: MemoryEntry, job: Any = None) -> Unit[None]:
        """Insert a memory, naming a missing or foreign parent instead of a bare foreign-key
        failure, and record it; ``job``: the extraction job adding it (as bound)."""
        p = self._encode_memory(m)
        refs = (p[1], p[2], p[6], p[7], p[0])
        row = yield self._q.memory_refs, refs, ONE
        (bot_ok, session_bot, session_user, message_session, message_bot, message_user,
         newer_bot, newer_user, taken) = row  # fmt: skip
        if not bot_ok:
            raise missing("bot", m.bot_id)
        if m.session_id is not None:
            if session_bot is None:
                raise missing("chat session", m.session_id)
            if session_bot != p[1]:
                raise ValidationError(f"chat session {m.session_id} belongs to another bot")
            _check_owner(m, session_user, f"chat session {m.session_id}")
        if m.source_message_id is not None:
            if message_session is None:
                raise missing("source message", m.source_message_id)
            if message_bot != p[1] or (m.session_id is not None and message_session != p[2]):
                raise ValidationError(
                    f"source message {m.source_message_id} is not in this memory's session"
                )
            _check_owner(m, message_user, f"the session of source message {m.source_message_id}")
        if m.superseded_by is not None:
            if newer_bot is None:
                raise missing("superseding memory", m.superseded_by)
            if newer_bot != p[1]:
                raise ValidationError(
                    f"superseding memory {m.superseded_by} belongs to another bot"
                )
            if not may_supersede(newer_user, m.user_id):
                raise ValidationError(
                    f"superseding memory {m.superseded_by} belongs to another user"
                )
        if taken:
            raise ConflictError(f"a memory with id {m.id} already exists")
        yield self._q.insert_memory, p, NONE
        if job is not None:
            actor = MemoryActor.EXTRACTION
        else:
            actor = MemoryActor.USER if m.is_manual else MemoryActor.SYSTEM
        yield self._record(p[0], p[1], m.user_id, m.fact, MemoryEventKind.ADDED, actor, job=job)

    def _supersede(self, old_id: uuid.UUID, new: MemoryEntry, job: Any = None) -> Unit[None]:
        old, new_key = self._key(old_id), self._key(new.id)
        row = yield self._q.lock_memory, (old,), ONE
        if row is None:
            raise missing("memory", old_id)
        bot, superseded_by, fact, user = row
        if bot != self._key(new.bot_id):
            raise ValidationError(f"memory {old_id} belongs to another bot")
        if not may_supersede(new.user_id, user):
            raise ValidationError(
                f"memory {old_id} belongs to "
                + ("another user" if user is not None else "the bot (no user)")
                + ": a memory is only superseded by one of the same user"
            )
        if superseded_by is not None:
            raise ConflictError(f"memory {old_id} is already superseded by {superseded_by}")
        if old_id == new.id:
            raise ValidationError("a memory cannot supersede itself")
        yield self._q.supersede, (new_key, old), NONE
        actor = MemoryActor.EXTRACTION if job is not None else MemoryActor.USER
        yield self._record(old, bot, user, fact, MemoryEventKind.SUPERSEDED, actor, job=job,
                           related=new_key)  # fmt: skip

    def _bump(self, bot: Any) -> Unit[int]:
        """Raise the bot's memory_version (bot as bound) and return it: the first step of a
        unit that changes the bot's vectors (an embedding written, a memory superseded,
        restored or deleted), before any memory row is locked (see vectors.py)."""
        version = yield self._q.bump_memory_version, (bot,), VALUE
        if version is None:
            raise missing("bot", bot)
        yield from self._prune(bot, int(version))
        return int(version)

    def _prune(self, bot: Any, version: int) -> Unit[None]:
        """Every PRUNE_EVERY versions, the change notes older than the last KEEP_VERSIONS
        versions go (memory_changes would grow with every change forever); the bot row,
        locked by the bump, records up to which version they went."""
        if version % PRUNE_EVERY == 0 and version > KEEP_VERSIONS:
            yield self._q.prune_changes, (bot, version - KEEP_VERSIONS), NONE
            yield self._q.note_pruned, (version - KEEP_VERSIONS, bot), NONE

    def _log(self, bot: Any, version: int, memory: Any) -> Step:
        """Note that this memory was superseded, restored or deleted at ``version``."""
        return self._q.log_change, (bot, version, memory), NONE

    def _live_facts(
        self, bot: uuid.UUID, user: str | None, *, lock: bool = True
    ) -> Unit[list[tuple[Any, str]]]:
        """(id, fact) of the live memories a conversation of the bot with ``user`` sees, for
        a duplicate check in the saving unit, after taking the bot's lock (``lock``; once per
        bot and unit is enough): check and insert are one step per bot (a READ COMMITTED
        transaction sees what the previous lock holder committed)."""
        key = self._key(bot)
        if lock:
            yield self._q.lock_bot, (key,), NONE
        facts: list[tuple[Any, str]] = yield self._q.live_facts, (key, user), ALL
        return facts

    # --- memories ----------------------------------------------------------------------

    async def save_memory(self, entry: MemoryEntry, *, unique: bool = False) -> MemoryEntry:
        m = _check_memory(entry)

        def unit() -> Unit[MemoryEntry]:
            if unique:
                check_not_remembered(m, (yield from self._live_facts(m.bot_id, m.user_id)))
            yield from self._insert_memory(m)
            return m

        return await self._x.write(unit, atomic=True, conflicts=_memory_conflict)

    async def get_memory(self, memory_id: uuid.UUID) -> MemoryEntry | None:
        return await self._get(self._q.get_memory, self._memory, self._id(memory_id, "memory_id"))

    async def get_memories(
        self,
        bot_id: uuid.UUID,
        *,
        user_id: UserScope = None,
        limit: int | None = None,
        include_superseded: bool = False,
    ) -> list[MemoryEntry]:
        key, user = self._id(bot_id, "bot_id"), check_scope(user_id)
        every, lim = bool(include_superseded), self._page(limit, None)[0]
        params: tuple[Any, ...]
        if user is ANY_USER:
            sql, params = self._q.all_memories, (key, every, lim)
        else:
            sql, params = self._q.get_memories, (key, every, user, lim)
        bounded = limit is not None and lim is not None and 0 <= lim <= QUICK_ROWS
        return await self._all(sql, self._memory, *params, browse=True, bounded=bounded)

    async def count_memories(
        self, bot_id: uuid.UUID, *, user_id: UserScope = ANY_USER, include_superseded: bool = False
    ) -> int:
        key, user, every = (
            self._id(bot_id, "bot_id"),
            check_scope(user_id),
            bool(include_superseded),
        )
        if user is ANY_USER:
            return await self._count(self._q.count_memories, key, every)
        return await self._count(self._q.count_visible_memories, key, every, user)

    async def delete_memory(self, memory_id: uuid.UUID) -> None:
        key = self._id(memory_id, "memory_id")

        def unit() -> Unit[None]:
            owner = yield self._q.memory_bot, (key,), VALUE
            if owner is None:
                raise missing("memory", memory_id)
            version = yield from self._bump(owner)
            # Read first: the memories this one superseded become live again (SET NULL).
            restored = yield self._q.superseded_by, (key,), ALL
            row = yield self._q.delete_memory, (key,), ONE
            if row is None:
                raise missing("memory", memory_id)
            bot, fact, user = row
            yield self._log(bot, version, key)
            for old_id, old_fact, old_user in restored:
                yield self._log(bot, version, old_id)
                yield self._record(old_id, bot, old_user, old_fact, MemoryEventKind.RESTORED,
                                   MemoryActor.USER, related=key)  # fmt: skip
            yield self._record(key, bot, user, fact, MemoryEventKind.DELETED, MemoryActor.USER)

        await self._x.write(unit, atomic=True)

    async def delete_all_memories(self, bot_id: uuid.UUID) -> int:
        key = self._id(bot_id, "bot_id")

        def unit() -> Unit[int]:
            version = yield self._q.bump_memory_version, (key,), VALUE
            if version is None:
                return 0  # no such bot: nothing to delete
            yield from self._prune(key, int(version))
            yield self._q.log_all_memories, (version, key), NONE
            deleted = yield self._q.delete_all_memories, (key,), ALL
            for memory, fact, user in deleted:
                yield self._record(memory, key, user, fact, MemoryEventKind.DELETED,
                                   MemoryActor.USER)  # fmt: skip
            return len(deleted)

        return await self._x.write(unit, atomic=True)

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
        key, user = self._id(bot_id, "bot_id"), check_scope(user_id)
        check_limit(limit)
        terms = search_terms(query)
        if not terms or limit == 0:
            return []
        every = user is ANY_USER
        text = self._d.search_text(terms, bool(match_all))
        params = (key, text, bool(include_superseded), limit, every, None if every else user)
        if not match_all and len(terms) > 1:
            plan = None if self._d.pruning is None else self._d.pruning.plan(terms, limit)
            found = None if plan is None else await self._search_candidates(plan, params)
            if found is None and self._d.score_bound is not None:
                found = await self._search_pruned(terms, params)
            if found is not None:
                return found
        return await self._all(self._q.search, self._memory, *params, browse=True)

    async def _search_candidates(
        self, plan: Any, params: tuple[Any, ...]
    ) -> list[MemoryEntry] | None:
        """search, ranking only the rows that match two of the terms, then also those of the
        terms whose bound says their rows could rank in (see backends.sqlite.ranking); None
        when that is not shown or ranking every match is cheaper (run it whole). Each try
        reads, with its results, the counts that check them (one snapshot)."""
        must: frozenset[int] = frozenset()
        tokens = json.dumps(plan.tokens)
        for _ in range(2):
            found = await self._x.read(
                self._q.search_candidates,
                (*params, plan.candidates(must), tokens),
                ALL,
                browse=True,
            )
            if not found:
                return None
            last = -found[-1][-2] if len(found) == params[3] else None
            unranked = plan.unranked(must, found[-1][-1], last)
            if unranked is None:
                return None
            if not unranked:
                return [self._memory(r) for r in found]
            must |= unranked
        return None

    async def _search_pruned(
        self, terms: list[str], params: tuple[Any, ...]
    ) -> list[MemoryEntry] | None:
        """search, without ranking the rows that match only the query's most common terms
        when none of them can reach the results; None when that is not shown (run it whole).

        Ranking scores every row that matches any term (bm25: 3,555 rows of 100,000 memories
        for a question with a common word), so the terms are counted first (cheap: the index
        knows), and the most common ones, whose rows together could score at most
        ``score_bound(their counts)``, are left out of the rows ranked while that bound stays
        below the rarest term's. The rest are ranked with the whole query's scores, and the
        result stands only if it is full and its last score beats the bound, recomputed from
        counts taken in the same statement (so a write in between cannot make it wrong):
        then no row left out could have ranked in, ties included."""
        bound = self._d.score_bound
        assert bound is not None
        single = [self._d.search_text([t], False) for t in terms]
        counts = await self._x.read(self._q.term_counts, (json.dumps(single),), ALL, browse=True)
        rows, by_term = counts[0][1], [n for _, n in counts[1:]]
        # Rarest first; a term no row matches adds nothing either way.
        order = sorted((i for i in range(len(terms)) if by_term[i]), key=lambda i: by_term[i])
        if not rows or len(order) < 2:
            return None
        rarest = bound([by_term[order[0]]], rows)
        common: list[int] = []
        for i in reversed(order[1:]):
            if bound([by_term[j] for j in [*common, i]], rows) >= rarest:
                break
            common.append(i)
        # Worth it only when the terms left out cover most of the matches.
        if not common or 2 * sum(by_term[i] for i in common) < sum(by_term):
            return None
        kept = [t for i, t in enumerate(terms) if i not in common]
        left_out = json.dumps([single[i] for i in common])
        found = await self._x.read(
            self._q.search_among,
            (*params, self._d.search_text(kept, False), left_out),
            ALL,
            browse=True,
        )
        if len(found) < params[3]:
            return None
        snapshot = json.loads(found[-1][-1])
        if -found[-1][-2] <= bound([snapshot[str(i)] for i in range(len(common))], snapshot["-1"]):
            return None
        return [self._memory(r) for r in found]

    async def get_memory_history(self, memory_id: uuid.UUID) -> list[MemoryEvent]:
        key = self._id(memory_id, "memory_id")
        return await self._all(self._q.history, self._event, key, browse=True)

    async def get_memories_by_session(self, session_id: uuid.UUID) -> list[MemoryEntry]:
        key = self._id(session_id, "session_id")
        return await self._all(self._q.memories_by_session, self._memory, key, browse=True)

    async def supersede_memory(self, old_id: uuid.UUID, new: MemoryEntry) -> MemoryEntry:
        old = check_id(old_id, "old_id")
        m = _check_memory(new, "new")
        if m.superseded_by is not None:
            raise ValidationError("the superseding memory must itself be live")

        def unit() -> Unit[MemoryEntry]:
            yield from self._insert_memory(m)
            bot = self._key(m.bot_id)
            version = yield from self._bump(bot)
            yield from self._supersede(old, m)
            yield self._log(bot, version, self._key(old))
            return m

        return await self._x.write(unit, atomic=True, conflicts=_memory_conflict)

    # --- embeddings ----------------------------------------------------------------------

    async def save_embeddings(self, model: str, embeddings: Sequence[tuple[uuid.UUID, Any]]) -> int:
        model = check_embedding_model(model)
        checked = [
            (check_id(memory_id, "memory_id"), check_vector(vector, f"vector {i}"))
            for i, (memory_id, vector) in enumerate(embeddings)
        ]
        if not checked:
            return 0
        dimension = checked[0][1].shape[0]
        if any(v.shape[0] != dimension for _, v in checked):
            raise ValidationError("the vectors of one save_embeddings call differ in length")
        at = self._time(utc_now())
        keys = [self._key(i) for i, _ in checked]
        listed = self._keys(keys)

        def unit() -> Unit[int]:
            found = yield self._q.memories_by_ids, (listed,), ALL
            owner = {row[0]: row[1] for row in found}  # memory -> bot; gone ones are skipped
            versions = {}
            for bot in sorted(set(owner.values()), key=str):  # one lock order
                versions[bot] = yield from self._bump(bot)
            saved = 0
            for k, (_, vector) in zip(keys, checked, strict=True):
                if k in owner:
                    params = (model, dimension, to_bytes(vector), at, versions[owner[k]], k)
                    saved += (yield self._q.save_embedding, params, VALUE) is not None
            return saved

        return await self._x.write(unit, atomic=True)

    async def memories_without_embedding(
        self,
        model: str,
        *,
        bot_id: uuid.UUID | None = None,
        limit: int = 100,
        dimension: int | None = None,
    ) -> list[MemoryEntry]:
        params = (*self._unembedded(model, bot_id, dimension), check_limit(limit))
        return await self._all(self._q.unembedded, self._memory, *params, browse=True)

    async def count_without_embedding(
        self, model: str, *, bot_id: uuid.UUID | None = None, dimension: int | None = None
    ) -> int:
        params = self._unembedded(model, bot_id, dimension)
        return int(await self._x.read(self._q.count_unembedded, params, VALUE, browse=True))

    def _unembedded(
        self, model: str, bot_id: uuid.UUID | None, dimension: int | None
    ) -> tuple[Any, str, int | None]:
        if dimension is not None and (
            isinstance(dimension, bool) or not isinstance(dimension, int) or dimension < 1
        ):
            raise ValidationError(f"dimension must be a positive integer, got {dimension!r}")
        return self._opt_id(bot_id), check_embedding_model(model), dimension

    async def without_embedding_among(
        self, model: str, memory_ids: Iterable[uuid.UUID], *, dimension: int | None = None
    ) -> set[uuid.UUID]:
        _, model, dimension = self._unembedded(model, None, dimension)
        bound = self._id_list(memory_ids, "memory_ids")
        if bound is None:
            return set()
        params = (bound, model, dimension)
        rows = await self._x.read(self._q.unembedded_of, params, ALL, browse=True)
        return {_as_uuid(row[0]) for row in rows}

    async def live_embeddings(
        self, bot_id: uuid.UUID, model: str, *, user_id: UserScope = None
    ) -> tuple[list[uuid.UUID], NDArray[np.float32]]:
        key, user = self._id(bot_id, "bot_id"), check_scope(user_id)
        vectors = await self._loaded(key, check_embedding_model(model))
        rows = vectors.candidates(include_superseded=False, viewer=user)
        keys = vectors.rows.keys
        return [_as_uuid(keys[i]) for i in rows.nonzero()[0]], vectors.matrix[rows]

    async def nearest_memories(
        self,
        bot_id: uuid.UUID,
        model: str,
        vector: Any,
        *,
        user_id: UserScope = None,
        limit: int = 10,
        include_superseded: bool = False,
    ) -> list[tuple[MemoryEntry, float]]:
        key, user = self._id(bot_id, "bot_id"), check_scope(user_id)
        model = check_embedding_model(model)
        query = check_vector(vector, "query vector")
        check_limit(limit)
        return await self._nearest(key, model, query, limit, bool(include_superseded), user)

    async def _nearest(
        self,
        bot: Any,
        model: str,
        query: Any,
        limit: int,
        include_superseded: bool,
        viewer: UserScope,
    ) -> list[tuple[MemoryEntry, float]]:
        """The exact search, in the process, over the cached matrix, among the rows
        ``viewer`` may see (BotVectors.candidates). A dialect with a vector index (pgvector's
        HNSW) may replace this step by one statement, filtering with sql.visible_to (see
        docs/memory-search.md)."""
        vectors = await self._loaded(bot, model)
        search = (vectors, query, limit, include_superseded, viewer)
        if vectors.matrix.size > THREAD_FLOATS:
            picks = await asyncio.to_thread(nearest, *search)
        else:
            picks = nearest(*search)
        if not picks:
            return []
        # Equal similarities in id order, whatever order the rows were read in.
        picks.sort(key=lambda pick: (-pick[1], str(vectors.rows.keys[pick[0]])))
        keys = [vectors.rows.keys[row] for row, _ in picks]
        rows = await self._x.read(self._q.memories_by_ids, (self._keys(keys),), ALL)
        found = {row[0]: self._memory(row) for row in rows}
        # A memory deleted since the matrix was read is left out.
        return [(found[k], score) for k, (_, score) in zip(keys, picks, strict=True) if k in found]

    async def _loaded(self, bot: Any, model: str) -> BotVectors:
        """The bot's vectors of ``model``, from the cache while its memory_version holds."""
        row = await self._x.read(self._q.memory_version, (bot,), ONE)
        if row is None:
            raise missing("bot", bot)
        version, pruned, cache_key = int(row[0]), int(row[1]), (bot, model)
        held = self._vectors.latest(cache_key)
        if held is not None and held.version == version:
            return self._vectors.get(cache_key, version) or held
        # memory_version was read first: what changes meanwhile is read too, and the next
        # search, seeing a newer version, reads it again (applying a change twice is safe).
        # Only while the notes since the held version are all kept (see _prune): checked
        # again after reading them, as a prune may have committed meanwhile.
        if held is not None and pruned <= held.version < version:
            since = (bot, model, held.version)
            written = await self._x.read(self._q.load_embeddings, since, ALL)
            changed = await self._x.read(self._q.changed_memories, (bot, held.version), ALL)
            now = await self._x.read(self._q.memory_version, (bot,), ONE)
            kept = now is not None and int(now[1]) <= held.version
            fresh = held.updated(version, written, changed) if kept else None
            if fresh is not None:
                self._vectors.put(cache_key, fresh)
                return fresh
        rows = await self._x.read(self._q.load_embeddings, (bot, model, -1), ALL)
        if len(rows) * 256 > THREAD_FLOATS:
            vectors = await asyncio.to_thread(build, version, rows)
        else:
            vectors = build(version, rows)
        self._vectors.put(cache_key, vectors)
        return vectors

    # --- the extraction queue ----------------------------------------------------------

    async def save_pending_extraction(self, pending: PendingExtraction) -> PendingExtraction:
        p = check_model(pending, PendingExtraction, "save_pending_extraction")
        params = self._encode_pending(p)

        def unit() -> Unit[PendingExtraction]:
            # Inserted only when the session exists and is the bot's; if not, say which.
            if (yield self._q.insert_pending, params, VALUE) is None:
                owner = yield self._q.session_bot, (params[1],), VALUE
                if owner is None:
                    raise missing("chat session", p.session_id)
                raise ValidationError(f"chat session {p.session_id} belongs to another bot")
            return p

        return await self._x.write(unit, conflicts=id_taken(PENDING, "pending extraction", p.id))

    async def get_pending_extractions(self, bot_id: uuid.UUID) -> list[PendingExtraction]:
        key = self._id(bot_id, "bot_id")
        return await self._all(self._q.pending_for_bot, self._pending, key, MAX_EXTRACTION_ATTEMPTS)

    async def list_pending_extractions(
        self, *, bot_id: uuid.UUID | None = None
    ) -> list[PendingExtraction]:
        return await self._all(
            self._q.all_pending, self._pending, self._opt_id(bot_id), browse=True
        )

    async def get_pending_extraction(self, pending_id: uuid.UUID) -> PendingExtraction | None:
        return await self._get(
            self._q.get_pending, self._pending, self._id(pending_id, "pending_id")
        )

    async def delete_pending_extraction(self, pending_id: uuid.UUID) -> None:
        key = self._id(pending_id, "pending_id")
        await self._delete(self._q.delete_pending, key, "pending extraction", pending_id)

    async def update_pending_extraction(self, pending: PendingExtraction) -> PendingExtraction:
        p = check_model(pending, PendingExtraction, "update_pending_extraction")
        params = (p.attempt_count, self._opt_time(p.last_attempt_at),
                  self._time(p.next_attempt_at), p.error_message, self._key(p.id))  # fmt: skip
        sql = self._q.update_pending
        return await self._update(sql, params, self._pending, "pending extraction", p.id)

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
        params = (
            self._time(at), self._time(until), MAX_EXTRACTION_ATTEMPTS, self._opt_id(bot_id), limit
        )  # fmt: skip

        def unit() -> Unit[list[PendingExtraction]]:
            return self._pending.many((yield self._q.claim, params, ALL))

        claimed = await self._x.write(unit)
        claimed.sort(key=lambda p: (p.created_at, p.id))
        return claimed

    async def complete_extraction(
        self,
        pending_id: uuid.UUID,
        memories: Sequence[MemoryEntry],
        *,
        supersedes: Mapping[uuid.UUID, uuid.UUID] | None = None,
        repeats: Mapping[uuid.UUID, uuid.UUID] | None = None,
    ) -> list[MemoryEntry]:
        job = check_id(pending_id, "pending_id")
        batch = [_check_memory(m) for m in memories]
        replaced = dict(supersedes or {})
        said_again = dict(repeats or {})
        by_id = {m.id: m for m in batch}
        for name, links in (("supersedes", replaced), ("repeats", said_again)):
            for added in links:
                if added not in by_id:
                    raise ValidationError(f"{name} names {added}, which is not in this batch")
        for added in replaced.keys() & said_again.keys():
            raise ValidationError(f"memory {added} cannot both supersede and repeat a memory")
        key = self._key(job)

        def unit() -> Unit[list[MemoryEntry]]:
            if (yield self._q.delete_pending, (key,), COUNT) == 0:
                # Another worker finished it (its lease ran out): saving again would duplicate.
                raise missing("pending extraction", job, " (already completed?)")
            live = []
            locked = set()
            # One lock order (by bot): no deadlock. Each user's duplicates are what that
            # user's conversations see.
            for bot, user in sorted({(m.bot_id, m.user_id) for m in batch}, key=_bot_then_user):
                facts = yield from self._live_facts(bot, user, lock=bot not in locked)
                locked.add(bot)
                live += [(bot, user, memory_id, fact) for memory_id, fact in facts]
            # A repeat of a memory its user still sees live is recorded, not saved; one of a
            # memory gone or replaced meanwhile is saved like any other (nothing is lost).
            seen = {(str(bot), user, str(memory_id)) for bot, user, memory_id, _ in live}
            again = {
                added: self._key(old)
                for added, old in said_again.items()
                if (str(by_id[added].bot_id), by_id[added].user_id, str(self._key(old))) in seen
            }
            rest = [m for m in batch if m.id not in again]
            kept, links, same = drop_remembered(rest, replaced, live)
            for m in kept:
                yield from self._insert_memory(m, job=key)
            for added, memory in {**again, **same}.items():
                m = by_id[added]
                yield self._record(memory, self._key(m.bot_id), m.user_id, m.fact,
                                   MemoryEventKind.REPEATED, MemoryActor.EXTRACTION,
                                   job=key)  # fmt: skip
            versions = {}
            for bot in sorted({by_id[added].bot_id for added in links}):
                versions[bot] = yield from self._bump(self._key(bot))
            for added, old_id in links.items():
                bot = by_id[added].bot_id
                yield from self._supersede(old_id, by_id[added], job=key)
                yield self._log(self._key(bot), versions[bot], self._key(old_id))
            return kept

        return await self._x.write(unit, atomic=True, conflicts=_memory_conflict)

    # --- context summaries -------------------------------------------------------------

    async def save_context_summary(self, summary: ContextSummary) -> ContextSummary:
        s = check_model(summary, ContextSummary, "save_context_summary")
        params = (self._key(s.id), self._key(s.session_id), s.summary, s.messages_start,
                  s.messages_end, s.token_count, self._time(s.created_at))  # fmt: skip

        def unit() -> Unit[ContextSummary]:
            # Inserted only when the session has the messages it covers; if not, say why.
            if (yield self._q.insert_summary, params, VALUE) is None:
                count = yield self._q.message_count, (params[1],), VALUE
                if count is None:
                    raise missing("chat session", s.session_id)
                raise ValidationError(
                    f"summary covers up to message {s.messages_end}, "
                    f"but the session has {count} messages"
                )
            return s

        return await self._x.write(unit, conflicts=id_taken(SUMMARIES, "context summary", s.id))

    async def get_latest_summary(self, session_id: uuid.UUID) -> ContextSummary | None:
        key = self._id(session_id, "session_id")
        return await self._get(self._q.latest_summary, self._summary, key)

    async def list_summaries(self, session_id: uuid.UUID) -> list[ContextSummary]:
        key = self._id(session_id, "session_id")
        return await self._all(self._q.list_summaries, self._summary, key, browse=True)


class UserCore(Repository):
    """``UserRepository``: one user's data of one bot, counted, erased or exported."""

    def __init__(self, executor: Executor, dialect: Dialect) -> None:
        super().__init__(executor, dialect)
        self._session = dialect.decoder(SESSIONS)
        self._message = dialect.decoder(MESSAGES)
        self._summary = dialect.decoder(SUMMARIES)
        self._pending = dialect.decoder(PENDING)
        self._memory = dialect.decoder(MEMORIES)
        self._event = dialect.decoder(HISTORY)

    def _owner(self, bot_id: uuid.UUID, user_id: str) -> tuple[Any, str]:
        return self._id(bot_id, "bot_id"), check_user(user_id)

    async def count_user(self, bot_id: uuid.UUID, user_id: str) -> UserCounts:
        row = await self._x.read(self._q.count_user, self._owner(bot_id, user_id), ONE)
        return UserCounts(*(int(n) for n in row))

    async def memory_owners(
        self, bot_id: uuid.UUID, *, limit: int | None = None
    ) -> list[tuple[str | None, int]]:
        key = self._id(bot_id, "bot_id")
        bound = self._d.no_limit if limit is None else check_limit(limit)
        rows = await self._x.read(self._q.memory_owners, (key, bound), ALL)
        return [(user, int(n)) for user, n in rows]

    async def forget_user(self, bot_id: uuid.UUID, user_id: str) -> UserCounts:
        owner = self._owner(bot_id, user_id)
        q = self._q

        def unit() -> Unit[UserCounts]:
            # The bot row first, as every unit that changes a bot's vectors (see vectors.py).
            version = yield q.bump_memory_version, (owner[0],), VALUE
            if version is None:
                return UserCounts()  # no such bot: nothing of anyone
            jobs = yield q.forget_user_jobs, owner, COUNT
            summaries = yield q.forget_user_summaries, owner, COUNT
            messages = yield q.forget_user_messages, owner, COUNT
            sessions = 0
            # One at a time through delete_session, so each backend keeps the bot's totals
            # as it does for any deleted session.
            for (session,) in (yield q.user_session_ids, owner, ALL):
                sessions += yield q.delete_session, (session,), COUNT
            # After the sessions: a memory being extracted from one of them meanwhile is
            # either committed before (and deleted here) or refused (its session is gone).
            yield q.forget_user_changes, owner, NONE
            yield q.note_user_memories, (version, *owner), NONE
            embeddings = yield q.forget_user_embeddings, owner, COUNT
            memories = yield q.forget_user_memories, owner, COUNT
            history = yield q.forget_user_history, owner, COUNT
            return UserCounts(sessions, messages, summaries, jobs, memories, history, embeddings)

        return await self._x.write(unit, atomic=True)

    async def export_user(self, bot_id: uuid.UUID, user_id: str) -> UserData:
        # The parts put together: one reading of which rows are the user's, in one order.
        whole = None
        async for part in self.export_user_parts(bot_id, user_id, rows=1000):
            if whole is None:
                whole = UserData(bot_id=part.bot_id, user_id=part.user_id)
            for kind in _USER_DATA_LISTS:
                getattr(whole, kind).extend(getattr(part, kind))
        if whole is None:  # nothing stored for them
            whole = UserData(bot_id=bot_id, user_id=self._owner(bot_id, user_id)[1])
        return whole

    def export_user_parts(
        self, bot_id: uuid.UUID, user_id: str, *, rows: int = 100
    ) -> AsyncIterator[UserData]:
        # Checked now, not at the first part: a caller writing the export as it comes has
        # written nothing yet.
        owner = self._owner(bot_id, user_id)
        if isinstance(rows, bool) or not isinstance(rows, int) or not 1 <= rows <= 10_000:
            raise ValidationError(f"rows must be an int in 1..10000, got {rows!r}")
        return self._parts(check_id(bot_id, "bot_id"), owner, rows)

    async def _parts(
        self, bot: uuid.UUID, owner: tuple[Any, str], rows: int
    ) -> AsyncIterator[UserData]:
        q, first, nil = self._q, self._time(FIRST_TIME), self._key(uuid.UUID(int=0))

        def part(**kinds: Any) -> UserData:
            return UserData(bot_id=bot, user_id=owner[1], **kinds)

        async def pages(
            sql: str, decode: Any, fixed: tuple[Any, ...], start: tuple[Any, ...], key: Any
        ) -> AsyncIterator[list[Any]]:
            after = start
            while True:
                page = await self._all(sql, decode, *fixed, *after, rows)
                if page:
                    yield page
                if len(page) < rows:
                    return
                after = key(page[-1])

        by_time = (first, nil)

        def timed(row: Any) -> tuple[Any, Any]:
            return self._time(row.created_at), self._key(row.id)

        def started(s: ChatSession) -> tuple[Any, Any]:
            return self._time(s.started_at), self._key(s.id)

        async for sessions in pages(q.export_page_sessions, self._session, owner, by_time, started):
            for s in sessions:
                yield part(sessions=[s])
                session = (self._key(s.id),)
                async for messages in pages(
                    q.export_page_messages, self._message, session, (0,), lambda m: (m.seq,)
                ):
                    yield part(messages=messages)
                async for summaries in pages(
                    q.export_page_summaries,
                    self._summary,
                    session,
                    (-MAX_BIGINT, nil),
                    lambda c: (c.messages_end, self._key(c.id)),
                ):
                    yield part(summaries=summaries)
                jobs = await self._all(q.export_session_jobs, self._pending, *session)
                if jobs:
                    yield part(jobs=jobs)
        async for memories in pages(q.export_page_memories, self._memory, owner, by_time, timed):
            yield part(memories=memories)
        async for events in pages(q.export_page_history, self._event, owner, by_time, timed):
            yield part(history=events)
        async for embeddings in pages(
            q.export_page_embeddings,
            self._embedding,
            owner,
            (nil, ""),
            lambda e: (self._key(e.memory_id), e.model),
        ):
            yield part(embeddings=embeddings)

    @staticmethod
    def _embedding(row: Sequence[Any]) -> StoredEmbedding:
        return StoredEmbedding(_as_uuid(row[0]), row[1], int(row[2]))


#: The table of each kind of id (keys of ``IdIndex`` calls, never user text in SQL).
_ID_TABLES = {
    "bot": "bots",
    "session": "chat_sessions",
    "memory": "session_memories",
    "job": "pending_memory_extractions",
}
_HEX_PREFIX = re.compile(r"[0-9a-f]{0,32}")


def _same_value(value: Any) -> Any:
    return value


def _as_uuid(value: Any) -> uuid.UUID:
    return uuid.UUID(str(value))


def _opt_uuid(value: Any) -> uuid.UUID | None:
    return None if value is None else _as_uuid(value)


class IdsCore(Repository):
    """``IdIndex``: a prefix is a range of the primary key (text and uuid orders agree)."""

    def _table(self, kind: str) -> str:
        if kind not in _ID_TABLES:
            raise ValidationError(f"unknown kind of id {kind!r} (one of: {', '.join(_ID_TABLES)})")
        return _ID_TABLES[kind]

    async def with_prefix(
        self, kind: str, digits: str, *, bot_id: uuid.UUID | None = None, limit: int = 10
    ) -> list[uuid.UUID]:
        table = self._table(kind)
        if not isinstance(digits, str) or not _HEX_PREFIX.fullmatch(digits):
            raise ValidationError(f"an id prefix is up to 32 lowercase hex digits, got {digits!r}")
        check_limit(limit)
        if bot_id is not None and kind != "session":
            raise ValidationError("bot_id narrows session ids only")
        params: list[Any] = [
            self._key(uuid.UUID(digits.ljust(32, "0"))),
            self._key(uuid.UUID(digits.ljust(32, "f"))),
        ]
        if kind == "session":
            params.append(self._opt_id(bot_id))
        params.append(limit)
        rows = await self._x.read(getattr(self._q, f"ids_in_range_{table}"), params, ALL)
        return [_as_uuid(row[0]) for row in rows]

    async def neighbours(
        self, kind: str, ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[uuid.UUID | None, uuid.UUID | None]]:
        table = self._table(kind)
        bound = self._id_list(ids, "ids")
        if bound is None:
            return {}
        rows = await self._x.read(getattr(self._q, f"neighbours_{table}"), (bound,), ALL)
        return {_as_uuid(i): (_opt_uuid(below), _opt_uuid(above)) for i, below, above in rows}
