"""Chat engine fixtures: a bot in a real store, and a scripted provider that records requests.

``ScriptedProvider`` answers like the offline provider (deterministic), classifies each
request (chat, title, summary), records it, and can be told to fail or to hold a kind of
request until a gate opens.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Self

import pytest

from boternity import Store
from boternity.chat.titles import TITLE_SYSTEM_PROMPT
from boternity.chat.window import SUMMARY_SYSTEM_PROMPT
from boternity.errors import LlmError, ProviderUnavailableError
from boternity.llm.base import (
    ChatTurn,
    Completion,
    CompletionRequest,
    Done,
    StreamCollector,
    StreamEvent,
    TextDelta,
    Usage,
    estimate_tokens,
)
from boternity.llm.offline import answer
from boternity.models import Bot


def kind_of(request: CompletionRequest) -> str:
    if request.system == TITLE_SYSTEM_PROMPT:
        return "title"
    if request.system == SUMMARY_SYSTEM_PROMPT:
        return "summary"
    return "chat"


@dataclass
class Failure:
    """Raise ``error`` after ``after`` text deltas (0: before the first event)."""

    after: int
    error: LlmError


@dataclass
class ScriptedProvider:
    window: int = 100_000
    default_model: str = "scripted-1"
    name: str = "scripted"
    label: str = "scripted (tests)"
    #: Replies for chat requests, used in order; the offline answer once they run out.
    replies: list[str] = field(default_factory=list)
    title_replies: list[str] = field(default_factory=list)
    #: Failures per kind, used in order.
    failures: dict[str, list[Failure]] = field(default_factory=dict)
    #: A kind listed here waits for its event before answering.
    gates: dict[str, asyncio.Event] = field(default_factory=dict)
    requests: list[tuple[str, CompletionRequest]] = field(default_factory=list)
    closed: bool = False

    def of(self, kind: str) -> list[CompletionRequest]:
        return [r for k, r in self.requests if k == kind]

    def context_window(self, model: str) -> int:
        return self.window

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    async def aclose(self) -> None:
        self.closed = True

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _text(self, kind: str, request: CompletionRequest) -> str:
        if kind == "chat" and self.replies:
            return self.replies.pop(0)
        if kind == "title" and self.title_replies:
            return self.title_replies.pop(0)
        return answer(request)

    async def stream(self, request: CompletionRequest) -> AsyncGenerator[StreamEvent, None]:
        kind = kind_of(request)
        self.requests.append((kind, request))
        gate = self.gates.get(kind)
        if gate is not None:
            await gate.wait()
        failure = self.failures.get(kind, []).pop(0) if self.failures.get(kind) else None
        if failure is not None and failure.after == 0:
            raise failure.error  # before any text: no scripted reply is used up
        text = self._text(kind, request)
        if estimate_tokens(text) > request.max_tokens:
            text = text[: request.max_tokens * 4]
        words = text.split(" ")
        pieces = [w + " " for w in words[:-1]] + [words[-1]]
        prompt = (request.system or "") + "".join(t.content for t in request.messages)
        collector = StreamCollector(request.model)
        for i, piece in enumerate(pieces):
            if failure is not None and i == failure.after:
                raise collector.attach_partial(failure.error)
            await asyncio.sleep(0)
            event = TextDelta(piece)
            collector.add(event)
            yield event
        if failure is not None:
            raise collector.attach_partial(failure.error)
        yield Usage(estimate_tokens(prompt), estimate_tokens(text))
        yield Done("end_turn")

    async def complete(self, request: CompletionRequest) -> Completion:
        collector = StreamCollector(request.model)
        async for event in self.stream(request):
            collector.add(event)
        return collector.completion()


def fail(after: int = 0, message: str = "connection reset") -> Failure:
    return Failure(after, ProviderUnavailableError(message, provider="scripted"))


def assert_valid_turns(turns: Sequence[ChatTurn]) -> None:
    """What every provider accepts: non-empty, user first and last, strictly alternating."""
    assert turns, "no turns"
    assert turns[0].role == "user"
    assert turns[-1].role == "user"
    for a, b in zip(turns, turns[1:], strict=False):
        assert a.role != b.role, f"two {a.role} turns in a row"
    for turn in turns:
        assert turn.content.strip(), "empty turn"


@pytest.fixture
async def bot(store: Store) -> Bot:
    created = await store.bots.create_bot(Bot(name="Ada", description="A patient tutor"))
    await store.bots.save_soul(created.id, "Ada is curious, kind and precise. SOUL-MARKER")
    return created


@pytest.fixture
async def provider() -> AsyncIterator[ScriptedProvider]:
    scripted = ScriptedProvider()
    yield scripted
    await scripted.aclose()
