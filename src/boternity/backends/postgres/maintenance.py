"""Maintenance of a PostgreSQL database: row counts and details. Backups and deep integrity
checks are the server's own tools' job (pg_dump, pg_amcheck): see ``UNSUPPORTED``."""

from __future__ import annotations

from pathlib import Path

from boternity.backends.postgres import UNSUPPORTED
from boternity.backends.postgres.pool import Conn, Database
from boternity.errors import UnsupportedError
from boternity.repositories import BackupReport, IntegrityReport, StoreDetails
from boternity.storage.sql import quoted
from boternity.units import format_size

__all__ = ["PostgresMaintenance"]

# Ordinary and partitioned tables of the schema the store works in (the first of the
# search_path), partitions themselves left out: they are counted through their parent.
_TABLES = (
    "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
    ' ORDER BY c.relname COLLATE "C"'
)
_DETAILS = (
    "SELECT current_setting('server_version'), current_database(),"
    " pg_database_size(current_database())"
)


async def _table_counts(conn: Conn) -> dict[str, int]:
    tables = [(str(row[0]), str(row[1])) for row in await conn.fetch(_TABLES)]
    if not tables:
        return {}
    names = [name for _, name in tables]
    # One statement: every count from the same snapshot.
    counts = ", ".join(
        f"(SELECT count(*) FROM {quoted(schema)}.{quoted(name)})" for schema, name in tables
    )
    row = await conn.fetchrow(f"SELECT {counts}")
    return {name: int(row[i]) for i, name in enumerate(names)}


async def _details(conn: Conn) -> StoreDetails:
    row = await conn.fetchrow(_DETAILS)
    version, database, size = str(row[0]), str(row[1]), int(row[2])
    return StoreDetails(
        fields={"server_version": version, "database": database, "database_bytes": size},
        lines=[
            ("Server", f"PostgreSQL {version}"),
            ("Database", database),
            ("Database size", format_size(size)),
        ],
    )


class PostgresMaintenance:
    """:class:`~boternity.repositories.Maintenance` for an open PostgreSQL store."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def table_counts(self) -> dict[str, int]:
        return await self._db.run(_table_counts)

    async def details(self) -> StoreDetails:
        return await self._db.run(_details)

    async def integrity_check(self) -> IntegrityReport:
        raise UnsupportedError(UNSUPPORTED["integrity_check"])

    async def backup(self, dest: Path) -> BackupReport:
        raise UnsupportedError(UNSUPPORTED["backup"])

    def __repr__(self) -> str:
        return "PostgresMaintenance()"
