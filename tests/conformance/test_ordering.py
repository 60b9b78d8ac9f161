"""Every list has a total order (documented keys, then id), so pages never overlap or skip.

Property tests: many rows share timestamps on purpose, so only the id tie-breaker decides.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from boternity import Store
from boternity.models import MAX_EXTRACTION_ATTEMPTS
from tests.conformance import factories as f

ORDER = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

# few distinct instants, so ties are the common case
instants = st.integers(min_value=0, max_value=3)


@ORDER
@given(
    rows=st.lists(st.tuples(st.integers(min_value=1, max_value=5), instants), max_size=12),
    page=st.integers(min_value=1, max_value=5),
)
async def test_get_memories_total_order(
    store: Store, rows: list[tuple[int, int]], page: int
) -> None:
    bot = await f.new_bot(store)
    saved = [
        await store.memory.save_memory(f.memory(bot.id, importance=imp, created_at=f.at(t)))
        for imp, t in rows
    ]
    expected = sorted(saved, key=lambda m: (m.importance, m.created_at, m.id), reverse=True)
    assert await store.memory.get_memories(bot.id) == expected
    assert await store.memory.get_memories(bot.id, limit=page) == expected[:page]


@ORDER
@given(times=st.lists(instants, max_size=10), page=st.integers(min_value=1, max_value=4))
async def test_list_sessions_pages_cover_everything_once(
    store: Store, times: list[int], page: int
) -> None:
    bot = await f.new_bot(store)
    for t in times:
        await f.new_session(store, bot.id, started_at=f.at(t))
    full = await store.chat.list_sessions(bot.id)
    assert [(s.started_at, s.id) for s in full] == sorted(
        ((s.started_at, s.id) for s in full), reverse=True
    )
    pages = []
    for offset in range(0, len(times) + page, page):
        pages.extend(await store.chat.list_sessions(bot.id, limit=page, offset=offset))
    assert pages == full
    assert len(full) == len(times)


@ORDER
@given(
    rows=st.lists(
        st.tuples(instants, st.integers(min_value=0, max_value=MAX_EXTRACTION_ATTEMPTS + 1)),
        max_size=10,
    )
)
async def test_pending_extractions_total_order(store: Store, rows: list[tuple[int, int]]) -> None:
    s = await f.new_session(store)
    saved = [
        await store.memory.save_pending_extraction(
            f.pending(s.bot_id, s.id, next_attempt_at=f.at(t), attempt_count=n)
        )
        for t, n in rows
    ]
    every = sorted(saved, key=lambda j: (j.next_attempt_at, j.id))
    assert await store.memory.list_pending_extractions(bot_id=s.bot_id) == every
    live = [j for j in every if j.attempt_count < MAX_EXTRACTION_ATTEMPTS]
    assert await store.memory.get_pending_extractions(s.bot_id) == live


@ORDER
@given(times=st.lists(instants, min_size=1, max_size=8))
async def test_list_bots_total_order(store: Store, times: list[int]) -> None:
    for bot in await store.bots.list_bots():
        await store.bots.delete_bot(bot.id)
    made = [await f.new_bot(store, created_at=f.at(t), updated_at=f.at(t)) for t in times]
    expected = sorted(made, key=lambda b: (b.created_at, b.id), reverse=True)
    assert await store.bots.list_bots() == expected
    assert await store.bots.list_bots(offset=1) == expected[1:]
