"""bnity memories, remember, forget, memory delete."""

from __future__ import annotations

from pathlib import Path

from boternity import Store
from boternity.cli.output import short_ids
from boternity.models import MAX_FACT_LENGTH, MemoryEntry
from tests.cli.conftest import Invoke, one_line_error, parse, with_store
from tests.cli.fixtures import UNICODE, World, all_memory_ids

MEMORY_FIELDS = {
    "bot_id",
    "fact",
    "category",
    "importance",
    "session_id",
    "source_message_id",
    "superseded_by",
    "is_manual",
    "id",
    "created_at",
    "user_id",
}


def test_memories_table_shows_fact_category_importance_and_provenance(
    cli: Invoke, world: World
) -> None:
    result = cli("memories", "helper")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert f"Lives in Zürich {UNICODE}" in out
    assert "Prefers short answers" in out and "manual" in out
    assert "Other bot fact" not in out
    assert "★★★★★" in out and "★★★☆☆" in out
    assert f"“Trip to Kyōto {UNICODE}”" in out  # session title
    assert "Hello Zoë 🚀 日本語, I live in Zürich" in out  # source message excerpt
    assert "3 memories" in out
    assert out.index("Lives in Zürich") < out.index("Prefers short") < out.index("Loves ramen")


def test_memories_json_has_model_fields_and_provenance(cli: Invoke, world: World) -> None:
    data = parse(cli("memories", "helper", "--json"))
    assert [m["importance"] for m in data] == [5, 4, 3]
    assert all(set(m) == MEMORY_FIELDS | {"provenance"} for m in data)
    extracted = data[0]
    assert extracted["session_id"] == str(world.sessions[0].id)
    assert extracted["provenance"]["manual"] is False
    assert extracted["provenance"]["session_title"] == f"Trip to Kyōto {UNICODE}"
    assert extracted["provenance"]["excerpt"].startswith("Hello Zoë")
    manual = data[1]
    assert manual["is_manual"] is True and manual["provenance"]["manual"] is True


def test_memories_search_is_case_insensitive_substring(cli: Invoke, world: World) -> None:
    data = parse(cli("memories", "helper", "--search", "ZÜRICH", "--json"))
    assert [m["fact"] for m in data] == [f"Lives in Zürich {UNICODE}"]
    assert (
        parse(cli("memories", "helper", "--search", "🍜", "--json"))[0]["fact"] == "Loves ramen 🍜"
    )
    none = cli("memories", "helper", "--search", "nothing whatsoever")
    assert "No matching memories" in none.stdout
    partial = parse(cli("memories", "helper", "--search", "RAM", "--json"))
    assert [m["fact"] for m in partial] == ["Loves ramen 🍜"]  # substring, not a word
    words = parse(cli("memories", "helper", "--search", "ramen Zürich", "--json"))
    assert {m["fact"] for m in words} == {"Loves ramen 🍜", f"Lives in Zürich {UNICODE}"}


def test_memories_by_session_and_all(cli: Invoke, world: World, db_path: Path) -> None:
    sid = str(world.sessions[0].id)
    data = parse(cli("memories", "helper", "--session", sid, "--json"))
    assert sorted(m["fact"] for m in data) == ["Lives in Zürich " + UNICODE, "Loves ramen 🍜"]

    async def supersede(store: Store) -> MemoryEntry:
        new = MemoryEntry(
            bot_id=world.bot.id,
            fact="Loves ramen and udon 🍜",
            category="fact",  # type: ignore[arg-type]
            importance=3,
            session_id=world.sessions[0].id,
        )
        return await store.memory.supersede_memory(world.memories[1].id, new)

    with_store(db_path, supersede)
    live = parse(cli("memories", "helper", "--json"))
    assert "Loves ramen 🍜" not in [m["fact"] for m in live]
    everything = parse(cli("memories", "helper", "--all", "--json"))
    assert "Loves ramen 🍜" in [m["fact"] for m in everything]
    table = cli("memories", "helper", "--all")
    assert "superseded" in table.stdout


def test_memories_session_of_another_bot_is_refused(cli: Invoke, world: World) -> None:
    result = cli("memories", "other", "--session", str(world.sessions[0].id))
    assert result.exit_code == 2
    assert "another bot" in one_line_error(result)


def test_remember_defaults_to_manual_fact_importance_4(
    cli: Invoke, world: World, db_path: Path
) -> None:
    data = parse(cli("remember", "other", f"Likes {UNICODE}", "--json"))
    assert set(data) == MEMORY_FIELDS
    assert data["is_manual"] is True
    assert data["importance"] == 4
    assert data["category"] == "fact"
    assert data["session_id"] is None
    assert data["fact"] == f"Likes {UNICODE}"
    text = cli("remember", "other", "Second", "--category", "preference", "--importance", "2")
    assert text.exit_code == 0
    assert "preference, importance 2" in text.stdout
    listed = cli("memories", "other").stdout
    assert f"Likes {UNICODE}" in listed and "manual" in listed


def test_remember_refuses_a_fact_the_bot_already_remembers(cli: Invoke, world: World) -> None:
    """The same rule as /remember and memory.remember (checked and saved in one step)."""
    assert cli("remember", "other", "Likes green tea").exit_code == 0
    again = cli("remember", "other", "likes  GREEN tea.")
    assert again.exit_code == 5
    assert "already remembered" in one_line_error(again)
    facts = [m["fact"] for m in parse(cli("memories", "other", "--json"))]
    assert facts.count("Likes green tea") == 1 and len(facts) == 2


def test_remember_rejects_bad_values(cli: Invoke, world: World) -> None:
    assert cli("remember", "other", "x", "--importance", "6").exit_code == 2
    bad_category = cli("remember", "other", "x", "--category", "gossip")
    assert bad_category.exit_code == 2
    assert "gossip" in one_line_error(bad_category)
    empty = cli("remember", "other", "   ")
    assert empty.exit_code == 2
    one_line_error(empty)


def test_remember_refuses_a_fact_over_the_limit_naming_it(
    cli: Invoke, world: World, db_path: Path
) -> None:
    before = with_store(db_path, lambda s: s.memory.get_memories(world.other_bot.id))
    result = cli("remember", "other", "word " * (MAX_FACT_LENGTH // 5) + "over")
    assert result.exit_code == 2
    assert f"memory fact: {MAX_FACT_LENGTH + 4} characters" in one_line_error(result)
    assert "MemoryEntry" not in one_line_error(result)  # no internal class names
    assert str(MAX_FACT_LENGTH) in one_line_error(result)
    assert with_store(db_path, lambda s: s.memory.get_memories(world.other_bot.id)) == before


def test_forget_refuses_without_yes(cli: Invoke, world: World, db_path: Path) -> None:
    result = cli("forget", "helper")
    assert result.exit_code == 2
    assert "--yes" in one_line_error(result)
    assert len(with_store(db_path, lambda s: s.memory.get_memories(world.bot.id))) == 3


def test_forget_with_yes_deletes_all(cli: Invoke, world: World, db_path: Path) -> None:
    data = parse(cli("forget", "helper", "--yes", "--json"))
    assert data == {
        "bot": "helper",
        "bot_id": str(world.bot.id),
        "deleted": 3,
        "by_user": [{"user_id": None, "memories": 3}],
    }
    assert with_store(db_path, lambda s: s.memory.get_memories(world.bot.id)) == []
    # nothing left: no prompt, nothing deleted
    again = cli("forget", "helper")
    assert again.exit_code == 0
    assert "No memories" in again.stdout
    # the other bot is untouched
    assert len(with_store(db_path, lambda s: s.memory.get_memories(world.other_bot.id))) == 1


def test_forget_prompt(cli: Invoke, world: World, tty: None) -> None:
    no = cli("forget", "helper", input="n\n")
    assert no.exit_code == 1
    assert "Delete all 3 memories of" in no.stderr and "(helper)? This" in no.stderr
    yes = cli("forget", "helper", input="y\n")
    assert yes.exit_code == 0
    assert "Deleted 3 memories of 'helper'." in yes.stdout


def test_memory_delete_by_prefix(cli: Invoke, world: World, db_path: Path) -> None:
    target = world.memories[0]
    prefix = short_ids([target.id], all_memory_ids(world))[target.id]
    refused = cli("memory", "delete", prefix)
    assert refused.exit_code == 2
    data = parse(cli("memory", "delete", prefix, "--yes", "--json"))
    assert data == {"deleted": True, "memory_id": str(target.id)}
    assert with_store(db_path, lambda s: s.memory.get_memory(target.id)) is None
    gone = cli("memory", "delete", str(target.id), "--yes")
    assert gone.exit_code == 4
    one_line_error(gone)


def test_memory_delete_prompt_shows_fact(cli: Invoke, world: World, tty: None) -> None:
    result = cli("memory", "delete", str(world.memories[0].id), input="n\n")
    assert result.exit_code == 1
    assert f"Lives in Zürich {UNICODE}" in result.stderr


def test_memory_show_text_and_json(cli: Invoke, world: World) -> None:
    target = world.memories[0]
    text = cli("memory", "show", str(target.id))
    assert text.exit_code == 0, text.stderr
    assert f"Lives in Zürich {UNICODE}" in text.stdout
    assert "★★★★★ (5/5)" in text.stdout
    assert "Trip to Kyōto" in text.stdout
    data = parse(cli("memory", "show", str(target.id), "--json"))
    assert set(data) == MEMORY_FIELDS | {"provenance", "history"}
    assert data["provenance"]["session_title"] == f"Trip to Kyōto {UNICODE}"
    assert [e["event"] for e in data["history"]] == ["added"]
    assert "added by" in text.stdout
    manual = parse(cli("memory", "show", str(world.manual.id if world.manual else ""), "--json"))
    assert manual["provenance"]["manual"] is True
