"""Extraction with an embedder, on every backend, with the real local embedder (WordLlama) and
the model behind the fake server: the request shows the memories closest in meaning to the
conversation (not every memory), and a fact that repeats a live memory by meaning is not
saved again. Without an embedder, or while it is down, extraction is as it was."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest

from boternity import Store
from boternity.embeddings import LocalEmbedder, OpenAIEmbedder
from boternity.errors import ValidationError
from boternity.ids import utc_now
from boternity.llm import AnthropicProvider, RetryPolicy
from boternity.memory import EmbeddingBackfill, ExtractionWorker
from boternity.memory.similar import DUPLICATE_THRESHOLD, KNOWN_BY_MEANING
from boternity.memory.worker import MAX_KNOWN_MEMORIES
from boternity.models import (
    Bot,
    ChatMessage,
    ChatSession,
    MemoryCategory,
    MemoryEntry,
    MemoryEventKind,
    MessageRole,
)
from tests.fakes.llm_server import FakeLlmServer, RecordedRequest, Reply, anthropic_message
from tests.memory.test_worker import conversation, enqueue


class Model:
    """The fake server's model: each extraction request is kept, and answered by ``answer``
    (the request's text -> the JSON array of facts)."""

    def __init__(self) -> None:
        self.prompts: list[str] = []
        self.answer: Callable[[str], list[dict[str, object]]] = lambda _: []

    def __call__(self, request: RecordedRequest) -> Reply:
        prompt = request.json["messages"][0]["content"]
        self.prompts.append(prompt)
        return anthropic_message(json.dumps(self.answer(prompt)))


@pytest.fixture
def model() -> Model:
    return Model()


@pytest.fixture
async def provider(model: Model) -> AsyncIterator[AnthropicProvider]:
    async with (
        FakeLlmServer(default=model) as server,
        AnthropicProvider(
            api_key="k", base_url=server.base_url, retry=RetryPolicy(max_retries=0)
        ) as p,
    ):
        yield p


def shown(prompt: str) -> dict[str, str]:
    """The known memories a request shows: short id -> fact."""
    return dict(re.findall(r"^\[(m\d+)\] \(\w+\) (.*)$", prompt, re.MULTILINE))


async def save(store: Store, bot: Bot, fact: str, importance: int = 3) -> MemoryEntry:
    return await store.memory.save_memory(
        MemoryEntry(bot_id=bot.id, fact=fact, category=MemoryCategory.FACT, importance=importance)
    )


def fact(text: str, **extra: object) -> dict[str, object]:
    return {"fact": text, "category": "fact", "importance": 3, "source_seq": 1, **extra}


async def live_facts(store: Store, bot: Bot) -> list[str]:
    return sorted(m.fact for m in await store.memory.get_memories(bot.id))


async def test_the_request_shows_the_memories_closest_in_meaning_and_supersedes_the_right_one(
    store: Store, provider: AnthropicProvider, model: Model, local_embedder: LocalEmbedder
) -> None:
    bot, session, _ = await conversation(store, "I moved last month: I live in Berlin now", "ok")
    for i in range(300):  # important, and about something else
        await save(store, bot, f"Mentioned item {i} of the quarterly report", importance=5)
    lisbon = await save(store, bot, "Lives in Lisbon", importance=1)
    await EmbeddingBackfill(store, local_embedder).run(bot_id=bot.id)

    def supersede_lisbon(prompt: str) -> list[dict[str, object]]:
        ids = [sid for sid, text in shown(prompt).items() if text == "Lives in Lisbon"]
        return [fact("Lives in Berlin", supersedes=ids[0] if ids else None)]

    model.answer = supersede_lisbon
    await enqueue(store, session, 1, 2)
    report = await ExtractionWorker(store, provider, embedder=local_embedder).run_once()
    assert (report.completed, report.memories_saved, report.superseded) == (1, 1, 1)
    known = shown(model.prompts[-1])
    assert len(known) == KNOWN_BY_MEANING and "Lives in Lisbon" in known.values()
    now = await store.memory.get_memory(lisbon.id)
    assert now is not None and now.superseded_by is not None

    # Without an embedder: the most important memories, as before; Lisbon is not among them.
    bot, session, _ = await conversation(store, "I moved last month: I live in Berlin now", "ok")
    for i in range(300):
        await save(store, bot, f"Mentioned item {i} of the quarterly report", importance=5)
    await save(store, bot, "Lives in Lisbon", importance=1)
    await enqueue(store, session, 1, 2)
    report = await ExtractionWorker(store, provider).run_once()
    assert (report.memories_saved, report.superseded) == (1, 0)
    known = shown(model.prompts[-1])
    assert len(known) == MAX_KNOWN_MEMORIES and "Lives in Lisbon" not in known.values()


#: Cosine similarity with the local embedder in brackets (benchmarks/recall_eval.py's pairs).
EXISTING = ["Chloé is a nurse in Lyon", "Ana is planning a trip to Japan in April"]
REPLY = [
    fact("Chloé works as a nurse in Lyon"),  # repeats the first (0.973)
    fact("Ana is planning a trip to Japan in November"),  # an update of the second (0.937)
    fact("Farid grows tomatoes in his allotment"),
    # Like the one before (0.977), but facts of one reply are not compared with each other:
    # with no memory to keep its words, one taken for a repeat would be lost.
    fact("Farid has tomatoes growing on his allotment"),
]


async def test_a_fact_repeating_a_memory_by_meaning_is_not_saved_and_the_rest_are_embedded(
    store: Store, provider: AnthropicProvider, model: Model, local_embedder: LocalEmbedder
) -> None:
    assert DUPLICATE_THRESHOLD == 0.94
    bot, session, _ = await conversation(store, "news about my friends", "tell me")
    for text in EXISTING:
        await save(store, bot, text)
    await EmbeddingBackfill(store, local_embedder).run(bot_id=bot.id)
    model.answer = lambda _: REPLY
    await enqueue(store, session, 1, 2)
    worker = ExtractionWorker(store, provider, embedder=local_embedder)
    [job] = await store.memory.claim_pending_extractions(
        limit=1, lease=worker.lease, now=utc_now() + timedelta(seconds=1)
    )
    result = await worker.extract(job)
    assert (result.saved, result.embedded, result.repeated) == (3, 3, 1)
    nurse = next(m for m in await store.memory.get_memories(bot.id) if m.fact == EXISTING[0])
    history = await store.memory.get_memory_history(nurse.id)
    assert [(e.event, e.fact, e.job_id) for e in history[1:]] == [
        (MemoryEventKind.REPEATED, "Chloé works as a nurse in Lyon", job.id)
    ]
    assert await live_facts(store, bot) == sorted([*EXISTING, *(str(f["fact"]) for f in REPLY[1:])])
    # The new memories were embedded with their job: nothing is left for the backfill.
    assert await store.memory.count_without_embedding(local_embedder.model, bot_id=bot.id) == 0

    # Without an embedder, only the same text is a duplicate: all four are saved, and the
    # same fact again is recorded as a repeat.
    bot, session, _ = await conversation(store, "news about my friends", "tell me")
    for text in EXISTING:
        await save(store, bot, text)
    await enqueue(store, session, 1, 2)
    model.answer = lambda _: [*REPLY, fact("chloé is a NURSE in Lyon!")]
    report = await ExtractionWorker(store, provider).run_once()
    assert (report.memories_saved, report.repeated) == (4, 1)
    nurse = next(m for m in await store.memory.get_memories(bot.id) if m.fact == EXISTING[0])
    history = await store.memory.get_memory_history(nurse.id)
    assert [(e.event, e.fact) for e in history[1:]] == [
        (MemoryEventKind.REPEATED, "chloé is a NURSE in Lyon!")
    ]


async def test_an_update_naming_the_memory_it_replaces_is_never_a_repeat(
    store: Store, provider: AnthropicProvider, model: Model, local_embedder: LocalEmbedder
) -> None:
    bot, session, _ = await conversation(store, "I changed my plans", "ok")
    april = await save(store, bot, "Ana is planning a trip to Japan in April")
    await EmbeddingBackfill(store, local_embedder).run(bot_id=bot.id)
    worker = ExtractionWorker(store, provider, embedder=local_embedder, duplicate_threshold=0.5)

    model.answer = lambda _: [fact("Ana is planning a trip to Japan in November")]
    await enqueue(store, session, 1, 2)
    assert (await worker.run_once()).memories_saved == 0  # 0.937 >= 0.5: a repeat here
    model.answer = lambda _: [fact("Ana is planning a trip to Japan in November", supersedes="m1")]
    await enqueue(store, session, 1, 2)
    report = await worker.run_once()
    assert (report.memories_saved, report.superseded) == (1, 1)
    now = await store.memory.get_memory(april.id)
    assert now is not None and now.superseded_by is not None


async def test_an_embedder_that_is_down_leaves_extraction_as_without_one(
    store: Store, provider: AnthropicProvider, model: Model
) -> None:
    bot, session, _ = await conversation(store, "news about my friends", "tell me")
    for text in EXISTING:
        await save(store, bot, text)
    async with FakeLlmServer() as down:
        url = down.openai_base_url
    async with OpenAIEmbedder(
        api_key="k", base_url=url, model="m", retry=RetryPolicy(max_retries=0)
    ) as embedder:
        model.answer = lambda _: REPLY
        await enqueue(store, session, 1, 2)
        report = await ExtractionWorker(store, provider, embedder=embedder).run_once()
    assert (report.completed, report.memories_saved) == (1, 4)
    assert set(shown(model.prompts[-1]).values()) == set(EXISTING)  # the most important
    assert report.embedding is not None and report.embedding.error is not None


async def test_memories_without_vectors_of_the_model_are_shown_by_importance(
    store: Store, provider: AnthropicProvider, model: Model, local_embedder: LocalEmbedder
) -> None:
    """Before any memory has a vector (a new model, say), meaning cannot choose."""
    bot, session, _ = await conversation(store, "news about my friends", "tell me")
    for text in EXISTING:
        await save(store, bot, text)
    await enqueue(store, session, 1, 2)
    worker = ExtractionWorker(store, provider, embedder=local_embedder, embed_per_pass=0)
    await worker.run_once()
    assert set(shown(model.prompts[-1]).values()) == set(EXISTING)


async def test_the_threshold_is_a_cosine_similarity_from_the_argument_or_the_environment(
    store: Store, provider: AnthropicProvider, local_embedder: LocalEmbedder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    def threshold(**kwargs: object) -> float:
        worker = ExtractionWorker(store, provider, embedder=local_embedder, **kwargs)  # type: ignore[arg-type]
        assert worker.similar is not None
        return worker.similar.threshold

    assert threshold() == DUPLICATE_THRESHOLD
    assert threshold(duplicate_threshold=1) == 1.0
    monkeypatch.setenv("BOTERNITY_DUPLICATE_THRESHOLD", " 0.8 ")
    assert threshold() == 0.8
    assert threshold(duplicate_threshold=0.9) == 0.9
    for bad in (0, -0.5, 1.01, float("nan"), True, "0.9"):
        with pytest.raises(ValidationError, match="duplicate_threshold must be a cosine"):
            threshold(duplicate_threshold=bad)
    for bad_env in ("high", "0", "2", "nan", "inf"):
        monkeypatch.setenv("BOTERNITY_DUPLICATE_THRESHOLD", bad_env)
        with pytest.raises(ValidationError, match="BOTERNITY_DUPLICATE_THRESHOLD must be"):
            threshold()


async def test_meaning_keeps_the_users_scope(
    store: Store, provider: AnthropicProvider, model: Model, local_embedder: LocalEmbedder
) -> None:
    """Ben's job shows the model only what a conversation with Ben sees, and his fact that
    repeats Ana's memory is his own new memory; one that repeats the bot's own is a repeat,
    recorded as his."""
    bot, _, _ = await conversation(store, "hello")
    anas = await store.memory.save_memory(
        MemoryEntry(bot_id=bot.id, fact=EXISTING[0], category=MemoryCategory.FACT,
                    importance=3, user_id="ana")
    )  # fmt: skip
    shared = await save(store, bot, EXISTING[1])
    await EmbeddingBackfill(store, local_embedder).run(bot_id=bot.id)
    session = await store.chat.create_session(ChatSession(bot_id=bot.id, model="m", user_id="ben"))
    await store.chat.save_message(
        ChatMessage(session_id=session.id, role=MessageRole.USER, content="Chloé, a nurse?")
    )
    model.answer = lambda _: [REPLY[0], fact("Ana is planning a trip to Japan in april")]
    await enqueue(store, session, 1, 1)
    report = await ExtractionWorker(store, provider, embedder=local_embedder).run_once()
    assert set(shown(model.prompts[-1]).values()) == {EXISTING[1]}  # not Ana's
    assert (report.memories_saved, report.repeated) == (1, 1)
    seen_by_ben = await store.memory.get_memories(bot.id, user_id="ben")
    [bens] = [m for m in seen_by_ben if m.user_id == "ben"]
    assert bens.fact == REPLY[0]["fact"]
    assert len(await store.memory.get_memory_history(anas.id)) == 1  # nothing of Ben's
    repeat = (await store.memory.get_memory_history(shared.id))[-1]
    assert (repeat.event, repeat.user_id) == (MemoryEventKind.REPEATED, "ben")


def test_facts_past_those_compared_by_meaning_are_checked_by_their_text() -> None:
    """A reply longer than ``MAX_COMPARED_FACTS``: only its first facts were embedded."""
    import uuid

    import numpy as np

    from boternity.memory.extraction import ExtractedFact, plan_memories
    from boternity.memory.similar import FactMeaning
    from boternity.models import PendingExtraction

    bot_id = uuid.uuid4()
    tea = MemoryEntry(bot_id=bot_id, fact="Likes tea", category=MemoryCategory.FACT, importance=3)
    job = PendingExtraction(bot_id=bot_id, session_id=uuid.uuid4())
    facts = [ExtractedFact(text, MemoryCategory.FACT, 3) for text in ("A", "B", "likes TEA")]
    vector = np.ones(2, np.float32) / np.sqrt(2)
    meaning = FactMeaning([vector], [(tea, 0.2)], threshold=0.94)  # the first fact only
    plan = plan_memories(job, [], {"m1": tea}, facts, meaning=meaning)
    assert [m.fact for m in plan.memories] == ["A", "B"]
    assert [(new.fact, old) for new, old in plan.repeated] == [("likes TEA", tea)]
    assert list(plan.vectors.values()) == [vector]
