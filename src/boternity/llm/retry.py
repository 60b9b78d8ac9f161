"""One retry policy for every provider: capped exponential backoff that honours retry-after."""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
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
    ``max_total`` bounds the whole request: no retry is started whose wait would end more than
    that many seconds after the first attempt began (None: no bound), so a caller with a person
    waiting (``interactive()``) gives up in seconds, not after every retry.
    ``sleep`` and ``clock`` are injectable so tests run retries instantly and check the delays.
    """

    max_retries: int = 4
    base_delay: float = 0.5
    max_delay: float = 20.0
    max_retry_after: float = 60.0
    max_total: float | None = 90.0
    jitter: float = 0.25
    sleep: Sleep = field(default=asyncio.sleep)
    clock: Callable[[], float] = field(default=time.monotonic)

    @classmethod
    def interactive(cls, *, max_retries: int = 3) -> RetryPolicy:
        """For a person waiting at a terminal (the CLI): quick retries, at most 3 s of them."""
        return cls(max_retries=max_retries, max_retry_after=3.0, max_total=3.0)

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

    def begin(self, what: str) -> Retries:
        """The retry state of one request to ``what`` (named in the warnings)."""
        return Retries(self, what, self.clock())

    async def run(self, call: Callable[[], Awaitable[T]], *, what: str = "the request") -> T:
        retries = self.begin(what)
        while True:
            try:
                return await call()
            except LlmError as exc:
                if not await retries.wait(exc):
                    raise


@dataclass(slots=True)
class Retries:
    """One request's retries under a policy: counts them and keeps to ``max_total``."""

    policy: RetryPolicy
    what: str
    started: float
    attempt: int = 0

    async def wait(self, error: LlmError) -> bool:
        """After a failed attempt: warn and wait, then True to retry; False to give up."""
        policy = self.policy
        if not policy.should_retry(error, self.attempt):
            return False
        delay = policy.delay(error, self.attempt)
        if policy.max_total is not None:
            if policy.clock() - self.started + delay > policy.max_total:
                return False
            bound = f", giving up {policy.max_total:g}s after the first attempt"
        else:
            bound = ""
        self.attempt += 1
        logger.warning(
            "%s; retrying %s in %.1fs (retry %d of %d%s)",
            error,
            self.what,
            delay,
            self.attempt,
            policy.max_retries,
            bound,
        )
        await policy.sleep(delay)
        return True


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
