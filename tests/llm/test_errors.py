"""The LLM error tree: shape, public module path, what may be retried."""

from __future__ import annotations

import pytest

from boternity import errors
from boternity.errors import (
    AuthenticationError,
    BoternityError,
    ContextLengthError,
    InvalidRequestError,
    LlmError,
    OverloadedError,
    ProviderUnavailableError,
    RateLimitedError,
)

ALL = [
    LlmError,
    RateLimitedError,
    OverloadedError,
    ProviderUnavailableError,
    AuthenticationError,
    InvalidRequestError,
    ContextLengthError,
]


@pytest.mark.parametrize("cls", ALL)
def test_every_llm_error_is_a_public_boternity_error(cls: type[LlmError]) -> None:
    assert issubclass(cls, LlmError)
    assert issubclass(cls, BoternityError)
    assert cls.__module__ == "boternity.errors"
    assert getattr(errors, cls.__name__) is cls


def test_only_transient_errors_are_retryable() -> None:
    retryable = {cls for cls in ALL if cls.retryable}
    assert retryable == {RateLimitedError, OverloadedError, ProviderUnavailableError}


def test_a_fresh_error_carries_no_partial_reply() -> None:
    error = RateLimitedError("slow down", provider="anthropic", status=429, retry_after=3.0)
    assert (error.provider, error.status, error.retry_after) == ("anthropic", 429, 3.0)
    assert (error.partial_text, error.input_tokens, error.output_tokens) == ("", 0, 0)
    assert str(error) == "slow down"
