"""boternity as a LangChain chat message history.

``pip install 'boternity[langchain]'``, then, inside your async application::

    async with open_store("bots.db") as store:
        chain = RunnableWithMessageHistory(
            prompt | model,
            lambda session_id: BoternityChatMessageHistory(session_id, store=store, bot="luna"),
            input_messages_key="question",
            history_messages_key="history",
        )

or, from synchronous code, ``BoternityChatMessageHistory.open(session_id, "bots.db",
bot="luna")``, which runs its own store on a private event loop thread (close it with
``close()`` or a ``with`` block).

LangChain's session id names one chat session of the bot (its key: created on the first
write, unique per bot). Every message is one chat message, committed with its ``seq``: the
whole LangChain message in ``metadata["langchain_message"]`` (type, content, id, name, tool
calls, additional fields: ``messages`` gives it back equal to what went in), and a readable
``role`` and ``content`` for ``bnity session show`` and the memory pipeline (human: ``user``;
AI: ``assistant``, with its ``usage_metadata`` tokens in the session's totals; system:
``system``; tool results: ``assistant``, ``[tool output] ...``).

The sync methods (``messages``, ``add_messages``, ``clear``) run the work on the event loop
the store lives on and wait for it, so they work from plain synchronous code (with
``open``) and from worker threads of a running loop (as ``RunnableWithMessageHistory.invoke``
calls them); on the store's own loop thread they would block the loop, so they raise
``RuntimeError`` there: use the async methods (``aget_messages``, ``aadd_messages``,
``aclear``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Coroutine, Sequence
from typing import Any, Self, TypeVar

try:
    from langchain_core.chat_history import BaseChatMessageHistory
    from langchain_core.messages import (
        AIMessage,
        BaseMessage,
        ChatMessage,
        HumanMessage,
        SystemMessage,
        ToolMessage,
        message_to_dict,
        messages_from_dict,
    )
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "boternity.integrations.langchain needs langchain-core: pip install 'boternity[langchain]'"
    ) from exc

from boternity import models
from boternity.errors import ValidationError
from boternity.integrations._common import KeyedConversation, LoopThread, plain_json
from boternity.models import MessageRole
from boternity.store import Store, open_store

__all__ = ["MESSAGE_KEY", "BoternityChatMessageHistory"]

#: The key of ``ChatMessage.metadata`` that holds the LangChain message (``message_to_dict``).
MESSAGE_KEY = "langchain_message"

T = TypeVar("T")

_CHAT_ROLES = {
    "user": MessageRole.USER,
    "human": MessageRole.USER,
    "assistant": MessageRole.ASSISTANT,
    "ai": MessageRole.ASSISTANT,
    "system": MessageRole.SYSTEM,
}


class BoternityChatMessageHistory(BaseChatMessageHistory):
    """A LangChain ``BaseChatMessageHistory`` kept in boternity.

    ``bot``: the slug or id of an existing bot. ``model`` and ``title`` describe the chat
    session when it is created; ``user_id``, the person it is with (docs/users.md): a
    session id naming another user's session is refused. ``limit``: ``messages`` gives only
    the latest ``limit`` messages (read with an index, however long the session), for a
    chain that should see a window of the conversation; None gives them all. ``loop``: the
    event loop the store was opened on, for the sync methods; by default the loop running
    when the history is made (or, failing that, the first one an async method runs on).
    """

    def __init__(
        self,
        session_id: str,
        *,
        store: Store,
        bot: str | uuid.UUID,
        model: str = "langchain",
        title: str | None = None,
        user_id: str | None = None,
        limit: int | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            raise ValidationError(f"limit must be an int >= 0 or None, got {limit!r}")
        self.session_id = session_id
        self.store = store
        self.limit = limit
        self._conversation = KeyedConversation(
            store, bot, session_id, model=model, title=title, user_id=user_id
        )
        if loop is None:
            with contextlib.suppress(RuntimeError):
                loop = asyncio.get_running_loop()
        self._loop = loop
        self._owned: tuple[LoopThread, contextlib.AsyncExitStack] | None = None

    @classmethod
    def open(
        cls,
        session_id: str,
        path_or_url: str | None = None,
        *,
        bot: str | uuid.UUID,
        model: str = "langchain",
        title: str | None = None,
        user_id: str | None = None,
        limit: int | None = None,
        **store_options: Any,
    ) -> Self:
        """Open the store at ``path_or_url`` (as :func:`boternity.open_store`) on a private
        event loop thread, for this history alone; :meth:`close` (or ``with``) closes both."""
        thread = LoopThread("boternity-langchain")
        stack = contextlib.AsyncExitStack()
        try:
            store = thread.run(stack.enter_async_context(open_store(path_or_url, **store_options)))
        except BaseException:
            thread.stop()
            raise
        history = cls(
            session_id,
            store=store,
            bot=bot,
            model=model,
            title=title,
            user_id=user_id,
            limit=limit,
            loop=thread.loop,
        )
        history._owned = (thread, stack)
        try:
            thread.run(history._conversation.bot_id())  # a missing bot fails here
        except BaseException:
            history.close()
            raise
        return history

    def close(self) -> None:
        """Close the store and its thread if this history opened them (see :meth:`open`)."""
        owned, self._owned = self._owned, None
        if owned is not None:
            thread, stack = owned
            try:
                thread.run(stack.aclose())
            finally:
                thread.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def chat_session_id(self) -> uuid.UUID | None:
        """The id of the boternity chat session behind this history (None before the first
        message was added)."""
        return await self._on_store_loop(self._conversation.existing_session_id())

    # --- BaseChatMessageHistory ----------------------------------------------------------

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """Every message (or the latest ``limit``), oldest first."""
        return self._wait(self._get())

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Append the messages in one transaction: all are stored, in order, or none is."""
        self._wait(self._add(list(messages)))

    def clear(self) -> None:
        """Delete every message, in one transaction; the chat session stays (empty)."""
        self._wait(self._conversation.clear())

    async def aget_messages(self) -> list[BaseMessage]:
        return await self._on_store_loop(self._get())

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        await self._on_store_loop(self._add(list(messages)))

    async def aclear(self) -> None:
        await self._on_store_loop(self._conversation.clear())

    # --- running on the store's loop -----------------------------------------------------

    def _wait(self, work: Coroutine[Any, Any, T]) -> T:
        loop = self._loop
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or loop.is_closed():
            work.close()
            raise RuntimeError(
                "BoternityChatMessageHistory does not know the event loop its store runs on:"
                " make it inside that loop, pass loop=, or use"
                " BoternityChatMessageHistory.open(...) from synchronous code"
            )
        if running is loop:
            work.close()
            raise RuntimeError(
                "a synchronous BoternityChatMessageHistory method was called on the event loop"
                " its store runs on, which it would block; use aget_messages, aadd_messages"
                " or aclear (or call it from a worker thread)"
            )
        return asyncio.run_coroutine_threadsafe(work, loop).result()

    async def _on_store_loop(self, work: Coroutine[Any, Any, T]) -> T:
        running = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = running
        if running is self._loop:
            return await work
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, self._loop))

    async def _get(self) -> list[BaseMessage]:
        return [_message(m) for m in await self._conversation.recent(self.limit)]

    async def _add(self, messages: list[BaseMessage]) -> None:
        if not messages:
            return
        rows = [_describe(m) for m in messages]

        def build(session_id: uuid.UUID) -> list[models.ChatMessage]:
            return [
                models.ChatMessage(
                    session_id=session_id,
                    role=role,
                    content=content,
                    input_tokens=tokens[0],
                    output_tokens=tokens[1],
                    metadata={MESSAGE_KEY: stored},
                )
                for stored, role, content, tokens in rows
            ]

        await self._conversation.append(build)


def _message(m: models.ChatMessage) -> BaseMessage:
    """The LangChain message a chat message holds; one written by other means becomes a
    plain message of its role."""
    meta = m.metadata
    if meta is not None and MESSAGE_KEY in meta:
        return messages_from_dict([meta[MESSAGE_KEY]])[0]
    if m.role is MessageRole.USER:
        return HumanMessage(content=m.content)
    if m.role is MessageRole.SYSTEM:
        return SystemMessage(content=m.content)
    return AIMessage(content=m.content)


def _describe(
    message: BaseMessage,
) -> tuple[dict[str, Any], MessageRole, str, tuple[int | None, int | None]]:
    """(the message as stored, role, readable content, (input, output) tokens)."""
    if not isinstance(message, BaseMessage):
        raise ValidationError(f"expected a LangChain BaseMessage, got {type(message).__name__}")
    stored = plain_json(message_to_dict(message), "a LangChain message")
    text = str(message.text)
    tokens: tuple[int | None, int | None] = (None, None)
    if isinstance(message, HumanMessage):
        role = MessageRole.USER
    elif isinstance(message, SystemMessage):
        role = MessageRole.SYSTEM
    elif isinstance(message, ToolMessage):
        role, text = MessageRole.ASSISTANT, f"[tool output] {text}"
    elif isinstance(message, ChatMessage):
        role = _CHAT_ROLES.get(message.role, MessageRole.ASSISTANT)
    else:
        role = MessageRole.ASSISTANT
    if isinstance(message, AIMessage):
        calls = [
            f"[tool call {c['name']}] {json.dumps(c['args'], ensure_ascii=False)}"
            for c in message.tool_calls
        ]
        text = "\n".join([text, *calls]) if text else "\n".join(calls)
        usage = message.usage_metadata
        if usage is not None:
            tokens = (usage.get("input_tokens"), usage.get("output_tokens"))
    return stored, role, text, tokens
