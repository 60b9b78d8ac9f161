"""Anthropic Messages API specifics: headers, request body, usage accounting, event types."""

from __future__ import annotations

import pytest

from boternity.llm import (
    AnthropicProvider,
    AuthenticationError,
    ChatTurn,
    CompletionRequest,
    Done,
    RetryPolicy,
    StreamCollector,
    TextDelta,
    Usage,
)
from tests.fakes.llm_server import FakeLlmServer, anthropic_frames, sse, sse_reply
from tests.llm.wires import KEY

REQUEST = CompletionRequest(
    model="claude-test",
    system="You are terse.",
    messages=[ChatTurn("user", "Hi"), ChatTurn("assistant", "Hello"), ChatTurn("user", "Again")],
    max_tokens=100,
    temperature=0.2,
)


def provider_for(server: FakeLlmServer, retry: RetryPolicy) -> AnthropicProvider:
    return AnthropicProvider(api_key=KEY, base_url=server.base_url, retry=retry)


async def test_request_shape(server: FakeLlmServer, retry: RetryPolicy) -> None:
    server.enqueue(sse_reply(anthropic_frames(["ok"])))
    async with provider_for(server, retry) as provider:
        async for _ in provider.stream(REQUEST):
            pass
    sent = server.requests[0]
    assert (sent.method, sent.path) == ("POST", "/v1/messages")
    assert sent.headers["x-api-key"] == KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent.headers
    assert sent.json == {
        "model": "claude-test",
        "max_tokens": 100,
        "system": "You are terse.",
        "temperature": 0.2,
        "stream": True,
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Again"},
        ],
    }


async def test_usage_counts_cached_input_and_takes_the_last_output_count(
    server: FakeLlmServer, retry: RetryPolicy
) -> None:
    frames = [
        sse(
            {
                "type": "message_start",
                "message": {
                    "usage": {
                        "input_tokens": 5,
                        "cache_creation_input_tokens": 100,
                        "cache_read_input_tokens": 20,
                        "output_tokens": 1,
                    }
                },
            },
            "message_start",
        ),
        sse(
            {"type": "content_block_delta", "delta": {"type": "thinking_delta", "thinking": "h"}},
            "content_block_delta",
        ),
        sse(
            {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "Hi"}},
            "content_block_delta",
        ),
        sse({"type": "some_future_event"}, "some_future_event"),
        b": a comment\n\n",
        sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "max_tokens"},
                "usage": {"output_tokens": 42},
            },
            "message_delta",
        ),
        sse({"type": "message_stop"}, "message_stop"),
    ]
    server.enqueue(sse_reply(frames))
    async with provider_for(server, retry) as provider:
        events = [e async for e in provider.stream(REQUEST)]
    assert events == [Usage(125, 1), TextDelta("Hi"), Usage(125, 42), Done("max_tokens")]


async def test_an_empty_reply_still_ends_with_usage_and_done(
    server: FakeLlmServer, retry: RetryPolicy
) -> None:
    server.enqueue(sse_reply(anthropic_frames([], output_tokens=0)))
    collector = StreamCollector("claude-test")
    async with provider_for(server, retry) as provider:
        async for event in provider.stream(REQUEST):
            collector.add(event)
    assert collector.completion().text == ""
    assert collector.stop_reason == "end_turn"
    assert collector.input_tokens == 12


def test_a_key_is_required() -> None:
    with pytest.raises(AuthenticationError, match="ANTHROPIC_API_KEY"):
        AnthropicProvider(api_key="")


async def test_defaults() -> None:
    async with AnthropicProvider(api_key=KEY) as provider:
        assert provider.base_url == "https://api.anthropic.com"
        assert provider.label == "anthropic"
        assert provider.default_model.startswith("claude")
        assert provider.context_window("claude-anything") == 200_000
        assert KEY not in repr(provider)
