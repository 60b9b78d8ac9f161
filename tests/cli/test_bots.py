"""bnity bot … and bnity soul …"""

from __future__ import annotations

from pathlib import Path

import pytest

from boternity import Store
from boternity.cli.output import short_ids
from tests.cli.conftest import Invoke, one_line_error, parse, with_store
from tests.cli.fixtures import UNICODE, World

BOT_FIELDS = {
    "name",
    "slug",
    "description",
    "status",
    "category",
    "tags",
    "user_id",
    "id",
    "conversation_count",
    "total_tokens_used",
    "version_count",
    "created_at",
    "updated_at",
    "last_active_at",
}


def test_bot_create_prints_slug_and_id_and_stores_the_bot(cli: Invoke, db_path: Path) -> None:
    result = cli("bot", "create", "Research Helper", "--description", "digs [bold]deep[/]")
    assert result.exit_code == 0, result.stderr
    assert "research-helper" in result.stdout
    bot = with_store(db_path, lambda s: s.bots.get_bot_by_slug("research-helper"))
    assert bot is not None
    assert bot.description == "digs [bold]deep[/]"
    assert str(bot.id) in result.stdout


def test_bot_create_json_has_model_fields_with_string_ids_and_iso_times(cli: Invoke) -> None:
    data = parse(cli("bot", "create", UNICODE, "--slug", "zoe", "--category", "creative", "--json"))
    assert set(data) == BOT_FIELDS
    assert data["name"] == UNICODE
    assert data["slug"] == "zoe"
    assert data["category"] == "creative"
    assert isinstance(data["id"], str) and len(data["id"]) == 36
    assert data["created_at"].endswith("+00:00")


def test_bot_create_with_soul_from_file_and_from_stdin(
    cli: Invoke, db_path: Path, tmp_path: Path
) -> None:
    soul = tmp_path / "soul.md"
    soul.write_text(f"You are {UNICODE}.\n", encoding="utf-8")
    assert cli("bot", "create", "A", "--soul", str(soul)).exit_code == 0
    assert cli("bot", "create", "B", "--soul", "-", input="From stdin ✨").exit_code == 0

    async def souls(store: Store) -> list[str]:
        out = []
        for slug in ("a", "b"):
            bot = await store.bots.get_bot_by_slug(slug)
            assert bot is not None and bot.version_count == 1
            soul = await store.bots.get_soul(bot.id)
            assert soul is not None
            out.append(soul.content)
        return out

    assert with_store(db_path, souls) == [f"You are {UNICODE}.\n", "From stdin ✨"]


def test_bot_create_duplicate_slug_is_a_conflict(cli: Invoke, world: World) -> None:
    result = cli("bot", "create", "Helper")
    assert result.exit_code == 5
    assert one_line_error(result).startswith("error: ")


def test_bot_create_bad_category_is_a_validation_error(cli: Invoke) -> None:
    result = cli("bot", "create", "X", "--category", "wizard")
    assert result.exit_code == 2
    assert "wizard" in one_line_error(result)


def test_bot_create_soul_file_not_utf8_is_refused(cli: Invoke, tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\x00broken")
    result = cli("bot", "create", "X", "--soul", str(bad))
    assert result.exit_code == 2
    assert "UTF-8" in one_line_error(result)


def test_bot_list_table_and_json(cli: Invoke, world: World) -> None:
    result = cli("bot", "list")
    assert result.exit_code == 0
    assert "helper" in result.stdout and "other" in result.stdout
    assert UNICODE in result.stdout
    assert "2 bots" in result.stdout
    data = parse(cli("bot", "list", "--json"))
    assert isinstance(data, list)
    assert [b["slug"] for b in data] == ["other", "helper"]  # newest first
    assert all(set(b) == BOT_FIELDS for b in data)


def test_bot_list_empty_and_filtered(cli: Invoke, world: World) -> None:
    assert parse(cli("bot", "list", "--status", "archived", "--json")) == []
    result = cli("bot", "list", "--status", "archived")
    assert "No bots" in result.stdout


@pytest.mark.parametrize("how", ["slug", "id", "prefix", "hyphenless-prefix", "upper"])
def test_bot_show_accepts_slug_id_and_prefix(cli: Invoke, world: World, how: str) -> None:
    full = str(world.bot.id)
    prefix = short_ids([world.bot.id], [world.other_bot.id])[world.bot.id]
    assert len(prefix) < len(full)
    ref = {
        "slug": "helper",
        "id": full,
        "prefix": prefix,
        "hyphenless-prefix": prefix.replace("-", ""),
        "upper": prefix.upper(),
    }[how]
    data = parse(cli("bot", "show", ref, "--json"))
    assert data["id"] == full
    text = cli("bot", "show", ref)
    assert text.exit_code == 0
    assert full in text.stdout and UNICODE in text.stdout


@pytest.mark.parametrize(
    "ref", ["nobody", "abc", "ffffffff", "00000000-0000-7000-8000-000000000000"]
)
def test_bot_show_unknown_is_not_found(cli: Invoke, world: World, ref: str) -> None:
    result = cli("bot", "show", ref)
    assert result.exit_code == 4
    line = one_line_error(result)
    assert "no bot with" in line and f"'{ref}'" in line


def test_bot_ambiguous_prefix_lists_both_bots(cli: Invoke, world: World) -> None:
    result = cli("bot", "show", str(world.bot.id)[:8])
    assert result.exit_code == 3
    line = one_line_error(result)
    assert "(helper)" in line and "(other)" in line


def test_bot_edit_changes_fields(cli: Invoke, world: World) -> None:
    data = parse(
        cli(
            "bot", "edit", "helper", "--name", "Renamed", "--status", "disabled",
            "--tag", "a", "--tag", "日本", "--json",
        )
    )  # fmt: skip
    assert data["name"] == "Renamed"
    assert data["status"] == "disabled"
    assert data["tags"] == ["a", "日本"]
    assert data["slug"] == "helper"
    cleared = parse(cli("bot", "edit", "helper", "--clear-tags", "--json"))
    assert cleared["tags"] == []


def test_bot_edit_without_changes_or_with_clashing_slug_fails(cli: Invoke, world: World) -> None:
    nothing = cli("bot", "edit", "helper")
    assert nothing.exit_code == 2
    assert "nothing to change" in one_line_error(nothing)
    clash = cli("bot", "edit", "helper", "--slug", "other")
    assert clash.exit_code == 5
    one_line_error(clash)
    bad = cli("bot", "edit", "helper", "--status", "sleeping")
    assert bad.exit_code == 2


def test_bot_delete_refuses_without_yes_on_non_tty(
    cli: Invoke, world: World, db_path: Path
) -> None:
    result = cli("bot", "delete", "helper")
    assert result.exit_code == 2
    assert "--yes" in one_line_error(result)
    assert with_store(db_path, lambda s: s.bots.get_bot(world.bot.id)) is not None


def test_bot_delete_prompt_no_keeps_yes_deletes(
    cli: Invoke, world: World, db_path: Path, tty: None
) -> None:
    declined = cli("bot", "delete", "helper", input="n\n")
    assert declined.exit_code == 1
    assert "Delete bot" in declined.stderr and "3 sessions" in declined.stderr
    assert "Cancelled." in declined.stderr
    assert with_store(db_path, lambda s: s.bots.get_bot(world.bot.id)) is not None
    accepted = cli("bot", "delete", "helper", input="y\n")
    assert accepted.exit_code == 0, accepted.stderr
    assert with_store(db_path, lambda s: s.bots.get_bot(world.bot.id)) is None


def test_bot_delete_with_yes_and_json(cli: Invoke, world: World, db_path: Path) -> None:
    data = parse(cli("bot", "delete", "other", "--yes", "--json"))
    assert data == {"deleted": True, "bot_id": str(world.other_bot.id), "slug": "other"}
    assert with_store(db_path, lambda s: s.bots.get_bot(world.other_bot.id)) is None


# --- souls ----------------------------------------------------------------------------------------


def test_soul_show_latest_raw_and_json(cli: Invoke, world: World) -> None:
    raw = cli("soul", "show", "helper", "--raw")
    assert raw.exit_code == 0
    assert raw.stdout == "You are helpful. ✨\n"
    shown = cli("soul", "show", "helper")
    assert shown.stdout == "You are helpful. ✨\n"
    assert "v1" in shown.stderr
    data = parse(cli("soul", "show", "helper", "--json"))
    assert set(data) == {"bot_id", "content", "version", "hash", "message", "id", "created_at"}
    assert data["version"] == 1 and data["message"] == "first"


def test_soul_set_from_file_and_stdin_then_history(
    cli: Invoke, world: World, tmp_path: Path
) -> None:
    path = tmp_path / "soul.txt"
    path.write_text(f"Be brief, {UNICODE}.", encoding="utf-8")
    result = cli("soul", "set", "helper", str(path), "-m", "shorter")
    assert result.exit_code == 0, result.stderr
    assert "v2" in result.stdout
    again = cli("soul", "set", "helper", str(path))
    assert "unchanged" in again.stdout
    piped = parse(cli("soul", "set", "helper", "-", "--json", input="Third ✨"))
    assert piped["version"] == 3 and piped["content"] == "Third ✨"
    history = parse(cli("soul", "history", "helper", "--json"))
    assert [v["version"] for v in history] == [1, 2, 3]
    assert history[1]["message"] == "shorter"
    table = cli("soul", "history", "helper")
    assert "shorter" in table.stdout and "v3" in table.stdout
    old = cli("soul", "show", "helper", "--version", "2", "--raw")
    assert old.stdout == f"Be brief, {UNICODE}.\n"


def test_soul_show_missing_version_and_missing_soul(cli: Invoke, world: World) -> None:
    missing = cli("soul", "show", "helper", "--version", "7")
    assert missing.exit_code == 4
    assert "version 7" in one_line_error(missing)
    none = cli("soul", "show", "other")
    assert none.exit_code == 4
    assert "no soul" in one_line_error(none)


def test_soul_set_missing_file(cli: Invoke, world: World, tmp_path: Path) -> None:
    result = cli("soul", "set", "helper", str(tmp_path / "nope.txt"))
    assert result.exit_code == 2
    assert "cannot read" in one_line_error(result)


def test_user_text_is_never_read_as_rich_markup(cli: Invoke, db_path: Path) -> None:
    name = "[bold red]Boom[/] [link=x]y"
    assert cli("bot", "create", name, "--slug", "boom").exit_code == 0
    for args in (("bot", "list"), ("bot", "show", "boom")):
        result = cli(*args)
        assert result.exit_code == 0, result.stderr
        assert name in result.stdout
