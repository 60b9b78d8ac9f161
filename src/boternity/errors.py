"""One exception tree for the whole library.

Driver errors (sqlite3, asyncpg, httpx) never escape: each backend translates them at
one boundary and chains the original (``raise NotFoundError(...) from exc``).
"""

from __future__ import annotations


class BoternityError(Exception):
    """Base of every error boternity raises on purpose."""


class ValidationError(BoternityError, ValueError):
    """A value was refused before anything was written."""


class UnsupportedError(ValidationError):
    """The backend does not offer this (a backup of a PostgreSQL database, say); the message
    says what to use instead."""


class RepositoryError(BoternityError):
    """The store could not do what was asked."""


class NotFoundError(RepositoryError):
    """The row, or a parent it needs, does not exist."""


class ConflictError(RepositoryError):
    """The write clashes with a row that already exists (duplicate id, slug, state)."""


class SessionLostError(ConflictError):
    """This process no longer owns the live session (its lock was lost and another process
    may have taken it over), so it stopped writing to it. Resume the session to go on."""


class SchemaError(RepositoryError):
    """The database schema cannot be used by this version of boternity."""


class StoreBusyError(RepositoryError):
    """Another process held the database for longer than the configured wait."""


class LlmError(BoternityError):
    """A language-model provider could not complete a request.

    ``partial_text``, ``input_tokens`` and ``output_tokens`` hold what a stream had already
    delivered when it failed (empty and 0 when it failed before the first token), so a caller
    can keep or show the partial reply. ``retryable`` says whether the same request may succeed
    later; the providers retry those failures themselves before the first token.
    """

    retryable: bool = False

    def __init__(self, message: str, *, provider: str | None = None, status: int | None = None):
        super().__init__(message)
        self.provider = provider
        self.status = status
        self.partial_text = ""
        self.input_tokens = 0
        self.output_tokens = 0


class RateLimitedError(LlmError):
    """The provider refused the request for now (HTTP 429); ``retry_after`` is in seconds."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message, provider=provider, status=status)
        self.retry_after = retry_after


class OverloadedError(LlmError):
    """The provider is temporarily overloaded (Anthropic 529 / overloaded_error)."""

    retryable = True


class ProviderUnavailableError(LlmError):
    """The provider could not be reached, failed (5xx) or cut the connection."""

    retryable = True


class AuthenticationError(LlmError):
    """The API key is missing, wrong or not allowed to do this (HTTP 401/403)."""


class InvalidRequestError(LlmError):
    """The provider rejected the request itself (HTTP 400/404/422): retrying will not help."""


class ContextLengthError(InvalidRequestError):
    """The prompt does not fit the model's context window: summarise or drop history."""


class EmbeddingError(BoternityError):
    """An embedder could not turn texts into vectors (``boternity.embeddings``).

    ``retryable`` says whether the same call may succeed later (an outage, a rate limit that
    outlasted the retries): a memory that could not be embedded stays findable by text and is
    embedded later. The provider error that caused it, if any, is chained (``__cause__``).
    ``embedder`` names the embedder (``openai``, ``local``); ``status`` is the HTTP status.
    """

    retryable: bool = False

    def __init__(self, message: str, *, embedder: str | None = None, status: int | None = None):
        super().__init__(message)
        self.embedder = embedder
        self.status = status


class EmbeddingUnavailableError(EmbeddingError):
    """The embedder could not be reached, failed (5xx), was overloaded or rate-limited, also
    after the retries: try again later."""

    retryable = True


class EmbeddingDimensionError(EmbeddingError):
    """The embedder returned vectors of another length than its model's dimension (or of
    varying lengths): a misconfigured model or server; nothing it returned is used."""


for _cls in (
    BoternityError,
    ValidationError,
    UnsupportedError,
    RepositoryError,
    NotFoundError,
    ConflictError,
    SessionLostError,
    SchemaError,
    StoreBusyError,
    LlmError,
    RateLimitedError,
    OverloadedError,
    ProviderUnavailableError,
    AuthenticationError,
    InvalidRequestError,
    ContextLengthError,
    EmbeddingError,
    EmbeddingUnavailableError,
    EmbeddingDimensionError,
):
    _cls.__module__ = "boternity.errors"
