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
from tests.fakes.llm_server import RecordedRequest, Reply

T = TypeVar("T")

Invoke = Callable[..., Result]

#: Never inherited by a test: where the database is, and which LLM provider (and key) to use.
CLEAN_ENV = (
    "BOTERNITY_DATABASE_URL",
    "BOTERNITY_DATA_DIR",
    "BOTERNITY_DEBUG",
    "BOTERNITY_PROVIDER",
    "BOTERNITY_MODEL",
    "BOTERNITY_EXTRACTION_MODEL",
    "BOTERNITY_EMBEDDINGS",
    "BOTERNITY_EMBEDDING_MODEL",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in (*CLEAN_ENV, "COLUMNS"):
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


# --- a fake LLM server on a thread of its own -------------------------------------------------


class FakeLlm:
    """``tests.fakes.llm_server.FakeLlmServer`` served from a background event loop, so
    synchronous CLI runs (in-process or subprocess) can talk to it. Requests are answered by
    kind ("chat", "greeting", "title", "extraction", "summary", "embeddings"): the first scripted reply for
    that kind (``script``), else like the offline provider."""

    def __init__(self) -> None:
        from boternity.cli.loop import LoopThread
        from tests.fakes.llm_server import FakeLlmServer

        self.scripts: dict[str, list[Reply]] = {}
        self.server = FakeLlmServer(default=self._route)
        self._bg = LoopThread()

    def __enter__(self) -> FakeLlm:
        self._bg.__enter__()
        self._bg.call(self.server.start())
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._bg.call(self.server.close())
        finally:
            self._bg.__exit__(None, None, None)

    @property
    def openai_base_url(self) -> str:
        return self.server.openai_base_url

    def script(self, kind: str, *replies: Reply) -> None:
        self.scripts.setdefault(kind, []).extend(replies)

    def env(self, key: str = "sk-test-secret-key") -> dict[str, str]:
        return {
            "BOTERNITY_PROVIDER": "openai",
            "OPENAI_BASE_URL": self.openai_base_url,
            "OPENAI_API_KEY": key,
        }

    def kinds(self) -> list[str]:
        return [kind_of(r.json or {}) for r in list(self.server.requests)]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [r.json for r in list(self.server.requests) if kind_of(r.json or {}) == kind]

    def _route(self, request: RecordedRequest) -> Reply:
        from tests.fakes.llm_server import default_reply

        queued = self.scripts.get(kind_of(request.json or {}))
        return queued.pop(0) if queued else default_reply(request)


def kind_of(body: dict[str, Any]) -> str:
    from boternity.chat.prompt import GREETING_REQUEST
    from boternity.chat.titles import TITLE_SYSTEM_PROMPT
    from boternity.chat.window import SUMMARY_SYSTEM_PROMPT
    from boternity.memory import EXTRACTION_SYSTEM

    if "input" in body and "messages" not in body:
        return "embeddings"
    messages = body.get("messages") or []
    system = "".join(str(m.get("content")) for m in messages if m.get("role") == "system")
    system += str(body.get("system") or "")
    last = str(messages[-1].get("content")) if messages else ""
    if system == EXTRACTION_SYSTEM:
        return "extraction"
    if system == TITLE_SYSTEM_PROMPT:
        return "title"
    if system == SUMMARY_SYSTEM_PROMPT:
        return "summary"
    if last == GREETING_REQUEST:
        return "greeting"
    return "chat"


@pytest.fixture
def llm() -> Iterator[FakeLlm]:
    with FakeLlm() as server:
        yield server
