"""The backend-neutral commands against PostgreSQL (skipped without BOTERNITY_TEST_POSTGRES_URL).

The CLI only uses the repository Protocols, so one pass over the main commands is enough to
show it is not SQLite-bound; `db backup` and `db check` refuse with a clear message.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from click.testing import Result
from typer.testing import CliRunner

from boternity.cli.app import app
from tests.cli.conftest import one_line_error, parse
from tests.cli.fixtures import UNICODE
from tests.conftest import postgres_url_or_skip

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url() -> Iterator[str]:
    from tests.pg import fresh_postgres_database

    with fresh_postgres_database(postgres_url_or_skip()) as url:
        yield url


def test_cli_on_postgres(pg_url: str) -> None:
    runner = CliRunner()

    def cli(*args: str) -> Result:
        return runner.invoke(app, ["--db", pg_url, *args])

    bot = parse(cli("bot", "create", UNICODE, "--slug", "zoe", "--json"))
    assert bot["name"] == UNICODE
    assert parse(cli("bot", "list", "--json"))[0]["slug"] == "zoe"
    shown = parse(cli("bot", "show", bot["id"][:-4], "--json"))  # a prefix
    assert shown["id"] == bot["id"]
    memory = parse(cli("remember", "zoe", f"Likes {UNICODE}", "--json"))
    assert memory["importance"] == 4 and memory["is_manual"] is True
    listed = parse(cli("memories", "zoe", "--search", "likes", "--json"))
    assert [m["id"] for m in listed] == [memory["id"]]
    assert parse(cli("sessions", "zoe", "--json")) == []
    assert parse(cli("queue", "--json")) == []
    info = parse(cli("db", "info", "--json"))
    assert info["backend"] == "postgresql"
    assert info["rows"]["bots"] == 1 and info["rows"]["session_memories"] == 1
    refused = cli("db", "check")
    assert refused.exit_code == 2
    assert "SQLite" in one_line_error(refused)
    deleted = parse(cli("forget", "zoe", "--yes", "--json"))
    assert deleted["deleted"] == 1
    assert cli("bot", "delete", "zoe", "--yes").exit_code == 0


def test_chat_queue_run_and_demo_on_postgres(pg_url: str) -> None:
    runner = CliRunner()

    def cli(*args: str, input: str | None = None) -> Result:
        return runner.invoke(app, ["--db", pg_url, *args], input=input)

    demo = parse(cli("demo", "--json"))
    assert demo["extraction"]["superseded"] == 1
    chat = cli("chat", "demo", "--resume", input=f"I live in {UNICODE}\n")
    assert chat.exit_code == 0, chat.stderr
    assert chat.stdout == f"[offline] Noted: you live in {UNICODE}.\n"
    sessions = parse(cli("sessions", "demo", "--json"))
    assert len(sessions) == 1 and sessions[0]["status"] == "completed"
    facts = {m["fact"] for m in parse(cli("memories", "demo", "--json"))}
    assert f"User lives in {UNICODE}" in facts
    ran = cli("queue", "run", "--json")
    assert ran.exit_code == 0 and parse(ran)["claimed"] == 0
    hits = parse(cli("search", "zoe", "--bot", "demo", "--json"))  # accents folded
    assert {h["snippet"] for h in hits} == {
        f"I live in {UNICODE}",
        f"[offline] Noted: you live in {UNICODE}.",
    }
    assert all([h["snippet"][s:e] for s, e in h["marks"]] == ["Zoë"] for h in hits)
    found = cli("search", "zoe")
    assert found.exit_code == 0 and f"I live in {UNICODE}" in found.stdout
