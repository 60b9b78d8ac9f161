"""Set-based reads, on every backend: rows for many ids at once, counts, the store-wide
session listing. What a listing needs in one query instead of one (or two) per row."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import pytest

from boternity import Store
from boternity.errors import ValidationError
from tests.conformance import factories as f


async def test_all_sessions_are_listed_newest_first_across_bots(store: Store) -> None:
    assert await store.chat.list_all_sessions() == []
    one, two = await f.new_bot(store), await f.new_bot(store)
    a = await f.new_session(store, one.id, started_at=f.at(1))
    b = await f.new_session(store, two.id, started_at=f.at(3))
    c = await f.new_session(store, one.id, started_at=f.at(2))
    tie = uuid.UUID(int=a.id.int + 1)  # same start as a, larger id: listed before a
    d = await f.new_session(store, two.id, started_at=f.at(1), id=tie)
    assert await store.chat.list_all_sessions() == [b, c, d, a]
    assert await store.chat.list_all_sessions(limit=2) == [b, c]
    assert await store.chat.list_all_sessions(limit=2, offset=1) == [c, d]
    assert await store.chat.list_all_sessions(offset=3) == [a]
    with pytest.raises(ValidationError):
        await store.chat.list_all_sessions(limit=-1)


async def test_sessions_and_messages_by_ids_leave_out_what_is_missing(store: Store) -> None:
    bot = await f.new_bot(store)
    s1, s2 = await f.new_session(store, bot.id), await f.new_session(store, bot.id)
    m1 = await f.add_messages(store, s1.id, 2)
    m2 = await f.add_messages(store, s2.id, 1)
    unknown = uuid.uuid4()
    assert await store.chat.get_sessions_by_ids([s2.id, unknown, s1.id, s2.id]) == {
        s1.id: await store.chat.get_session(s1.id),
        s2.id: await store.chat.get_session(s2.id),
    }
    wanted = [m1[1].id, m2[0].id, unknown]
    assert await store.chat.get_messages_by_ids(m for m in wanted) == {
        m1[1].id: m1[1],
        m2[0].id: m2[0],
    }
    assert await store.chat.get_messages_by_ids([str(m1[0].id)]) == {m1[0].id: m1[0]}  # type: ignore[list-item]
    assert await store.chat.get_sessions_by_ids([]) == {}
    assert await store.chat.get_messages_by_ids(set()) == {}


async def test_a_long_list_of_ids_is_one_parameter(store: Store) -> None:
    """No limit on the number of bound parameters applies: the list is one value."""
    messages = await f.add_messages(store, (await f.new_session(store)).id, 3)
    wanted = [uuid.uuid4() for _ in range(40_000)] + [m.id for m in messages]
    assert await store.chat.get_messages_by_ids(wanted) == {m.id: m for m in messages}


@pytest.mark.parametrize(
    "ids",
    [
        uuid.uuid4(),  # one id, not a collection of them
        "0123456789abcdef0123456789abcdef",  # text is iterable, but not ids
        ["' OR 1=1 --"],
        [None],
        [1, 2],
        None,
    ],
)
async def test_a_list_of_ids_that_is_not_one_is_refused(store: Store, ids: Any) -> None:
    for call in (
        store.chat.get_sessions_by_ids,
        store.chat.get_messages_by_ids,
        store.chat.get_first_and_last_messages,
    ):
        with pytest.raises(ValidationError):
            await call(ids)
    with pytest.raises(ValidationError):
        await store.ids.neighbours("session", ids)


async def test_first_and_last_messages_of_each_session(store: Store) -> None:
    bot = await f.new_bot(store)
    empty, single, several = [await f.new_session(store, bot.id) for _ in range(3)]
    (only,) = await f.add_messages(store, single.id, 1)
    first, _, last = await f.add_messages(store, several.id, 3)
    ids = [empty.id, single.id, several.id, uuid.uuid4()]
    assert await store.chat.get_first_and_last_messages(ids) == {
        single.id: (only, only),
        several.id: (first, last),
    }
    popped = await store.chat.pop_message(several.id)
    assert popped is not None and popped.id == last.id
    ends = await store.chat.get_first_and_last_messages([several.id])
    assert ends[several.id][0] == first and ends[several.id][1].seq == 2
    await store.chat.clear_messages(single.id)
    assert await store.chat.get_first_and_last_messages([single.id]) == {}
    assert await store.chat.get_first_and_last_messages([]) == {}


async def test_sessions_and_memories_are_counted_per_bot(store: Store) -> None:
    one, two = await f.new_bot(store), await f.new_bot(store)
    for _ in range(3):
        await f.new_session(store, one.id)
    await f.new_session(store, two.id)
    assert await store.chat.count_sessions() == 4
    assert await store.chat.count_sessions(bot_id=one.id) == 3
    assert await store.chat.count_sessions(bot_id=two.id) == 1
    assert await store.chat.count_sessions(bot_id=uuid.uuid4()) == 0

    old = await store.memory.save_memory(f.memory(one.id, "lives in Oslo"))
    await store.memory.supersede_memory(old.id, f.memory(one.id, "lives in Bergen"))
    await store.memory.save_memory(f.memory(one.id, "likes tea"))
    await store.memory.save_memory(f.memory(two.id, "likes coffee"))
    assert await store.memory.count_memories(one.id) == 2
    assert await store.memory.count_memories(one.id, include_superseded=True) == 3
    assert await store.memory.count_memories(two.id, include_superseded=True) == 1
    assert await store.memory.count_memories(uuid.uuid4()) == 0
    live = await store.memory.get_memories(one.id)
    assert len(live) == await store.memory.count_memories(one.id)
    with pytest.raises(ValidationError):
        await store.memory.count_memories("not an id")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        await store.chat.count_sessions(bot_id="not an id")  # type: ignore[arg-type]


async def test_sets_of_ids_see_updates(store: Store) -> None:
    s = await f.new_session(store, title="before")
    renamed = await store.chat.update_session(dataclasses.replace(s, title="after"))
    assert (await store.chat.get_sessions_by_ids([s.id]))[s.id] == renamed
    await store.chat.delete_session(s.id)
    assert await store.chat.get_sessions_by_ids([s.id]) == {}
