"""bnity memories BOT --search … --mode …, and bnity memories reembed: the real local embedder
(WordLlama) by default, the openai embedder against the fake server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from boternity import Store
from boternity.cli.runtime import EMBEDDERS as CLI_EMBEDDERS
from boternity.cli.runtime import SEARCH_MODES as CLI_SEARCH_MODES
from boternity.embeddings import EMBEDDERS
from boternity.embeddings.local import DEFAULT_MODEL as LOCAL_MODEL
from boternity.memory import SEARCH_MODES
from boternity.repositories import ANY_USER
from tests.cli.conftest import FakeLlm, Invoke, one_line_error, parse, with_store
from tests.cli.fixtures import World
from tests.cli.test_chat import BNITY, _env
from tests.fakes.llm_server import openai_error
from tests.terminal import Terminal

FACTS = ["Plays the cello in an orchestra", "Drives an old Volvo", "Lives in Lisbon since 2019"]
NONE = {"BOTERNITY_EMBEDDINGS": "none"}


def facts(rows: list[dict[str, object]]) -> list[object]:
    return [r["fact"] for r in rows]


def helper_with_facts(cli: Invoke) -> None:
    for fact in FACTS:
        assert cli("remember", "helper", fact).exit_code == 0


def test_the_cli_knows_the_library_choices() -> None:
    assert CLI_EMBEDDERS == EMBEDDERS and CLI_SEARCH_MODES == SEARCH_MODES


def test_hybrid_by_default_finds_by_meaning_once_embedded(cli: Invoke, world: World) -> None:
    helper_with_facts(cli)
    before = cli("memories", "helper", "--search", "which instrument?", "--json")
    assert before.exit_code == 0 and parse(before) == []  # nothing embedded yet, no shared word
    assert "have no embedding for" in before.stderr
    assert "bnity memories reembed helper" in before.stderr

    data = parse(cli("memories", "reembed", "helper", "--json"))
    assert data == {
        "bot": "helper",
        "embedder": "local",
        "model": LOCAL_MODEL,
        "embedded": 6,  # the world's three and these three
        "refused": 0,
        "remaining": 0,
        "error": None,
    }
    result = cli("memories", "helper", "--search", "which instrument?", "--json")
    assert result.stderr == ""
    rows = parse(result)
    assert rows[0]["fact"] == "Plays the cello in an orchestra"
    assert rows[0]["semantic_rank"] == 1 and rows[0]["text_rank"] is None
    assert 0 < rows[0]["similarity"] <= 1 and rows[0]["score"] > 0
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    assert all(r["bot_id"] == str(world.bot.id) for r in rows)
    assert len(rows) == 6  # every embedded memory is ranked; at most --limit (10)
    one = parse(cli("memories", "helper", "--search", "what car?", "--limit", "1", "--json"))
    assert facts(one) == ["Drives an old Volvo"]
    semantic = parse(
        cli("memories", "helper", "--search", "which instrument?", "--mode", "semantic", "--json")
    )
    assert semantic[0]["score"] == semantic[0]["similarity"]
    assert facts(semantic)[0] == "Plays the cello in an orchestra"
    text = cli("memories", "helper", "--search", "which instrument?", "--mode", "text")
    assert "No matching memories" in text.stdout


def test_a_word_match_and_substrings_still_count_in_hybrid(cli: Invoke, world: World) -> None:
    helper_with_facts(cli)
    assert cli("memories", "reembed", "--json").exit_code == 0
    rows = parse(cli("memories", "helper", "--search", "Lisbon", "--json"))
    assert rows[0]["fact"] == "Lives in Lisbon since 2019" and rows[0]["text_rank"] == 1
    partial = parse(cli("memories", "helper", "--search", "RAM", "--json"))
    assert "Loves ramen 🍜" in facts(partial)  # a substring, as in text mode


def test_the_table_shows_a_score_column(cli: Invoke, world: World) -> None:
    helper_with_facts(cli)
    result = cli("memories", "helper", "--search", "Volvo")
    assert result.exit_code == 0
    assert "Score" in result.stdout and "Drives an old Volvo" in result.stdout
    assert "Score" not in cli("memories", "helper").stdout


def test_without_an_embedder_hybrid_says_so_and_semantic_fails(cli: Invoke, world: World) -> None:
    helper_with_facts(cli)
    result = cli("memories", "helper", "--search", "Volvo", "--json", env=NONE)
    assert facts(parse(result)) == ["Drives an old Volvo"]
    assert "shared words only" in result.stderr
    failed = cli("memories", "helper", "--search", "car", "--mode", "semantic", env=NONE)
    assert failed.exit_code == 1
    assert "semantic search needs an embedder" in one_line_error(failed)
    refused = cli("memories", "reembed", "--embeddings", "none")
    assert refused.exit_code == 2 and "no embedder" in one_line_error(refused)


def test_options_that_need_search_and_bad_values(cli: Invoke, world: World) -> None:
    result = cli("memories", "helper", "--mode", "text")
    assert result.exit_code == 2 and "--search" in one_line_error(result)
    bad = cli("memories", "helper", "--search", "x", "--mode", "fuzzy")
    assert bad.exit_code == 2 and "fuzzy" in one_line_error(bad)
    assert cli("memories", "helper", "--search", "x", "--limit", "0").exit_code == 2
    missing = cli("memories", "reembed", "nobody")
    assert missing.exit_code == 4


def test_help_mentions_reembed(cli: Invoke) -> None:
    assert "memories reembed" in " ".join(cli("memories", "--help").stdout.split())
    usage = cli("memories", "reembed", "--help").stdout
    assert usage.startswith("Usage: bnity memories reembed [OPTIONS] [BOT]")


def test_openai_embedder_outage_then_recovery_then_a_model_change(
    cli: Invoke, world: World, llm: FakeLlm
) -> None:
    env = {**llm.env(), "BOTERNITY_EMBEDDINGS": "openai", "BOTERNITY_EMBEDDING_MODEL": "fake"}
    helper_with_facts(cli)
    outage = openai_error(503, "embeddings down", kind="server_error")
    llm.script("embeddings", *[outage] * 4)  # the first try and 3 quick retries
    down = cli("memories", "reembed", "helper", "--json", env=env)
    assert down.exit_code == 1
    assert "embeddings down" in down.stderr and "sk-test-secret-key" not in down.stderr
    report = parse_any(down.stdout)
    assert report["embedded"] == 0 and report["remaining"] == 6
    # Hybrid still answers, by shared words, and says why.
    llm.script("embeddings", outage, outage)  # the query: one quick retry
    result = cli("memories", "helper", "--search", "Volvo", "--json", env=env)
    assert facts(parse(result)) == ["Drives an old Volvo"]
    assert "embeddings down" in result.stderr

    back = parse(cli("memories", "reembed", "helper", "--json", env=env))
    assert (back["embedded"], back["remaining"], back["model"]) == (6, 0, "fake")
    assert len(llm.of("embeddings")) == 4 + 2 + 1  # failed batch, failed query, one batch
    found = parse(cli("memories", "helper", "--search", "old Volvo", "--json", env=env))
    assert found[0]["fact"] == "Drives an old Volvo" and found[0]["semantic_rank"] == 1

    # Another model: the fake model's vectors are ignored until it is embedded again.
    local = cli("memories", "helper", "--search", "which instrument?", "--json")
    assert parse(local) == [] and "6 of the bot's memories have no embedding" in local.stderr
    assert parse(cli("memories", "reembed", "--json"))["embedded"] == 7  # the other bot's too
    rows = parse(cli("memories", "helper", "--search", "which instrument?", "--json"))
    assert rows[0]["fact"] == "Plays the cello in an orchestra"


def parse_any(stdout: str) -> dict[str, object]:
    import json

    data: dict[str, object] = json.loads(stdout)
    return data


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_reembed_progress_shows_a_model_name_with_brackets_as_written(
    tmp_path: Path, llm: FakeLlm
) -> None:
    """The progress bar's label is Rich markup: a model name is text in it, never markup (a
    name with "[/x]" crashed reembed with a traceback on a terminal)."""
    db = str(tmp_path / "tty.db")
    model = "embed[/x][bold]v2"
    env = {**_env(llm), "BOTERNITY_EMBEDDINGS": "openai", "BOTERNITY_EMBEDDING_MODEL": model}
    subprocess.run([*BNITY, "--db", db, "bot", "create", "Luna"], check=True, env=env)
    subprocess.run([*BNITY, "--db", db, "remember", "luna", "Plays the cello"], check=True, env=env)
    with Terminal([*BNITY, "--db", db, "memories", "reembed", "luna"], env) as term:
        term.read_until(b"Embedded 1 memory")
    output = term.output
    assert term.close() == 0, output.decode(errors="replace")
    assert b"Traceback" not in output and b"MarkupError" not in output


def test_an_empty_or_blank_search_matches_nothing_in_every_mode(cli: Invoke, world: World) -> None:
    """As in the library and 'bnity search': no words, no match (every fact used to be
    listed, scored as a hit, since "" is a substring of every text)."""
    helper_with_facts(cli)
    for query in ("", "   ", "\t"):
        for mode in ("hybrid", "text"):
            found = cli("memories", "helper", "--search", query, "--mode", mode, "--json", env=NONE)
            assert found.exit_code == 0 and parse(found) == [], (query, mode)


def test_reembed_replaces_vectors_a_model_made_at_another_dimension(
    cli: Invoke, world: World, llm: FakeLlm
) -> None:
    """A model served under the same name now makes vectors of another length: search says to
    run reembed, and reembed embeds them again, also for a model whose dimension is learnt
    from its first reply (it found nothing missing and did nothing)."""
    env = {**llm.env(), "BOTERNITY_EMBEDDINGS": "openai", "BOTERNITY_EMBEDDING_MODEL": "fake"}
    helper_with_facts(cli)

    async def old_vectors(store: Store) -> None:
        rows = await store.memory.get_memories(world.bot.id, user_id=ANY_USER)
        await store.memory.save_embeddings("fake", [(m.id, np.ones(8, np.float32)) for m in rows])

    with_store(world.db, old_vectors)
    failed = cli("memories", "helper", "--search", "Volvo", "--mode", "semantic", env=env)
    assert failed.exit_code == 1 and "reembed" in one_line_error(failed)
    report = parse(cli("memories", "reembed", "helper", "--json", env=env))
    assert (report["embedded"], report["remaining"]) == (6, 0)
    found = parse(
        cli("memories", "helper", "--search", "old Volvo", "--mode", "semantic", "--json", env=env)
    )
    assert found[0]["fact"] == "Drives an old Volvo"
    again = parse(cli("memories", "reembed", "helper", "--json", env=env))
    assert again["embedded"] == 0  # nothing left to replace
