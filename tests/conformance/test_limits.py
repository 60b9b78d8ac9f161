"""Documented length limits: a value at its limit round-trips on every backend, one character
(or byte) more is a ValidationError naming the field and the limit, before any backend sees it.

Values use a 4-byte UTF-8 character (U+20000, a CJK letter that is its own slug) where bytes
matter to a backend, so "at the limit" is the worst case PostgreSQL's btree index and tsvector
would see.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
import string
import uuid
from collections.abc import Awaitable, Callable
from itertools import product
from pathlib import Path
from typing import Any

import pytest

from boternity import Store
from boternity.errors import ValidationError
from boternity.models import (
    LIMITS,
    MAX_FACT_LENGTH,
    MAX_METADATA_BYTES,
    MAX_SLUG_LENGTH,
    Bot,
)
from tests.conformance import factories as f

WIDE = "\U00020000"  # 4 bytes of UTF-8, a letter, NFKC- and case-stable: a valid slug

Case = Callable[[Store, int], Awaitable[Any]]


def _text(n: int) -> str:
    return WIDE * n


async def _slug(store: Store, n: int) -> Any:
    slug = _text(n)
    await f.new_bot(store, slug=slug)
    found = await store.bots.get_bot_by_slug(slug)
    return found and found.slug == slug


async def _bot_field(store: Store, n: int, name: str, value: Any) -> Any:
    made = await f.new_bot(store)
    updated = await store.bots.update_bot(dataclasses.replace(made, **{name: value}))
    got = await store.bots.get_bot(made.id)
    return got is not None and getattr(got, name) == getattr(updated, name) == value


async def _name(store: Store, n: int) -> Any:
    made = await store.bots.create_bot(Bot(name=_text(n), slug="s"))
    got = await store.bots.get_bot(made.id)
    return got is not None and got.name == _text(n)


async def _description(store: Store, n: int) -> Any:
    return await _bot_field(store, n, "description", _text(n))


async def _tag_count(store: Store, n: int) -> Any:
    return await _bot_field(store, n, "tags", [f"t{i}" for i in range(n)])


async def _tag_length(store: Store, n: int) -> Any:
    return await _bot_field(store, n, "tags", [_text(n)])


async def _user_id(store: Store, n: int) -> Any:
    return await _bot_field(store, n, "user_id", _text(n))


async def _soul(store: Store, n: int) -> Any:
    made = await f.new_bot(store)
    await store.bots.save_soul(made.id, _text(n))
    got = await store.bots.get_soul(made.id)
    return got is not None and got.content == _text(n)


async def _soul_message(store: Store, n: int) -> Any:
    made = await f.new_bot(store)
    await store.bots.save_soul(made.id, "soul", message=_text(n))
    got = await store.bots.get_soul(made.id)
    return got is not None and got.message == _text(n)


async def _session_model(store: Store, n: int) -> Any:
    made = await f.new_session(store, model=_text(n))
    got = await store.chat.get_session(made.id)
    return got is not None and got.model == _text(n)


async def _session_user(store: Store, n: int) -> Any:
    made = await f.new_session(store, user_id=_text(n))
    listed = await store.chat.list_sessions(made.bot_id, user_id=_text(n))
    return [s.id for s in listed] == [made.id] and listed[0].user_id == _text(n)


async def _memory_user(store: Store, n: int) -> Any:
    made = await f.new_bot(store)
    saved = await store.memory.save_memory(f.memory(made.id, user_id=_text(n)))
    seen = await store.memory.get_memories(made.id, user_id=_text(n))
    return seen == [saved] and (await store.memory.get_memories(made.id)) == []


async def _title(store: Store, n: int) -> Any:
    made = await f.new_session(store)
    await store.chat.update_session(dataclasses.replace(made, title=_text(n)))
    got = await store.chat.get_session(made.id)
    return got is not None and got.title == _text(n)


async def _message(store: Store, n: int, **kw: Any) -> Any:
    session = await f.new_session(store)
    saved = await store.chat.save_message(f.message(session.id, **kw))
    got = await store.chat.get_message(saved.id)
    return got is not None and all(getattr(got, k) == v for k, v in kw.items())


async def _content(store: Store, n: int) -> Any:
    return await _message(store, n, content=_text(n))


async def _message_model(store: Store, n: int) -> Any:
    return await _message(store, n, model=_text(n))


async def _stop_reason(store: Store, n: int) -> Any:
    return await _message(store, n, stop_reason=_text(n))


async def _metadata(store: Store, n: int) -> Any:
    # Compact JSON {"k":"…"} is 8 bytes around the value; "é" is 2 bytes, so odd sizes end
    # in one ASCII character.
    body = n - 8
    return await _message(store, n, metadata={"k": "é" * (body // 2) + "x" * (body % 2)})


def _words(n: int) -> str:
    """n characters of distinct short words: the largest tsvector a fact of n characters
    can make (each lexeme stored once, with its position)."""
    words = ("".join(p) for p in product(string.ascii_lowercase, repeat=4))
    text = " ".join(w for w, _ in zip(words, range(n // 5 + 1), strict=False))
    return (text + " " + "x" * n)[:n]


async def _fact(store: Store, n: int) -> Any:
    made = await f.new_bot(store)
    ok = True
    for fact in (_words(n), _text(n)):
        saved = await store.memory.save_memory(f.memory(made.id, fact))
        got = await store.memory.get_memory(saved.id)
        ok = ok and got is not None and got.fact == fact
    # The indexed fact is still searchable by any of its words.
    found = await store.memory.search_memories(made.id, "aabc")
    return ok and len(found) == 1


async def _summary(store: Store, n: int) -> Any:
    session = await f.new_session(store)
    await f.add_messages(store, session.id, 1)
    await store.memory.save_context_summary(f.summary(session.id, 1, 1, summary=_text(n)))
    got = await store.memory.get_latest_summary(session.id)
    return got is not None and got.summary == _text(n)


CASES: dict[str, Case] = {
    "Bot.slug": _slug,
    "Bot.name": _name,
    "Bot.description": _description,
    "Bot.tags (count)": _tag_count,
    "Bot.tags (each)": _tag_length,
    "Bot.user_id": _user_id,
    "SoulVersion.content": _soul,
    "SoulVersion.message": _soul_message,
    "ChatSession.model": _session_model,
    "ChatSession.title": _title,
    "ChatSession.user_id": _session_user,
    "ChatMessage.content": _content,
    "ChatMessage.model": _message_model,
    "ChatMessage.stop_reason": _stop_reason,
    "ChatMessage.metadata (bytes)": _metadata,
    "MemoryEntry.fact": _fact,
    "MemoryEntry.user_id": _memory_user,
    "ContextSummary.summary": _summary,
}


def test_every_limit_has_a_case() -> None:
    assert set(CASES) == set(LIMITS)


@pytest.mark.parametrize("field", list(LIMITS))
async def test_value_at_the_limit_round_trips(store: Store, field: str) -> None:
    assert await CASES[field](store, LIMITS[field]) is True


@pytest.mark.parametrize("field", list(LIMITS))
async def test_value_over_the_limit_is_refused_naming_field_and_limit(
    store: Store, field: str
) -> None:
    limit = LIMITS[field]
    name = field.split(" ")[0]
    with pytest.raises(ValidationError, match=rf"{re.escape(name)}\b.*\b{limit}\b"):
        await CASES[field](store, limit + 1)


async def test_the_attacks_are_refused_the_same_on_both_backends(store: Store) -> None:
    # Before the limits: PostgreSQL failed with a bare RepositoryError (index row too big,
    # tsvector too long); SQLite stored both.
    with pytest.raises(ValidationError, match=f"Bot.slug: 10240 characters.*{MAX_SLUG_LENGTH}"):
        # Random letters: PostgreSQL compresses "aaa…" under its index row limit.
        await store.bots.create_bot(Bot(name="x", slug=secrets.token_hex(5_120)))
    made = await f.new_bot(store)
    with pytest.raises(ValidationError, match=f"MemoryEntry.fact: .*{MAX_FACT_LENGTH}"):
        await store.memory.save_memory(f.memory(made.id, _words(2_000_000)))
    assert await store.bots.list_bots() == [made]
    assert await store.memory.get_memories(made.id) == []


async def test_looking_up_an_overlong_slug_finds_nothing(store: Store) -> None:
    assert await store.bots.get_bot_by_slug(secrets.token_hex(5_120)) is None


def test_metadata_limit_counts_utf8_bytes() -> None:
    session = uuid.uuid4()
    f.message(session, metadata={"k": "x" * (MAX_METADATA_BYTES - 8)})
    with pytest.raises(ValidationError, match="ChatMessage.metadata: 1000002 bytes"):
        f.message(session, metadata={"k": "é" * ((MAX_METADATA_BYTES - 6) // 2)})


def test_docs_table_lists_every_limit() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "limits.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([^`]+)` \| ([\d,]+) \|", doc, re.MULTILINE))
    assert {k: int(v.replace(",", "")) for k, v in rows.items()} == LIMITS
