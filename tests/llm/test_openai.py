"""OpenAI Chat Completions specifics: auth header, stream_options, finish reasons, usage."""

from __future__ import annotations

import pytest

from boternity.llm import (
    ChatTurn,
    CompletionRequest,
    Done,
    InvalidRequestError,
    LlmError,
    OpenAIProvider,
    RetryPolicy,
    StreamEvent,
    TextDelta,
    Usage,
)
from tests.fakes.llm_server import FakeLlmServer, json_reply, openai_frames, sse, sse_reply
from tests.llm.wires import KEY, Sleeps

REQUEST = CompletionRequest(
    model="gpt-test",
    system="You are terse.",
    messages=[ChatTurn("user", "Hi there")],
    max_tokens=100,
)


async def stream(provider: OpenAIProvider) -> list[StreamEvent]:
    return [e async for e in provider.stream(REQUEST)]


async def test_request_shape(server: FakeLlmServer, retry: RetryPolicy) -> None:
    server.enqueue(sse_reply(openai_frames(["ok"])))
    async with OpenAIProvider(api_key=KEY, base_url=server.openai_base_url, retry=retry) as p:
        await stream(p)
    sent = server.requests[0]
    assert (sent.method, sent.path) == ("POST", "/v1/chat/completions")
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.json == {
        "model": "gpt-test",
        "max_tokens": 100,
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hi there"},
        ],
    }


async def test_no_key_sends_no_authorization_header(
    server: FakeLlmServer, retry: RetryPolicy
) -> None:
    # Local servers (Ollama, llama.cpp, vLLM, LM Studio) need no key.
    server.enqueue(sse_reply(openai_frames(["ok"])))
    async with OpenAIProvider(base_url=server.openai_base_url, retry=retry) as provider:
        assert provider.label == f"openai ({server.openai_base_url})"
        await stream(provider)
    assert "authorization" not in server.requests[0].headers


async def test_finish_reason_length_maps_to_max_tokens(
    server: FakeLlmServer, retry: RetryPolicy
) -> None:
    server.enqueue(sse_reply(openai_frames(["a", "b"], finish_reason="length")))
    async with OpenAIProvider(base_url=server.openai_base_url, retry=retry) as provider:
        events = await stream(provider)
    assert events == [TextDelta("a"), TextDelta("b"), Usage(12, 2), Done("max_tokens")]


async def test_missing_usage_is_estimated(server: FakeLlmServer, retry: RetryPolicy) -> None:
    # A server that ignores stream_options and closes without [DONE] after finish_reason.
    frames = openai_frames(["12345678"], usage=False, done=False)
    server.enqueue(sse_reply(frames, framing="close"))
    async with OpenAIProvider(base_url=server.openai_base_url, retry=retry) as provider:
        events = await stream(provider)
    prompt_chars = len("You are terse.") + len("Hi there")
    assert events == [TextDelta("12345678"), Usage(-(-prompt_chars // 4), 2), Done("end_turn")]


async def test_ollama_style_error_body(
    server: FakeLlmServer, retry: RetryPolicy, sleeps: Sleeps
) -> None:
    server.enqueue(json_reply({"error": "model 'llama9' not found"}, status=404))
    async with OpenAIProvider(base_url=server.openai_base_url, retry=retry) as provider:
        with pytest.raises(InvalidRequestError, match="model 'llama9' not found") as caught:
            await stream(provider)
    assert caught.value.status == 404
    assert sleeps.delays == []


async def test_non_streaming_finish_reason_and_missing_usage(
    server: FakeLlmServer, retry: RetryPolicy
) -> None:
    server.enqueue(
        json_reply({"choices": [{"message": {"content": "abcd"}, "finish_reason": "length"}]})
    )
    async with OpenAIProvider(base_url=server.openai_base_url, retry=retry) as provider:
        completion = await provider.complete(REQUEST)
    assert completion.text == "abcd"
    assert completion.stop_reason == "max_tokens"
    assert completion.output_tokens == 1


async def test_defaults() -> None:
    async with OpenAIProvider(api_key=KEY) as provider:
        assert provider.base_url == "https://api.openai.com/v1"
        assert provider.label == "openai"
        assert provider.context_window("gpt-4o-mini") == 128_000
        assert provider.context_window("gpt-4") == 8_192
        assert provider.context_window("llama3.1:8b") == 8_192
        assert KEY not in repr(provider)


async def test_vllm_style_error_chunk_mid_stream(server: FakeLlmServer, retry: RetryPolicy) -> None:
    error = {"object": "error", "message": "engine died", "type": "InternalServerError"}
    frames = openai_frames(["partial"])[:2] + [sse(error)]
    server.enqueue(sse_reply(frames))
    async with OpenAIProvider(base_url=server.openai_base_url, retry=retry) as provider:
        with pytest.raises(LlmError, match="engine died") as caught:
            await stream(provider)
    assert caught.value.partial_text == "partial"
