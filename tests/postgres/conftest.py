"""Fresh PostgreSQL databases for the backend's own tests (skipped without a server URL)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from boternity import Store, open_store
from tests.conftest import postgres_url_or_skip
from tests.pg import fresh_postgres_database


@pytest.fixture
def admin_url() -> str:
    return postgres_url_or_skip()


@pytest.fixture
def pg_url(admin_url: str) -> Iterator[str]:
    """A migrated, empty database."""
    with fresh_postgres_database(admin_url) as url:
        yield url


@pytest.fixture
def blank_pg_url(admin_url: str) -> Iterator[str]:
    """A database with no schema at all."""
    with fresh_postgres_database(admin_url, migrated=False) as url:
        yield url


@pytest.fixture
async def pg_store(pg_url: str) -> AsyncIterator[Store]:
    async with open_store(pg_url) as store:
        yield store
