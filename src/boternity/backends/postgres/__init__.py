"""The PostgreSQL backend (asyncpg, an optional dependency: ``boternity[postgres]``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from boternity.errors import RepositoryError

if TYPE_CHECKING:
    from boternity.config import DatabaseTarget
    from boternity.repositories import MaintenanceOperation, Store, StoreOptions

#: Maintenance left to PostgreSQL's own tools: why, and what to use instead.
UNSUPPORTED: dict[str, str] = {
    "backup": (
        "a PostgreSQL database is backed up with its own tools, for example"
        " pg_dump --format=custom --file=FILE DATABASE_URL (boternity copies SQLite"
        " databases only)"
    ),
    "integrity_check": (
        "PostgreSQL checks its data as it writes it; for a deeper check of tables and indexes"
        " use pg_amcheck (boternity checks SQLite databases only)"
    ),
}


class PostgresBackend:
    """:class:`~boternity.repositories.Backend` for ``postgresql://`` targets."""

    name = "postgresql"

    async def open(self, target: DatabaseTarget, options: StoreOptions) -> Store:
        """asyncpg is imported only here, so SQLite users never need it installed."""
        try:
            from boternity.backends.postgres.store import PostgresStore
        except ModuleNotFoundError as exc:
            if exc.name != "asyncpg":
                raise
            raise RepositoryError(
                "PostgreSQL support needs asyncpg: pip install 'boternity[postgres]'"
            ) from exc
        assert target.url is not None
        store = PostgresStore(target.url, options)
        await store.open()
        return store

    def unsupported(self, operation: MaintenanceOperation) -> str | None:
        return UNSUPPORTED.get(operation)

    def schema_version_on_disk(self, target: DatabaseTarget) -> int | None:
        return None  # only the server knows, and opening a store migrates

    def quick_slugs(self, target: DatabaseTarget, prefix: str, limit: int) -> list[str]:
        return []  # connecting to a server on every Tab press would be too slow

    def own_paths(self, target: DatabaseTarget) -> tuple[set[Path], set[Path]]:
        return set(), set()  # the server keeps its files to itself

    def __repr__(self) -> str:
        return "PostgresBackend()"


BACKEND = PostgresBackend()
