"""LLM providers: one small Protocol, Anthropic, OpenAI-compatible and offline implementations.

    provider, notice = select_provider()
    async with provider:  # or: await provider.aclose()
        request = CompletionRequest(model=provider.default_model, system="…",
                                    messages=[ChatTurn("user", "Hello")])
        async for event in provider.stream(request):
            ...  # TextDelta, Usage (last one wins), then Done

Errors are the ``LlmError`` tree in ``boternity.errors``.
"""

from boternity.errors import (
    AuthenticationError,
    ContextLengthError,
    InvalidRequestError,
    LlmError,
    OverloadedError,
    ProviderUnavailableError,
    RateLimitedError,
)
from boternity.llm.anthropic import AnthropicProvider
from boternity.llm.base import (
    END_TURN,
    MAX_TOKENS,
    ChatTurn,
    Completion,
    CompletionRequest,
    Done,
    LlmProvider,
    Purpose,
    Role,
    StreamCollector,
    StreamEvent,
    TextDelta,
    Usage,
    collect,
    estimate_prompt_tokens,
    estimate_tokens,
)
from boternity.llm.offline import OfflineProvider
from boternity.llm.openai import OpenAIProvider
from boternity.llm.retry import RetryPolicy
from boternity.llm.select import OFFLINE_NOTICE, PROVIDERS, select_provider

__all__ = [
    "END_TURN",
    "MAX_TOKENS",
    "OFFLINE_NOTICE",
    "PROVIDERS",
    "AnthropicProvider",
    "AuthenticationError",
    "ChatTurn",
    "Completion",
    "CompletionRequest",
    "ContextLengthError",
    "Done",
    "InvalidRequestError",
    "LlmError",
    "LlmProvider",
    "OfflineProvider",
    "OpenAIProvider",
    "OverloadedError",
    "ProviderUnavailableError",
    "Purpose",
    "RateLimitedError",
    "RetryPolicy",
    "Role",
    "StreamCollector",
    "StreamEvent",
    "TextDelta",
    "Usage",
    "collect",
    "estimate_prompt_tokens",
    "estimate_tokens",
    "select_provider",
]
