"""CLI test fixtures: a real SQLite file with fixture data, and a runner bound to it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from click.testing import Result
from typer.testing import CliRunner

from boternity import Store, open_store
from boternity.cli.app import app
from tests.cli.fixtures import World, build_world

T = TypeVar("T")

Invoke = Callable[..., Result]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("COLUMNS", "BOTERNITY_DATABASE_URL", "BOTERNITY_DATA_DIR", "BOTERNITY_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    yield


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "boternity.db"


@pytest.fixture
def world(db_path: Path) -> World:
    return asyncio.run(build_world(db_path))


@pytest.fixture
def cli(db_path: Path) -> Invoke:
    """Run ``bnity --db <db_path> ARGS…`` in-process; stdout and stderr are kept apart."""
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        return runner.invoke(app, ["--db", str(db_path), *args], input=input, env=env)

    return invoke


@pytest.fixture
def tty(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend stdin is a terminal, so confirmation prompts are asked."""
    monkeypatch.setattr("boternity.cli.runtime.stdin_is_interactive", lambda: True)


def with_store(db: Path, fn: Callable[[Store], Awaitable[T]]) -> T:
    async def go() -> T:
        async with open_store(db, readers=1) as store:
            return await fn(store)

    return asyncio.run(go())


def one_line_error(result: Result) -> str:
    """The error a failed command printed: exactly one line on stderr, no traceback."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return lines[0]


def parse(result: Result) -> Any:
    import json

    assert result.exit_code == 0, (result.exit_code, result.stderr)
    return json.loads(result.stdout)
