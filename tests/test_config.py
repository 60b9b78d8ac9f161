"""Where open_store looks for the database."""

from __future__ import annotations

from pathlib import Path

import pytest

from boternity.config import redact_url, resolve_database
from boternity.errors import ValidationError


def test_explicit_forms(tmp_path: Path) -> None:
    assert resolve_database(tmp_path / "a.db").path == tmp_path / "a.db"
    assert resolve_database("rel/a.db").path == Path("rel/a.db")
    assert resolve_database("sqlite:///rel/a.db").path == Path("rel/a.db")
    assert resolve_database("sqlite:////abs/a.db").path == Path("/abs/a.db")
    target = resolve_database("postgres://u:secret@h/db")
    assert target.backend == "postgresql"
    assert "secret" not in target.display


def test_environment_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("BOTERNITY_DATABASE_URL", raising=False)
    monkeypatch.delenv("BOTERNITY_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_database(None).path == tmp_path / "home" / ".boternity" / "boternity.db"
    monkeypatch.setenv("BOTERNITY_DATA_DIR", str(tmp_path / "data"))
    assert resolve_database(None).path == tmp_path / "data" / "boternity.db"
    monkeypatch.setenv("BOTERNITY_DATABASE_URL", f"sqlite:///{tmp_path}/url.db")
    assert resolve_database(None).path == tmp_path / "url.db"


@pytest.mark.parametrize("bad", ["", "   ", "mysql://h/db", "sqlite://", "sqlite:///:memory:"])
def test_unusable_locations_name_the_problem(bad: str) -> None:
    with pytest.raises(ValidationError):
        resolve_database(bad)


def test_redact_url_masks_only_the_password() -> None:
    assert redact_url("postgresql://bob:pw@db:5432/x") == "postgresql://bob:***@db:5432/x"
    assert redact_url("postgresql://db/x") == "postgresql://db/x"


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("postgresql://[::1", "[::1"),
        ("postgresql://bob:s3cret@[::1/db", "[::1"),
        ("postgresql://bob:s3cret@localhost:99999/db", "99999"),  # asyncpg wrapped it around
        ("postgresql://bob:s3cret@localhost:0/db", "'0'"),
        ("postgresql://localhost:abc/db", "abc"),
        ("postgresql://h1:5432,h2:70000/db", "70000"),
        ("postgres://bob:s3cret@localhost/db?port=70000", "70000"),
    ],
)
def test_bad_postgres_hosts_and_ports_are_refused_by_name(url: str, named: str) -> None:
    with pytest.raises(ValidationError) as info:
        resolve_database(url)
    message = str(info.value)
    assert named in message and "bad PostgreSQL URL" in message
    assert "s3cret" not in message  # the user name stays, as in every redacted URL


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://bob:pw@db.example:5432/x",
        "postgresql://[::1]:5432/x",
        "postgresql://h1:5432,h2/x",
        "postgresql:///x?host=/var/run/postgresql&port=5433",
        "postgresql://h:/x",
    ],
)
def test_good_postgres_urls_still_pass(url: str) -> None:
    assert resolve_database(url).url == url
