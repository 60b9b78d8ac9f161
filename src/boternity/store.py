"""``open_store``: one entry point for every backend."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal, Protocol

from boternity.config import DatabaseTarget, resolve_database
from boternity.errors import ValidationError
from boternity.repositories import BotRepository, ChatRepository, MemoryRepository


class Store(Protocol):
    """An open database: three repositories and where they live."""

    @property
    def backend(self) -> str:
        """'sqlite' or 'postgresql'."""
        ...

    @property
    def bots(self) -> BotRepository: ...

    @property
    def chat(self) -> ChatRepository: ...

    @property
    def memory(self) -> MemoryRepository: ...

    @property
    def schema_version(self) -> int: ...

    async def close(self) -> None: ...


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
    target = resolve_database(path_or_url)
    store = await _open(
        target,
        durability=durability,
        readers=readers,
        pool_size=pool_size,
        read_url=read_url,
        busy_wait=busy_wait,
    )
    try:
        yield store
    finally:
        await store.close()


async def _open(
    target: DatabaseTarget,
    *,
    durability: Literal["normal", "full"],
    readers: int,
    pool_size: int,
    read_url: str | None,
    busy_wait: float,
) -> Store:
    if target.backend == "sqlite":
        from boternity.backends.sqlite import SqliteStore

        if read_url is not None:
            raise ValidationError("read_url is only for PostgreSQL")
        assert target.path is not None
        sqlite_store = SqliteStore(
            target.path, durability=durability, readers=readers, busy_wait=busy_wait
        )
        await sqlite_store.open()
        return sqlite_store
    from boternity.backends.postgres import open_postgres_store

    assert target.url is not None
    return await open_postgres_store(
        target.url,
        pool_size=pool_size,
        read_url=read_url,
        durability=durability,
        busy_wait=busy_wait,
    )
