"""Maintenance of a SQLite database: row counts, details, integrity check, online backup.

Everything runs on one of the store's read-only reader threads, so it reads one consistent
snapshot and never holds up the writer (WAL).
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from boternity.backends.sqlite.pool import Readers, connect_read_only
from boternity.errors import RepositoryError
from boternity.repositories import (
    BackupReport,
    ForeignKeyProblem,
    IntegrityReport,
    StoreDetails,
)
from boternity.storage.sql import quoted
from boternity.units import format_size

__all__ = ["COMPANION_SUFFIXES", "SqliteMaintenance", "schema_version_on_disk"]

#: Files SQLite keeps for a database file ``X``: ``X`` itself, ``X-wal`` etc.
COMPANION_SUFFIXES = ("", "-wal", "-shm", "-journal")


def _user_tables(conn: sqlite3.Connection) -> list[str]:
    """Every table of the schema by name (virtual ones included), without SQLite's own
    (``sqlite_*``) and the shadow tables a virtual table keeps (``memories_fts_data``…)."""
    rows = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table'"
        " AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
    ).fetchall()
    virtual = [
        str(name) for name, sql in rows if str(sql or "").upper().startswith("CREATE VIRTUAL")
    ]
    return [
        str(name)
        for name, _ in rows
        if not any(str(name).startswith(f"{v}_") for v in virtual if v != name)
    ]


def _table_counts(conn: sqlite3.Connection) -> dict[str, int]:
    conn.execute("BEGIN")  # one snapshot for every count
    try:
        return {
            name: int(conn.execute(f"SELECT count(*) FROM {quoted(name)}").fetchone()[0])
            for name in _user_tables(conn)
        }
    finally:
        conn.execute("ROLLBACK")


def _pragmas(conn: sqlite3.Connection) -> tuple[int, int, int, str]:
    return (
        int(conn.execute("PRAGMA page_size").fetchone()[0]),
        int(conn.execute("PRAGMA page_count").fetchone()[0]),
        int(conn.execute("PRAGMA freelist_count").fetchone()[0]),
        str(conn.execute("PRAGMA journal_mode").fetchone()[0]),
    )


def _integrity(conn: sqlite3.Connection) -> IntegrityReport:
    try:
        integrity = [str(row[0]) for row in conn.execute("PRAGMA integrity_check")]
        foreign_keys = [
            ForeignKeyProblem(table=str(t), rowid=rowid, parent=str(p), fk_index=int(i))
            for t, rowid, p, i in conn.execute("PRAGMA foreign_key_check")
        ]
    except sqlite3.DatabaseError as exc:
        # Damage the check cannot walk past (a page that is not a b-tree page at all) is
        # what was asked about: a finding, not a failure to check.
        if not getattr(exc, "sqlite_errorname", "").startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
            raise
        return IntegrityReport(problems=[f"{exc} (the check stopped there)"])
    return IntegrityReport(
        problems=[] if integrity == ["ok"] else integrity, foreign_keys=foreign_keys
    )


def _copy(conn: sqlite3.Connection, dest: Path) -> BackupReport:
    with contextlib.closing(sqlite3.connect(dest, isolation_level=None)) as copy:
        conn.backup(copy)  # one step: a single consistent snapshot
        check = str(copy.execute("PRAGMA quick_check").fetchone()[0])
        tables = int(
            copy.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
        )
    if check != "ok":
        raise RepositoryError(f"the copy failed its quick_check: {check}")
    return BackupReport(tables=tables)


class SqliteMaintenance:
    """:class:`~boternity.repositories.Maintenance` for the SQLite file at ``path``."""

    def __init__(self, path: Path, readers: Readers) -> None:
        self._path = path
        self._readers = readers

    async def table_counts(self) -> dict[str, int]:
        return await self._readers.run(_table_counts)

    async def details(self) -> StoreDetails:
        files: dict[str, int] = {}
        for suffix in COMPANION_SUFFIXES:
            p = self._path.with_name(self._path.name + suffix)
            with contextlib.suppress(FileNotFoundError):
                files[p.name] = p.stat().st_size
        page_size, page_count, freelist, journal = await self._readers.run(_pragmas)
        lines = [(f"File {name}", format_size(size)) for name, size in files.items()]
        lines.append(("Journal mode", journal))
        lines.append(("Pages", f"{page_count} × {page_size} B, {freelist} free"))
        return StoreDetails(
            fields={
                "files": files,
                "page_size": page_size,
                "page_count": page_count,
                "freelist_pages": freelist,
                "journal_mode": journal,
            },
            lines=lines,
        )

    async def integrity_check(self) -> IntegrityReport:
        return await self._readers.run(_integrity)

    async def backup(self, dest: Path) -> BackupReport:
        return await self._readers.run(lambda conn: _copy(conn, dest))

    def __repr__(self) -> str:
        return f"SqliteMaintenance({str(self._path)!r})"


def quick_slugs(path: Path, prefix: str, limit: int) -> list[str]:
    """Bot slugs starting with ``prefix``, read-only with a short busy timeout (shell
    completion runs on every Tab press); [] for a missing, locked or foreign file."""
    if not path.is_file():
        return []
    try:
        with contextlib.closing(connect_read_only(path, timeout=0.2)) as conn:
            rows = conn.execute(
                "SELECT slug FROM bots WHERE substr(slug, 1, ?) = ? ORDER BY slug LIMIT ?",
                (len(prefix), prefix, limit),
            ).fetchall()
    except sqlite3.Error:
        return []
    return [str(slug) for (slug,) in rows]


def schema_version_on_disk(path: Path) -> int:
    """Migrations applied to the file at ``path``, read without opening a store (which would
    migrate it): 0 for a missing or empty file."""
    if not path.is_file():
        return 0
    try:
        with contextlib.closing(connect_read_only(path, isolation_level=None)) as conn:
            try:
                row = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()
            except sqlite3.OperationalError:
                return 0
    except sqlite3.Error as exc:
        raise RepositoryError(f"{path}: {exc}") from exc
    return int(row[0])
