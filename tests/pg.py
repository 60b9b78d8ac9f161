"""PostgreSQL test databases (filled in by the PostgreSQL backend work)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest


@contextmanager
def fresh_postgres_database(admin_url: str) -> Iterator[str]:
    pytest.skip("the PostgreSQL backend is not implemented yet")
    yield admin_url
