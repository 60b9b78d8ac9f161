"""Storage backends. Each one implements the Protocols in :mod:`boternity.repositories`:
the repositories, and the capabilities (session locks, maintenance) behind ``Store``.

This is the only place that asks which backend a database is: every module above it talks
to a :class:`~boternity.repositories.Store` (or, before opening, a
:class:`~boternity.repositories.Backend`) and never to a backend module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from boternity.config import DatabaseTarget
    from boternity.repositories import Backend


def backend_for(target: DatabaseTarget) -> Backend:
    """The backend for ``target``. Importing it needs no optional driver (asyncpg is loaded
    when a PostgreSQL store opens)."""
    if target.backend == "sqlite":
        from boternity.backends.sqlite import BACKEND as sqlite

        return sqlite
    from boternity.backends.postgres import BACKEND as postgres

    return postgres
