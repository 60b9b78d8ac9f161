"""IdIndex: ids by prefix from the primary key, on every backend."""

from __future__ import annotations

import uuid

import pytest

from boternity import Store
from boternity.errors import ValidationError
from boternity.models import Bot, ChatSession


def _with(hex_digits: str) -> uuid.UUID:
    return uuid.UUID(hex_digits.ljust(32, "0")[:32])


async def test_prefixes_are_ranges_of_the_key_and_neighbours_bracket_an_id(store: Store) -> None:
    a = await store.bots.create_bot(Bot(name="A", id=_with("0abc1")))
    b = await store.bots.create_bot(Bot(name="B", id=_with("0abc2")))
    c = await store.bots.create_bot(Bot(name="C", id=_with("0abd")))
    assert await store.ids.with_prefix("bot", "0abc") == [a.id, b.id]
    assert await store.ids.with_prefix("bot", "0ab") == [a.id, b.id, c.id]
    assert await store.ids.with_prefix("bot", "0ab", limit=1) == [a.id]
    assert await store.ids.with_prefix("bot", "0abc2") == [b.id]
    assert await store.ids.with_prefix("bot", "f") == []
    assert await store.ids.with_prefix("bot", "") == [a.id, b.id, c.id]
    assert await store.ids.with_prefix("bot", a.id.hex) == [a.id]
    assert await store.ids.neighbours("bot", [b.id, a.id, c.id, b.id]) == {
        a.id: (None, b.id),
        b.id: (a.id, c.id),
        c.id: (b.id, None),
    }
    between = _with("0abc15")  # not stored: its neighbours all the same
    assert await store.ids.neighbours("bot", iter([between])) == {between: (a.id, b.id)}
    assert await store.ids.neighbours("bot", []) == {}


async def test_session_prefixes_narrow_to_one_bot(store: Store) -> None:
    one = await store.bots.create_bot(Bot(name="One"))
    two = await store.bots.create_bot(Bot(name="Two"))
    s1 = await store.chat.create_session(ChatSession(bot_id=one.id, model="m", id=_with("5e1")))
    s2 = await store.chat.create_session(ChatSession(bot_id=two.id, model="m", id=_with("5e2")))
    assert await store.ids.with_prefix("session", "5e") == [s1.id, s2.id]
    assert await store.ids.with_prefix("session", "5e", bot_id=two.id) == [s2.id]
    assert await store.ids.with_prefix("memory", "5e") == []
    assert await store.ids.with_prefix("job", "5e") == []


@pytest.mark.parametrize("digits", ["0ABC", "xyz", "0" * 33, "' OR 1=1 --"])
async def test_a_prefix_that_is_not_hex_is_refused(store: Store, digits: str) -> None:
    with pytest.raises(ValidationError):
        await store.ids.with_prefix("bot", digits)


async def test_an_unknown_kind_is_refused(store: Store) -> None:
    with pytest.raises(ValidationError, match="unknown kind of id"):
        await store.ids.with_prefix("users", "0")  # type: ignore[arg-type]
