"""One retry policy for every provider: capped exponential backoff that honours retry-after."""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

import httpx

from boternity.errors import LlmError, RateLimitedError

logger = logging.getLogger(__name__)

T = TypeVar("T")

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How many times, and how long to wait, before giving up on a transient failure.

    The n-th retry (0-based) waits ``min(max_delay, base_delay * 2**n)``, shortened by up to
    ``jitter`` (a fraction) so many clients don't retry in lockstep. A server's retry-after is
    honoured exactly instead; when it asks for more than ``max_retry_after`` seconds the error
    is raised at once (with ``retry_after``) rather than blocking the caller that long.
    ``sleep`` is injectable so tests run retries instantly and can check the delays.
    """

    max_retries: int = 4
    base_delay: float = 0.5
    max_delay: float = 20.0
    max_retry_after: float = 60.0
    jitter: float = 0.25
    sleep: Sleep = field(default=asyncio.sleep)

    def should_retry(self, error: LlmError, attempt: int) -> bool:
        """``attempt`` counts the failed attempts before this one (0 for the first failure)."""
        too_long = (
            isinstance(error, RateLimitedError)
            and error.retry_after is not None
            and error.retry_after > self.max_retry_after
        )
        return error.retryable and not too_long and attempt < self.max_retries

    def delay(self, error: LlmError, attempt: int) -> float:
        if isinstance(error, RateLimitedError) and error.retry_after is not None:
            return error.retry_after
        delay = min(self.max_delay, self.base_delay * 2.0**attempt)
        if self.jitter:
            delay *= 1 - self.jitter * random.random()
        return delay

    async def wait(self, error: LlmError, attempt: int) -> None:
        delay = self.delay(error, attempt)
        logger.warning(
            "%s; retrying in %.2fs (retry %d of %d)",
            error,
            delay,
            attempt + 1,
            self.max_retries,
        )
        await self.sleep(delay)

    async def run(self, call: Callable[[], Awaitable[T]]) -> T:
        attempt = 0
        while True:
            try:
                return await call()
            except LlmError as exc:
                if not self.should_retry(exc, attempt):
                    raise
                await self.wait(exc, attempt)
                attempt += 1


def parse_retry_after(headers: httpx.Headers) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date), else None."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        seconds = _seconds(raw_ms)
        if seconds is not None:
            return seconds / 1000
    raw = headers.get("retry-after")
    if not raw:
        return None
    seconds = _seconds(raw)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _seconds(raw: str) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    return max(0.0, value) if math.isfinite(value) else None
