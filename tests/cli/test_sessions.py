"""bnity sessions BOT and bnity session show|export|delete."""

from __future__ import annotations

import json
from pathlib import Path

from boternity.cli.output import short_ids
from tests.cli.conftest import Invoke, one_line_error, parse, with_store
from tests.cli.fixtures import UNICODE, World

SESSION_FIELDS = {
    "bot_id",
    "model",
    "title",
    "id",
    "started_at",
    "ended_at",
    "total_input_tokens",
    "total_output_tokens",
    "message_count",
    "status",
    "last_activity_at",
    "user_id",
}
MESSAGE_FIELDS = {
    "session_id",
    "role",
    "content",
    "id",
    "created_at",
    "input_tokens",
    "output_tokens",
    "model",
    "stop_reason",
    "response_ms",
    "metadata",
    "seq",
}


def prefix_of(world: World, index: int) -> str:
    ids = [s.id for s in world.sessions]
    return short_ids([ids[index]], ids)[ids[index]]


def test_sessions_table_shows_prefix_title_duration_counts_and_previews(
    cli: Invoke, world: World
) -> None:
    result = cli("sessions", "helper")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for i in range(3):
        assert prefix_of(world, i) in out
    assert f"Trip to Kyōto {UNICODE}" in out
    assert "(untitled)" in out
    assert "ongoing" in out and "42m 0s" in out
    assert "completed" in out and "crashed" in out and "active" in out
    assert "60/30" in out  # tokens in/out
    assert "Hello Zoë 🚀 日本語, I live in Zürich" in out  # first message preview
    assert "→ Remember that my cat is called Ünal." in out  # last message preview
    assert "…" in out  # cut on characters
    assert "3 sessions" in out
    # newest first
    assert out.index("Crashed one") < out.index("(untitled)") < out.index("Trip to Kyōto")


def test_sessions_json_is_a_list_of_sessions_with_previews(cli: Invoke, world: World) -> None:
    data = parse(cli("sessions", "helper", "--json"))
    assert isinstance(data, list) and len(data) == 3
    first = data[-1]
    assert set(first) == SESSION_FIELDS | {"bot_slug", "first_message", "last_message"}
    assert first["title"] == f"Trip to Kyōto {UNICODE}"
    assert first["id"] == str(world.sessions[0].id)
    assert first["message_count"] == 3
    assert set(first["first_message"]) == MESSAGE_FIELDS
    assert first["first_message"]["seq"] == 1 and first["last_message"]["seq"] == 3


def test_sessions_limit_and_empty(cli: Invoke, world: World) -> None:
    data = parse(cli("sessions", "helper", "--limit", "1", "--json"))
    assert [s["title"] for s in data] == ["Crashed one"]
    limited = cli("sessions", "helper", "--limit", "1")
    assert "use --limit for more" in limited.stdout
    assert "No sessions" in cli("sessions", "other").stdout
    assert parse(cli("sessions", "other", "--json")) == []


def test_session_show_metadata_and_transcript(cli: Invoke, world: World) -> None:
    result = cli("session", "show", prefix_of(world, 0))
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert f"Trip to Kyōto {UNICODE}" in out
    assert str(world.sessions[0].id) in out
    assert "test-model" in out and "60 in / 30 out" in out
    assert "You" in out and "Assistant" not in out
    # replies are labelled with the bot's name, as chat labels them
    assert f"Helper {UNICODE}  #2" in out
    assert "Nice to meet you!\nRamen is great." in out
    assert "x" * 100 in out  # the transcript is never cut


def test_session_show_json_matches_export_shape(cli: Invoke, world: World) -> None:
    data = parse(cli("session", "show", str(world.sessions[1].id), "--json"))
    assert set(data) == {"session", "messages"}
    assert set(data["session"]) == SESSION_FIELDS
    assert data["session"]["title"] is None
    assert [m["seq"] for m in data["messages"]] == [1, 2, 3]
    assert all(set(m) == MESSAGE_FIELDS for m in data["messages"])


def test_session_ambiguous_prefix_lists_candidates(cli: Invoke, world: World) -> None:
    prefix = str(world.sessions[0].id)[:8]  # same millisecond: shared by all three
    result = cli("session", "show", prefix)
    assert result.exit_code == 3
    line = one_line_error(result)
    assert "ambiguous" in line and "3 matches" in line
    for s in world.sessions:
        assert str(s.id) in line
    assert "Trip to Kyōto" in line


def test_session_prefix_too_short_unknown_and_garbage(cli: Invoke, world: World) -> None:
    short = cli("session", "show", "01a")
    assert short.exit_code == 2
    assert "too short" in one_line_error(short)
    missing = cli("session", "show", "ffffffff")
    assert missing.exit_code == 4
    one_line_error(missing)
    garbage = cli("session", "show", "not-an-id!")
    assert garbage.exit_code == 4
    missing_full = cli("session", "show", "00000000-0000-7000-8000-000000000000")
    assert missing_full.exit_code == 4


def test_session_export_markdown_to_stdout(cli: Invoke, world: World) -> None:
    result = cli("session", "export", prefix_of(world, 0))
    assert result.exit_code == 0, result.stderr
    md = result.stdout
    assert md.startswith(f"# Trip to Kyōto {UNICODE}\n\n")
    assert "- **Model:** test-model" in md
    assert "- **Messages:** 3" in md
    assert "- **Duration:** 42m 0s" in md
    assert "### You (" in md and "### Assistant (" in md
    assert "UTC)" in md
    assert "Hello Zoë 🚀 日本語, I live in Zürich and love ramen 🍜" in md
    assert md.index("### You") < md.index("### Assistant")


def test_session_export_untitled_markdown(cli: Invoke, world: World) -> None:
    md = cli("session", "export", prefix_of(world, 1), "--format", "md").stdout
    assert md.startswith("# Untitled session\n")
    assert "**Ended:**" not in md


def test_session_export_json_to_file(cli: Invoke, world: World, tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    result = cli("session", "export", prefix_of(world, 0), "--format", "json", "-o", str(target))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert "Exported 3 messages" in result.stderr
    assert target.stat().st_mode & 0o777 == 0o600
    data = json.loads(target.read_text(encoding="utf-8"))
    assert list(data) == ["session", "messages"]
    assert data["session"]["id"] == str(world.sessions[0].id)
    assert data["messages"][0]["content"] == world.messages[world.sessions[0].id][0].content
    assert data["messages"][0]["role"] == "user"


def test_session_export_bad_format(cli: Invoke, world: World) -> None:
    result = cli("session", "export", prefix_of(world, 0), "--format", "pdf")
    assert result.exit_code == 2
    assert "pdf" in one_line_error(result)


def test_session_delete_refuses_without_yes(cli: Invoke, world: World, db_path: Path) -> None:
    result = cli("session", "delete", prefix_of(world, 0))
    assert result.exit_code == 2
    assert "--yes" in one_line_error(result)
    assert with_store(db_path, lambda s: s.chat.get_session(world.sessions[0].id)) is not None


def test_session_delete_keeps_memories(cli: Invoke, world: World, db_path: Path) -> None:
    sid = world.sessions[0].id
    data = parse(cli("session", "delete", prefix_of(world, 0), "--yes", "--json"))
    assert data == {"deleted": True, "session_id": str(sid)}
    assert with_store(db_path, lambda s: s.chat.get_session(sid)) is None
    memory = with_store(db_path, lambda s: s.memory.get_memory(world.memories[0].id))
    assert memory is not None and memory.session_id is None
    # provenance then says the session is gone
    out = cli("memories", "helper").stdout
    assert "(session deleted)" in out


def test_session_delete_prompt(cli: Invoke, world: World, db_path: Path, tty: None) -> None:
    no = cli("session", "delete", prefix_of(world, 2), input="n\n")
    assert no.exit_code == 1
    assert "Delete session 'Crashed one' (3 messages)?" in no.stderr
    yes = cli("session", "delete", prefix_of(world, 2), input="y\n")
    assert yes.exit_code == 0, yes.stderr
    assert "Deleted session" in yes.stdout
    assert with_store(db_path, lambda s: s.chat.get_session(world.sessions[2].id)) is None


def test_sessions_without_a_bot_lists_every_bots_newest_first(
    cli: Invoke, world: World, db_path: Path
) -> None:
    from boternity.models import ChatSession
    from boternity.store import Store

    async def add(store: Store) -> ChatSession:
        other = ChatSession(bot_id=world.other_bot.id, model="m", title="Other's newest")
        return await store.chat.create_session(other)

    newest = with_store(db_path, add)
    data = parse(cli("sessions", "--json"))
    assert [s["id"] for s in data] == [
        str(newest.id),
        *(str(s.id) for s in reversed(world.sessions)),
    ]
    assert [s["bot_slug"] for s in data] == ["other", "helper", "helper", "helper"]
    assert data[0]["first_message"] is None and data[0]["last_message"] is None
    assert data[-1]["first_message"]["seq"] == 1 and data[-1]["last_message"]["seq"] == 3
    limited = parse(cli("sessions", "--limit", "2", "--json"))
    assert [s["id"] for s in limited] == [s["id"] for s in data[:2]]
    table = cli("sessions").stdout
    assert "Other's newest" in table and "Bot" in table
    assert table.index("Other's newest") < table.index("Crashed one")
