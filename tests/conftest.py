"""Shared fixtures: a real store on every backend.

``store`` is parametrised over the backends: SQLite on a temp file always; PostgreSQL when
``BOTERNITY_TEST_POSTGRES_URL`` is set (each test gets a fresh database). Locally the
PostgreSQL half skips with a reason when the variable is unset; CI sets
``BOTERNITY_REQUIRE_POSTGRES=1`` so a missing server fails instead of skipping.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from boternity import Store, open_store

POSTGRES_ENV = "BOTERNITY_TEST_POSTGRES_URL"
REQUIRE_POSTGRES_ENV = "BOTERNITY_REQUIRE_POSTGRES"

BACKENDS = [
    pytest.param("sqlite", marks=pytest.mark.sqlite),
    pytest.param("postgres", marks=pytest.mark.postgres),
]


def postgres_url_or_skip() -> str:
    url = os.environ.get(POSTGRES_ENV, "").strip()
    if not url:
        if os.environ.get(REQUIRE_POSTGRES_ENV) == "1":
            pytest.fail(f"{POSTGRES_ENV} is not set but {REQUIRE_POSTGRES_ENV}=1")
        pytest.skip(
            f"PostgreSQL tests need {POSTGRES_ENV} (e.g. postgresql://postgres@127.0.0.1:5432/test)"
        )
    return url


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def db_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of the given backend, as a path or URL for open_store."""
    if backend == "sqlite":
        yield str(tmp_path / "data" / "boternity.db")
        return
    from tests.pg import fresh_postgres_database

    with fresh_postgres_database(postgres_url_or_skip()) as url:
        yield url


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    async with open_store(db_url) as opened:
        yield opened
