"""The sliding context window: how much conversation a request may carry, and folding the
oldest messages into a :class:`~boternity.models.ContextSummary` when it would not fit.

**Range rule.** Each summary folds the previous summary's *text* together with the messages
that follow it, but its ``messages_start..messages_end`` records only the messages newly
folded in: ``messages_start = previous.messages_end + 1`` (1 for the first summary). So the
summaries of a session tile ``1..N`` with contiguous, non-overlapping ranges, and the latest
summary stands for everything in ``1..messages_end``. The next request is system prompt +
latest summary + messages with ``seq > messages_end``. Messages are never deleted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from boternity.errors import ValidationError
from boternity.llm.base import ChatTurn, CompletionRequest, LlmProvider
from boternity.models import ChatMessage

__all__ = [
    "SUMMARY_SYSTEM_PROMPT",
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
