"""A PostgreSQL URL's password (userinfo, ``?password=``, ``?sslpassword=``) is never printed:
not by ``bnity db info`` (text or JSON), not in the errors of a database that cannot be opened.
Real ``bnity`` processes against the real server (skipped without
BOTERNITY_TEST_POSTGRES_URL)."""

from __future__ import annotations

import json
import subprocess
import urllib.parse
from collections.abc import Iterator

import pytest

from boternity import open_store
from boternity.errors import BoternityError
from tests.cli.test_chat import BNITY, _env
from tests.conftest import postgres_url_or_skip

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

PASSWORD = "pw-SECRET-1234"
SSL_PASSWORD = "ssl-SECRET-5678"
USER_PASSWORD = "user-SECRET-9012"


@pytest.fixture
def pg_url() -> Iterator[str]:
    from tests.pg import fresh_postgres_database

    with fresh_postgres_database(postgres_url_or_skip()) as url:
        yield url


def with_passwords(url: str, **changes: str) -> str:
    """``url`` with a password in its userinfo and as query parameters (the test server trusts
    local connections, so they are accepted and ignored)."""
    parts = urllib.parse.urlsplit(url)
    user, _, host = parts.netloc.rpartition("@")
    netloc = f"{user or 'postgres'}:{USER_PASSWORD}@{host}"
    query = f"password={PASSWORD}&sslpassword={SSL_PASSWORD}"
    return urllib.parse.urlunsplit(parts._replace(**{"netloc": netloc, "query": query, **changes}))


def bnity(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BNITY, *args], capture_output=True, text=True, encoding="utf-8", timeout=120, env=_env()
    )


def assert_no_password(text: str) -> None:
    for secret in (PASSWORD, SSL_PASSWORD, USER_PASSWORD):
        assert secret not in text


def test_db_info_masks_every_password(pg_url: str) -> None:
    url = with_passwords(pg_url)
    parts = urllib.parse.urlsplit(pg_url)
    shown = (
        f"postgresql://postgres:***@{parts.netloc.rpartition('@')[2]}{parts.path}"
        "?password=***&sslpassword=***"
    )
    info = bnity("--db", url, "db", "info", "--json")
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["location"] == shown
    text = bnity("--db", url, "db", "info")
    assert text.returncode == 0, text.stderr
    assert "***" in text.stdout
    for result in (info, text):
        assert_no_password(result.stdout + result.stderr)


def test_errors_opening_the_database_mask_every_password(pg_url: str) -> None:
    missing = with_passwords(pg_url, path="/boternity_no_such_database")
    closed = with_passwords(pg_url, netloc=f"postgres:{USER_PASSWORD}@127.0.0.1:1")
    for url, why in ((missing, "does not exist"), (closed, "")):
        for args in (("db", "info"), ("bot", "list")):
            result = bnity("--db", url, *args)
            assert result.returncode != 0
            [line] = result.stderr.strip().splitlines()
            assert line.startswith("error: cannot open PostgreSQL database postgresql://")
            assert "password=***&sslpassword=***" in line and why in line
            assert_no_password(result.stdout + result.stderr)


async def test_the_library_error_masks_every_password(pg_url: str) -> None:
    url = with_passwords(pg_url, path="/boternity_no_such_database")
    with pytest.raises(BoternityError) as caught:
        async with open_store(url):
            pass
    assert_no_password(str(caught.value))
