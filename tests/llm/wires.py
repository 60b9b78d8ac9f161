"""Each HTTP provider's wire protocol, described once so behaviour tests run against both."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from boternity.llm import AnthropicProvider, OpenAIProvider, RetryPolicy
from boternity.llm.transport import HttpProvider
from tests.fakes import llm_server as fake
from tests.fakes.llm_server import FakeLlmServer, Reply

KEY = "sk-test-SECRET-0123456789abcdef"


@dataclass
class Sleeps:
    """A stand-in for asyncio.sleep that returns at once and remembers the delays."""

    delays: list[float] = field(default_factory=list)

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@dataclass(frozen=True)
class Wire:
    name: str
    make: Callable[..., HttpProvider]  # (base_url, api_key, retry, **options)
    base_url: Callable[[FakeLlmServer], str]
    frames: Callable[[Sequence[str]], list[bytes]]  # full stream; usage (12, len(pieces))
    header_frames: int  # frames before the first text delta
    error_frame: bytes  # a transient error reported inside the stream
    message: Callable[[str], Reply]  # non-streamed reply; usage (12, 5)
    overloaded: Reply
    auth_error: Callable[[str], Reply]  # message
    context_error: Reply
    invalid: Reply
    rate_limited: Callable[[str], Reply]  # retry-after header value

    def provider(
        self, server: FakeLlmServer, retry: RetryPolicy, *, api_key: str | None = KEY, **kw: Any
    ) -> HttpProvider:
        return self.make(base_url=self.base_url(server), api_key=api_key, retry=retry, **kw)


ANTHROPIC = Wire(
    name="anthropic",
    make=AnthropicProvider,
    base_url=lambda s: s.base_url,
    frames=fake.anthropic_frames,
    header_frames=3,  # message_start, content_block_start, ping
    error_frame=fake.anthropic_error_frame("overloaded_error", "Overloaded"),
    message=fake.anthropic_message,
    overloaded=fake.anthropic_error(529, "overloaded_error", "Overloaded"),
    auth_error=lambda m: fake.anthropic_error(401, "authentication_error", m),
    context_error=fake.anthropic_error(
        400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"
    ),
    invalid=fake.anthropic_error(400, "invalid_request_error", "max_tokens: must be positive"),
    rate_limited=lambda after: fake.anthropic_error(
        429,
        "rate_limit_error",
        "Number of requests has exceeded your rate limit",
        {"retry-after": after},
    ),
)

OPENAI = Wire(
    name="openai",
    make=OpenAIProvider,
    base_url=lambda s: s.openai_base_url,
    frames=fake.openai_frames,
    header_frames=1,  # the role chunk
    error_frame=fake.openai_error_frame("The server is overloaded", "server_error"),
    message=fake.openai_completion,
    overloaded=fake.openai_error(503, "The engine is currently overloaded", kind="server_error"),
    auth_error=lambda m: fake.openai_error(
        401, m, kind="invalid_request_error", code="invalid_api_key"
    ),
    context_error=fake.openai_error(
        400,
        "This model's maximum context length is 8192 tokens. However, your messages resulted"
        " in 9000 tokens.",
        code="context_length_exceeded",
    ),
    invalid=fake.openai_error(400, "Invalid value for 'temperature'", code="invalid_value"),
    rate_limited=lambda after: fake.openai_error(
        429,
        "Rate limit reached",
        kind="requests",
        code="rate_limit_exceeded",
        headers={"retry-after": after},
    ),
)
