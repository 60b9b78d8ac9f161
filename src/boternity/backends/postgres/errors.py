"""asyncpg errors -> the boternity exception tree, classified by SQLSTATE, never by message."""

from __future__ import annotations

import asyncpg

from boternity.errors import RepositoryError, ValidationError
from boternity.storage.dialect import (
    BUSY,
    FOREIGN_KEY,
    REFUSED,
    UNIQUE,
    Conflicts,
    driver_error,
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


def translate(exc: BaseException, conflicts: Conflicts = None) -> RepositoryError | ValidationError:
    """A library error for a driver error, with the driver error chained as its cause.

    ``conflicts`` maps a unique column (``"bots.slug"``) to the message to use when it
    clashes, so callers name what clashed without an extra query beforehand.
    """
    code = sqlstate(exc)
    if code == "23505":
        return driver_error(exc, UNIQUE, conflicts, _column(exc))
    if code == "23503":
        return driver_error(exc, FOREIGN_KEY)
    if (
        code in ("23514", "23502")
        or code.startswith("22")
        or isinstance(exc, asyncpg.exceptions.DataError)  # a value the driver cannot encode
    ):
        return driver_error(exc, REFUSED)
    if code in RETRYABLE or code in ("55P03", "57014"):
        return driver_error(exc, BUSY)
    if connection_lost(exc):
        # The server's reason is worth showing; the driver's internal state errors are not
        # (they stay chained as the cause).
        reason = f" ({exc})" if isinstance(exc, asyncpg.PostgresError | OSError) else ""
        return driver_error(exc, f"{CONNECTION_LOST}{reason}; try again")
    return driver_error(exc, f"postgresql error ({code or type(exc).__name__}): {exc}")
