"""Behaviour every HTTP provider shares, run against both wire protocols over real HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import socket
from contextlib import aclosing

import httpx
import pytest

from boternity.llm import (
    AuthenticationError,
    ChatTurn,
    CompletionRequest,
    ContextLengthError,
    Done,
    InvalidRequestError,
    LlmError,
    LlmProvider,
    OverloadedError,
    ProviderUnavailableError,
    RateLimitedError,
    RetryPolicy,
    StreamCollector,
    StreamEvent,
    TextDelta,
    Usage,
)
from boternity.llm.transport import HttpProvider
from tests.fakes.llm_server import FakeLlmServer, Reply, sse, sse_reply
from tests.llm.wires import KEY, Sleeps, Wire

# Credentials a user may put in a base URL (as userinfo, as a query parameter).
URL_KEY = "sk-userinfo-SECRET-4242424242"
QUERY_KEY = "qk-query-SECRET-5151515151"

REQUEST = CompletionRequest(
    model="test-model",
    system="Be brief.",
    messages=[ChatTurn("user", "Say hello")],
    max_tokens=64,
)
PIECES = ["Hel", "lo, ", "wörld ✓"]


async def events_of(provider: HttpProvider) -> list[StreamEvent]:
    return [event async for event in provider.stream(REQUEST)]


async def stream_until_error(provider: HttpProvider) -> tuple[list[StreamEvent], LlmError]:
    seen: list[StreamEvent] = []
    with pytest.raises(LlmError) as caught:
        async for event in provider.stream(REQUEST):
            seen.append(event)
    return seen, caught.value


def text_of(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def test_provider_satisfies_the_protocol(
    wire: Wire, server: FakeLlmServer, retry: RetryPolicy
) -> None:
    async with wire.provider(server, retry) as provider:
        assert isinstance(provider, LlmProvider)
        assert provider.name == wire.name


async def test_stream_yields_text_then_usage_then_done(
    wire: Wire, server: FakeLlmServer, retry: RetryPolicy
) -> None:
    server.enqueue(sse_reply(wire.frames(PIECES)))
    async with wire.provider(server, retry) as provider:
        events = await events_of(provider)
    assert [e for e in events if isinstance(e, TextDelta)] == [TextDelta(p) for p in PIECES]
    assert events[-1] == Done("end_turn")
    usages = [e for e in events if isinstance(e, Usage)]
    assert usages[-1] == Usage(12, 3)
    assert len(server.requests) == 1
    body = server.requests[0].json
    assert body["stream"] is True
    assert body["model"] == "test-model"
    assert body["max_tokens"] == 64


async def test_the_purpose_tag_stays_off_the_wire(
    wire: Wire, server: FakeLlmServer, retry: RetryPolicy
) -> None:
    server.enqueue(sse_reply(wire.frames(PIECES)))
    async with wire.provider(server, retry) as provider:
        request = dataclasses.replace(REQUEST, purpose="title")
        assert text_of([e async for e in provider.stream(request)]) == "".join(PIECES)
    body = server.requests[0].json
    assert "purpose" not in body and "title" not in json.dumps(body)


async def test_stream_survives_a_split_at_every_byte_boundary(
    wire: Wire, server: FakeLlmServer, retry: RetryPolicy
) -> None:
    body = b"".join(wire.frames(PIECES))
    for cut in range(1, len(body)):
        server.enqueue(sse_reply([body[:cut], body[cut:]]))
    server.enqueue(sse_reply([bytes([b]) for b in body]))  # and one byte at a time
    async with wire.provider(server, retry) as provider:
        for cut in range(1, len(body) + 1):
            events = await events_of(provider)
            assert text_of(events) == "".join(PIECES), f"split at byte {cut}"
            assert events[-1] == Done("end_turn"), f"split at byte {cut}"
    assert server.pending == 0


async def test_complete_without_streaming(
    wire: Wire, server: FakeLlmServer, retry: RetryPolicy
) -> None:
    server.enqueue(wire.message("Hi there."))
    async with wire.provider(server, retry) as provider:
        completion = await provider.complete(REQUEST)
    assert completion.text == "Hi there."
    assert (completion.input_tokens, completion.output_tokens) == (12, 5)
    assert completion.stop_reason == "end_turn"
    assert completion.model == "test-model"
    assert server.requests[0].json.get("stream") in (None, False)


async def test_rate_limit_is_retried_after_the_servers_retry_after(
    wire: Wire, server: FakeLlmServer, retry: RetryPolicy, sleeps: Sleeps
) -> None:
    server.enqueue(wire.rate_limited("2"), sse_reply(wire.frames(PIECES)))
    async with wire.provider(server, retry) as provider:
        events = await events_of(provider)
    assert text_of(events) == "".join(PIECES)
    assert sleeps.delays == [2.0]
    assert len(server.requests) == 2


async def test_rate_limit_gives_up_after_max_retries_with_retry_after(
    wire: Wire,
    server: FakeLlmServer,
    retry: RetryPolicy,
    sleeps: Sleeps,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    server.enqueue(*[wire.rate_limited("7") for _ in range(4)])
    async with wire.provider(server, retry) as provider:
        seen, error = await stream_until_error(provider)
    assert isinstance(error, RateLimitedError)
    assert error.retry_after == 7.0
    assert "retry after 7s" in str(error)
    assert error.status == 429
    assert isinstance(error.__cause__, httpx.HTTPStatusError)
    assert seen == []
    assert sleeps.delays == [7.0, 7.0, 7.0]
    assert len(server.requests) == 4
    retries = [r for r in caplog.records if "in 7.0s (retry" in r.getMessage()]
    assert [r.levelno for r in retries] == [logging.WARNING] * 3
    assert KEY not in caplog.text


async def test_complete_is_retried_like_stream(
    wire: Wire, server: FakeLlmServer, retry: RetryPolicy, sleeps: Sleeps
) -> None:
    server.enqueue(wire.rate_limited("1.5"), wire.overloaded, wire.message("ok"))
    async with wire.provider(server, retry) as provider:
        completion = await provider.complete(REQUEST)
    assert completion.text == "ok"
    assert sleeps.delays == [1.5, 0.02]


async def test_overloaded_and_unavailable_are_retried_with_capped_backoff(
    wire: Wire, server: FakeLlmServer, retry: RetryPolicy, sleeps: Sleeps
) -> None:
    unavailable = Reply(status=503, chunks=[b"upstream connect error"], framing="length")
    server.enqueue(wire.overloaded, unavailable, wire.overloaded, sse_reply(wire.frames(PIECES)))
    async with wire.provider(server, retry) as provider:
        events = await events_of(provider)
    assert text_of(events) == "".join(PIECES)
    assert sleeps.delays == [0.01, 0.02, 0.04]


async def test_overloaded_error_type(wire: Wire, server: FakeLlmServer, sleeps: Sleeps) -> None:
    server.enqueue(wire.overloaded)
    no_retry = RetryPolicy(max_retries=0, sleep=sleeps)
    async with wire.provider(server, no_retry) as provider:
        _, error = await stream_until_error(provider)
    expected = OverloadedError if wire.name == "anthropic" else ProviderUnavailableError
    assert type(error) is expected
    assert error.retryable


async def test_authentication_error_is_not_retried_and_never_shows_the_key(
    wire: Wire,
    server: FakeLlmServer,
    retry: RetryPolicy,
    sleeps: Sleeps,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    # A server may echo our key, or another one (say, a proxy's): neither may show.
    server.enqueue(wire.auth_error(f"Incorrect API key provided: {KEY} (sk-proj-SECRET-9876)"))
    async with wire.provider(server, retry) as provider:
        _, error = await stream_until_error(provider)
        assert KEY not in repr(provider)
        assert KEY not in provider.label
    assert isinstance(error, AuthenticationError)
    assert error.status == 401
    assert f"check {wire.name.upper()}_API_KEY" in str(error)
    assert "sk-***" in str(error)
    assert sleeps.delays == []
    assert len(server.requests) == 1
    assert server.requests[0].headers.get("x-api-key", "") + server.requests[0].headers.get(
        "authorization", ""
    ) in (KEY, f"Bearer {KEY}")
    assert isinstance(error.__cause__, httpx.HTTPStatusError)
    for text in (str(error), repr(error), str(error.__cause__), repr(error.__cause__)):
        assert KEY not in text
        assert "SECRET" not in text
    assert "SECRET" not in caplog.text


async def test_context_length_error_is_not_retried(
    wire: Wire, server: FakeLlmServer, retry: RetryPolicy, sleeps: Sleeps
) -> None:
    server.enqueue(wire.context_error)
    async with wire.provider(server, retry) as provider:
        _, error = await stream_until_error(provider)
    assert isinstance(error, ContextLengthError)
    assert isinstance(error, InvalidRequestError)
    assert not error.retryable
    assert sleeps.delays == []


async def test_invalid_request_is_not_retried(
    wire: Wire, server: FakeLlmServer, retry: RetryPolicy, sleeps: Sleeps
) -> None:
    server.enqueue(wire.invalid)
    async with wire.provider(server, retry) as provider:
        with pytest.raises(InvalidRequestError) as caught:
            await provider.complete(REQUEST)
    assert not isinstance(caught.value, ContextLengthError)
    assert caught.value.status == 400
    assert len(server.requests) == 1


async def test_error_event_before_the_first_token_is_retried_without_stale_events(
    wire: Wire, server: FakeLlmServer, retry: RetryPolicy, sleeps: Sleeps
) -> None:
    frames = wire.frames(PIECES)
    failing = frames[: wire.header_frames] + [wire.error_frame]
    server.enqueue(sse_reply(frames), sse_reply(failing), sse_reply(frames))
    async with wire.provider(server, retry) as provider:
        clean = await events_of(provider)
        events = await events_of(provider)
    # The failed attempt's events (its Usage) were held back, never shown.
    assert events == clean
    assert text_of(events) == "".join(PIECES)
    assert sleeps.delays == [0.01]


async def test_error_event_after_the_first_token_raises_with_the_partial_text(
    wire: Wire, server: FakeLlmServer, retry: RetryPolicy, sleeps: Sleeps
) -> None:
    frames = wire.frames(PIECES)
    server.enqueue(sse_reply(frames[: wire.header_frames + 2] + [wire.error_frame]))
    async with wire.provider(server, retry) as provider:
        seen, error = await stream_until_error(provider)
    assert isinstance(error, OverloadedError | ProviderUnavailableError)
    assert text_of(seen) == "Hello, "
    assert error.partial_text == "Hello, "
    assert sleeps.delays == []
    assert len(server.requests) == 1


async def test_connection_cut_mid_stream_raises_with_the_partial_text(
    wire: Wire, server: FakeLlmServer, retry: RetryPolicy, sleeps: Sleeps
) -> None:
    frames = wire.frames(PIECES)
    body = b"".join(frames[: wire.header_frames + 1])
    server.enqueue(sse_reply([body, frames[wire.header_frames + 1][:7]], cut=True))
    async with wire.provider(server, retry) as provider:
        seen, error = await stream_until_error(provider)
    assert isinstance(error, ProviderUnavailableError)
    assert isinstance(error.__cause__, httpx.RemoteProtocolError)
    assert text_of(seen) == "Hel"
    assert error.partial_text == "Hel"
    if wire.name == "anthropic":
        assert error.input_tokens == 12
    assert sleeps.delays == []


async def test_body_ending_before_the_last_event_is_an_error(
    wire: Wire, server: FakeLlmServer, retry: RetryPolicy
) -> None:
    # Close-delimited: the client sees a clean end of body, but the protocol was not finished.
    frames = wire.frames(PIECES)
    server.enqueue(sse_reply(frames[: wire.header_frames + 2], framing="close"))
    async with wire.provider(server, retry) as provider:
        _, error = await stream_until_error(provider)
    assert isinstance(error, ProviderUnavailableError)
    assert error.partial_text == "Hello, "


async def test_connection_cut_before_the_first_token_is_retried(
    wire: Wire, server: FakeLlmServer, retry: RetryPolicy, sleeps: Sleeps
) -> None:
    frames = wire.frames(PIECES)
    server.enqueue(sse_reply(frames[: wire.header_frames], cut=True), sse_reply(frames))
    async with wire.provider(server, retry) as provider:
        events = await events_of(provider)
    assert text_of(events) == "".join(PIECES)
    assert sleeps.delays == [0.01]


async def test_a_malformed_event_is_an_error_not_a_crash(
    wire: Wire, server: FakeLlmServer, retry: RetryPolicy, sleeps: Sleeps
) -> None:
    frames = wire.frames(PIECES)
    # Valid JSON of the wrong shape, for either wire.
    wrong = {"type": "content_block_delta", "delta": 7, "choices": 7}
    broken = [*frames[: wire.header_frames + 1], sse(wrong, "content_block_delta")]
    server.enqueue(sse_reply(broken), sse_reply([b"data: not json\n\n"]))
    async with wire.provider(server, retry) as provider:
        _, error = await stream_until_error(provider)
        assert type(error) is LlmError
        assert "malformed" in str(error)
        assert error.partial_text == "Hel"
        _, error = await stream_until_error(provider)
        assert type(error) is LlmError
        assert "not JSON" in str(error)
    assert sleeps.delays == []


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_connection_refused_is_not_retried_and_names_the_redacted_url(
    wire: Wire, retry: RetryPolicy, sleeps: Sleeps
) -> None:
    # A wrong base URL (nothing listens there) is not a passing glitch: no retries, one line.
    port = _closed_port()
    base_url = f"http://{URL_KEY}@127.0.0.1:{port}/v1?api-key={QUERY_KEY}"
    provider = wire.make(base_url=base_url, api_key=KEY, retry=retry)
    async with provider:
        with pytest.raises(ProviderUnavailableError) as caught:
            await provider.complete(REQUEST)
        _, streamed = await stream_until_error(provider)
        for error in (caught.value, streamed):
            assert isinstance(error, ProviderUnavailableError)
            assert isinstance(error.__cause__, httpx.ConnectError)
            assert not error.retryable
            message = str(error)
            assert "\n" not in message
            assert f"cannot connect to http://***@127.0.0.1:{port}/v1?api-key=***" in message
            assert "connection refused" in message
            for secret in (KEY, URL_KEY, QUERY_KEY):
                assert secret not in message and secret not in str(error.__cause__)
    assert sleeps.delays == []


async def test_read_timeout_is_unavailable(wire: Wire, server: FakeLlmServer) -> None:
    server.enqueue(Reply(delay=0.5, chunks=[b"{}"], framing="length"))
    no_retry = RetryPolicy(max_retries=0)
    async with wire.provider(server, no_retry, timeout=httpx.Timeout(5.0, read=0.05)) as provider:
        with pytest.raises(ProviderUnavailableError) as caught:
            await provider.complete(REQUEST)
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)


async def test_stopping_at_done_leaves_nothing_open(
    wire: Wire, server: FakeLlmServer, retry: RetryPolicy
) -> None:
    # Done is yielded after the response is closed, so breaking out there is safe
    # (filterwarnings=error turns an unclosed-resource warning into a failure).
    server.enqueue(sse_reply(wire.frames(PIECES)))
    collector = StreamCollector(REQUEST.model)
    async with wire.provider(server, retry) as provider:
        async for event in provider.stream(REQUEST):
            collector.add(event)
            if isinstance(event, Done):
                break
    assert collector.completion().text == "".join(PIECES)


async def test_closing_the_stream_early_releases_the_connection(
    wire: Wire, server: FakeLlmServer, retry: RetryPolicy
) -> None:
    server.enqueue(sse_reply(wire.frames(PIECES), chunk_delay=0.01))
    async with wire.provider(server, retry) as provider:
        async with aclosing(provider.stream(REQUEST)) as events:
            async for event in events:
                if isinstance(event, TextDelta):
                    break
        # The same provider goes on working after an abandoned stream.
        server.enqueue(wire.message("again"))
        assert (await provider.complete(REQUEST)).text == "again"


async def test_one_provider_serves_concurrent_streams(
    wire: Wire, server: FakeLlmServer, retry: RetryPolicy
) -> None:
    async def one(n: int) -> str:
        request = CompletionRequest(model="m", messages=[ChatTurn("user", f"I like topic {n}")])
        return text_of([e async for e in provider.stream(request)])

    async with wire.provider(server, retry) as provider:
        replies = await asyncio.gather(*(one(n) for n in range(8)))
    assert replies == [f"[offline] Noted: you like topic {n}." for n in range(8)]


async def test_default_reply_speaks_each_protocol(
    wire: Wire, server: FakeLlmServer, retry: RetryPolicy
) -> None:
    # Unscripted, the fake answers like the offline provider: useful for end-to-end tests.
    request = CompletionRequest(model="m", messages=[ChatTurn("user", "My name is Ada.")])
    async with wire.provider(server, retry) as provider:
        streamed = StreamCollector("m")
        async for event in provider.stream(request):
            streamed.add(event)
        completed = await provider.complete(request)
    assert streamed.text == completed.text == "[offline] Noted: your name is Ada."
    assert completed.output_tokens == streamed.output_tokens > 0


async def test_context_window_and_token_estimate(
    wire: Wire, server: FakeLlmServer, retry: RetryPolicy
) -> None:
    async with wire.provider(server, retry, context_windows={"tiny": 100}) as provider:
        assert provider.context_window("tiny-model") == 100
        assert provider.context_window("unknown-model") > 1000
        assert provider.count_tokens("ééééé") == 2  # characters, not bytes
