"""The provider contract: request and event types, and the ``LlmProvider`` Protocol.

A provider implements two primitives, ``stream`` and ``complete``; everything else (collecting
a stream into a ``Completion``, token estimates) is shared here so providers cannot drift.
"""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, Protocol, Self, runtime_checkable

from boternity.errors import LlmError, ValidationError
from boternity.text import storable

Role = Literal["user", "assistant"]

#: What a request is for, set by whoever builds it: a chat ``reply`` (the default), the bot's
#: opening ``greeting``, a session ``title``, a context ``summary``, a memory ``extraction``.
#: For logs and the offline provider; real providers never send it.
Purpose = Literal["reply", "greeting", "title", "summary", "extraction"]
PURPOSES: tuple[Purpose, ...] = ("reply", "greeting", "title", "summary", "extraction")

# Anthropic's vocabulary; the OpenAI provider maps finish_reason onto it (stop -> end_turn,
# length -> max_tokens). Unknown reasons pass through unchanged, so this is a str, not an enum.
END_TURN = "end_turn"
MAX_TOKENS = "max_tokens"
#: Stop reasons are short identifiers; a server may send anything (a huge string, an object).
MAX_STOP_REASON_LENGTH = 64


def clean_stop_reason(value: object) -> str:
    """A server's stop reason made storable: text of at most MAX_STOP_REASON_LENGTH printable
    characters, else ``end_turn``. A hostile reply must never make the finished turn unsavable."""
    if not isinstance(value, str):
        return END_TURN
    kept = "".join(c for c in value if c.isprintable() and not 0xD800 <= ord(c) <= 0xDFFF)
    return kept[:MAX_STOP_REASON_LENGTH] or END_TURN


@dataclass(frozen=True, slots=True)
class ChatTurn:
    role: Role
    content: str

    def __post_init__(self) -> None:
        if self.role not in ("user", "assistant"):
            raise ValidationError(f"ChatTurn.role must be 'user' or 'assistant', got {self.role!r}")
        if not isinstance(self.content, str):
            raise ValidationError(
                f"ChatTurn.content must be a str, got {type(self.content).__name__}"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class CompletionRequest:
    """One model call. ``messages`` alternate user/assistant and should end with a user turn.
    ``purpose`` says what the call is for (see :data:`Purpose`); it is not sent."""

    model: str
    messages: Sequence[ChatTurn]
    system: str | None = None
    max_tokens: int = 1024
    temperature: float | None = None
    purpose: Purpose = "reply"

    def __post_init__(self) -> None:
        if not self.model:
            raise ValidationError("CompletionRequest.model must not be empty")
        if self.purpose not in PURPOSES:
            raise ValidationError(
                f"CompletionRequest.purpose: unknown value {self.purpose!r}"
                f" (expected one of: {', '.join(PURPOSES)})"
            )
        if not self.messages:
            raise ValidationError("CompletionRequest.messages must not be empty")
        if self.max_tokens < 1:
            raise ValidationError(
                f"CompletionRequest.max_tokens must be >= 1, got {self.max_tokens}"
            )
        for turn in self.messages:
            if not isinstance(turn, ChatTurn):
                raise ValidationError(
                    f"CompletionRequest.messages must hold ChatTurn, got {type(turn).__name__}"
                )
        # Freeze the sequence so a request is a value: callers may keep mutating their list.
        object.__setattr__(self, "messages", tuple(self.messages))


@dataclass(frozen=True, slots=True)
class TextDelta:
    """The next piece of the reply. A NUL or a lone surrogate a server sent (as a JSON
    escape) is U+FFFD: no backend could store it, and the reply must be kept."""

    text: str

    def __post_init__(self) -> None:
        if isinstance(self.text, str):
            object.__setattr__(self, "text", storable(self.text))


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts so far. Each Usage event replaces the previous one (the last one wins)."""

    input_tokens: int
    output_tokens: int


@dataclass(frozen=True, slots=True)
class Done:
    """The reply is complete. Always the last event of a successful stream."""

    stop_reason: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "stop_reason", clean_stop_reason(self.stop_reason))


StreamEvent = TextDelta | Usage | Done


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    input_tokens: int
    output_tokens: int
    stop_reason: str
    model: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "stop_reason", clean_stop_reason(self.stop_reason))
        if isinstance(self.text, str):  # as TextDelta's
            object.__setattr__(self, "text", storable(self.text))


@runtime_checkable
class LlmProvider(Protocol):
    """What the chat engine and the memory worker need from a model provider.

    ``stream`` yields ``TextDelta``/``Usage`` events and ends with exactly one ``Done``; it
    raises an ``LlmError`` subclass on failure. Transient failures before the first event are
    retried inside the provider; nothing is yielded for a failed attempt, so a caller never sees
    text from two attempts. After the first event a failure is raised with the partial text and
    usage on the exception.
    """

    @property
    def name(self) -> str:
        """One of "anthropic", "openai", "offline"."""
        ...

    @property
    def label(self) -> str:
        """For humans: "anthropic", "openai (http://localhost:11434/v1)", ..."""
        ...

    @property
    def default_model(self) -> str:
        """The model to put in requests unless the caller has a reason to pick another."""
        ...

    def stream(self, request: CompletionRequest) -> AsyncGenerator[StreamEvent, None]:
        """An async generator: a caller that stops early should ``aclose()`` it (or use
        ``contextlib.aclosing``) so the HTTP response is released at once."""
        ...

    async def complete(self, request: CompletionRequest) -> Completion: ...

    def context_window(self, model: str) -> int: ...

    def count_tokens(self, text: str) -> int: ...

    async def aclose(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class ClosesOnExit:
    """``async with provider:`` for every provider: leaving the block calls ``aclose``."""

    async def aclose(self) -> None:
        return None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def estimate_tokens(text: str) -> int:
    """A provider-independent estimate: one token per four characters (not bytes), rounded up."""
    return math.ceil(len(text) / 4)


def estimate_prompt_tokens(request: CompletionRequest) -> int:
    """The estimate for everything a request sends: system prompt and every turn."""
    return estimate_tokens((request.system or "") + "".join(t.content for t in request.messages))


@dataclass(slots=True)
class StreamCollector:
    """Folds stream events into a ``Completion``; also what a failed stream had delivered."""

    model: str
    parts: list[str] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    stop_reason: str | None = None

    def add(self, event: StreamEvent) -> None:
        if isinstance(event, TextDelta):
            self.parts.append(event.text)
        elif isinstance(event, Usage):
            self.input_tokens = event.input_tokens
            self.output_tokens = event.output_tokens
        else:
            self.stop_reason = event.stop_reason

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def attach_partial(self, error: LlmError) -> LlmError:
        error.partial_text = self.text
        error.input_tokens = self.input_tokens
        error.output_tokens = self.output_tokens
        return error

    def completion(self) -> Completion:
        return Completion(
            text=self.text,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            stop_reason=self.stop_reason or END_TURN,
            model=self.model,
        )


async def collect(events: AsyncIterator[StreamEvent], *, model: str) -> Completion:
    """Consume a stream into one ``Completion`` (for callers that want streaming transport only)."""
    collector = StreamCollector(model)
    async for event in events:
        collector.add(event)
    return collector.completion()
