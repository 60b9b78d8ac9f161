"""Choosing a provider from arguments and the environment (DESIGN.md §6)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from boternity.errors import AuthenticationError, ValidationError
from boternity.llm.anthropic import AnthropicProvider
from boternity.llm.base import LlmProvider
from boternity.llm.offline import OfflineProvider
from boternity.llm.openai import OpenAIProvider
from boternity.llm.retry import RetryPolicy

PROVIDERS = ("anthropic", "openai", "offline")

ENV_PROVIDER = "BOTERNITY_PROVIDER"
ENV_MODEL = "BOTERNITY_MODEL"
ENV_EXTRACTION_MODEL = "BOTERNITY_EXTRACTION_MODEL"
ENV_ANTHROPIC_KEY = "ANTHROPIC_API_KEY"
ENV_ANTHROPIC_BASE_URL = "ANTHROPIC_BASE_URL"
ENV_OPENAI_KEY = "OPENAI_API_KEY"
ENV_OPENAI_BASE_URL = "OPENAI_BASE_URL"

OFFLINE_NOTICE = (
    "No LLM provider is configured (set ANTHROPIC_API_KEY, or OPENAI_API_KEY / OPENAI_BASE_URL"
    " for OpenAI or a local OpenAI-compatible server): using the offline provider, which gives"
    " canned replies."
)


def select_provider(
    name: str | None = None,
    model: str | None = None,
    env: Mapping[str, str] | None = None,
    *,
    retry: RetryPolicy | None = None,
) -> tuple[LlmProvider, str | None]:
    """The provider to use and, when it fell back to offline, a notice to show the user.

    ``name`` (else ``BOTERNITY_PROVIDER``) picks explicitly; otherwise Anthropic when
    ``ANTHROPIC_API_KEY`` is set, else OpenAI-compatible when ``OPENAI_API_KEY`` or
    ``OPENAI_BASE_URL`` is set, else offline. The model is ``model``, else ``BOTERNITY_MODEL``,
    else the provider's default (``provider.default_model``). The caller owns the provider
    and closes it (``await provider.aclose()`` or ``async with``).
    """
    env = os.environ if env is None else env

    def get(key: str) -> str | None:
        return env.get(key, "").strip() or None

    chosen = (name or get(ENV_PROVIDER) or "").strip().lower() or None
    if chosen is not None and chosen not in PROVIDERS:
        raise ValidationError(
            f"unknown LLM provider {chosen!r} (choose one of: {', '.join(PROVIDERS)})"
        )
    model = (model or "").strip() or get(ENV_MODEL)
    anthropic_key = get(ENV_ANTHROPIC_KEY)
    openai_key, openai_url = get(ENV_OPENAI_KEY), get(ENV_OPENAI_BASE_URL)
    notice = None
    if chosen is None:
        if anthropic_key:
            chosen = "anthropic"
        elif openai_key or openai_url:
            chosen = "openai"
        else:
            chosen, notice = "offline", OFFLINE_NOTICE

    if chosen == "anthropic":
        if not anthropic_key:
            raise AuthenticationError(
                f"the anthropic provider needs an API key: set {ENV_ANTHROPIC_KEY}",
                provider="anthropic",
            )
        provider: LlmProvider = AnthropicProvider(
            api_key=anthropic_key,
            default_model=model,
            base_url=get(ENV_ANTHROPIC_BASE_URL),
            retry=retry,
        )
    elif chosen == "openai":
        if not openai_key and not openai_url:
            raise AuthenticationError(
                f"the openai provider needs {ENV_OPENAI_KEY}, or {ENV_OPENAI_BASE_URL} for a"
                " local OpenAI-compatible server",
                provider="openai",
            )
        provider = OpenAIProvider(
            api_key=openai_key, default_model=model, base_url=openai_url, retry=retry
        )
    else:
        provider = OfflineProvider(default_model=model)
    return provider, notice


def extraction_model(env: Mapping[str, str] | None = None) -> str | None:
    """``BOTERNITY_EXTRACTION_MODEL``: memory extraction usually runs on a smaller, cheaper
    model than chat. None when unset (the worker then uses the provider's default model)."""
    env = os.environ if env is None else env
    return env.get(ENV_EXTRACTION_MODEL, "").strip() or None
