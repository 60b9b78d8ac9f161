"""The domain models: frozen, slotted, keyword-built, validated on construction."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from boternity.errors import BoternityError, ValidationError
from boternity.models import (
    Bot,
    BotCategory,
    BotStatus,
    ChatMessage,
    ChatSession,
    ContextSummary,
    MemoryCategory,
    MemoryEntry,
    MessageRole,
    PendingExtraction,
    SessionStatus,
    SoulVersion,
    slugify,
    soul_hash,
)

BOT_ID = uuid.UUID("01900000-0000-7000-8000-000000000001")
SESSION_ID = uuid.UUID("01900000-0000-7000-8000-000000000002")


def _bot(**kw: Any) -> Bot:
    return Bot(**{"name": "Helper", **kw})


def _session(**kw: Any) -> ChatSession:
    return ChatSession(**{"bot_id": BOT_ID, "model": "m-1", **kw})


def _message(**kw: Any) -> ChatMessage:
    return ChatMessage(**{"session_id": SESSION_ID, "role": "user", "content": "hi", **kw})


def _memory(**kw: Any) -> MemoryEntry:
    return MemoryEntry(
        **{"bot_id": BOT_ID, "fact": "likes tea", "category": "fact", "importance": 3, **kw}
    )


def _summary(**kw: Any) -> ContextSummary:
    return ContextSummary(
        **{
            "session_id": SESSION_ID,
            "summary": "s",
            "messages_start": 1,
            "messages_end": 2,
            "token_count": 5,
            **kw,
        }
    )


def _soul(**kw: Any) -> SoulVersion:
    return SoulVersion(
        **{"bot_id": BOT_ID, "content": "c", "version": 1, "hash": soul_hash("c"), **kw}
    )


def _pending(**kw: Any) -> PendingExtraction:
    return PendingExtraction(**{"session_id": SESSION_ID, "bot_id": BOT_ID, **kw})


FACTORIES = [_bot, _session, _message, _memory, _summary, _soul, _pending]
FACTORY_IDS = [f.__name__.strip("_") for f in FACTORIES]


@pytest.mark.parametrize("make", FACTORIES, ids=FACTORY_IDS)
def test_models_are_frozen(make: Any) -> None:
    obj = make()
    with pytest.raises(dataclasses.FrozenInstanceError):
        obj.id = uuid.uuid4()


@pytest.mark.parametrize("make", FACTORIES, ids=FACTORY_IDS)
def test_models_are_slotted(make: Any) -> None:
    obj = make()
    assert not hasattr(obj, "__dict__")
    assert hasattr(type(obj), "__slots__")


@pytest.mark.parametrize(
    "cls",
    [Bot, ChatSession, ChatMessage, MemoryEntry, ContextSummary, SoulVersion, PendingExtraction],
)
def test_models_refuse_positional_arguments(cls: Any) -> None:
    with pytest.raises(TypeError):
        cls("positional")


@pytest.mark.parametrize("make", FACTORIES, ids=FACTORY_IDS)
def test_default_id_is_uuid7_and_default_times_are_utc(make: Any) -> None:
    before = datetime.now(UTC)
    obj = make()
    after = datetime.now(UTC)
    assert isinstance(obj.id, uuid.UUID)
    assert obj.id.version == 7
    created = obj.started_at if isinstance(obj, ChatSession) else obj.created_at
    assert created.utcoffset() == timedelta(0)
    assert before <= created <= after


def test_default_ids_are_unique_and_time_ordered() -> None:
    ids = [_bot().id for _ in range(200)]
    assert len(set(ids)) == 200
    assert ids == sorted(ids)


def test_bot_defaults() -> None:
    bot = _bot()
    assert bot.status is BotStatus.ACTIVE
    assert bot.category is BotCategory.ASSISTANT
    assert (bot.conversation_count, bot.total_tokens_used, bot.version_count) == (0, 0, 0)
    assert bot.description == ""
    assert bot.tags == []
    assert bot.user_id is None
    assert bot.last_active_at is None
    assert bot.updated_at.utcoffset() == timedelta(0)


def test_session_defaults() -> None:
    s = _session()
    assert s.status is SessionStatus.ACTIVE
    assert (s.message_count, s.total_input_tokens, s.total_output_tokens) == (0, 0, 0)
    assert s.started_at.utcoffset() == timedelta(0)
    assert s.ended_at is None and s.last_activity_at is None and s.title is None


def test_message_memory_pending_defaults() -> None:
    m = _message()
    assert m.seq is None and m.metadata is None and m.input_tokens is None
    mem = _memory()
    assert mem.superseded_by is None and mem.is_live and mem.is_manual is False
    assert mem.session_id is None
    p = _pending()
    assert p.attempt_count == 0 and not p.exhausted
    assert p.next_attempt_at.utcoffset() == timedelta(0)
    assert p.messages_start is None and p.messages_end is None


def test_pending_extraction_is_exhausted_after_three_attempts() -> None:
    assert not _pending(attempt_count=2).exhausted
    assert _pending(attempt_count=3).exhausted


@pytest.mark.parametrize(
    ("make", "field", "value", "expected"),
    [
        (_bot, "status", "disabled", BotStatus.DISABLED),
        (_bot, "category", "research", BotCategory.RESEARCH),
        (_session, "status", "crashed", SessionStatus.CRASHED),
        (_message, "role", "assistant", MessageRole.ASSISTANT),
        (_memory, "category", "correction", MemoryCategory.CORRECTION),
    ],
)
def test_enum_fields_accept_their_string_values(
    make: Any, field: str, value: str, expected: Any
) -> None:
    obj = make(**{field: value})
    assert getattr(obj, field) is expected


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (_bot, "status"),
        (_bot, "category"),
        (_session, "status"),
        (_message, "role"),
        (_memory, "category"),
    ],
)
def test_unknown_enum_value_is_a_validation_error(make: Any, field: str) -> None:
    with pytest.raises(ValidationError):
        make(**{field: "bogus"})


def test_validation_error_is_a_value_error_and_a_boternity_error() -> None:
    with pytest.raises(ValueError) as info:
        _memory(importance=9)
    assert isinstance(info.value, ValidationError)
    assert isinstance(info.value, BoternityError)


@pytest.mark.parametrize("importance", [0, 6, -1, 100])
def test_importance_outside_1_to_5_is_refused(importance: int) -> None:
    with pytest.raises(ValidationError):
        _memory(importance=importance)


@pytest.mark.parametrize("importance", [1, 2, 3, 4, 5])
def test_importance_1_to_5_is_accepted(importance: int) -> None:
    assert _memory(importance=importance).importance == importance


@pytest.mark.parametrize("fact", ["", "   ", "\n\t"])
def test_empty_fact_is_refused(fact: str) -> None:
    with pytest.raises(ValidationError):
        _memory(fact=fact)


@pytest.mark.parametrize("model", ["", "  "])
def test_empty_model_is_refused(model: str) -> None:
    with pytest.raises(ValidationError):
        _session(model=model)


def test_empty_bot_name_is_refused() -> None:
    with pytest.raises(ValidationError):
        _bot(name="")


@pytest.mark.parametrize(("start", "end"), [(3, 2), (0, 2), (1, 0)])
def test_bad_summary_range_is_refused(start: int, end: int) -> None:
    with pytest.raises(ValidationError):
        _summary(messages_start=start, messages_end=end)


def test_single_message_summary_range_is_accepted() -> None:
    assert _summary(messages_start=4, messages_end=4).messages_end == 4


@pytest.mark.parametrize(("start", "end"), [(3, 2), (1, None), (None, 2)])
def test_bad_pending_range_is_refused(start: int | None, end: int | None) -> None:
    with pytest.raises(ValidationError):
        _pending(messages_start=start, messages_end=end)


BAD_TEXTS = {"nul": "a\x00b", "lone_surrogate": "a\ud800b", "low_surrogate": "\udfff"}

TEXT_FIELDS = [
    (_bot, "name"),
    (_bot, "description"),
    (_bot, "user_id"),
    (_session, "model"),
    (_session, "title"),
    (_message, "content"),
    (_message, "model"),
    (_message, "stop_reason"),
    (_memory, "fact"),
    (_summary, "summary"),
    (_soul, "content"),
    (_soul, "message"),
    (_pending, "error_message"),
]


@pytest.mark.parametrize("bad", BAD_TEXTS.values(), ids=BAD_TEXTS.keys())
@pytest.mark.parametrize(
    ("make", "field"), TEXT_FIELDS, ids=[f"{m.__name__.strip('_')}.{f}" for m, f in TEXT_FIELDS]
)
def test_unstorable_text_is_refused_in_every_text_field(make: Any, field: str, bad: str) -> None:
    with pytest.raises(ValidationError):
        make(**{field: bad})


@pytest.mark.parametrize("bad", BAD_TEXTS.values(), ids=BAD_TEXTS.keys())
def test_unstorable_text_is_refused_in_tags(bad: str) -> None:
    with pytest.raises(ValidationError):
        _bot(tags=["ok", bad])


@pytest.mark.parametrize("bad", BAD_TEXTS.values(), ids=BAD_TEXTS.keys())
@pytest.mark.parametrize(
    "shape",
    [
        lambda s: {"k": s},
        lambda s: {s: 1},
        lambda s: {"outer": {"inner": [1, s]}},
        lambda s: {"list": [[s]]},
    ],
    ids=["value", "key", "nested_value", "nested_list"],
)
def test_unstorable_text_is_refused_in_metadata_strings(shape: Any, bad: str) -> None:
    with pytest.raises(ValidationError):
        _message(metadata=shape(bad))


@pytest.mark.parametrize(
    "metadata",
    [
        {"x": float("nan")},
        {"x": float("inf")},
        {1: "int key"},
        {"x": object()},
        ["not", "a", "dict"],
    ],
    ids=["nan", "inf", "int_key", "object", "list"],
)
def test_non_json_metadata_is_refused(metadata: Any) -> None:
    with pytest.raises(ValidationError):
        _message(metadata=metadata)


TIME_FIELDS = [
    (_bot, "created_at"),
    (_bot, "updated_at"),
    (_bot, "last_active_at"),
    (_session, "started_at"),
    (_session, "ended_at"),
    (_session, "last_activity_at"),
    (_message, "created_at"),
    (_memory, "created_at"),
    (_summary, "created_at"),
    (_soul, "created_at"),
    (_pending, "next_attempt_at"),
    (_pending, "last_attempt_at"),
]


@pytest.mark.parametrize(
    ("make", "field"), TIME_FIELDS, ids=[f"{m.__name__.strip('_')}.{f}" for m, f in TIME_FIELDS]
)
def test_naive_datetimes_are_refused(make: Any, field: str) -> None:
    naive = datetime(2024, 1, 2, 3, 4, 5)
    with pytest.raises(ValidationError):
        make(**{field: naive})


def test_aware_non_utc_datetimes_are_normalised_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    local = datetime(2024, 1, 2, 12, 0, tzinfo=plus_two)
    s = _session(started_at=local)
    assert s.started_at == local
    assert s.started_at.utcoffset() == timedelta(0)
    assert s.started_at.hour == 10


_OFFSETS = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@pytest.mark.parametrize(
    ("make", "field"), TIME_FIELDS, ids=[f"{m.__name__.strip('_')}.{f}" for m, f in TIME_FIELDS]
)
@pytest.mark.parametrize(
    "moment",
    [datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))),
     datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5)))],
    ids=["year-1+05:00", "year-9999-05:00"],
)  # fmt: skip
def test_aware_datetime_outside_utc_is_a_validation_error_naming_the_field(
    make: Any, field: str, moment: datetime
) -> None:
    # Was a bare OverflowError from astimezone(UTC).
    with pytest.raises(ValidationError, match=rf"\.{field}: .* outside the datetimes"):
        make(**{field: moment})


@settings(max_examples=300)
@given(
    moment=st.datetimes(min_value=datetime.min, max_value=datetime.max, timezones=_OFFSETS),
    index=st.integers(min_value=0, max_value=len(TIME_FIELDS) - 1),
)
@example(moment=datetime(1, 1, 1, tzinfo=timezone(timedelta(minutes=1))), index=0)
@example(moment=datetime.max.replace(tzinfo=timezone(timedelta(minutes=-1))), index=5)
@example(moment=datetime.min.replace(tzinfo=UTC), index=3)
@example(moment=datetime.max.replace(tzinfo=UTC), index=7)
def test_any_aware_datetime_is_kept_as_the_same_instant_or_refused(
    moment: datetime, index: int
) -> None:
    make, field = TIME_FIELDS[index]
    try:  # does the instant exist as a UTC datetime, other than the two reserved ones?
        utc = moment.replace(tzinfo=None) - cast(timedelta, moment.utcoffset())
        storable = utc not in (datetime.min, datetime.max)
    except OverflowError:
        storable = False
    if not storable:
        with pytest.raises(ValidationError, match=rf"\.{field}: "):
            make(**{field: moment})
        return
    value = getattr(make(**{field: moment}), field)
    assert value == moment
    assert value.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Bot v2.0", "bot-v2-0"),
        ("My  Cool  Bot!", "my-cool-bot"),
        ("  Leading and trailing  ", "leading-and-trailing"),
        ("snake_case_name", "snake-case-name"),
        ("Mixed_ separators -_- here", "mixed-separators-here"),
        ("ALLCAPS", "allcaps"),
    ],
)
def test_slug_defaults_to_slugify_of_name(name: str, slug: str) -> None:
    assert slugify(name) == slug
    assert _bot(name=name).slug == slug


def test_slugify_is_idempotent() -> None:
    for name in ["Bot v2.0", "a_ b", "x -- y", "Ünïcode Bøt"]:
        once = slugify(name)
        assert slugify(once) == once


def test_explicit_slug_is_kept_and_must_be_a_slug() -> None:
    assert _bot(name="Anything", slug="custom-slug").slug == "custom-slug"
    with pytest.raises(ValidationError):
        _bot(slug="Not A Slug")


def test_name_without_slug_characters_needs_an_explicit_slug() -> None:
    with pytest.raises(ValidationError):
        _bot(name="!!!")
    assert _bot(name="!!!", slug="bangs").slug == "bangs"


def test_string_ids_are_parsed_and_bad_ids_refused() -> None:
    text = "01900000-0000-7000-8000-0000000000aa"
    assert _session(bot_id=text).bot_id == uuid.UUID(text)
    with pytest.raises(ValidationError):
        _session(bot_id="not-a-uuid")


@pytest.mark.parametrize(
    ("make", "field", "value"),
    [
        (_session, "message_count", -1),
        (_session, "total_input_tokens", True),
        (_message, "input_tokens", -5),
        (_message, "seq", 0),
        (_bot, "total_tokens_used", 2**63),
        (_soul, "version", 0),
        (_pending, "attempt_count", -1),
    ],
)
def test_bad_integers_are_refused(make: Any, field: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        make(**{field: value})


def test_memory_cannot_supersede_itself() -> None:
    mem = _memory()
    with pytest.raises(ValidationError):
        dataclasses.replace(mem, superseded_by=mem.id)


def test_replace_revalidates() -> None:
    mem = _memory()
    with pytest.raises(ValidationError):
        dataclasses.replace(mem, importance=0)
    with pytest.raises(ValidationError):
        dataclasses.replace(_message(), content="bad\x00")
    with pytest.raises(ValidationError):
        dataclasses.replace(_session(), status=cast(Any, "bogus"))
    changed = dataclasses.replace(_bot(), status=cast(Any, "archived"))
    assert changed.status is BotStatus.ARCHIVED


def test_replace_keeps_identity_fields() -> None:
    s = _session()
    t = dataclasses.replace(s, title="new")
    assert (t.id, t.started_at, t.bot_id) == (s.id, s.started_at, s.bot_id)


def test_soul_hash_is_sha256_of_utf8() -> None:
    import hashlib

    assert soul_hash("héllo") == hashlib.sha256("héllo".encode()).hexdigest()


def test_metadata_json_is_compact_and_keeps_unicode() -> None:
    m = _message(metadata={"k": "é", "n": [1, 2.5, None, True]})
    assert m.metadata_json() == '{"k":"é","n":[1,2.5,null,true]}'
    assert _message().metadata_json() is None


def test_bot_tags_must_be_a_list_of_str() -> None:
    with pytest.raises(ValidationError):
        _bot(tags="abc")
    with pytest.raises(ValidationError):
        _bot(tags=[1, 2])


@settings(max_examples=300, deadline=None)
@given(name=st.text(max_size=60))
def test_any_name_gives_a_valid_bot_or_asks_for_a_slug(name: str) -> None:
    """slugify must be idempotent, or Bot refuses its own default slug."""
    try:
        bot = Bot(name=name)
    except ValidationError as exc:
        assert "\x00" in name or not name.strip() or not slugify(name) or "surrogate" in str(exc)
        return
    assert bot.slug == slugify(name) == slugify(bot.slug)
    assert bot.slug and not bot.slug.startswith("-") and not bot.slug.endswith("-")
    assert "--" not in bot.slug


def test_bot_name_is_at_most_200_characters() -> None:
    assert len(_bot(name="x" * 200).name) == 200
    with pytest.raises(ValidationError):
        _bot(name="x" * 201)


def test_metadata_nested_deeper_than_64_levels_is_refused() -> None:
    ok: dict[str, Any] = {}
    for _ in range(60):
        ok = {"k": ok}
    assert _message(metadata=ok).metadata == ok
    deep: Any = "leaf"
    for _ in range(70):
        deep = [deep]
    with pytest.raises(ValidationError):
        _message(metadata={"k": deep})


def test_empty_metadata_is_kept_distinct_from_none() -> None:
    assert _message(metadata={}).metadata_json() == "{}"
