"""The SQLite backend: one writer thread, read-only reader threads, WAL."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from boternity.backends.sqlite.locks import LOCK_FOLDER_SUFFIX
from boternity.backends.sqlite.maintenance import COMPANION_SUFFIXES
from boternity.backends.sqlite.store import SqliteStore
from boternity.errors import ValidationError

if TYPE_CHECKING:
    from boternity.config import DatabaseTarget
    from boternity.repositories import MaintenanceOperation, Store, StoreOptions

__all__ = ["BACKEND", "COMPANION_SUFFIXES", "SqliteBackend", "SqliteStore"]


class SqliteBackend:
    """:class:`~boternity.repositories.Backend` for database files."""

    name = "sqlite"

    async def open(self, target: DatabaseTarget, options: StoreOptions) -> Store:
        if options.read_url is not None:
            raise ValidationError("read_url is only for PostgreSQL")
        assert target.path is not None
        store = SqliteStore(target.path, options)
        await store.open()
        return store

    def unsupported(self, operation: MaintenanceOperation) -> str | None:
        return None  # every maintenance operation works on a SQLite file

    def schema_version_on_disk(self, target: DatabaseTarget) -> int | None:
        from boternity.backends.sqlite.maintenance import schema_version_on_disk

        assert target.path is not None
        return schema_version_on_disk(target.path)

    def quick_slugs(self, target: DatabaseTarget, prefix: str, limit: int) -> list[str]:
        from boternity.backends.sqlite.maintenance import quick_slugs

        assert target.path is not None
        return quick_slugs(target.path, prefix, limit)

    def own_paths(self, target: DatabaseTarget) -> tuple[set[Path], set[Path]]:
        assert target.path is not None
        files: set[Path] = set()
        folders: set[Path] = set()
        named = Path(os.path.abspath(target.path))
        for base in {named, Path(os.path.realpath(named))}:
            files.update(base.with_name(base.name + s) for s in COMPANION_SUFFIXES)
            folders.add(base.with_name(base.name + LOCK_FOLDER_SUFFIX))  # session locks
        return files, folders

    def __repr__(self) -> str:
        return "SqliteBackend()"


BACKEND = SqliteBackend()
