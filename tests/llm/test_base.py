"""Request validation and the shared helpers on top of the provider contract."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import pytest

from boternity.errors import ValidationError
from boternity.llm import (
    ChatTurn,
    Completion,
    CompletionRequest,
    Done,
    StreamEvent,
    TextDelta,
    Usage,
    collect,
    estimate_prompt_tokens,
)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"model": "", "messages": [ChatTurn("user", "hi")]},
        {"model": "m", "messages": []},
        {"model": "m", "messages": [ChatTurn("user", "hi")], "max_tokens": 0},
        {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
    ],
)
def test_bad_requests_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        CompletionRequest(**kwargs)


def test_bad_turns_are_refused() -> None:
    with pytest.raises(ValidationError, match="role"):
        ChatTurn("system", "hi")  # type: ignore[arg-type]


def test_a_request_is_a_value() -> None:
    turns = [ChatTurn("user", "hi")]
    request = CompletionRequest(model="m", system="sys", messages=turns)
    turns.append(ChatTurn("assistant", "later"))
    assert request.messages == (ChatTurn("user", "hi"),)
    assert estimate_prompt_tokens(request) == 2  # "syshi": 5 characters


async def test_collect_folds_a_stream_into_a_completion() -> None:
    async def events() -> AsyncGenerator[StreamEvent, None]:
        for event in (Usage(3, 0), TextDelta("a"), TextDelta("b"), Usage(3, 2), Done("x")):
            yield event

    assert await collect(events(), model="m") == Completion("ab", 3, 2, "x", "m")
