"""The PostgreSQL backend (asyncpg, an optional dependency: ``boternity[postgres]``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from boternity.errors import RepositoryError

if TYPE_CHECKING:
    from boternity.store import Store


async def open_postgres_store(
    url: str,
    *,
    pool_size: int,
    read_url: str | None,
    durability: Literal["normal", "full"],
    busy_wait: float = 60.0,
) -> Store:
    """Open and migrate the database at ``url``. asyncpg is imported only here, so SQLite
    users never need it installed."""
    try:
        from boternity.backends.postgres.store import PostgresStore
    except ModuleNotFoundError as exc:
        if exc.name != "asyncpg":
            raise
        raise RepositoryError(
            "PostgreSQL support needs asyncpg: pip install 'boternity[postgres]'"
        ) from exc
    store = PostgresStore(
        url,
        pool_size=pool_size,
        read_url=read_url,
        durability=durability,
        acquire_timeout=busy_wait,
    )
    await store.open()
    return store
