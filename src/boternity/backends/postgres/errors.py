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


def translate(
    exc: BaseException, messages: Mapping[str, str] | None = None
) -> RepositoryError | ValidationError:
    """A library error for a driver error, with the driver error chained as its cause.

    ``messages`` maps a constraint name to the message to use when that constraint fired,
    so callers name what clashed or is missing without an extra query beforehand.
    """
    code = sqlstate(exc)
    constraint = getattr(exc, "constraint_name", None)
    named = (messages or {}).get(constraint or "")
    error: RepositoryError | ValidationError
    if code == "23505":
        error = ConflictError(named or f"already exists: {exc}")
    elif code == "23503":
        error = NotFoundError(named or "a row this write refers to does not exist")
    elif (
        code in ("23514", "23502")
        or code.startswith("22")
        or isinstance(exc, asyncpg.exceptions.DataError)  # a value the driver cannot encode
    ):
        error = ValidationError(named or f"refused by the database: {exc}")
    elif code in RETRYABLE or code in ("55P03", "57014"):
        error = StoreBusyError(f"the database stayed busy: {exc}")
    elif code.startswith("08") or isinstance(exc, OSError | TimeoutError | asyncpg.InterfaceError):
        error = RepositoryError(f"lost or could not open the PostgreSQL connection: {exc}")
    else:
        error = RepositoryError(f"postgresql error ({code or type(exc).__name__}): {exc}")
    error.__cause__ = exc
    return error
