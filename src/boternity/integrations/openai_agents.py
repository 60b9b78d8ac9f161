"""boternity as the session store of the OpenAI Agents SDK.

``pip install 'boternity[openai-agents]'``, then::

    async with open_store("bots.db") as store:
        session = BoternitySession("user-42", store=store, bot="luna")
        result = await Runner.run(agent, "Hi!", session=session)

The SDK's session id names one chat session of the bot (its key: created on the first write,
unique per bot). Every item is stored as one chat message, committed with its ``seq``: the raw
item in ``metadata["openai_agents_item"]`` (``get_items`` gives it back exactly as it went
in, as JSON would), and a readable ``role`` and ``content`` for ``bnity session show`` and the
memory pipeline:

- user / assistant messages: their text; system and developer messages: role ``system``;
- tool calls and tool outputs: role ``assistant``, ``[tool call NAME] ARGUMENTS`` and
  ``[tool output] OUTPUT``;
- reasoning items: role ``system`` (so memory extraction, which skips system messages, never
  mines the model's private reasoning), ``[reasoning] SUMMARY``.

Token usage: when the SDK passes its run context to the session (it does during
``Runner.run``), the tokens the run used since the previous save are recorded on the last
model-produced item of each save, so they land in the session's and the bot's totals.
"""

from __future__ import annotations

import contextlib
import uuid
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Self, cast

try:
    from agents.memory import SessionSettings
    from agents.memory.session_settings import resolve_session_limit
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "boternity.integrations.openai_agents needs the OpenAI Agents SDK:"
        " pip install 'boternity[openai-agents]'"
    ) from exc

from boternity.integrations._common import KeyedConversation, plain_json
from boternity.models import ChatMessage, MessageRole
from boternity.store import Store, open_store

if TYPE_CHECKING:
    from agents.items import TResponseInputItem
    from agents.run_context import RunContextWrapper

__all__ = ["ITEM_KEY", "BoternitySession"]

#: The key of ``ChatMessage.metadata`` that holds the SDK's raw item.
ITEM_KEY = "openai_agents_item"

_ROLES = {
    "user": MessageRole.USER,
    "assistant": MessageRole.ASSISTANT,
    "system": MessageRole.SYSTEM,
    "developer": MessageRole.SYSTEM,
}


class BoternitySession:
    """A session of the OpenAI Agents SDK (its ``Session`` protocol), kept in boternity.

    ``bot``: the slug or id of an existing bot. ``model`` and ``title`` describe the chat
    session when it is created; ``user_id``, the person it is with (docs/users.md): a
    session id naming another user's session is refused. ``session_settings``: the SDK's
    settings (``limit`` is the default of ``get_items``).
    """

    session_settings: SessionSettings | None = None

    def __init__(
        self,
        session_id: str,
        *,
        store: Store,
        bot: str | uuid.UUID,
        model: str = "openai-agents",
        title: str | None = None,
        user_id: str | None = None,
        session_settings: SessionSettings | None = None,
    ) -> None:
        self.session_id = session_id
        self.store = store
        self.session_settings = session_settings or SessionSettings()
        self._conversation = KeyedConversation(
            store, bot, session_id, model=model, title=title, user_id=user_id
        )
        # Per run (one RunContextWrapper each): the usage already recorded on messages.
        self._recorded: weakref.WeakKeyDictionary[Any, tuple[int, int]] = (
            weakref.WeakKeyDictionary()
        )
        self._closer: contextlib.AsyncExitStack | None = None

    @classmethod
    async def open(
        cls,
        session_id: str,
        path_or_url: str | None = None,
        *,
        bot: str | uuid.UUID,
        model: str = "openai-agents",
        title: str | None = None,
        user_id: str | None = None,
        session_settings: SessionSettings | None = None,
        **store_options: Any,
    ) -> Self:
        """Open the store at ``path_or_url`` (as :func:`boternity.open_store`) for this
        session alone; :meth:`close` (or ``async with``) closes it."""
        stack = contextlib.AsyncExitStack()
        store = await stack.enter_async_context(open_store(path_or_url, **store_options))
        try:
            session = cls(
                session_id,
                store=store,
                bot=bot,
                model=model,
                title=title,
                user_id=user_id,
                session_settings=session_settings,
            )
            await session.chat_session_id()  # a missing bot fails here, not mid-run
        except BaseException:
            await stack.aclose()
            raise
        session._closer = stack
        return session

    async def close(self) -> None:
        """Close the store if this session opened it (see :meth:`open`)."""
        closer, self._closer = self._closer, None
        if closer is not None:
            await closer.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def chat_session_id(self) -> uuid.UUID | None:
        """The id of the boternity chat session behind this session (None before the first
        item was added)."""
        return await self._conversation.existing_session_id()

    # --- the SDK's Session protocol ----------------------------------------------------------

    async def get_items(
        self, limit: int | None = None, *, wrapper: RunContextWrapper[Any] | None = None
    ) -> list[TResponseInputItem]:
        """All items, oldest first; with ``limit`` (or the settings' limit), the latest
        ``limit`` items, oldest first."""
        del wrapper
        wanted = resolve_session_limit(limit, self.session_settings)
        if wanted is not None and wanted < 0:
            wanted = None  # as the SDK's SQLiteSession: a negative limit is no limit
        return [_item(m) for m in await self._conversation.recent(wanted)]

    async def add_items(
        self,
        items: list[TResponseInputItem],
        *,
        wrapper: RunContextWrapper[Any] | None = None,
    ) -> None:
        """Append the items in one transaction: all are stored, in order, or none is."""
        if not items:
            return
        plain = [cast(dict[str, Any], plain_json(item, "an Agents SDK item")) for item in items]
        described = [_describe(item) for item in plain]
        tokens = self._unrecorded_usage(wrapper)
        charged = _last_model_item(plain) if tokens != (0, 0) else None

        def build(session_id: uuid.UUID) -> list[ChatMessage]:
            return [
                ChatMessage(
                    session_id=session_id,
                    role=role,
                    content=content,
                    input_tokens=tokens[0] if i == charged else None,
                    output_tokens=tokens[1] if i == charged else None,
                    metadata={ITEM_KEY: item},
                )
                for i, (item, (role, content)) in enumerate(zip(plain, described, strict=True))
            ]

        await self._conversation.append(build)
        if charged is not None and wrapper is not None:
            usage = wrapper.usage
            self._recorded[wrapper] = (usage.input_tokens, usage.output_tokens)

    async def pop_item(
        self, *, wrapper: RunContextWrapper[Any] | None = None
    ) -> TResponseInputItem | None:
        """Remove and return the latest item (None when there is none), in one transaction;
        the next item added takes its place in the ``seq`` order."""
        del wrapper
        popped = await self._conversation.pop()
        return None if popped is None else _item(popped)

    async def clear_session(self, *, wrapper: RunContextWrapper[Any] | None = None) -> None:
        """Delete every item, in one transaction. The chat session itself stays (empty, with
        its key and its token totals), so the session id keeps naming it."""
        del wrapper
        await self._conversation.clear()

    # --- usage ---------------------------------------------------------------------------

    def _unrecorded_usage(self, wrapper: RunContextWrapper[Any] | None) -> tuple[int, int]:
        if wrapper is None:
            return (0, 0)
        usage = getattr(wrapper, "usage", None)
        if usage is None:
            return (0, 0)
        seen_in, seen_out = self._recorded.get(wrapper, (0, 0))
        return (
            max(0, int(usage.input_tokens) - seen_in),
            max(0, int(usage.output_tokens) - seen_out),
        )


def _item(message: ChatMessage) -> TResponseInputItem:
    """The SDK item a message holds; a message written by other means becomes a plain
    message item with its role and text."""
    meta = message.metadata
    if meta is not None and ITEM_KEY in meta:
        return cast("TResponseInputItem", meta[ITEM_KEY])
    return cast("TResponseInputItem", {"role": message.role.value, "content": message.content})


def _is_model_item(item: dict[str, Any]) -> bool:
    kind = item.get("type")
    if kind in (None, "message"):
        return item.get("role") == "assistant"
    return kind == "reasoning" or (isinstance(kind, str) and kind.endswith("_call"))


def _last_model_item(items: Sequence[dict[str, Any]]) -> int | None:
    for i in range(len(items) - 1, -1, -1):
        if _is_model_item(items[i]):
            return i
    return None


def _text(content: Any) -> str:
    """The readable text of a message's or a tool output's content."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return "" if content is None else str(content)
    parts = []
    for part in content:
        if not isinstance(part, dict):
            parts.append(str(part))
        elif isinstance(part.get("text"), str):
            parts.append(part["text"])
        elif isinstance(part.get("refusal"), str):
            parts.append(part["refusal"])
        else:
            kind = str(part.get("type", "part")).removeprefix("input_")
            parts.append(f"[{kind}]")
    return "\n".join(parts)


def _describe(item: dict[str, Any]) -> tuple[MessageRole, str]:
    """A readable role and content for a stored item."""
    kind = item.get("type")
    role = item.get("role")
    if kind in (None, "message") and role in _ROLES:
        return _ROLES[role], _text(item.get("content"))
    if kind == "function_call":
        return MessageRole.ASSISTANT, f"[tool call {item.get('name')}] {item.get('arguments')}"
    if kind == "function_call_output":
        return MessageRole.ASSISTANT, f"[tool output] {_text(item.get('output'))}"
    if kind == "reasoning":
        summary = _text(item.get("summary"))
        return MessageRole.SYSTEM, f"[reasoning] {summary}".rstrip()
    label = str(kind or "item")
    if label.endswith("_call"):
        return MessageRole.ASSISTANT, f"[{label}]"
    if label.endswith("_output"):
        return MessageRole.ASSISTANT, f"[{label}] {_text(item.get('output'))}".rstrip()
    return MessageRole.SYSTEM, f"[{label}]"
