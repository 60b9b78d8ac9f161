"""The extraction reply parser and planner, without a model or a database."""

from __future__ import annotations

import uuid

import pytest

from boternity.memory.extraction import (
    ExtractionError,
    build_request,
    normalise,
    parse_reply,
    plan_memories,
    short_ids,
)
from boternity.models import (
    ChatMessage,
    MemoryCategory,
    MemoryEntry,
    MessageRole,
    PendingExtraction,
)

ARRAY = '[{"fact": "Lives in Berlin", "category": "fact", "importance": 4, "source_seq": 3}]'


@pytest.mark.parametrize(
    "reply",
    [
        ARRAY,
        f"```json\n{ARRAY}\n```",
        f"Here is what I found:\n{ARRAY}\nHope that helps!",
        f"```\n{ARRAY}```",
        f"Note [this is not json] then {ARRAY}",
    ],
    ids=["bare", "fenced", "prose", "fence-no-lang", "bracket-in-prose"],
)
def test_array_is_found_wherever_the_model_put_it(reply: str) -> None:
    [fact] = parse_reply(reply)
    assert (fact.fact, fact.category, fact.importance, fact.source_seq) == (
        "Lives in Berlin",
        MemoryCategory.FACT,
        4,
        3,
    )


def test_empty_array_is_a_success_and_no_array_is_a_failure() -> None:
    assert parse_reply("[]") == []
    assert parse_reply("Nothing to remember: []") == []
    with pytest.raises(ExtractionError, match="no JSON array"):
        parse_reply("I could not find anything worth remembering.")
    with pytest.raises(ExtractionError):
        parse_reply('{"fact": "not in an array"}')


def test_invalid_entries_are_skipped_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    reply = """[
        {"fact": "Likes tea", "category": "PREFERENCE", "importance": 9},
        {"fact": "", "category": "fact"},
        {"category": "fact"},
        "just a string",
        {"fact": "Bad category", "category": "gossip"},
        {"fact": "Bad importance", "importance": "high"},
        {"fact": "  Spaces   inside  ", "importance": 0.4, "supersedes": " m2 "}
    ]"""
    facts = parse_reply(reply)
    assert [(f.fact, f.category, f.importance) for f in facts] == [
        ("Likes tea", MemoryCategory.PREFERENCE, 5),
        ("Spaces inside", MemoryCategory.FACT, 1),
    ]
    assert facts[1].supersedes == "m2"
    assert sum("skipping extracted entry" in r.message for r in caplog.records) == 5


def test_normalise_ignores_case_spacing_and_trailing_punctuation() -> None:
    assert normalise("Lives in  Berlin.") == normalise("lives in berlin") == "lives in berlin"
    assert normalise("Likes tea!!") == normalise("LIKES TEA")
    assert normalise("Likes tea") != normalise("Likes green tea")


def _messages(session_id: uuid.UUID) -> list[ChatMessage]:
    texts = [("user", "Hi, I'm Ana"), ("assistant", "Hello Ana!"), ("user", "I moved to Berlin")]
    return [
        ChatMessage(session_id=session_id, role=MessageRole(role), content=text, seq=i)
        for i, (role, text) in enumerate(texts, start=5)
    ]


def test_request_shows_seq_numbers_and_short_ids() -> None:
    session_id, bot_id = uuid.uuid4(), uuid.uuid4()
    known = short_ids(
        [
            MemoryEntry(
                bot_id=bot_id, fact="Lives in Lisbon", category=MemoryCategory.FACT, importance=3
            )
        ]
    )
    request = build_request("m", _messages(session_id), known)
    [turn] = request.messages
    assert turn.role == "user"
    assert "[m1] (fact) Lives in Lisbon" in turn.content
    assert "[7] user: I moved to Berlin" in turn.content
    assert request.system is not None and "JSON array" in request.system
    assert request.temperature == 0.0


def test_plan_resolves_provenance_dedupes_and_checks_supersedes() -> None:
    session_id, bot_id = uuid.uuid4(), uuid.uuid4()
    messages = _messages(session_id)
    lisbon = MemoryEntry(
        bot_id=bot_id, fact="Lives in Lisbon", category=MemoryCategory.FACT, importance=3
    )
    known = short_ids([lisbon])
    job = PendingExtraction(session_id=session_id, bot_id=bot_id, messages_start=5, messages_end=7)
    facts = parse_reply(
        """[
        {"fact": "Name is Ana", "source_seq": 5},
        {"fact": "Lives in Berlin", "category": "correction", "source_seq": 7, "supersedes": "m1"},
        {"fact": "lives in lisbon.", "source_seq": 7},
        {"fact": "Name is ana!", "source_seq": 5},
        {"fact": "Outside the range", "source_seq": 99},
        {"fact": "Names a stranger", "supersedes": "m42"}
    ]"""
    )
    plan = plan_memories(job, messages, known, facts)
    assert [m.fact for m in plan.memories] == [
        "Name is Ana",
        "Lives in Berlin",
        "Outside the range",
        "Names a stranger",
    ]
    assert plan.skipped_duplicates == 2
    by_fact = {m.fact: m for m in plan.memories}
    assert by_fact["Name is Ana"].source_message_id == messages[0].id
    # out of range and missing source_seq fall back to the last user message of the range
    assert by_fact["Outside the range"].source_message_id == messages[2].id
    assert by_fact["Names a stranger"].source_message_id == messages[2].id
    assert plan.supersedes == {by_fact["Lives in Berlin"].id: lisbon.id}
    assert all(m.session_id == session_id and m.bot_id == bot_id for m in plan.memories)
