"""Choosing an embedder from arguments and the environment."""

from __future__ import annotations

import subprocess
import sys

import pytest

from boternity.embeddings import NONE_NOTICE, LocalEmbedder, OpenAIEmbedder, local, select_embedder
from boternity.errors import EmbeddingError, ValidationError


@pytest.fixture
def no_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local, "available", lambda: False)

    def missing(*args: object, **kwargs: object) -> LocalEmbedder:
        raise EmbeddingError("the local embedder is not installed: pip install 'boternity[local]'")

    monkeypatch.setattr(local, "LocalEmbedder", missing)


async def test_default_is_local_when_the_extra_is_installed() -> None:
    embedder, notice = select_embedder(env={"OPENAI_API_KEY": "sk-x"})
    assert isinstance(embedder, LocalEmbedder) and notice is None


async def test_default_is_openai_when_an_endpoint_is_configured(no_extra: None) -> None:
    env = {"OPENAI_BASE_URL": "http://localhost:11434/v1", "BOTERNITY_EMBEDDING_MODEL": "nomic"}
    embedder, notice = select_embedder(env=env)
    assert isinstance(embedder, OpenAIEmbedder)
    async with embedder:
        assert embedder.base_url == "http://localhost:11434/v1"
        assert embedder.model == "nomic" and embedder.dimension is None
    assert notice is not None and "\n" not in notice
    assert "OPENAI_BASE_URL" in notice and "nomic" in notice
    embedder, notice = select_embedder(env={"OPENAI_API_KEY": "sk-x"})
    assert isinstance(embedder, OpenAIEmbedder)
    async with embedder:
        assert embedder.model == "text-embedding-3-small" and embedder.dimension == 1536
    assert notice is not None and "OpenAI" in notice


def test_default_is_none_with_a_notice(no_extra: None) -> None:
    assert select_embedder(env={}) == (None, NONE_NOTICE)
    assert "\n" not in NONE_NOTICE and "boternity[local]" in NONE_NOTICE


@pytest.mark.parametrize("how", ["argument", "environment"])
async def test_explicit_choices(how: str) -> None:
    def pick(name: str, **env: str) -> tuple[object, str | None]:
        if how == "argument":
            return select_embedder(name, env=env)
        return select_embedder(env={"BOTERNITY_EMBEDDINGS": name, **env})

    assert pick("none") == (None, None)
    assert pick(" NONE ", OPENAI_API_KEY="sk-x") == (None, None)
    embedder, notice = pick("Local")
    assert isinstance(embedder, LocalEmbedder) and notice is None
    embedder, notice = pick("openai", OPENAI_API_KEY="sk-x")
    assert isinstance(embedder, OpenAIEmbedder) and notice is None
    await embedder.aclose()


def test_the_argument_wins_over_the_environment() -> None:
    env = {"BOTERNITY_EMBEDDINGS": "openai", "BOTERNITY_EMBEDDING_MODEL": "other"}
    assert select_embedder("none", env=env) == (None, None)
    embedder, _ = select_embedder("local", "wordllama/l2_supercat_256", env=env)
    assert isinstance(embedder, LocalEmbedder)


def test_unknown_names_and_models_are_refused() -> None:
    with pytest.raises(ValidationError, match=r"unknown embedder 'sbert' \(choose one of: local"):
        select_embedder("sbert", env={})
    with pytest.raises(ValidationError, match="unknown embedder 'x'"):
        select_embedder(env={"BOTERNITY_EMBEDDINGS": "x"})
    with pytest.raises(ValidationError, match="unknown local embedding model 'big'"):
        select_embedder("local", env={"BOTERNITY_EMBEDDING_MODEL": "big"})


def test_an_unusable_explicit_choice_says_what_is_missing(no_extra: None) -> None:
    with pytest.raises(EmbeddingError, match="OPENAI_API_KEY, or OPENAI_BASE_URL"):
        select_embedder("openai", env={})
    with pytest.raises(EmbeddingError, match=r"boternity\[local\]"):
        select_embedder("local", env={})


@pytest.mark.slow
def test_importing_the_embedders_loads_no_numpy() -> None:
    code = (
        "import sys, boternity.embeddings as e; e.select_embedder('none', env={}); "
        "print([m for m in ('numpy', 'safetensors', 'tokenizers', 'wordllama') if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"
