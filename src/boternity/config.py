"""Where the database lives: an explicit path or URL, else the environment, else ~/.boternity."""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from boternity.errors import ValidationError
from boternity.redact import redact_url as redact_url  # shared; imported from here too

ENV_DATABASE_URL = "BOTERNITY_DATABASE_URL"
ENV_DATA_DIR = "BOTERNITY_DATA_DIR"
DB_FILENAME = "boternity.db"


@dataclass(frozen=True, slots=True)
class DatabaseTarget:
    backend: Literal["sqlite", "postgresql"]
    path: Path | None = None  # sqlite
    url: str | None = None  # postgresql

    @property
    def display(self) -> str:
        """Where this is, safe to print: passwords in URLs are masked."""
        if self.path is not None:
            return str(self.path)
        assert self.url is not None
        return redact_url(self.url)


def _check_postgres_url(text: str, rest: str) -> None:
    """Refuse a host or port the driver would crash on (or, for a port over 65535, silently
    wrap around); the message names the bad value and never the password."""
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    hosts = rest[:end].rpartition("@")[2]
    query = urllib.parse.parse_qs(rest[end:].partition("?")[2].partition("#")[0])
    ports = [p for value in query.get("port", []) for p in value.split(",")]
    for host in hosts.split(",") if hosts else []:
        try:
            port = urllib.parse.urlsplit(f"//{host}").port
        except ValueError:
            # urllib says "Invalid IPv6 URL" or "Port out of range 0-65535": say which part.
            if host.startswith("[") and "]" not in host:
                problem = f"unclosed '[' in host {host!r}"
            else:
                problem = f"bad port in {host!r} (use a number in 1..65535)"
            raise ValidationError(f"bad PostgreSQL URL {redact_url(text)!r}: {problem}") from None
        if port == 0:
            ports.append("0")
    for port_text in ports:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise ValidationError(
                f"bad PostgreSQL URL {redact_url(text)!r}: port {port_text!r} is not"
                " a number in 1..65535"
            )


def default_database() -> str:
    """BOTERNITY_DATABASE_URL, else $BOTERNITY_DATA_DIR/boternity.db,
    else ~/.boternity/boternity.db."""
    url = os.environ.get(ENV_DATABASE_URL, "").strip()
    if url:
        return url
    data_dir = os.environ.get(ENV_DATA_DIR, "").strip()
    if data_dir:
        return str(Path(data_dir).expanduser() / DB_FILENAME)
    return str(Path.home() / ".boternity" / DB_FILENAME)


def resolve_database(path_or_url: str | os.PathLike[str] | None) -> DatabaseTarget:
    """Parse a filesystem path, ``sqlite:///rel.db``, ``sqlite:////abs.db`` or a PostgreSQL URL."""
    if path_or_url is None:
        path_or_url = default_database()
    if isinstance(path_or_url, os.PathLike):
        return DatabaseTarget("sqlite", path=Path(path_or_url))
    if not isinstance(path_or_url, str):
        raise ValidationError(f"expected a path or URL, got {type(path_or_url).__name__}")
    text = path_or_url.strip()
    if not text:
        raise ValidationError("database path or URL is empty")
    scheme, sep, rest = text.partition("://")
    if not sep:
        return DatabaseTarget("sqlite", path=Path(text).expanduser())
    scheme = scheme.lower()
    if scheme in ("postgresql", "postgres"):
        _check_postgres_url(text, rest)
        return DatabaseTarget("postgresql", url=text)
    if scheme == "sqlite":
        # sqlite:///relative.db -> "relative.db"; sqlite:////abs.db -> "/abs.db"
        if not rest.startswith("/") or len(rest) < 2:
            raise ValidationError(
                f"bad SQLite URL {text!r}: use sqlite:///relative.db or sqlite:////absolute.db"
            )
        path = urllib.parse.unquote(rest[1:].split("?", 1)[0])
        if path in ("", ":memory:"):
            raise ValidationError(f"bad SQLite URL {text!r}: a database file path is required")
        return DatabaseTarget("sqlite", path=Path(path).expanduser())
    raise ValidationError(
        f"unsupported database URL scheme {scheme!r} in {redact_url(text)!r}"
        " (use a file path, sqlite:///…, or postgresql://…)"
    )
