"""bnity demo: a fresh machine with no API keys, the default database location and --db,
run twice."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.conftest import CLEAN_ENV, Invoke, parse

BNITY = [sys.executable, "-m", "boternity.cli"]


def fresh_env(home: Path, **extra: str) -> dict[str, str]:
    """A fresh HOME and no provider keys at all."""
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    env.update(HOME=str(home), PYTHONUTF8="1", **extra)
    return env


def bnity(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BNITY, *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        env=env,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.slow
def test_demo_on_a_fresh_machine_twice(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = fresh_env(tmp_path / "home", BOTERNITY_DATA_DIR=str(data))
    started = time.monotonic()
    first = bnity(env, "demo")
    assert time.monotonic() - started < 20
    assert first.returncode == 0, first.stderr
    out = first.stdout
    assert "offline provider" in first.stderr and "canned" in first.stderr
    assert "Traceback" not in first.stderr
    # the transcript, canned replies labelled as such
    assert "You: Hi! My name is Sam." in out
    assert "Demo: [offline] Noted: your name is Sam." in out
    assert "You: Actually, I moved last month. I live in Berlin." in out
    assert "Demo: [offline] You live in Berlin." in out
    assert "Created bot 'Demo' (demo)" in out
    # the memories, with provenance: session title and the source message
    assert "2 jobs processed, 5 memories saved, 1 superseded" in out
    berlin = next(line for line in out.splitlines() if "User lives in Berlin" in line)
    assert "“Actually, I moved last month. I live in Berlin.”" in berlin and "live" in berlin
    lisbon = next(line for line in out.splitlines() if "User lives in Lisbon" in line)
    assert "“I live in Lisbon and I work as a nurse.”" in lisbon and "superseded" in lisbon
    assert "ANTHROPIC_API_KEY" in out and "OPENAI_BASE_URL" in out and "bnity chat demo" in out
    # a question sharing no word with any memory: nothing by words, the answer by meaning
    assert (
        "“What is my job?” finds nothing by shared words; by meaning"
        " (wordllama/l2_supercat_256), “User works as a nurse” (cosine similarity 0."
    ) in " ".join(out.split())
    assert (data / "boternity.db").is_file()

    second = bnity(env, "demo")
    assert second.returncode == 0, second.stderr
    assert "Reused bot 'Demo' (demo)" in second.stdout
    sessions = bnity(env, "sessions", "demo", "--json")
    import json

    listed = json.loads(sessions.stdout)
    assert len(listed) == 2 and all(s["status"] == "completed" for s in listed)
    memories = json.loads(bnity(env, "memories", "demo", "--json").stdout)
    live = sorted(m["fact"] for m in memories)
    assert live == [
        "User likes hiking in the mountains",
        "User lives in Berlin",
        "User works as a nurse",
        "User's name is Sam",
    ]
    assert json.loads(bnity(env, "queue", "--json").stdout) == []


@pytest.mark.slow
def test_demo_uses_the_default_location_under_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = bnity(fresh_env(home), "demo")
    assert result.returncode == 0, result.stderr
    assert (home / ".boternity" / "boternity.db").is_file()


def test_demo_with_db_and_json(cli: Invoke, db_path: Path) -> None:
    first = parse(cli("demo", "--json"))
    assert first["bot_created"] is True and first["bot"]["slug"] == "demo"
    assert first["session"]["status"] == "completed"
    roles = [m["role"] for m in first["messages"]]
    assert roles[0] == "assistant" and roles.count("user") == 5
    assert first["extraction"]["memories_saved"] == 5 and first["extraction"]["superseded"] == 1
    by_fact = {m["fact"]: m for m in first["memories"]}
    berlin = by_fact["User lives in Berlin"]
    assert berlin["provenance"]["excerpt"] == "Actually, I moved last month. I live in Berlin."
    assert berlin["provenance"]["session_title"] == first["session"]["title"]
    assert by_fact["User lives in Lisbon"]["superseded_by"] == berlin["id"]
    assert db_path.is_file()
    meaning = first["found_by_meaning"]
    assert meaning["question"] == "What is my job?" and meaning["by_words"] == []
    assert meaning["embedder"] == "wordllama/l2_supercat_256" and meaning["mode"] == "hybrid"
    [hit] = meaning["hits"]
    assert hit["fact"] == "User works as a nurse" and 0 < hit["similarity"] < 1

    second = parse(cli("demo", "--json"))
    assert second["bot_created"] is False and second["bot"]["id"] == first["bot"]["id"]
    assert second["session"]["id"] != first["session"]["id"]
    soul = cli("soul", "show", "demo", "--raw")
    assert "Demo" in soul.stdout


def test_demo_plain_output_mentions_db(cli: Invoke, db_path: Path) -> None:
    result = cli("demo")
    assert result.exit_code == 0, result.stderr
    assert f"bnity --db {db_path} chat demo" in result.stdout


def test_demo_without_the_local_embedder_says_how_to_get_it(
    cli: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("boternity.embeddings.local.available", lambda: False)
    result = cli("demo")
    assert result.exit_code == 0, result.stderr
    assert (
        "by meaning, it needs the local embedder (pip install 'boternity[local]';"
        " scripts/demo installs it)."
    ) in " ".join(result.stdout.split())
    assert parse(cli("demo", "--json"))["found_by_meaning"]["hits"] == []
