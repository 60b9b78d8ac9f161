"""asyncpg errors -> the boternity exception tree, classified by SQLSTATE, never by message."""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg

from boternity.errors import (
    ConflictError,
    NotFoundError,
    RepositoryError,
    StoreBusyError,
    ValidationError,
)

#: Everything the driver or the socket under it may raise; nothing else is translated.
DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    OSError,
    TimeoutError,
)

#: Transient: the transaction was rolled back and may simply be run again.
RETRYABLE = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected


def sqlstate(exc: BaseException) -> str:
    return str(getattr(exc, "sqlstate", "") or "")


def _column(exc: BaseException) -> str:
    """``table.column`` of a unique constraint by its default name (``bots_pkey`` is
    ``bots.id``, ``bots_slug_key`` is ``bots.slug``)."""
    table = getattr(exc, "table_name", None) or ""
    constraint = getattr(exc, "constraint_name", None) or ""
    if constraint == f"{table}_pkey":
        return f"{table}.id"
    return f"{table}.{constraint.removeprefix(table + '_').removesuffix('_key')}"


def translate(
    exc: BaseException, conflicts: Mapping[str, str] | None = None
) -> RepositoryError | ValidationError:
    """A library error for a driver error, with the driver error chained as its cause.

    ``conflicts`` maps a unique column (``"bots.slug"``) to the message to use when it
    clashes, so callers name what clashed without an extra query beforehand.
    """
    code = sqlstate(exc)
    error: RepositoryError | ValidationError
    if code == "23505":
        error = ConflictError((conflicts or {}).get(_column(exc)) or f"already exists: {exc}")
    elif code == "23503":
        error = NotFoundError("a row this write refers to does not exist")
    elif (
        code in ("23514", "23502")
        or code.startswith("22")
        or isinstance(exc, asyncpg.exceptions.DataError)  # a value the driver cannot encode
    ):
        error = ValidationError(f"refused by the database: {exc}")
    elif code in RETRYABLE or code in ("55P03", "57014"):
        error = StoreBusyError(f"the database stayed busy: {exc}")
    elif code.startswith("08") or isinstance(exc, OSError | TimeoutError | asyncpg.InterfaceError):
        error = RepositoryError(f"lost or could not open the PostgreSQL connection: {exc}")
    else:
        error = RepositoryError(f"postgresql error ({code or type(exc).__name__}): {exc}")
    error.__cause__ = exc
    return error
