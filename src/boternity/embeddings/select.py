"""Choosing an embedder from arguments and the environment, as ``select_provider`` does."""

from __future__ import annotations

import os
from collections.abc import Mapping

from boternity.embeddings import local
from boternity.embeddings.base import Embedder
from boternity.embeddings.openai import OpenAIEmbedder
from boternity.errors import EmbeddingError, ValidationError
from boternity.llm.retry import RetryPolicy

EMBEDDERS = ("local", "openai", "none")

ENV_EMBEDDINGS = "BOTERNITY_EMBEDDINGS"
ENV_EMBEDDING_MODEL = "BOTERNITY_EMBEDDING_MODEL"
ENV_OPENAI_KEY = "OPENAI_API_KEY"
ENV_OPENAI_BASE_URL = "OPENAI_BASE_URL"

NONE_NOTICE = (
    "No embedder is configured (install boternity[local] for the offline one, or set"
    " OPENAI_API_KEY / OPENAI_BASE_URL): memories are found by shared words only."
)


def openai_notice(model: str, url: str | None) -> str:
    where = "OPENAI_BASE_URL" if url else "OpenAI"
    return (
        f"Embeddings: the local embedder is not installed, using {where} with model {model}"
        f" (set {ENV_EMBEDDING_MODEL}, or {ENV_EMBEDDINGS}=none)."
    )


def select_embedder(
    name: str | None = None,
    model: str | None = None,
    env: Mapping[str, str] | None = None,
    *,
    retry: RetryPolicy | None = None,
) -> tuple[Embedder | None, str | None]:
    """The embedder to use (None: none, text search only) and, when it was chosen by
    default as something other than ``local``, a one-line notice to show the user.

    ``name`` (else ``BOTERNITY_EMBEDDINGS``) picks ``local``, ``openai`` or ``none``;
    otherwise ``local`` when the extra is installed, else ``openai`` when an OpenAI-compatible
    endpoint is configured (``OPENAI_API_KEY`` or ``OPENAI_BASE_URL``), else none. The model
    is ``model``, else ``BOTERNITY_EMBEDDING_MODEL``, else the embedder's default. Raises
    ``ValidationError`` for an unknown name or local model, ``EmbeddingError`` when the
    chosen embedder cannot be used (the extra missing, no endpoint). The caller owns the
    embedder and closes it (``await embedder.aclose()`` or ``async with``).
    """
    env = os.environ if env is None else env

    def get(key: str) -> str | None:
        return env.get(key, "").strip() or None

    chosen = (name or get(ENV_EMBEDDINGS) or "").strip().lower() or None
    if chosen is not None and chosen not in EMBEDDERS:
        raise ValidationError(
            f"unknown embedder {chosen!r} (choose one of: {', '.join(EMBEDDERS)})"
        )
    model = (model or "").strip() or get(ENV_EMBEDDING_MODEL)
    openai_key, openai_url = get(ENV_OPENAI_KEY), get(ENV_OPENAI_BASE_URL)
    notice = None
    if chosen is None:
        if local.available():
            chosen = "local"
        elif openai_key or openai_url:
            chosen = "openai"
        else:
            return None, NONE_NOTICE

    if chosen == "none":
        return None, None
    if chosen == "local":
        return local.LocalEmbedder(model), None
    if not openai_key and not openai_url:
        raise EmbeddingError(
            f"the openai embedder needs {ENV_OPENAI_KEY}, or {ENV_OPENAI_BASE_URL} for a local"
            " OpenAI-compatible server",
            embedder="openai",
        )
    embedder = OpenAIEmbedder(api_key=openai_key, model=model, base_url=openai_url, retry=retry)
    if name is None and get(ENV_EMBEDDINGS) is None:
        notice = openai_notice(embedder.model, openai_url)
    return embedder, notice
