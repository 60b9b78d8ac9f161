"""Extraction replies written by an attacker (or a broken model), through the real worker, the
fake LLM server over HTTP and a real store on every backend.

Whatever the reply, ``run_once`` returns; the job ends done or keeps an ``error_message``; an
invalid item is skipped (with a logged reason) and the job's valid items are kept.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from boternity import Store
from boternity.llm import AnthropicProvider
from boternity.memory import ExtractionWorker
from boternity.memory.extraction import MAX_FACTS_PER_JOB
from boternity.models import Bot, MemoryCategory, MemoryEntry, PendingExtraction
from tests.fakes.llm_server import FakeLlmServer, anthropic_message
from tests.memory.test_worker import conversation, enqueue, provider, server

__all__ = ["provider", "server"]  # the worker tests' fixtures: fake server, no retries


async def run_reply(
    store: Store, server: FakeLlmServer, provider: AnthropicProvider, reply: str
) -> tuple[Bot, PendingExtraction, list[str], Any]:
    """One job, answered with ``reply``: (bot, job, live facts, report). Fails the test when
    the job is left claimed without an error."""
    bot, session, _ = await conversation(store, "I live in Porto", "Nice", "I love cats")
    job = await enqueue(store, session, 1, 3)
    server.enqueue(anthropic_message(reply))
    report = await ExtractionWorker(store, provider).run_once()
    assert report.claimed == 1
    left = await store.memory.get_pending_extraction(job.id)
    assert left is None or left.error_message, "the job was left without its error"
    facts = [m.fact for m in await store.memory.get_memories(bot.id)]
    return bot, job, facts, report


async def test_an_overflowing_importance_is_skipped_and_the_rest_kept(
    store: Store, server: FakeLlmServer, provider: AnthropicProvider
) -> None:
    """The reply of issue 9: 1e999 is infinity to json, and round(inf) raised OverflowError."""
    reply = (
        '[{"fact":"Lives in Porto","importance":1e999},'
        ' {"fact":"Loves cats","importance":4,"source_seq":3}]'
    )
    _, job, facts, report = await run_reply(store, server, provider, reply)
    assert (report.completed, report.failed, report.memories_saved) == (1, 0, 1)
    assert facts == ["Loves cats"]
    assert await store.memory.get_pending_extraction(job.id) is None


VALID = {"fact": "Loves cats", "category": "preference", "importance": 3, "source_seq": 3}

HOSTILE_ITEMS: dict[str, Any] = {
    "nan": '{"fact": "Lives in Porto", "importance": NaN}',
    "-infinity": '{"fact": "Lives in Porto", "importance": -Infinity}',
    "importance-str": '{"fact": "Lives in Porto", "importance": "5"}',
    "importance-bool": '{"fact": "Lives in Porto", "importance": true}',
    "importance-list": '{"fact": "Lives in Porto", "importance": [5]}',
    "fact-number": '{"fact": 12}',
    "fact-list": '{"fact": ["Lives in Porto"]}',
    "fact-nul": '{"fact": "Lives in\\u0000 Porto"}',
    "fact-surrogate": '{"fact": "Lives in \\ud800 Porto"}',
    "fact-escape-seq": '{"fact": "Lives in \\u001b[31mPorto"}',
    "fact-c1-control": '{"fact": "Lives in \\u009bPorto"}',
    "fact-empty": '{"fact": ""}',
    "fact-whitespace": '{"fact": " \\n\\t "}',
    "fact-too-long": json.dumps({"fact": "Lives in Porto " + "very " * 200}),
    "category-unknown": '{"fact": "Lives in Porto", "category": "gossip"}',
    "category-object": '{"fact": "Lives in Porto", "category": {"a": 1}}',
    "nested-array": '[{"fact": "Lives in Porto"}]',
    "string": '"Lives in Porto"',
    "null": "null",
}


@pytest.mark.parametrize("item", HOSTILE_ITEMS.values(), ids=HOSTILE_ITEMS.keys())
async def test_an_invalid_item_is_skipped_with_a_reason_and_valid_items_are_kept(
    store: Store,
    server: FakeLlmServer,
    provider: AnthropicProvider,
    caplog: pytest.LogCaptureFixture,
    item: str,
) -> None:
    caplog.set_level(logging.WARNING, logger="boternity.memory")
    reply = f"[{item}, {json.dumps(VALID)}]"
    _, _, facts, report = await run_reply(store, server, provider, reply)
    assert (report.completed, report.memories_saved) == (1, 1)
    assert facts == ["Loves cats"]
    assert any("skipping extracted entry 0" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("importance", "stored"),
    [("10000000000000000000000000000000", 5), ("-7", 1), ("2.5", 2), ("4.6", 5), ("1e300", 5)],
)
async def test_out_of_range_finite_importance_is_clamped(
    store: Store, server: FakeLlmServer, provider: AnthropicProvider, importance: str, stored: int
) -> None:
    reply = f'[{{"fact": "Lives in Porto", "importance": {importance}}}]'
    bot, _, facts, _ = await run_reply(store, server, provider, reply)
    assert facts == ["Lives in Porto"]
    [memory] = await store.memory.get_memories(bot.id)
    assert memory.importance == stored


@pytest.mark.parametrize(
    "seq", ["-1", "0", "99999999999999999999999999", "1.0", "true", '"1"', "[1]", "1e999"]
)
async def test_a_bad_source_seq_falls_back_to_the_last_user_message(
    store: Store, server: FakeLlmServer, provider: AnthropicProvider, seq: str
) -> None:
    bot, session, msgs = await conversation(store, "I live in Porto", "Nice", "I love cats")
    await enqueue(store, session, 1, 3)
    server.enqueue(anthropic_message(f'[{{"fact": "Lives in Porto", "source_seq": {seq}}}]'))
    assert (await ExtractionWorker(store, provider).run_once()).memories_saved == 1
    [memory] = await store.memory.get_memories(bot.id)
    assert memory.source_message_id == msgs[2].id


async def test_supersedes_can_only_name_the_bots_own_live_memories(
    store: Store, server: FakeLlmServer, provider: AnthropicProvider
) -> None:
    bot, session, _ = await conversation(store, "I moved to Porto", "Nice")
    old = await store.memory.save_memory(
        MemoryEntry(
            bot_id=bot.id, fact="Lives in Lisbon", category=MemoryCategory.FACT, importance=3
        )
    )
    stranger = await store.bots.create_bot(Bot(name=f"Other {uuid.uuid4().hex[:6]}"))
    foreign = await store.memory.save_memory(
        MemoryEntry(
            bot_id=stranger.id, fact="Lives in Oslo", category=MemoryCategory.FACT, importance=3
        )
    )
    await enqueue(store, session, 1, 2)
    items: list[dict[str, object]] = [
        {"fact": "Lives in Porto", "supersedes": "m1"},
        {"fact": "Lives in Porto now", "supersedes": "m1"},  # m1 is taken by the first item
        {"fact": "Works in Porto", "supersedes": str(foreign.id)},
        {"fact": "Walks in Porto", "supersedes": str(old.id)},  # only short ids count
        {"fact": "Eats in Porto", "supersedes": "m99"},
        {"fact": "Sails in Porto", "supersedes": "m" + "1" * 100_000},
        {"fact": "Swims in Porto", "supersedes": 1},
        {"fact": "Reads in Porto", "supersedes": ["m1"]},
    ]
    server.enqueue(anthropic_message(json.dumps(items)))
    report = await ExtractionWorker(store, provider).run_once()
    assert (report.completed, report.memories_saved, report.superseded) == (1, 8, 1)
    live = {m.fact: m for m in await store.memory.get_memories(bot.id)}
    assert set(live) == {str(i["fact"]) for i in items}
    stored_old = await store.memory.get_memory(old.id)
    assert stored_old is not None and stored_old.superseded_by == live["Lives in Porto"].id
    assert await store.memory.get_memory(foreign.id) == foreign  # untouched


async def test_duplicates_within_one_reply_are_saved_once(
    store: Store, server: FakeLlmServer, provider: AnthropicProvider
) -> None:
    reply = json.dumps([{"fact": "Lives in Porto"}, {"fact": "lives in  PORTO."}] * 20)
    _, _, facts, report = await run_reply(store, server, provider, reply)
    assert facts == ["Lives in Porto"] and report.memories_saved == 1


async def test_a_huge_reply_saves_a_capped_number_and_says_what_was_dropped(
    store: Store,
    server: FakeLlmServer,
    provider: AnthropicProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="boternity.memory")
    reply = json.dumps([{"fact": f"Fact number {i}", "importance": 3} for i in range(5000)])
    _, job, facts, report = await run_reply(store, server, provider, reply)
    assert report.completed == 1
    assert report.memories_saved == len(facts) == MAX_FACTS_PER_JOB
    assert report.dropped == 5000 - MAX_FACTS_PER_JOB
    assert set(facts) == {f"Fact number {i}" for i in range(MAX_FACTS_PER_JOB)}
    [warning] = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert str(job.id) in warning and str(5000 - MAX_FACTS_PER_JOB) in warning


@pytest.mark.parametrize(
    "reply",
    [
        "[" * 100_000 + "]" * 100_000,
        '[{"fact": "Lives in Porto", "category": ' + "[" * 50_000 + "]" * 50_000 + "}]",
        "x[" * 200_000,
        '["' * 200_000,
        "[" + "1," * 500_000,
        '[{"fact": "Lives in Porto", "importance": 1' + "0" * 5000 + "}]",
    ],
    ids=["deep-array", "deep-in-item", "many-brackets", "many-strings", "unclosed", "4300-digits"],
)
async def test_pathological_json_never_escapes_the_worker(
    store: Store, server: FakeLlmServer, provider: AnthropicProvider, reply: str
) -> None:
    _, _, facts, report = await run_reply(store, server, provider, reply)
    assert report.completed + report.failed == 1
    assert facts == []


@pytest.mark.slow
async def test_a_50_mb_reply_is_refused_with_an_error(
    store: Store, server: FakeLlmServer, provider: AnthropicProvider
) -> None:
    item = json.dumps({"fact": "Lives in Porto", "importance": 3}) + ","
    reply = "[" + item * (50_000_000 // len(item)) + "{}]"
    _, job, facts, report = await run_reply(store, server, provider, reply)
    assert report.failed == 1 and facts == []
    left = await store.memory.get_pending_extraction(job.id)
    assert left is not None and left.error_message is not None
    assert "too long" in left.error_message


# --- any reply at all -----------------------------------------------------------------------

_nasty = st.sampled_from(
    [math.inf, -math.inf, math.nan, 1e308, -(10**40), True, "5", "", "\x00", "\ud800"]
)
_scalars = (
    _nasty
    | st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["m1", "m2", "fact", "preference", "correction", "\x00", "\ud800", " "])
)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_facts = (
    st.sampled_from(["Lives in Porto", "Loves cats", "a\x00b", "x" * 600, "\x1b[2J", " ", ""])
    | st.text(max_size=40)
    | _json
)
_item = st.fixed_dictionaries(
    {"fact": _facts, "importance": _nasty | st.integers(-3, 9) | st.none() | _json},
    optional={
        "category": st.sampled_from([c.value for c in MemoryCategory]) | _json,
        "source_seq": st.integers(-2, 5) | _nasty | _json,
        "supersedes": st.sampled_from(["m1", "m2", "m3"]) | _json,
    },
)


def _render(value: object) -> str:
    return json.dumps(value, allow_nan=True)


_replies = (
    st.lists(_item, min_size=1, max_size=6).map(_render)
    | st.lists(_item | _json, max_size=6).map(_render)
    | _json.map(_render)
    | st.text(max_size=80)
    | st.tuples(
        st.text(max_size=20), st.lists(_item, max_size=4).map(_render), st.text(max_size=20)
    ).map(lambda t: f"{t[0]}\n```json\n{t[1]}\n```\n{t[2]}")
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(reply=_replies)
async def test_no_reply_can_make_run_once_raise_or_lose_a_jobs_error(
    store: Store, server: FakeLlmServer, provider: AnthropicProvider, reply: str
) -> None:
    bot, session, _ = await conversation(store, "I live in Porto", "Nice", "I love cats")
    for fact in ("Lives in Lisbon", "Likes dogs"):
        await store.memory.save_memory(
            MemoryEntry(bot_id=bot.id, fact=fact, category=MemoryCategory.FACT, importance=3)
        )
    job = await enqueue(store, session, 1, 3)
    server.enqueue(anthropic_message(reply))
    report = await ExtractionWorker(store, provider).run_once(bot_id=bot.id)
    assert report.claimed == 1 and report.completed + report.failed == 1
    left = await store.memory.get_pending_extraction(job.id)
    assert (left is None) == (report.completed == 1)
    assert left is None or left.error_message
    for m in await store.memory.get_memories(bot.id):
        assert m.fact.strip() and "\x00" not in m.fact and 1 <= m.importance <= 5
        assert not math.isnan(m.importance)
