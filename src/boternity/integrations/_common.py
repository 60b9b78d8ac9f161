"""What both framework adapters share: one framework session id -> one keyed chat session."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

from boternity.errors import ConflictError, NotFoundError, ValidationError
from boternity.models import MAX_BIGINT, ChatMessage, ChatSession
from boternity.store import Store

T = TypeVar("T")

_EVERYTHING = MAX_BIGINT  # the largest limit every backend accepts


def plain_json(value: Any, what: str) -> Any:
    """``value`` as JSON would give it back (tuples become lists, and so on), so what a
    framework gets back from the store equals what it would get from its own JSON store."""
    try:
        return json.loads(json.dumps(value, ensure_ascii=False, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{what} cannot be stored as JSON: {exc}") from exc


class KeyedConversation:
    """The chat session of ``bot`` stored under ``key``: looked up on reads, created on the
    first write (race-safe in the store), and remembered once known. ``user_id``: the person
    the conversation is with (None: no user); a key naming another user's session is refused
    (ConflictError), on reads as on writes."""

    def __init__(
        self,
        store: Store,
        bot: str | uuid.UUID,
        key: str,
        *,
        model: str,
        title: str | None,
        user_id: str | None = None,
    ) -> None:
        if not isinstance(key, str):
            raise ValidationError(f"session id must be str, got {type(key).__name__}")
        if not isinstance(bot, str | uuid.UUID):
            raise ValidationError(f"bot must be a slug or an id, got {type(bot).__name__}")
        # Checked now (blank, too long, not text), before anything is stored.
        ChatSession(bot_id=uuid.UUID(int=0), model="-", user_id=user_id)
        self.store = store
        self.bot = bot
        self.key = key
        self.model = model
        self.title = title
        self.user_id = user_id
        self._bot_id: uuid.UUID | None = None
        self._session_id: uuid.UUID | None = None

    async def bot_id(self) -> uuid.UUID:
        if self._bot_id is None:
            found = None
            if isinstance(self.bot, uuid.UUID):
                found = await self.store.bots.get_bot(self.bot)
            else:
                found = await self.store.bots.get_bot_by_slug(self.bot)
                if found is None:
                    try:
                        as_id = uuid.UUID(self.bot)
                    except ValueError:
                        as_id = None
                    if as_id is not None:
                        found = await self.store.bots.get_bot(as_id)
            if found is None:
                raise NotFoundError(
                    f"bot {self.bot!r} not found (create it first, e.g. `bnity bot create`)"
                )
            self._bot_id = found.id
        return self._bot_id

    async def existing_session_id(self) -> uuid.UUID | None:
        """The session's id, or None while nothing was written under this key."""
        if self._session_id is None:
            found = await self.store.chat.get_session_by_key(await self.bot_id(), self.key)
            if found is not None:
                if found.user_id != self.user_id:
                    raise ConflictError(
                        f"session id {self.key!r} names a session of another user"
                        f" (session {found.id})"
                    )
                self._session_id = found.id
        return self._session_id

    async def session_id(self) -> uuid.UUID:
        """The session's id, creating the session on first use."""
        if self._session_id is None:
            template = ChatSession(
                bot_id=await self.bot_id(), model=self.model, title=self.title, user_id=self.user_id
            )
            found = await self.store.chat.get_or_create_session_by_key(template, self.key)
            self._session_id = found.id
        return self._session_id

    def forget(self) -> None:
        """Drop the remembered session id (the session was deleted behind our back)."""
        self._session_id = None

    async def append(
        self, build: Callable[[uuid.UUID], Sequence[ChatMessage]]
    ) -> list[ChatMessage]:
        """Save the messages ``build(session_id)`` makes, in one transaction; if the session
        was deleted meanwhile, its key is free again: make a new session and retry once."""
        for attempt in (1, 2):
            session_id = await self.session_id()
            messages: Sequence[ChatMessage] = build(session_id)
            try:
                return await self.store.chat.save_messages(messages)
            except NotFoundError:
                if attempt == 2 or await self.store.chat.get_session(session_id) is not None:
                    raise
                self.forget()
        raise AssertionError("unreachable")

    async def recent(self, limit: int | None) -> list[ChatMessage]:
        """The latest ``limit`` messages (all when None), oldest first."""
        session_id = await self.existing_session_id()
        if session_id is None or limit == 0:
            return []
        # get_recent_messages even for "all": it reads the primary (get_messages may be served
        # by a lagging read replica), and the next model call depends on this history.
        return await self.store.chat.get_recent_messages(
            session_id, _EVERYTHING if limit is None else limit
        )

    async def pop(self) -> ChatMessage | None:
        session_id = await self.existing_session_id()
        if session_id is None:
            return None
        try:
            return await self.store.chat.pop_message(session_id)
        except NotFoundError:
            self.forget()
            return None

    async def clear(self) -> None:
        """Delete the messages; the session (and its key, and its token totals) stay."""
        session_id = await self.existing_session_id()
        if session_id is None:
            return
        try:
            await self.store.chat.clear_messages(session_id)
        except NotFoundError:
            self.forget()


class LoopThread:
    """An event loop running in a daemon thread, for a store used from synchronous code."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result()

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()
