"""The sliding context window: how much conversation a request may carry, and folding the
oldest messages into a :class:`~boternity.models.ContextSummary` when it would not fit;
:class:`ContextWindow` does it for one live session.

**Range rule.** Each summary folds the previous summary's *text* together with the messages
that follow it, but its ``messages_start..messages_end`` records only the messages newly
folded in: ``messages_start = previous.messages_end + 1`` (1 for the first summary). So the
summaries of a session tile ``1..N`` with contiguous, non-overlapping ranges, and the latest
summary stands for everything in ``1..messages_end``. The next request is system prompt +
latest summary + messages with ``seq > messages_end``. Messages are never deleted.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from boternity.errors import ValidationError
from boternity.llm.base import ChatTurn, CompletionRequest, LlmProvider
from boternity.models import ChatMessage, ContextSummary

__all__ = [
    "SUMMARY_SYSTEM_PROMPT",
    "ContextWindow",
    "RequestBuilder",
    "WindowPolicy",
    "conversation_limit",
    "fold_count",
    "request_tokens",
    "summary_request",
]

SUMMARY_SYSTEM_PROMPT = (
    "You summarise conversations between a user and an AI assistant so the assistant can"
    " continue them without the full transcript. Keep decisions, facts about the user, goals,"
    " commitments and open questions; drop small talk. Write in the third person, as plain"
    " prose, under 300 words. If a previous summary is given, merge it with the new messages"
    " into one summary of everything so far."
)

#: Tokens reserved for the text around a summary in its turn (see prompt.summary_turn).
SUMMARY_WRAP = 32

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowPolicy:
    """``context_share``: the part of the model's context window a request may use (system
    prompt, summary and messages, plus the reply's ``max_tokens``). ``keep_recent``: how many
    of the newest messages stay verbatim when older ones are folded into a summary.
    ``summary_max_tokens``: the length asked of a summary (and reserved for it when planning a
    fold). ``message_overhead``: tokens counted per turn on top of its text (role markers)."""

    context_share: float = 0.7
    keep_recent: int = 10
    summary_max_tokens: int = 512
    message_overhead: int = 4

    def __post_init__(self) -> None:
        if not 0 < self.context_share <= 1:
            raise ValidationError(
                f"WindowPolicy.context_share must be in (0, 1], got {self.context_share}"
            )
        if self.keep_recent < 1:
            raise ValidationError(f"WindowPolicy.keep_recent must be >= 1, got {self.keep_recent}")
        if self.summary_max_tokens < 1:
            raise ValidationError("WindowPolicy.summary_max_tokens must be >= 1")
        if self.message_overhead < 0:
            raise ValidationError("WindowPolicy.message_overhead must be >= 0")


def conversation_limit(
    provider: LlmProvider, model: str, *, max_tokens: int, policy: WindowPolicy
) -> int:
    """The most tokens a request (system prompt + turns) may hold: ``context_share`` of the
    model's window, minus the reply's ``max_tokens``."""
    return math.floor(provider.context_window(model) * policy.context_share) - max_tokens


def request_tokens(provider: LlmProvider, request: CompletionRequest, policy: WindowPolicy) -> int:
    """The provider's estimate of a request's prompt size."""
    total = provider.count_tokens(request.system or "")
    for turn in request.messages:
        total += provider.count_tokens(turn.content) + policy.message_overhead
    return total


def fold_count(sizes: Sequence[int], *, fixed: int, limit: int, policy: WindowPolicy) -> int:
    """How many of the oldest window messages to fold, given each message's token size and the
    tokens the request needs besides them (``fixed``: the system prompt). Starts at "all but
    ``keep_recent``" and folds more while the rest plus a summary would still not fit; never
    folds the newest message (the user turn being answered). 0 when nothing can be folded."""
    if len(sizes) < 2:
        return 0
    count = max(1, len(sizes) - policy.keep_recent)
    reserve = fixed + policy.summary_max_tokens
    while count < len(sizes) - 1 and reserve + sum(sizes[count:]) > limit:
        count += 1
    return count


def summary_request(
    model: str,
    previous: str | None,
    messages: Sequence[ChatMessage],
    *,
    max_tokens: int,
) -> CompletionRequest:
    """One user turn: the previous summary (if any) and the messages to fold, as
    ``role: content`` lines."""
    lines = "\n\n".join(f"{m.role.value}: {m.content}" for m in messages if m.content.strip())
    parts = ["Please summarize this conversation so far."]
    if previous:
        parts.append(f"<previous_summary>\n{previous.strip()}\n</previous_summary>")
    parts.append(f"<conversation>\n{lines}\n</conversation>")
    return CompletionRequest(
        model=model,
        system=SUMMARY_SYSTEM_PROMPT,
        messages=[ChatTurn("user", "\n\n".join(parts))],
        max_tokens=max_tokens,
        temperature=0.0,
        purpose="summary",
    )


#: Builds a request from a summary and the messages after it (the rest of the prompt fixed).
RequestBuilder = Callable[[ContextSummary | None, Sequence[ChatMessage]], CompletionRequest]


class ContextWindow:
    """One session's context: its latest summary and the messages after it. Builds each
    request within the budget, folding the oldest messages into a new summary when they
    would not fit (see the module docstring for the range rule).

    ``save_summary`` stores a new summary (the session's owner checks ownership first) and
    returns it as stored."""

    def __init__(
        self,
        provider: LlmProvider,
        policy: WindowPolicy,
        session_id: uuid.UUID,
        *,
        save_summary: Callable[[ContextSummary], Awaitable[ContextSummary]],
        summary: ContextSummary | None = None,
        messages: Sequence[ChatMessage] = (),
    ) -> None:
        self.provider = provider
        self.policy = policy
        self.session_id = session_id
        self._save_summary = save_summary
        self.summary = summary
        self.messages: list[ChatMessage] = list(messages)

    def add(self, message: ChatMessage) -> None:
        """A stored message joins the window."""
        self.messages.append(message)

    def reset(self) -> None:
        """The transcript was cleared: no summary, no messages."""
        self.summary = None
        self.messages = []

    async def request(
        self, build: RequestBuilder, *, model: str, max_tokens: int
    ) -> CompletionRequest:
        """The request for the next reply: everything if it fits; else the oldest messages
        folded into a summary first (a failed fold is logged and tried again next time); and
        if still too big, the oldest left out of this request only."""
        policy = self.policy
        limit = conversation_limit(self.provider, model, max_tokens=max_tokens, policy=policy)

        def size(request: CompletionRequest) -> int:
            return request_tokens(self.provider, request, policy)

        request = build(self.summary, self.messages)
        if size(request) <= limit:
            return request
        # The system prompt, plus the summary turn's wrapper text and turn overhead.
        fixed = self.provider.count_tokens(build(self.summary, []).system or "") + SUMMARY_WRAP
        sizes = [
            self.provider.count_tokens(m.content) + policy.message_overhead for m in self.messages
        ]
        count = fold_count(sizes, fixed=fixed, limit=limit, policy=policy)
        if count:
            try:
                await self.fold(count, model=model)
            except Exception as exc:
                # Keep the reply going; the fold is tried again on the next turn.
                log.warning("summarising session %s failed: %s", self.session_id, exc)
        request = build(self.summary, self.messages)
        messages = list(self.messages)
        while size(request) > limit and len(messages) > 1:
            # Still too big (failed fold, long recent messages): leave the oldest out of this
            # request only. They stay stored and are folded into a summary later.
            messages.pop(0)
            request = build(self.summary, messages)
        if size(request) > limit:
            log.warning(
                "session %s: request of ~%d tokens exceeds the budget of %d",
                self.session_id,
                size(request),
                limit,
            )
        return request

    async def fold(self, count: int, *, model: str) -> ContextSummary:
        """Fold the ``count`` oldest messages, with the previous summary, into a new summary
        covering ``previous.messages_end + 1 .. last folded seq``."""
        folded = self.messages[:count]
        previous = self.summary
        start = previous.messages_end + 1 if previous is not None else 1
        completion = await self.provider.complete(
            summary_request(
                model,
                previous.summary if previous is not None else None,
                folded,
                max_tokens=self.policy.summary_max_tokens,
            )
        )
        text = completion.text.strip()
        if not text:
            raise ValidationError("the model returned an empty summary")
        summary = await self._save_summary(
            ContextSummary(
                session_id=self.session_id,
                summary=text,
                messages_start=min(start, _seq(folded[0])),
                messages_end=_seq(folded[-1]),
                token_count=self.provider.count_tokens(text),
            )
        )
        self.summary = summary
        self.messages = self.messages[count:]
        return summary


def _seq(message: ChatMessage) -> int:
    assert message.seq is not None, "stored messages have a seq"
    return message.seq
