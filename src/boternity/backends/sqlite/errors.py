"""sqlite3 errors -> the boternity exception tree, classified by SQLite result code."""

from __future__ import annotations

import sqlite3

from boternity.errors import RepositoryError, ValidationError
from boternity.storage.dialect import (
    BUSY,
    FOREIGN_KEY,
    REFUSED,
    UNIQUE,
    Conflicts,
    driver_error,
)

_BUSY = {
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_BUSY_RECOVERY",
    "SQLITE_BUSY_SNAPSHOT",
    "SQLITE_BUSY_TIMEOUT",
    "SQLITE_LOCKED_SHAREDCACHE",
}
_KINDS = {
    "SQLITE_CONSTRAINT_UNIQUE": UNIQUE,
    "SQLITE_CONSTRAINT_PRIMARYKEY": UNIQUE,
    "SQLITE_CONSTRAINT_FOREIGNKEY": FOREIGN_KEY,
    "SQLITE_CONSTRAINT_CHECK": REFUSED,
    "SQLITE_CONSTRAINT_NOTNULL": REFUSED,
    "SQLITE_TOOBIG": REFUSED,
    **dict.fromkeys(_BUSY, BUSY),
}


def is_busy(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorname", "") in _BUSY


def translate(exc: sqlite3.Error, conflicts: Conflicts = None) -> RepositoryError | ValidationError:
    """A library error for a driver error, with the driver error chained as its cause.
    ``conflicts``: the message for a clash on a unique column (``"table.column"``)."""
    name = getattr(exc, "sqlite_errorname", "")
    # "UNIQUE constraint failed: bots.slug" (several columns: the first is enough)
    column = str(exc).rpartition(": ")[2].split(",")[0]
    kind = _KINDS.get(name) or f"sqlite error ({name or type(exc).__name__}): {exc}"
    return driver_error(exc, kind, conflicts, column)
