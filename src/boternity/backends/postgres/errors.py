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


#: What a caller reads when the server or the network dropped a connection in use.
CONNECTION_LOST = "connection to the database was lost"


def connection_lost(exc: BaseException) -> bool:
    """True when ``exc`` means the connection itself is gone or unusable, not that a statement
    failed: class 08 (connection exception), 57P (the server terminated it: admin shutdown,
    ``pg_terminate_backend``, crash), a socket error, or one of the driver's own errors. asyncpg
    reports a connection terminated while idle in a pool, on its next use, as
    ``InternalClientError: cannot switch to state 12; another operation (2) is in progress``
    (MagicStack/asyncpg#1069), so that counts as lost too."""
    code = sqlstate(exc)
    return (
        code.startswith(("08", "57P"))
        or isinstance(exc, OSError | TimeoutError)
        or not isinstance(exc, asyncpg.PostgresError)
    )


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
    elif connection_lost(exc):
        # The server's reason is worth showing; the driver's internal state errors are not
        # (they stay chained as the cause).
        reason = f" ({exc})" if isinstance(exc, asyncpg.PostgresError | OSError) else ""
        error = RepositoryError(f"{CONNECTION_LOST}{reason}; try again")
    else:
        error = RepositoryError(f"postgresql error ({code or type(exc).__name__}): {exc}")
    error.__cause__ = exc
    return error
