"""BotRepository: bots and their soul versions, on every backend."""

from __future__ import annotations

import dataclasses
import hashlib
import uuid

import pytest

from boternity import Store
from boternity.errors import ConflictError, NotFoundError, ValidationError
from boternity.models import BotCategory, BotStatus
from tests.conformance import factories as f


async def test_create_bot_round_trips_every_field(store: Store) -> None:
    bot = f.bot(
        name="Round Trip",
        description="desc 'quoted' \"double\"",
        status="disabled",
        category="research",
        tags=["a", "β", ""],
        user_id="user-1",
        created_at=f.at(0),
        updated_at=f.at(1),
    )
    assert await store.bots.create_bot(bot) == bot
    assert await store.bots.get_bot(bot.id) == bot
    assert await store.bots.get_bot_by_slug(bot.slug) == bot


async def test_get_missing_bot_returns_none(store: Store) -> None:
    assert await store.bots.get_bot(uuid.uuid4()) is None
    assert await store.bots.get_bot_by_slug("no-such-bot") is None


async def test_create_bot_with_duplicate_slug_is_a_conflict(store: Store) -> None:
    await f.new_bot(store, name="Twin")
    with pytest.raises(ConflictError):
        await f.new_bot(store, name="twin!")
    assert len(await store.bots.list_bots()) == 1


async def test_create_bot_with_duplicate_id_is_a_conflict(store: Store) -> None:
    first = await f.new_bot(store)
    with pytest.raises(ConflictError):
        await store.bots.create_bot(f.bot(id=first.id))
    assert await store.bots.get_bot(first.id) == first


async def test_list_bots_is_newest_first_with_id_tie_breaker(store: Store) -> None:
    same = f.at(10)
    tied = [f.bot(created_at=same, updated_at=same) for _ in range(4)]
    older = f.bot(created_at=f.at(0), updated_at=f.at(0))
    newer = f.bot(created_at=f.at(20), updated_at=f.at(20))
    for b in [*tied, older, newer]:
        await store.bots.create_bot(b)
    expected = [newer.id, *sorted((b.id for b in tied), reverse=True), older.id]
    assert [b.id for b in await store.bots.list_bots()] == expected


async def test_list_bots_filters_by_status_and_category(store: Store) -> None:
    a = await f.new_bot(store, status="active", category="creative")
    d = await f.new_bot(store, status="disabled", category="creative")
    r = await f.new_bot(store, status="active", category="research")
    assert {b.id for b in await store.bots.list_bots(status="active")} == {a.id, r.id}
    assert {b.id for b in await store.bots.list_bots(status=BotStatus.DISABLED)} == {d.id}
    assert {b.id for b in await store.bots.list_bots(category="creative")} == {a.id, d.id}
    both = await store.bots.list_bots(status="active", category=BotCategory.CREATIVE)
    assert [b.id for b in both] == [a.id]
    assert await store.bots.list_bots(status="archived") == []


async def test_list_bots_unknown_filter_value_is_a_validation_error(store: Store) -> None:
    with pytest.raises(ValidationError):
        await store.bots.list_bots(status="bogus")
    with pytest.raises(ValidationError):
        await store.bots.list_bots(category="bogus")


async def test_list_bots_limit_and_offset(store: Store) -> None:
    bots = [f.bot(created_at=f.at(i), updated_at=f.at(i)) for i in range(5)]
    for b in bots:
        await store.bots.create_bot(b)
    newest_first = [b.id for b in reversed(bots)]
    assert [b.id for b in await store.bots.list_bots(limit=2)] == newest_first[:2]
    assert [b.id for b in await store.bots.list_bots(limit=2, offset=2)] == newest_first[2:4]
    assert [b.id for b in await store.bots.list_bots(offset=3)] == newest_first[3:]
    assert await store.bots.list_bots(offset=10) == []
    assert await store.bots.list_bots(limit=0) == []


@pytest.mark.parametrize(("limit", "offset"), [(-1, None), (None, -1)])
async def test_negative_paging_is_a_validation_error(
    store: Store, limit: int | None, offset: int | None
) -> None:
    with pytest.raises(ValidationError):
        await store.bots.list_bots(limit=limit, offset=offset)


async def test_update_bot_writes_descriptive_fields_and_bumps_updated_at(store: Store) -> None:
    bot = await f.new_bot(store, created_at=f.at(0), updated_at=f.at(0))
    changed = dataclasses.replace(
        bot,
        name="Renamed",
        slug="renamed",
        description="new",
        status=BotStatus.ARCHIVED,
        category=BotCategory.UTILITY,
        tags=["x"],
        user_id="u2",
    )
    updated = await store.bots.update_bot(changed)
    assert updated.updated_at > bot.updated_at
    assert updated.created_at == bot.created_at
    assert dataclasses.replace(updated, updated_at=changed.updated_at) == changed
    assert await store.bots.get_bot(bot.id) == updated
    assert await store.bots.get_bot_by_slug("renamed") == updated
    assert await store.bots.get_bot_by_slug(bot.slug) is None


async def test_update_bot_slug_clash_is_a_conflict_and_changes_nothing(store: Store) -> None:
    taken = await f.new_bot(store, name="Taken")
    bot = await f.new_bot(store)
    with pytest.raises(ConflictError):
        await store.bots.update_bot(dataclasses.replace(bot, slug=taken.slug, description="x"))
    assert await store.bots.get_bot(bot.id) == bot


async def test_update_bot_keeping_its_own_slug_is_fine(store: Store) -> None:
    bot = await f.new_bot(store)
    updated = await store.bots.update_bot(dataclasses.replace(bot, description="same slug"))
    assert updated.slug == bot.slug and updated.description == "same slug"


async def test_update_missing_bot_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        await store.bots.update_bot(f.bot())


async def test_update_bot_never_rolls_back_counters(store: Store) -> None:
    stale = await f.new_bot(store)
    s = await f.new_session(store, stale.id)
    await store.chat.save_message(f.message(s.id, input_tokens=7, output_tokens=5))
    await store.bots.save_soul(stale.id, "soul")
    fresh = await store.bots.get_bot(stale.id)
    assert fresh is not None
    assert (fresh.conversation_count, fresh.total_tokens_used, fresh.version_count) == (1, 12, 1)
    # stale still says 0, 0, 0 and no last_active_at
    updated = await store.bots.update_bot(dataclasses.replace(stale, description="later"))
    assert (updated.conversation_count, updated.total_tokens_used, updated.version_count) == (
        1,
        12,
        1,
    )
    assert updated.last_active_at == fresh.last_active_at
    assert await store.bots.get_bot(stale.id) == updated


async def test_update_bot_ignores_counters_in_the_given_object(store: Store) -> None:
    bot = await f.new_bot(store)
    inflated = dataclasses.replace(bot, conversation_count=99, total_tokens_used=99)
    updated = await store.bots.update_bot(inflated)
    assert (updated.conversation_count, updated.total_tokens_used) == (0, 0)


async def test_delete_bot_removes_it(store: Store) -> None:
    bot = await f.new_bot(store)
    await store.bots.delete_bot(bot.id)
    assert await store.bots.get_bot(bot.id) is None
    assert await store.bots.get_bot_by_slug(bot.slug) is None


async def test_delete_missing_bot_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        await store.bots.delete_bot(uuid.uuid4())


async def test_delete_bot_cascades_to_everything_it_owns(store: Store) -> None:
    bot = await f.new_bot(store)
    other = await f.new_bot(store)
    s = await f.new_session(store, bot.id)
    other_s = await f.new_session(store, other.id)
    msgs = await f.add_messages(store, s.id, 3)
    await f.add_messages(store, other_s.id, 2)
    await store.bots.save_soul(bot.id, "v1")
    await store.bots.save_soul(other.id, "other soul")
    mem = await store.memory.save_memory(
        f.memory(bot.id, session_id=s.id, source_message_id=msgs[0].id)
    )
    manual = await store.memory.save_memory(f.memory(bot.id, is_manual=True))
    other_mem = await store.memory.save_memory(f.memory(other.id))
    summary = await store.memory.save_context_summary(f.summary(s.id, 1, 2))
    job = await store.memory.save_pending_extraction(f.pending(bot.id, s.id))
    other_job = await store.memory.save_pending_extraction(f.pending(other.id, other_s.id))

    await store.bots.delete_bot(bot.id)

    assert await store.chat.get_session(s.id) is None
    assert await store.chat.get_messages(s.id) == []
    assert all([await store.chat.get_message(m.id) is None for m in msgs])
    assert await store.bots.get_soul(bot.id) is None
    assert await store.bots.list_soul_versions(bot.id) == []
    assert await store.memory.get_memory(mem.id) is None
    assert await store.memory.get_memory(manual.id) is None
    assert await store.memory.get_memories(bot.id, include_superseded=True) == []
    assert await store.memory.list_summaries(s.id) == []
    assert await store.memory.get_pending_extraction(job.id) is None
    assert await store.memory.list_pending_extractions(bot_id=bot.id) == []
    assert summary.id not in {x.id for x in await store.memory.list_summaries(s.id)}
    # the other bot is untouched
    assert await store.chat.get_message_count(other_s.id) == 2
    assert await store.memory.get_memory(other_mem.id) == other_mem
    assert await store.memory.get_pending_extraction(other_job.id) == other_job
    assert await store.bots.get_soul(other.id) is not None
    assert await store.chat.count_sessions() == 1
    assert await store.chat.count_messages() == 2


async def test_save_soul_appends_versions_with_sha256_and_bumps_version_count(
    store: Store,
) -> None:
    bot = await f.new_bot(store)
    v1 = await store.bots.save_soul(bot.id, "first", message="init")
    v2 = await store.bots.save_soul(bot.id, "second")
    v3 = await store.bots.save_soul(bot.id, "third ✨")
    assert [v.version for v in (v1, v2, v3)] == [1, 2, 3]
    assert v1.message == "init" and v2.message is None
    assert v3.hash == hashlib.sha256("third ✨".encode()).hexdigest()
    assert all(v.bot_id == bot.id for v in (v1, v2, v3))
    stored = await store.bots.get_bot(bot.id)
    assert stored is not None and stored.version_count == 3


async def test_get_soul_latest_or_by_version(store: Store) -> None:
    bot = await f.new_bot(store)
    assert await store.bots.get_soul(bot.id) is None
    v1 = await store.bots.save_soul(bot.id, "first")
    v2 = await store.bots.save_soul(bot.id, "second")
    assert await store.bots.get_soul(bot.id) == v2
    assert await store.bots.get_soul(bot.id, 1) == v1
    assert await store.bots.get_soul(bot.id, version=2) == v2
    assert await store.bots.get_soul(bot.id, 3) is None


async def test_list_soul_versions_is_version_ascending(store: Store) -> None:
    bot = await f.new_bot(store)
    saved = [await store.bots.save_soul(bot.id, f"soul {i}") for i in range(4)]
    assert await store.bots.list_soul_versions(bot.id) == saved
    assert await store.bots.list_soul_versions(uuid.uuid4()) == []


async def test_soul_versions_are_counted_per_bot(store: Store) -> None:
    a = await f.new_bot(store)
    b = await f.new_bot(store)
    await store.bots.save_soul(a.id, "a1")
    await store.bots.save_soul(a.id, "a2")
    assert (await store.bots.save_soul(b.id, "b1")).version == 1


async def test_save_soul_for_missing_bot_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        await store.bots.save_soul(uuid.uuid4(), "orphan")


async def test_save_soul_refuses_nul(store: Store) -> None:
    bot = await f.new_bot(store)
    with pytest.raises(ValidationError):
        await store.bots.save_soul(bot.id, "bad\x00soul")
    assert await store.bots.list_soul_versions(bot.id) == []
