"""The retry policy: backoff shape, retry-after, which errors are retried."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from boternity.errors import (
    AuthenticationError,
    ContextLengthError,
    LlmError,
    OverloadedError,
    ProviderUnavailableError,
    RateLimitedError,
)
from boternity.llm import ChatTurn, CompletionRequest, RetryPolicy
from boternity.llm.retry import parse_retry_after
from boternity.llm.transport import classify_error
from tests.llm.wires import Sleeps

REQUEST = CompletionRequest(model="m", messages=[ChatTurn("user", "hi")])


def test_backoff_doubles_and_is_capped() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=3.0, jitter=0.0)
    error = OverloadedError("busy")
    assert [policy.delay(error, n) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_jitter_only_shortens_the_delay() -> None:
    policy = RetryPolicy(base_delay=1.0, jitter=0.5)
    delays = [policy.delay(OverloadedError("busy"), 0) for _ in range(50)]
    assert all(0.5 <= d <= 1.0 for d in delays)


def test_retry_after_wins_over_backoff() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=1.0, jitter=0.0)
    assert policy.delay(RateLimitedError("slow down", retry_after=4.0), 0) == 4.0
    assert policy.delay(RateLimitedError("slow down", retry_after=None), 2) == 1.0


def test_a_retry_after_beyond_the_limit_is_raised_not_waited_for() -> None:
    policy = RetryPolicy(max_retry_after=30.0)
    assert policy.should_retry(RateLimitedError("slow down", retry_after=30.0), 0)
    assert not policy.should_retry(RateLimitedError("slow down", retry_after=3600.0), 0)


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (RateLimitedError("x"), True),
        (OverloadedError("x"), True),
        (ProviderUnavailableError("x"), True),
        (AuthenticationError("x"), False),
        (ContextLengthError("x"), False),
        (LlmError("x"), False),
    ],
)
def test_which_errors_are_retried(error: LlmError, retryable: bool) -> None:
    assert RetryPolicy(max_retries=1).should_retry(error, 0) is retryable
    assert not RetryPolicy(max_retries=1).should_retry(error, 1)


async def test_run_retries_transient_errors_then_returns() -> None:
    sleeps = Sleeps()
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ProviderUnavailableError("down")
        return "ok"

    policy = RetryPolicy(base_delay=1.0, jitter=0.0, sleep=sleeps)
    assert await policy.run(flaky) == "ok"
    assert sleeps.delays == [1.0, 2.0]


async def test_run_raises_a_permanent_error_at_once() -> None:
    sleeps = Sleeps()

    async def refused() -> str:
        raise AuthenticationError("bad key")

    with pytest.raises(AuthenticationError):
        await RetryPolicy(sleep=sleeps).run(refused)
    assert sleeps.delays == []


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "12"}, 12.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "nan"}, None),
        ({}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(httpx.Headers(headers)) == expected


def test_parse_retry_after_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    seconds = parse_retry_after(httpx.Headers({"retry-after": format_datetime(when, usegmt=True)}))
    assert seconds is not None
    assert 25 <= seconds <= 31


@pytest.mark.parametrize(
    ("status", "kind", "code", "message", "expected"),
    [
        (429, None, None, "", RateLimitedError),
        (429, "insufficient_quota", "insufficient_quota", "quota", LlmError),
        (529, None, None, "", OverloadedError),
        (None, "overloaded_error", None, "Overloaded", OverloadedError),
        (None, "api_error", None, "Internal", ProviderUnavailableError),
        (503, None, None, "", ProviderUnavailableError),
        (500, None, None, "context length", ProviderUnavailableError),
        (401, None, None, "", AuthenticationError),
        (403, "permission_error", None, "", AuthenticationError),
        (413, "request_too_large", None, "", ContextLengthError),
        (400, "invalid_request_error", None, "prompt is too long: 1 > 0", ContextLengthError),
        (400, None, "context_length_exceeded", "", ContextLengthError),
    ],
)
def test_classify_error(
    status: int | None, kind: str | None, code: str | None, message: str, expected: type
) -> None:
    error = classify_error("p", status=status, kind=kind, code=code, message=message)
    assert type(error) is expected or (expected is LlmError and not error.retryable)
    assert error.status == status
    assert str(error).startswith("p: ")


async def test_max_total_bounds_the_time_a_request_spends_retrying(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging
    import time

    from boternity.llm import OpenAIProvider
    from tests.fakes.llm_server import FakeLlmServer, Reply

    caplog.set_level(logging.WARNING)
    plain_500 = Reply(status=500, headers={"content-type": "text/plain"}, chunks=[b"boom"])
    policy = RetryPolicy(max_retries=10, base_delay=0.2, jitter=0.0, max_total=1.0)
    async with FakeLlmServer() as server:
        server.enqueue(*[plain_500] * 11)
        async with OpenAIProvider(base_url=server.openai_base_url, retry=policy) as llm:
            started = time.monotonic()
            with pytest.raises(ProviderUnavailableError, match="boom"):
                await llm.complete(REQUEST)
            elapsed = time.monotonic() - started
        # waits of 0.2 and 0.4 s fit in 1 s; the next (0.8 s) would end past it: given up
        assert len(server.requests) == 3
    assert 0.6 <= elapsed < 1.0
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2
    where = f"the request to openai ({server.openai_base_url})"
    assert warnings[0].endswith(
        f"; retrying {where} in 0.2s (retry 1 of 10, giving up 1s after the first attempt)"
    )
    assert warnings[0].startswith("openai: boom (HTTP 500")


def test_the_interactive_policy_gives_up_within_seconds() -> None:
    policy = RetryPolicy.interactive()
    assert policy.max_total is not None and policy.max_total <= 3.0
    assert policy.max_retry_after <= policy.max_total
