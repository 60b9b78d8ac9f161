"""``open_store``: one entry point for every backend."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

from boternity.config import resolve_database
from boternity.repositories import Backend, Store, StoreOptions

__all__ = ["Store", "backend_of", "open_store"]


@asynccontextmanager
async def open_store(
    path_or_url: str | os.PathLike[str] | None = None,
    *,
    durability: Literal["normal", "full"] = "normal",
    readers: int = 4,
    pool_size: int = 10,
    read_url: str | None = None,
    busy_wait: float = 60.0,
) -> AsyncIterator[Store]:
    """Open (creating and migrating if needed) the store at ``path_or_url``.

    ``path_or_url`` is a file path, ``sqlite:///relative.db``, ``sqlite:////abs/path.db``,
    ``postgresql://…``, or None for ``BOTERNITY_DATABASE_URL``, else
    ``$BOTERNITY_DATA_DIR/boternity.db``, else ``~/.boternity/boternity.db``.
    ``busy_wait`` (seconds) bounds waiting for the database: SQLite's write lock, or a free
    PostgreSQL pool connection; past it the call fails with StoreBusyError.
    """
    from boternity.backends import backend_for

    options = StoreOptions(
        durability=durability, readers=readers, pool_size=pool_size, read_url=read_url,
        busy_wait=busy_wait,
    )  # fmt: skip
    target = resolve_database(path_or_url)
    store = await backend_for(target).open(target, options)
    try:
        yield store
    finally:
        await store.close()


def backend_of(path_or_url: str | os.PathLike[str] | None = None) -> Backend:
    """The backend that serves ``path_or_url`` (resolved as :func:`open_store` does), without
    connecting: to ask what it can do before opening a store."""
    from boternity.backends import backend_for

    return backend_for(resolve_database(path_or_url))
