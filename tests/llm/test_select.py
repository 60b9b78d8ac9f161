"""Which provider select_provider picks, from arguments and the environment."""

from __future__ import annotations

import pytest

from boternity.errors import ValidationError
from boternity.llm import (
    OFFLINE_NOTICE,
    AnthropicProvider,
    AuthenticationError,
    LlmProvider,
    OfflineProvider,
    OpenAIProvider,
    select_provider,
)


async def pick(
    env: dict[str, str], name: str | None = None, model: str | None = None
) -> tuple[LlmProvider, str | None]:
    provider, notice = select_provider(name, model, env=env)
    await provider.aclose()
    return provider, notice


async def test_nothing_configured_falls_back_to_offline_with_a_notice() -> None:
    provider, notice = select_provider(env={})
    async with provider:
        assert provider.default_model == "offline"
    assert isinstance(provider, OfflineProvider)
    assert notice == OFFLINE_NOTICE
    assert "ANTHROPIC_API_KEY" in notice
    assert "offline" in provider.label


async def test_anthropic_key_wins() -> None:
    env = {"ANTHROPIC_API_KEY": "a-key", "OPENAI_API_KEY": "o-key"}
    provider, notice = await pick(env)
    assert isinstance(provider, AnthropicProvider)
    assert notice is None


@pytest.mark.parametrize(
    "env",
    [{"OPENAI_API_KEY": "o-key"}, {"OPENAI_BASE_URL": "http://localhost:11434/v1"}],
)
async def test_openai_key_or_base_url_selects_openai(env: dict[str, str]) -> None:
    provider, notice = await pick(env)
    assert isinstance(provider, OpenAIProvider)
    assert notice is None


async def test_base_urls_come_from_the_environment() -> None:
    provider, _ = await pick({"OPENAI_BASE_URL": "http://localhost:11434/v1/"})
    assert isinstance(provider, OpenAIProvider)
    assert provider.base_url == "http://localhost:11434/v1"
    env = {"ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": "http://127.0.0.1:9"}
    provider, _ = await pick(env)
    assert isinstance(provider, AnthropicProvider)
    assert provider.base_url == "http://127.0.0.1:9"


async def test_blank_values_count_as_unset() -> None:
    provider, notice = await pick({"ANTHROPIC_API_KEY": "  ", "BOTERNITY_PROVIDER": ""})
    assert isinstance(provider, OfflineProvider)
    assert notice is not None


async def test_explicit_name_beats_environment_and_detection() -> None:
    env = {"ANTHROPIC_API_KEY": "a-key", "BOTERNITY_PROVIDER": "openai"}
    provider, notice = await pick({**env, "OPENAI_API_KEY": "o"}, name="Offline")
    assert isinstance(provider, OfflineProvider)
    assert notice is None
    provider, _ = await pick({**env, "OPENAI_API_KEY": "o"})
    assert isinstance(provider, OpenAIProvider)


async def test_model_from_argument_then_environment_then_default() -> None:
    env = {"ANTHROPIC_API_KEY": "k", "BOTERNITY_MODEL": "claude-env"}
    provider, _ = await pick(env, model="claude-arg")
    assert provider.default_model == "claude-arg"
    provider, _ = await pick(env)
    assert provider.default_model == "claude-env"
    provider, _ = await pick({"ANTHROPIC_API_KEY": "k"})
    assert provider.default_model == AnthropicProvider.model_default
    provider, _ = await pick({}, model="whatever")
    assert provider.default_model == "whatever"


def test_unknown_provider_lists_the_choices() -> None:
    with pytest.raises(ValidationError, match="anthropic, openai, offline") as caught:
        select_provider("gemini", env={})
    assert "gemini" in str(caught.value)
    with pytest.raises(ValidationError, match="'mystery'"):
        select_provider(env={"BOTERNITY_PROVIDER": "mystery"})


def test_explicit_anthropic_without_a_key_is_a_clear_error() -> None:
    with pytest.raises(AuthenticationError, match="ANTHROPIC_API_KEY"):
        select_provider("anthropic", env={"OPENAI_API_KEY": "o"})


def test_explicit_openai_without_key_or_url_is_a_clear_error() -> None:
    with pytest.raises(AuthenticationError, match="OPENAI_API_KEY.*OPENAI_BASE_URL"):
        select_provider("openai", env={})


def test_the_extraction_model_setting() -> None:
    from boternity.llm.select import extraction_model

    assert extraction_model({"BOTERNITY_EXTRACTION_MODEL": " claude-haiku-4-5 "}) == (
        "claude-haiku-4-5"
    )
    assert extraction_model({"BOTERNITY_EXTRACTION_MODEL": "  "}) is None
    assert extraction_model({"BOTERNITY_MODEL": "big"}) is None
