"""Session titles: asked of the model after the first exchange, cleaned, never empty; a
:class:`SessionTitler` does it for one live session."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Collection, Sequence

from boternity.llm.base import ChatTurn, CompletionRequest, LlmProvider
from boternity.models import ChatMessage, MessageRole
from boternity.text import ellipsis

__all__ = [
    "FALLBACK_TITLE",
    "MAX_TITLE_CHARS",
    "TITLE_SYSTEM_PROMPT",
    "SessionTitler",
    "clean_title",
    "fallback_title",
    "first_exchange",
    "title_request",
]

log = logging.getLogger(__name__)

MAX_TITLE_CHARS = 60
FALLBACK_TITLE = "New conversation"

TITLE_SYSTEM_PROMPT = (
    "You write a short title for a conversation. Reply with ONLY the title: 3 to 7 words,"
    " in the conversation's language, no quotes, no trailing punctuation, no preamble.\n"
    "Examples:\n"
    "Planning a trip to Japan\n"
    "Debugging a Python import error\n"
    "Favourite science fiction novels"
)
TITLE_ASK = "Write a 3-7 word title for the conversation above. Reply with the title only."

# Straight and typographic quotes, backticks, and markdown emphasis the model may wrap it in.
_WRAPPERS = "\"'`“”‘’«»„‚*_# \t"
_LABEL = re.compile(r"^\s*(?:\*\*)?title(?:\*\*)?\s*[:\-–—]\s*", re.IGNORECASE)


def title_request(model: str, user_text: str, reply_text: str) -> CompletionRequest:
    """First user message, first reply, then the ask (the request ends with a user turn)."""
    return CompletionRequest(
        model=model,
        system=TITLE_SYSTEM_PROMPT,
        messages=[
            ChatTurn("user", user_text),
            ChatTurn("assistant", reply_text),
            ChatTurn("user", TITLE_ASK),
        ],
        max_tokens=50,
        temperature=0.3,
        purpose="title",
    )


def clean_title(raw: str, *, limit: int = MAX_TITLE_CHARS) -> str:
    """The title in a model's reply: its first non-blank line without a ``Title:`` label,
    surrounding quotes/markdown and trailing punctuation, whitespace collapsed, cut to
    ``limit`` characters. May be "" (the caller then falls back)."""
    line = next((line for line in raw.splitlines() if line.strip()), "")
    line = _LABEL.sub("", line)
    previous = None
    while previous != line:
        previous = line
        line = line.strip(_WRAPPERS).rstrip(".,;:").strip()
    return ellipsis(line, limit, words=True)


def fallback_title(user_text: str, *, words: int = 6, limit: int = MAX_TITLE_CHARS) -> str:
    """The first words of the user's first message; never empty."""
    title = clean_title(" ".join(user_text.split()[:words]), limit=limit)
    return title or FALLBACK_TITLE


def first_exchange(
    messages: Sequence[ChatMessage], *, failed: Collection[str]
) -> tuple[tuple[str, str] | None, str | None]:
    """The first user message with a non-empty reply whose stop reason is not in ``failed``,
    and the first user text (either may be None): what a resumed session titles itself from."""
    first_user: str | None = None
    for i, message in enumerate(messages):
        if message.role is not MessageRole.USER:
            continue
        if first_user is None:
            first_user = message.content
        nxt = messages[i + 1] if i + 1 < len(messages) else None
        if (
            nxt is not None
            and nxt.role is MessageRole.ASSISTANT
            and nxt.content.strip()
            and nxt.stop_reason not in failed
        ):
            return (message.content, nxt.content), first_user
    return None, first_user


class SessionTitler:
    """Gives one session its title: asked of the model in the background after the first
    exchange with a reply (never delaying a turn); after ``attempts`` failures, or when the
    session ends untitled, the first words of the first user message.

    ``titled()`` tells whether the session has a title; ``save(title)`` stores one (the
    session's owner checks ownership first). ``ended`` marks the end: nothing new starts."""

    def __init__(
        self,
        provider: LlmProvider,
        model: str,
        *,
        attempts: int,
        wait: float,
        titled: Callable[[], bool],
        save: Callable[[str], Awaitable[None]],
        first_exchange: tuple[str, str] | None = None,
        first_user_text: str | None = None,
        label: object = "",
    ) -> None:
        self.provider = provider
        self.model = model
        self.attempts = attempts
        self.wait = wait
        self._titled = titled
        self._save = save
        self._first_exchange = first_exchange
        self._first_user_text = first_user_text
        self._label = label
        self.failures = 0
        self._task: asyncio.Task[None] | None = None

    def saw_user(self, text: str) -> None:
        """A user message was stored."""
        if self._first_user_text is None:
            self._first_user_text = text

    def saw_reply(self, user_text: str, reply_text: str) -> None:
        """A non-empty reply was stored: start titling if it is time (on the running loop)."""
        if self._first_exchange is None:
            self._first_exchange = (user_text, reply_text)
        if self._titled() or (self._task is not None and not self._task.done()):
            return
        if self.failures >= self.attempts:
            return
        user, reply = self._first_exchange
        self._task = asyncio.get_running_loop().create_task(self._make(user, reply))

    async def _make(self, user_text: str, reply_text: str) -> None:
        try:
            completion = await self.provider.complete(
                title_request(self.model, user_text, reply_text)
            )
            title = clean_title(completion.text) or fallback_title(user_text)
        except Exception as exc:
            self.failures += 1
            log.warning(
                "title for session %s failed (attempt %d of %d): %s",
                self._label,
                self.failures,
                self.attempts,
                exc,
            )
            if self.failures < self.attempts:
                return  # tried again after the next reply
            title = fallback_title(user_text)
        if not self._titled():
            await self._save(title)

    async def settle(self) -> None:
        """At the end: wait up to ``wait`` seconds for a title being made (then cancel it);
        an untitled session that had a user message gets the fallback title."""
        task = self._task
        if task is not None and not task.done():
            done, _ = await asyncio.wait({task}, timeout=self.wait)
            if not done:
                task.cancel()
        if task is not None:
            with contextlib.suppress(BaseException):
                await task
        if not self._titled() and self._first_user_text is not None:
            await self._save(fallback_title(self._first_user_text))

    async def cancel(self) -> None:
        """Stop a title being made, saving nothing."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
