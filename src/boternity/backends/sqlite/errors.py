"""sqlite3 errors -> the boternity exception tree, classified by SQLite result code."""

from __future__ import annotations

import sqlite3

from boternity.backends.core.dialect import Conflicts
from boternity.errors import (
    ConflictError,
    NotFoundError,
    RepositoryError,
    StoreBusyError,
    ValidationError,
)

_BUSY = {
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_BUSY_RECOVERY",
    "SQLITE_BUSY_SNAPSHOT",
    "SQLITE_BUSY_TIMEOUT",
    "SQLITE_LOCKED_SHAREDCACHE",
}


def is_busy(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorname", "") in _BUSY


def translate(exc: sqlite3.Error, conflicts: Conflicts = None) -> RepositoryError | ValidationError:
    """A library error for a driver error, with the driver error chained as its cause.
    ``conflicts``: the message for a clash on a unique column (``"table.column"``)."""
    name = getattr(exc, "sqlite_errorname", "")
    error: RepositoryError | ValidationError
    if name in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"):
        # "UNIQUE constraint failed: bots.slug" (several columns: the first is enough)
        column = str(exc).rpartition(": ")[2].split(",")[0]
        error = ConflictError(
            (conflicts() if conflicts else {}).get(column) or f"already exists: {exc}"
        )
    elif name == "SQLITE_CONSTRAINT_FOREIGNKEY":
        error = NotFoundError("a row this write refers to does not exist")
    elif name in ("SQLITE_CONSTRAINT_CHECK", "SQLITE_CONSTRAINT_NOTNULL", "SQLITE_TOOBIG"):
        error = ValidationError(f"refused by the database: {exc}")
    elif name in _BUSY:
        error = StoreBusyError(f"the database stayed busy: {exc}")
    else:
        error = RepositoryError(f"sqlite error ({name or type(exc).__name__}): {exc}")
    error.__cause__ = exc
    return error
