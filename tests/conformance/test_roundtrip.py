"""Any storable text and JSON metadata comes back exactly, on every backend."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from boternity import Store
from boternity.errors import ValidationError
from boternity.models import (
    MAX_FACT_LENGTH,
    MAX_MESSAGE_LENGTH,
    MAX_METADATA_BYTES,
    MAX_SOUL_LENGTH,
)
from tests.conformance import factories as f

# Everything Python can hold except what no backend can store: NUL and lone surrogates.
storable_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
    max_size=300,
)
non_blank_text = storable_text.filter(lambda s: bool(s.strip()))

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | storable_text
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(storable_text, children, max_size=4)
    ),
    max_leaves=12,
)
metadata_objects = st.dictionaries(storable_text, json_values, max_size=5)

TRICKY = [
    "",
    "'",
    '"',
    "'; DROP TABLE chat_messages; --",
    "Robert'); DELETE FROM bots WHERE ('1'='1",
    "\\x00 is not NUL, just text",
    "%s %(name)s ? ?1 $1 :name",
    "line\nbreak\r\nand\ttab",
    "emoji 🧠🔥 and ZWJ 👩‍👩‍👧",
    "combining e\u0301 vs \u00e9",
    "RTL \u202e text \u2066",
    "\ufeffBOM and \uffff and \U0010ffff",
    "  leading and trailing spaces  ",
]

ROUND_TRIP = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


async def _session(store: Store) -> tuple[uuid.UUID, uuid.UUID]:
    s = await f.new_session(store)
    return s.bot_id, s.id


@ROUND_TRIP
@given(content=storable_text)
@example(content="'; DROP TABLE chat_messages; --")
@example(content="emoji 🧠🔥 and ZWJ 👩‍👩‍👧")
async def test_message_content_round_trips(store: Store, content: str) -> None:
    _, session_id = await _session(store)
    saved = await store.chat.save_message(f.message(session_id, content))
    got = await store.chat.get_message(saved.id)
    assert got is not None and got.content == content
    (listed,) = await store.chat.get_messages(session_id)
    assert listed.content == content


@ROUND_TRIP
@given(fact=non_blank_text)
@example(fact="Robert'); DELETE FROM bots WHERE ('1'='1")
async def test_memory_fact_round_trips(store: Store, fact: str) -> None:
    bot_id, _ = await _session(store)
    mem = await store.memory.save_memory(f.memory(bot_id, fact))
    got = await store.memory.get_memory(mem.id)
    assert got is not None and got.fact == fact


@ROUND_TRIP
@given(metadata=metadata_objects)
@example(metadata={"sql": "'; DROP TABLE x; --", "q": ['"', "'"], "n": {"": None}})
@example(metadata={"big": 2**63 - 1, "small": -(2**63), "f": 0.1, "neg0": -0.0, "e": 1e300})
async def test_message_metadata_round_trips(store: Store, metadata: dict[str, Any]) -> None:
    _, session_id = await _session(store)
    saved = await store.chat.save_message(f.message(session_id, metadata=metadata))
    got = await store.chat.get_message(saved.id)
    assert got is not None and got.metadata == metadata


@ROUND_TRIP
@given(name=non_blank_text.filter(lambda s: len(s) <= 200), description=storable_text)
async def test_bot_text_round_trips(store: Store, name: str, description: str) -> None:
    bot = f.bot(name=name, slug=f"b-{uuid.uuid4().hex}", description=description, tags=[name])
    await store.bots.create_bot(bot)
    got = await store.bots.get_bot(bot.id)
    assert got is not None
    assert (got.name, got.description, got.tags) == (name, description, [name])


@pytest.mark.parametrize("text", TRICKY)
async def test_tricky_text_round_trips_in_every_text_column(store: Store, text: str) -> None:
    bot = await f.new_bot(store, description=text, user_id=text, tags=[text, text])
    s = await f.new_session(store, bot.id, title=text)
    msg = await store.chat.save_message(
        f.message(s.id, text, model=text, stop_reason=text, metadata={text: text})
    )
    soul = await store.bots.save_soul(bot.id, text, message=text)
    fact = text if text.strip() else f"fact {text!r}"
    mem = await store.memory.save_memory(f.memory(bot.id, fact, session_id=s.id))
    summ = await store.memory.save_context_summary(
        f.summary(s.id, 1, 1, summary=text if text.strip() else "x")
    )
    job = await store.memory.save_pending_extraction(f.pending(bot.id, s.id, error_message=text))
    got_bot = await store.bots.get_bot(bot.id)
    assert got_bot is not None
    assert (got_bot.description, got_bot.user_id, got_bot.tags) == (text, text, [text, text])
    got_session = await store.chat.get_session(s.id)
    assert got_session is not None and got_session.title == text
    assert await store.chat.get_message(msg.id) == msg
    assert await store.bots.get_soul(bot.id) == soul
    assert await store.memory.get_memory(mem.id) == mem
    assert await store.memory.get_latest_summary(s.id) == summ
    assert await store.memory.get_pending_extraction(job.id) == job


async def test_largest_texts_round_trip(store: Store) -> None:
    # Each field at its limit (1M characters for a message), several bytes a character in
    # UTF-8, with quotes and SQL in the middle.
    unit = "aé€🧠'\"; --\n"  # 11 characters, 19 bytes as JSON text

    def text(n: int) -> str:
        return (unit * (n // len(unit) + 1))[:n]

    big = text(MAX_MESSAGE_LENGTH)
    blob = text(MAX_METADATA_BYTES // 19 * 11)
    bot_id, session_id = await _session(store)
    msg = await store.chat.save_message(f.message(session_id, big, metadata={"blob": blob}))
    assert len((msg.metadata_json() or "").encode()) == MAX_METADATA_BYTES
    got = await store.chat.get_message(msg.id)
    assert got is not None
    assert got.content == big
    assert got.metadata == {"blob": blob}
    fact = text(MAX_FACT_LENGTH)
    mem = await store.memory.save_memory(f.memory(bot_id, fact))
    got_mem = await store.memory.get_memory(mem.id)
    assert got_mem is not None and got_mem.fact == fact
    soul_text = text(MAX_SOUL_LENGTH)
    soul = await store.bots.save_soul(bot_id, soul_text)
    got_soul = await store.bots.get_soul(bot_id)
    assert got_soul is not None and got_soul.content == soul_text
    assert got_soul.hash == soul.hash


@given(
    prefix=storable_text,
    suffix=storable_text,
    bad=st.sampled_from(["\x00", "\ud800", "\udc00", "\udfff"]),
)
@settings(max_examples=50, deadline=None)
def test_unstorable_text_is_refused_at_construction(prefix: str, suffix: str, bad: str) -> None:
    text = prefix + bad + suffix
    session_id = uuid.uuid4()
    with pytest.raises(ValidationError):
        f.message(session_id, text)
    with pytest.raises(ValidationError):
        f.message(session_id, "ok", metadata={"k": text})
    with pytest.raises(ValidationError):
        f.message(session_id, "ok", metadata={text: 1})
    with pytest.raises(ValidationError):
        f.memory(uuid.uuid4(), "fact " + text)


async def test_store_refuses_unstorable_text_before_writing(store: Store) -> None:
    bot_id, session_id = await _session(store)
    with pytest.raises(ValidationError):
        await store.bots.save_soul(bot_id, "soul\x00")
    with pytest.raises(ValidationError):
        await store.bots.get_bot_by_slug("slug\x00")
    assert await store.chat.count_messages() == 0
    assert await store.bots.list_soul_versions(bot_id) == []
    assert await store.chat.get_message_count(session_id) == 0


@pytest.mark.parametrize("metadata", [None, {}, {"": ""}, {"a": []}, {"a": {}}])
async def test_empty_metadata_shapes_round_trip(
    store: Store, metadata: dict[str, Any] | None
) -> None:
    _, session_id = await _session(store)
    saved = await store.chat.save_message(f.message(session_id, metadata=metadata))
    got = await store.chat.get_message(saved.id)
    assert got is not None
    assert got.metadata == metadata
    assert (got.metadata is None) == (metadata is None)
