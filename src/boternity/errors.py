"""One exception tree for the whole library.

Driver errors (sqlite3, asyncpg, httpx) never escape: each backend translates them at
one boundary and chains the original (``raise NotFoundError(...) from exc``).
"""

from __future__ import annotations


class BoternityError(Exception):
    """Base of every error boternity raises on purpose."""


class ValidationError(BoternityError, ValueError):
    """A value was refused before anything was written."""


class RepositoryError(BoternityError):
    """The store could not do what was asked."""


class NotFoundError(RepositoryError):
    """The row, or a parent it needs, does not exist."""


class ConflictError(RepositoryError):
    """The write clashes with a row that already exists (duplicate id, slug, state)."""


class SchemaError(RepositoryError):
    """The database schema cannot be used by this version of boternity."""


class StoreBusyError(RepositoryError):
    """Another process held the database for longer than the configured wait."""


for _cls in (
    BoternityError,
    ValidationError,
    RepositoryError,
    NotFoundError,
    ConflictError,
    SchemaError,
    StoreBusyError,
):
    _cls.__module__ = "boternity.errors"
