"""The SQLite backend: one writer thread, read-only reader threads, WAL."""

from boternity.backends.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
