"""bnity chat and ask recall memories by meaning with the embedder --embeddings (or the
environment) picks, and say so in one line when it is not the local one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from boternity import Store
from boternity.embeddings import LocalEmbedder
from boternity.memory import EmbeddingBackfill
from boternity.models import Bot, MemoryCategory, MemoryEntry
from tests.cli.conftest import FakeLlm, Invoke, with_store

CELLO = "Plays the cello in an orchestra"
QUESTION = "which instrument should I practise tonight?"


@pytest.fixture
def crowded(db_path: Path, cli: Invoke) -> str:
    """A bot with far more important memories than a prompt holds, and one unimportant
    memory about an instrument; all embedded by the local embedder."""
    assert cli("bot", "create", "Luna").exit_code == 0

    async def fill(store: Store) -> None:
        bot = await store.bots.get_bot_by_slug("luna")
        assert bot is not None
        for i in range(300):
            await store.memory.save_memory(memory(bot, f"Mentioned item {i} of the report", 5))
        await store.memory.save_memory(memory(bot, CELLO, 1))
        async with LocalEmbedder() as embedder:
            assert (await EmbeddingBackfill(store, embedder).run()).embedded == 301

    with_store(db_path, fill)
    return "luna"


def memory(bot: Bot, fact: str, importance: int) -> MemoryEntry:
    return MemoryEntry(
        bot_id=bot.id, fact=fact, category=MemoryCategory.FACT, importance=importance
    )


def system_prompt(request: dict[str, Any]) -> str:
    return "".join(str(m["content"]) for m in request["messages"] if m["role"] == "system")


def test_ask_recalls_by_meaning_with_the_local_embedder_and_not_without(
    cli: Invoke, crowded: str, llm: FakeLlm
) -> None:
    done = cli("ask", crowded, QUESTION, env=llm.env())
    assert done.exit_code == 0, done.stderr
    assert done.stderr == ""  # local, the default: nothing to announce
    assert CELLO in system_prompt(llm.of("chat")[-1])
    words_only = cli("ask", crowded, QUESTION, "--embeddings", "none", env=llm.env())
    assert words_only.exit_code == 0, words_only.stderr
    assert CELLO not in system_prompt(llm.of("chat")[-1])
    by_env = cli("ask", crowded, QUESTION, env={**llm.env(), "BOTERNITY_EMBEDDINGS": "none"})
    assert by_env.exit_code == 0, by_env.stderr
    assert CELLO not in system_prompt(llm.of("chat")[-1])
    assert llm.of("embeddings") == []


def test_chat_recalls_by_meaning_and_its_worker_embeds_new_memories(
    cli: Invoke, crowded: str, llm: FakeLlm, db_path: Path
) -> None:
    result = cli("chat", crowded, "--no-greeting", input=f"{QUESTION}\n", env=llm.env())
    assert result.exit_code == 0, result.stderr
    assert CELLO in system_prompt(llm.of("chat")[0])

    async def unembedded(store: Store) -> int:
        return await store.memory.count_without_embedding(LocalEmbedder().model)

    assert with_store(db_path, unembedded) == 0  # what the session's extraction saved too
    words_only = cli(
        "chat", crowded, "--no-greeting", "--embeddings", "none", input=f"{QUESTION}\n",
        env=llm.env(),
    )  # fmt: skip
    assert words_only.exit_code == 0, words_only.stderr
    assert CELLO not in system_prompt(llm.of("chat")[-1])


def test_the_openai_embedder_embeds_the_question_at_the_endpoint(
    cli: Invoke, crowded: str, llm: FakeLlm
) -> None:
    done = cli("ask", crowded, QUESTION, "--embeddings", "openai", env=llm.env())
    assert done.exit_code == 0, done.stderr
    assert done.stderr == ""  # chosen, not defaulted to: no notice
    [request] = llm.of("embeddings")
    assert request["input"] == [QUESTION]


def test_an_embedder_that_cannot_be_had_is_a_note_and_the_answer_still_comes(
    cli: Invoke, crowded: str
) -> None:
    done = cli("ask", crowded, QUESTION, "--embeddings", "openai", "--provider", "offline")
    assert done.exit_code == 0, done.stderr
    notes = [line for line in done.stderr.splitlines() if "embedder" in line]
    assert notes == [
        "note: the openai embedder needs OPENAI_API_KEY, or OPENAI_BASE_URL for a local"
        " OpenAI-compatible server: memories are not embedded (found by shared words only)"
    ]
    assert done.stdout.strip()


def test_a_default_other_than_local_is_announced_in_one_line(
    cli: Invoke, crowded: str, llm: FakeLlm, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("boternity.embeddings.local.available", lambda: False)
    done = cli("ask", crowded, QUESTION, env=llm.env())
    assert done.exit_code == 0, done.stderr
    assert done.stderr.splitlines() == [
        "note: Embeddings: the local embedder is not installed, using OPENAI_BASE_URL with model"
        " text-embedding-3-small (set BOTERNITY_EMBEDDING_MODEL, or BOTERNITY_EMBEDDINGS=none)."
    ]
    offline = cli("chat", crowded, "--no-greeting", "--provider", "offline", input="hi\n")
    assert offline.exit_code == 0, offline.stderr
    assert "No embedder is configured" in offline.stderr
