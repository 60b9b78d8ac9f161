"""Embeddings from an OpenAI-compatible ``POST {base_url}/embeddings`` (OpenAI, Ollama, vLLM,
llama.cpp server, LM Studio), through the same transport, retry policy and redaction as the
chat providers (``boternity.llm.transport``)."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from boternity.embeddings.base import Vector, batches, check_batch_size, check_texts, unit_rows
from boternity.errors import (
    EmbeddingDimensionError,
    EmbeddingError,
    EmbeddingUnavailableError,
    LlmError,
    OverloadedError,
    ProviderUnavailableError,
    RateLimitedError,
    ValidationError,
)
from boternity.llm.openai import openai_headers
from boternity.llm.retry import RetryPolicy
from boternity.llm.transport import HttpEndpoint, error_parts
from boternity.models import MAX_EMBEDDING_DIMENSION
from boternity.redact import redact_url

DEFAULT_MODEL = "text-embedding-3-small"
DEFAULT_BATCH_SIZE = 128
#: Dimensions of models known in advance; another model's is learnt from its first reply.
KNOWN_DIMENSIONS: Mapping[str, int] = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
_OUTAGES = (ProviderUnavailableError, RateLimitedError, OverloadedError)


class OpenAIEmbedder(HttpEndpoint):
    """``embed`` sends ``batch_size`` texts per request, one request after another, each
    retried by ``retry`` like a chat request; the vectors come back in the order of the texts
    (the reply's ``index``, whatever order it lists them in). ``dimension`` is the expected
    length of every vector (known for OpenAI's models, else learnt from the first reply): a
    reply of another or of varying length raises ``EmbeddingDimensionError``. An outage
    (unreachable, 5xx, rate limits past the retries) raises ``EmbeddingUnavailableError``;
    anything else ``EmbeddingError``, with the provider error chained. When a batch fails,
    nothing of the call is returned."""

    name = "openai"
    path = "/embeddings"
    default_base_url = "https://api.openai.com/v1"
    key_env = "OPENAI_API_KEY"
    url_env = "OPENAI_BASE_URL"
    requires_api_key = False

    def __init__(
        self,
        *,
        api_key: str | None = None,
        model: str | None = None,
        base_url: str | None = None,
        dimension: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        timeout: httpx.Timeout | float | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        model = (model or "").strip() or DEFAULT_MODEL
        if dimension is not None and (
            isinstance(dimension, bool) or not isinstance(dimension, int) or dimension < 1
        ):
            raise ValidationError(f"dimension must be a positive integer, got {dimension!r}")
        self._batch_size = check_batch_size(batch_size)
        super().__init__(
            api_key=api_key, base_url=base_url, timeout=timeout, retry=retry, transport=transport
        )
        self._model = model
        self._dimension = dimension or KNOWN_DIMENSIONS.get(model)

    @property
    def model(self) -> str:
        return self._model

    @property
    def dimension(self) -> int | None:
        return self._dimension

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={redact_url(self.base_url)!r}, model={self.model!r})"
        )

    def headers(self, api_key: str | None) -> dict[str, str]:
        return openai_headers(api_key)

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        checked = check_texts(texts)
        vectors: list[Vector] = []
        for batch in batches(checked, self._batch_size):
            read = functools.partial(self._vectors, count=len(batch))
            try:
                vectors.extend(await self.post_json({"model": self.model, "input": batch}, read))
            except LlmError as exc:
                raise self._failed(exc, len(checked)) from exc
        return vectors

    def _failed(self, exc: LlmError, count: int) -> EmbeddingError:
        kind = EmbeddingUnavailableError if isinstance(exc, _OUTAGES) else EmbeddingError
        return kind(
            f"could not embed {count} text{'s' if count != 1 else ''} with {self.label}"
            f" (model {self.model!r}): {exc}",
            embedder=self.name,
            status=exc.status,
        )

    def _vectors(self, data: dict[str, Any], count: int) -> list[Vector]:
        import numpy as np

        if "error" in data or data.get("object") == "error":
            raise self.stream_error(*error_parts(data))
        items = data.get("data")
        if not isinstance(items, list) or len(items) != count:
            got = len(items) if isinstance(items, list) else "no"
            raise self._bad(f"{got} vectors for {count} texts")
        slots: list[Any] = [None] * count
        for position, item in enumerate(items):
            index = item.get("index", position) if isinstance(item, dict) else None
            if (
                not isinstance(index, int)
                or isinstance(index, bool)
                or not 0 <= index < count
                or slots[index] is not None
            ):
                raise self._bad(f"a vector with a missing, repeated or wrong index ({index!r})")
            slots[index] = self._numbers(item.get("embedding"))
        sizes = sorted({int(v.size) for v in slots})
        if len(sizes) > 1:
            raise EmbeddingDimensionError(
                f"{self.label} (model {self.model!r}) returned vectors of varying dimensions"
                f" ({', '.join(map(str, sizes))}) in one reply",
                embedder=self.name,
            )
        if self._dimension is not None and sizes[0] != self._dimension:
            raise EmbeddingDimensionError(
                f"{self.label} (model {self.model!r}) returned vectors of dimension"
                f" {sizes[0]}, expected {self._dimension}: check BOTERNITY_EMBEDDING_MODEL",
                embedder=self.name,
            )
        self._dimension = sizes[0]
        return unit_rows(np.stack(slots))

    def _numbers(self, embedding: Any) -> Any:
        """One reply's embedding as a float64 row: JSON numbers only (not text such as "0.5",
        not booleans, not integers too large for a float), finite, 1..MAX_EMBEDDING_DIMENSION
        of them. Read without a conversion to float32 first, which would overflow (to inf,
        with a warning) on values a float64 holds."""
        import numpy as np

        try:
            vector = np.asarray(embedding)
        except (TypeError, ValueError, OverflowError) as exc:
            raise self._bad("an embedding that is not a list of numbers") from exc
        if vector.ndim != 1 or vector.dtype.kind not in "iuf" or vector.size == 0:
            raise self._bad("an embedding that is not a list of finite numbers")
        if vector.size > MAX_EMBEDDING_DIMENSION:
            raise EmbeddingDimensionError(
                f"{self.label} (model {self.model!r}) returned a vector of dimension"
                f" {vector.size}; at most {MAX_EMBEDDING_DIMENSION} are stored",
                embedder=self.name,
            )
        vector = vector.astype(np.float64)
        if not np.isfinite(vector).all():
            raise self._bad("an embedding that is not a list of finite numbers")
        return vector

    def _bad(self, what: str) -> LlmError:
        return LlmError(
            f"{self.name}: malformed embeddings reply from the server: {what}", provider=self.name
        )
