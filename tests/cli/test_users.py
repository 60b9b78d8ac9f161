"""Users through the real bnity: --user on chat, ask, sessions, memories and remember, and
'bnity user forget|export' (against the fake LLM server)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from boternity import Store
from boternity.repositories import ANY_USER
from tests.cli.conftest import FakeLlm, Invoke, one_line_error, parse, with_store


@pytest.fixture
def luna(cli: Invoke) -> str:
    assert cli("bot", "create", "Luna").exit_code == 0
    return "luna"


def memories(cli: Invoke, *args: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = parse(cli("memories", "luna", "--json", *args))
    return data


@pytest.fixture
def two_users(cli: Invoke, luna: str, llm: FakeLlm) -> dict[str, str]:
    """Ana and Ben each told Luna where they live (extracted), the bot knows its office
    hours; returns each user's session id."""
    sessions = {}
    for user, city in (("discord:ana", "Lisbon"), ("discord:ben", "Oslo")):
        out = parse(cli("ask", luna, f"I live in {city}", "--user", user, "--json", env=llm.env()))
        assert out["user_id"] == user
        sessions[user] = out["session_id"]
    assert cli("queue", "run", env=llm.env()).exit_code == 0
    assert cli("remember", luna, "The office opens at 9").exit_code == 0
    return sessions


def test_memories_for_a_user_are_theirs_and_the_bots(
    cli: Invoke, two_users: dict[str, str]
) -> None:
    facts = {m["fact"]: m["user_id"] for m in memories(cli)}
    assert facts == {
        "User lives in Lisbon": "discord:ana",
        "User lives in Oslo": "discord:ben",
        "The office opens at 9": None,
    }
    assert {m["fact"] for m in memories(cli, "--user", "discord:ana")} == {
        "User lives in Lisbon",
        "The office opens at 9",
    }
    # Search within what Ben sees: Ana's city is not found, by word, substring or meaning.
    for mode in ("text", "hybrid", "semantic"):
        found = memories(cli, "--user", "discord:ben", "--search", "Lisbon", "--mode", mode)
        assert {m["user_id"] for m in found} <= {"discord:ben", None}, mode
        assert "User lives in Lisbon" not in {m["fact"] for m in found}, mode
    assert memories(cli, "--user", "discord:ben", "--search", "Lisbon", "--mode", "text") == []
    everyone = memories(cli, "--search", "Lisbon", "--mode", "text")
    assert [m["fact"] for m in everyone] == ["User lives in Lisbon"]
    # The table shows whose each memory is.
    table = cli("memories", "luna").stdout
    assert "User" in table and "discord:ana" in table and "discord:ben" in table
    assert "discord:ana" not in cli("memories", "luna", "--user", "discord:ben").stdout


def test_remember_for_a_user(cli: Invoke, luna: str, db_path: Path) -> None:
    result = cli("remember", luna, "Prefers tea", "--user", "slack:U1")
    assert result.exit_code == 0, result.stderr
    assert "user slack:U1" in result.stdout
    # Another user may hold the same fact; the same user may not twice.
    assert cli("remember", luna, "Prefers tea", "--user", "slack:U2").exit_code == 0
    again = cli("remember", luna, "prefers tea.", "--user", "slack:U1")
    assert again.exit_code == 5 and "already remembered" in one_line_error(again)

    async def owners(store: Store) -> list[str]:
        bot = await store.bots.get_bot_by_slug("luna")
        assert bot is not None
        found = await store.memory.get_memories(bot.id, user_id=ANY_USER)
        return sorted(m.user_id or "" for m in found)

    assert with_store(db_path, owners) == ["slack:U1", "slack:U2"]


def test_sessions_by_user(cli: Invoke, two_users: dict[str, str]) -> None:
    listed = parse(cli("sessions", "luna", "--json", "--user", "discord:ana"))
    assert [s["id"] for s in listed] == [two_users["discord:ana"]]
    assert listed[0]["user_id"] == "discord:ana"
    everyone = parse(cli("sessions", "--json", "--user", "discord:ben"))  # all bots
    assert [s["id"] for s in everyone] == [two_users["discord:ben"]]
    table = cli("sessions", "luna").stdout
    assert "User" in table and "discord:ana" in table and "discord:ben" in table
    empty = cli("sessions", "luna", "--user", "nobody")
    assert empty.exit_code == 0 and "with user 'nobody'" in empty.stdout
    shown = cli("session", "show", two_users["discord:ana"]).stdout
    assert "discord:ana" in shown


def test_chat_with_a_user_recalls_only_theirs(
    cli: Invoke, two_users: dict[str, str], llm: FakeLlm
) -> None:
    result = cli(
        "chat",
        "luna",
        "--user",
        "discord:ben",
        "--no-greeting",
        input="Where do I live?\n/remember Has a dog\n",
        env=llm.env(),
    )
    assert result.exit_code == 0, result.stderr
    assert "You live in Oslo" in result.stdout
    assert "for user discord:ben" in result.stderr
    [chat] = [r for r in llm.of("chat") if "Where do I live?" in json.dumps(r)]
    sent = json.dumps(chat)
    assert "Oslo" in sent and "The office opens at 9" in sent and "Lisbon" not in sent
    dog = next(m for m in memories(cli) if m["fact"] == "Has a dog")
    assert dog["user_id"] == "discord:ben" and dog["session_id"] is not None
    # Each extraction prompt only knew its own user's memories (and the bot's).
    for request in llm.of("extraction"):
        text = json.dumps(request)
        assert not ("Lisbon" in text and "Oslo" in text)


def test_chat_resume_respects_the_user(
    cli: Invoke, two_users: dict[str, str], llm: FakeLlm
) -> None:
    anas = two_users["discord:ana"]
    refused = cli("chat", "luna", "--user", "discord:ben", "--resume", anas, env=llm.env())
    assert refused.exit_code == 2
    assert "not a session of user 'discord:ben'" in one_line_error(refused)
    # --resume alone picks the user's latest session, not the bot's latest.
    resumed = cli("chat", "luna", "--user", "discord:ana", "--resume", input="Hi\n", env=llm.env())
    assert resumed.exit_code == 0, resumed.stderr
    assert f"session {anas} resumed" in resumed.stderr


def test_bad_user_ids_are_one_line_usage_errors(cli: Invoke, luna: str, llm: FakeLlm) -> None:
    for args in (
        ("ask", luna, "hi", "--user", "   "),
        ("remember", luna, "x", "--user", ""),
        ("memories", luna, "--user", "x" * 201),
        ("sessions", luna, "--user", ""),
        ("user", "forget", luna, " ", "--yes"),
        ("user", "export", luna, "a\x00b"),
    ):
        result = cli(*args, env=llm.env())
        assert result.exit_code == 2, (args, result.stderr)
        assert "user" in one_line_error(result)


@pytest.mark.parametrize("sneaky", ["eve\x1b[2J\u202e", "-", "\u200b", " eve"])
def test_user_ids_that_do_not_read_as_themselves_are_refused(
    cli: Invoke, luna: str, sneaky: str
) -> None:
    # Control, invisible and edge-space characters, and "-" (how listings show no user).
    refused = cli("remember", luna, "Likes jazz", "--user", sneaky)
    assert refused.exit_code == 2 and "user id" in one_line_error(refused)
    assert memories(cli) == []


def test_user_forget_asks_then_erases_only_that_user(
    cli: Invoke, two_users: dict[str, str], tty: None
) -> None:
    declined = cli("user", "forget", "luna", "discord:ana", input="n\n")
    assert declined.exit_code == 1
    assert "1 session (2 messages" in declined.stderr and "1 memory" in declined.stderr
    assert len(memories(cli)) == 3
    done = cli("user", "forget", "luna", "discord:ana", input="y\n")
    assert done.exit_code == 0, done.stderr
    assert "Erased user 'discord:ana' of 'luna'" in done.stdout
    assert {m["fact"] for m in memories(cli)} == {"User lives in Oslo", "The office opens at 9"}
    assert [s["user_id"] for s in parse(cli("sessions", "luna", "--json"))] == ["discord:ben"]
    again = cli("user", "forget", "luna", "discord:ana")
    assert again.exit_code == 0 and "Nothing stored for user 'discord:ana'" in again.stdout


def test_user_forget_without_a_terminal_needs_yes_and_reports_json(
    cli: Invoke, two_users: dict[str, str]
) -> None:
    refused = cli("user", "forget", "luna", "discord:ben")
    assert refused.exit_code == 2 and "pass --yes" in one_line_error(refused)
    out = parse(cli("user", "forget", "luna", "discord:ben", "--yes", "--json"))
    assert out["user_id"] == "discord:ben" and out["bot"] == "luna"
    assert out["deleted"]["sessions"] == 1 and out["deleted"]["messages"] == 2
    assert out["deleted"]["memories"] == 1 and out["deleted"]["history"] == 1
    assert parse(cli("user", "forget", "luna", "discord:ben", "--json"))["deleted"] == {
        "sessions": 0,
        "messages": 0,
        "summaries": 0,
        "jobs": 0,
        "memories": 0,
        "history": 0,
        "embeddings": 0,
    }
    missing = cli("user", "forget", "nobot", "discord:ben", "--yes")
    assert missing.exit_code == 4


def test_user_export_to_stdout_and_to_a_private_file(
    cli: Invoke, two_users: dict[str, str], tmp_path: Path, db_path: Path
) -> None:
    data = parse(cli("user", "export", "luna", "discord:ana"))
    assert data["user_id"] == "discord:ana" and data["bot"]["slug"] == "luna"
    [session] = data["sessions"]
    assert session["session"]["id"] == two_users["discord:ana"]
    assert [m["content"] for m in session["messages"]][0] == "I live in Lisbon"
    assert [m["fact"] for m in data["memories"]] == ["User lives in Lisbon"]
    assert [e["event"] for e in data["memory_history"]] == ["added"]
    assert "Oslo" not in json.dumps(data) and "office" not in json.dumps(data)

    dest = tmp_path / "ana.json"
    written = cli("user", "export", "luna", "discord:ana", "--output", str(dest))
    assert written.exit_code == 0, written.stderr
    assert "Exported 1 session and 1 memory of user 'discord:ana'" in written.stderr
    assert json.loads(dest.read_text(encoding="utf-8"))["memories"] == data["memories"]
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o600
    exists = cli("user", "export", "luna", "discord:ana", "-o", str(dest))
    assert exists.exit_code == 2 and "pass --yes" in one_line_error(exists)
    onto_db = cli("user", "export", "luna", "discord:ana", "-o", str(db_path))
    assert onto_db.exit_code == 2 and "database" in one_line_error(onto_db)


def test_search_transcripts_of_one_user(cli: Invoke, two_users: dict[str, str]) -> None:
    hits = parse(cli("search", "live", "--user", "discord:ana", "--json"))
    assert {h["session_id"] for h in hits} == {two_users["discord:ana"]}
    assert {h["user_id"] for h in hits} == {"discord:ana"}
    everyone = parse(cli("search", "live", "--json"))
    assert {h["user_id"] for h in everyone} == {"discord:ana", "discord:ben"}
    table = cli("search", "live", "--bot", "luna").stdout
    assert "User" in table and "discord:ben" in table
    none = cli("search", "live", "--user", "nobody")
    assert none.exit_code == 0 and "with user 'nobody'" in none.stdout


def test_forget_names_whose_memories_and_needs_all_users_for_theirs(
    cli: Invoke, two_users: dict[str, str], tty: None
) -> None:
    # 'forget BOT' deletes every user's memories: it says so, and wants --all-users first.
    refused = cli("forget", "luna", "--yes")
    assert refused.exit_code == 2
    error = one_line_error(refused)
    assert "2 users" in error and "--all-users" in error and "bnity user forget" in error
    assert "1 of user 'discord:ana'" in error and "1 the bot's own" in error
    assert len(memories(cli)) == 3
    declined = cli("forget", "luna", "--all-users", input="n\n")
    assert declined.exit_code == 1
    assert (
        "Delete all 3 memories of 'Luna' (luna): 1 of user 'discord:ana', 1 of user"
        " 'discord:ben', 1 the bot's own?"
    ) in declined.stderr
    done = parse(cli("forget", "luna", "--all-users", "--yes", "--json"))
    assert done["deleted"] == 3
    assert done["by_user"] == [
        {"user_id": None, "memories": 1},
        {"user_id": "discord:ana", "memories": 1},
        {"user_id": "discord:ben", "memories": 1},
    ]
    assert memories(cli) == []


def test_forget_deletes_nothing_when_memories_came_while_it_asked(
    cli: Invoke, luna: str, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the question waits, another process saves a user's memory: forget (asked about
    the bot's own memory only, without --all-users) must not delete it unnamed."""
    from boternity.cli import memories as module
    from boternity.cli.runtime import confirm as asked

    assert cli("remember", luna, "The office opens at 9").exit_code == 0

    def confirm_meanwhile(question: str, *, yes: bool) -> None:
        asked(question, yes=yes)
        other = [sys.executable, "-m", "boternity.cli", "--db", str(db_path)]
        added = subprocess.run(
            [*other, "remember", luna, "Ana likes tea", "--user", "discord:ana"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr

    monkeypatch.setattr(module, "confirm", confirm_meanwhile)
    raced = cli("forget", luna, "--yes")
    assert raced.exit_code == 5
    assert "changed while you were asked" in one_line_error(raced)
    assert {m["fact"] for m in memories(cli)} == {"The office opens at 9", "Ana likes tea"}


def test_queue_shows_whose_session_each_job_is(cli: Invoke, luna: str, llm: FakeLlm) -> None:
    for user in ("discord:ana", None):
        who = ("--user", user) if user else ()
        assert cli("ask", luna, "I live in Oslo", *who, env=llm.env()).exit_code == 0
    jobs = parse(cli("queue", "--json"))
    assert sorted(j["user_id"] or "" for j in jobs) == ["", "discord:ana"]
    out = cli("queue").stdout
    assert "User" in out and "discord:ana" in out
    [mine] = [line for line in out.splitlines() if "discord:ana" in line]
    [theirs] = [line for line in out.splitlines() if " - " in line and "/3" in line]
    assert mine != theirs


def test_the_export_is_written_as_it_is_read_with_every_list(
    cli: Invoke, luna: str, llm: FakeLlm, db_path: Path
) -> None:
    # Written a part at a time (so any size needs little memory), the export still holds
    # every key: a session without messages, a user with memories and no session, none.
    async def fill(store: Store) -> None:
        bot = await store.bots.get_bot_by_slug("luna")
        assert bot is not None
        from tests.conformance import factories as f

        await f.new_session(store, bot.id, user_id="eve")  # no messages at all
        talk = await f.new_session(store, bot.id, user_id="eve")
        await store.chat.save_messages([f.message(talk.id, f"line {i}") for i in range(250)])
        for i in range(3):
            await store.memory.save_memory(f.memory(bot.id, f"fact {i}", user_id="mia"))

    with_store(db_path, fill)
    eve = parse(cli("user", "export", luna, "eve"))
    assert [len(s["messages"]) for s in eve["sessions"]] == [0, 250]
    assert [m["content"] for m in eve["sessions"][1]["messages"]][-1] == "line 249"
    assert all(s["summaries"] == [] and s["queued_jobs"] == [] for s in eve["sessions"])
    assert (eve["memories"], eve["memory_history"], eve["memory_embeddings"]) == ([], [], [])
    mia = parse(cli("user", "export", luna, "mia"))
    assert mia["sessions"] == [] and [m["fact"] for m in mia["memories"]] == [
        "fact 0",
        "fact 1",
        "fact 2",
    ]
    assert len(mia["memory_history"]) == 3
    nobody = parse(cli("user", "export", luna, "nobody"))
    assert {k: v for k, v in nobody.items() if isinstance(v, list)} == {
        "sessions": [],
        "memories": [],
        "memory_history": [],
        "memory_embeddings": [],
    }


def test_the_json_writer_writes_what_json_dumps_does() -> None:
    from boternity.cli.users import JsonWriter

    written: list[str] = []
    out = JsonWriter(written.append)
    out.open("{")
    out.value({"a": [1, {"b": "é\n\x1b"}], "c": {}}, "x")
    out.open("[", "list")
    out.value([])
    out.open("{")
    out.close("}")
    out.value("s")
    out.close("]")
    out.open("[", "empty")
    out.close("]")
    out.close("}")
    doc = {"x": {"a": [1, {"b": "é\n\x1b"}], "c": {}}, "list": [[], {}, "s"], "empty": []}
    assert "".join(written) == json.dumps(doc, ensure_ascii=False, indent=2)


@pytest.mark.parametrize("user", ["", "  ", "x" * 201])
def test_an_export_refused_writes_nothing(cli: Invoke, luna: str, user: str) -> None:
    # The user is checked before the export starts: no half a JSON document on stdout.
    refused = cli("user", "export", luna, user)
    assert refused.exit_code == 2 and "user" in one_line_error(refused)
    assert refused.stdout == ""
