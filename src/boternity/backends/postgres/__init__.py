"""The PostgreSQL backend (asyncpg)."""

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
) -> Store:
    raise RepositoryError("the PostgreSQL backend is not available yet")
