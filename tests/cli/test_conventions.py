"""What users of git, gh and llm expect of a CLI, through the real ``bnity`` in a subprocess:
choices shown in help, group options that apply to subcommands, listing without a filter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from boternity.cli import runtime
from boternity.models import BotCategory, BotStatus, MemoryCategory
from tests.cli.conftest import CLEAN_ENV, FakeLlm
from tests.cli.fixtures import World

pytestmark = pytest.mark.slow

BNITY = [sys.executable, "-m", "boternity.cli"]


def env(**extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k not in (*CLEAN_ENV, "COLUMNS")}
    out.update(PYTHONUTF8="1", **extra)
    return out


def bnity(
    db: Path, *args: str, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BNITY, "--db", str(db), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        env=env(**(extra_env or {})),
        stdin=subprocess.DEVNULL,
    )


def ok_json(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_fixed_values_are_the_model_enums() -> None:
    assert tuple(c.value for c in BotCategory) == runtime.BOT_CATEGORIES
    assert tuple(s.value for s in BotStatus) == runtime.BOT_STATUSES
    assert tuple(c.value for c in MemoryCategory) == runtime.MEMORY_CATEGORIES


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (("session", "export"), "--format [md|json]"),
        (("bot", "create"), "--category [assistant|creative|research|utility]"),
        (("bot", "list"), "--status [active|disabled|archived]"),
        (("bot", "edit"), "--status [active|disabled|archived]"),
        (("remember",), "--category [preference|fact|decision|context|correction]"),
        (("queue", "run"), "--provider [anthropic|openai|offline]"),
    ],
)
def test_choices_are_shown_in_help(tmp_path: Path, args: tuple[str, ...], shown: str) -> None:
    done = bnity(tmp_path / "x.db", *args, "--help")
    assert done.returncode == 0, done.stderr
    assert shown in done.stdout


def test_a_wrong_choice_is_one_line_naming_the_choices(world: World) -> None:
    done = bnity(world.db, "remember", "helper", "a fact", "--category", "bogus")
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert "'bogus' is not one of 'preference', 'fact'" in line
    assert "MemoryEntry" not in line
    upper = bnity(world.db, "remember", "helper", "a fact", "--category", "FACT", "--json")
    assert ok_json(upper)["category"] == "fact"


def test_queue_group_json_applies_to_run(world: World, llm: FakeLlm) -> None:
    report = ok_json(bnity(world.db, "queue", "--json", "run", extra_env=llm.env()))
    assert report["claimed"] == 1 and report["completed"] == 1


def test_queue_group_json_and_bot_apply_to_retry_and_list(world: World) -> None:
    assert ok_json(bnity(world.db, "queue", "--json", "--bot", "other", "retry", "--all")) == []
    retried = ok_json(bnity(world.db, "queue", "--json", "retry", "--all"))
    assert {j["id"] for j in retried} == {str(j.id) for j in world.jobs}
    listed = ok_json(bnity(world.db, "queue", "list", "--json"))
    assert listed == ok_json(bnity(world.db, "queue", "--json"))
    assert ok_json(bnity(world.db, "queue", "--bot", "other", "list", "--json")) == []
    table = bnity(world.db, "queue", "list")
    assert table.returncode == 0 and "2 jobs" in table.stdout
    clash = bnity(world.db, "queue", "--bot", "other", "list", "--bot", "helper")
    assert clash.returncode == 2 and "two different --bot values" in clash.stderr


def test_sessions_without_a_bot_lists_every_bot(world: World, db_path: Path) -> None:
    import asyncio

    from boternity import open_store
    from boternity.models import ChatSession

    async def add() -> None:
        async with open_store(db_path, readers=1) as store:
            await store.chat.create_session(
                ChatSession(bot_id=world.other_bot.id, model="m", title="Other's chat")
            )

    asyncio.run(add())
    rows = ok_json(bnity(db_path, "sessions", "--json"))
    assert len(rows) == 4
    assert [r["bot_slug"] for r in rows] == ["other", "helper", "helper", "helper"]
    started = [r["started_at"] for r in rows]
    assert started == sorted(started, reverse=True)
    table = bnity(db_path, "sessions")
    assert table.returncode == 0, table.stderr
    header = next(line for line in table.stdout.splitlines() if "Title" in line)
    assert " Bot " in header
    assert "Other's chat" in table.stdout and "4 sessions" in table.stdout
    one = bnity(db_path, "sessions", "helper")
    assert " Bot " not in next(line for line in one.stdout.splitlines() if "Title" in line)
    assert len(ok_json(bnity(db_path, "sessions", "--limit", "2", "--json"))) == 2
