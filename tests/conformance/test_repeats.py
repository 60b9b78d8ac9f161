"""complete_extraction's repeats, on every backend: a fact that says a live memory again is not
saved, and the memory's history records it in the new words; a repeat of a memory gone or
replaced meanwhile is saved (nothing is lost); users see only their own repeats."""

from __future__ import annotations

import uuid

import pytest

from boternity import Store
from boternity.errors import ValidationError
from boternity.models import MemoryActor, MemoryEntry, MemoryEvent, MemoryEventKind
from tests.conformance import factories as f


async def job_of(store: Store, bot_id: uuid.UUID, user_id: str | None = None) -> uuid.UUID:
    session = await f.new_session(store, bot_id, user_id=user_id)
    return (await store.memory.save_pending_extraction(f.pending(bot_id, session.id))).id


def repeats_of(history: list[MemoryEvent]) -> list[tuple[str, str | None]]:
    return [(e.fact, e.user_id) for e in history if e.event is MemoryEventKind.REPEATED]


async def test_a_repeat_of_a_live_memory_is_recorded_in_its_history_not_saved(
    store: Store,
) -> None:
    bot = await f.new_bot(store)
    nurse = await store.memory.save_memory(f.memory(bot.id, "Chloé is a nurse in Lyon"))
    job = await job_of(store, bot.id)
    again = f.memory(bot.id, "Chloé works as a nurse in Lyon")
    other = f.memory(bot.id, "Farid grows tomatoes")
    saved = await store.memory.complete_extraction(
        job, [again, other], repeats={again.id: nurse.id}
    )
    assert saved == [other]
    assert await store.memory.get_memory(again.id) is None
    history = await store.memory.get_memory_history(nurse.id)
    assert [e.event for e in history] == [MemoryEventKind.ADDED, MemoryEventKind.REPEATED]
    repeat = history[1]
    assert (repeat.fact, repeat.actor, repeat.job_id, repeat.memory_id, repeat.bot_id) == (
        "Chloé works as a nurse in Lyon", MemoryActor.EXTRACTION, job, nurse.id, bot.id,
    )  # fmt: skip
    assert await store.memory.get_pending_extraction(job) is None


async def test_the_same_fact_again_is_a_repeat_too(store: Store) -> None:
    bot = await f.new_bot(store)
    tea = await store.memory.save_memory(f.memory(bot.id, "Likes tea."))
    job = await job_of(store, bot.id)
    assert await store.memory.complete_extraction(job, [f.memory(bot.id, "likes   TEA")]) == []
    assert repeats_of(await store.memory.get_memory_history(tea.id)) == [("likes   TEA", None)]


async def test_a_repeat_of_a_memory_gone_or_replaced_meanwhile_is_saved(store: Store) -> None:
    bot = await f.new_bot(store)
    gone = await store.memory.save_memory(f.memory(bot.id, "Lives in Lisbon"))
    replaced = await store.memory.save_memory(f.memory(bot.id, "Drives a Volvo"))
    await store.memory.delete_memory(gone.id)
    await store.memory.supersede_memory(replaced.id, f.memory(bot.id, "Drives a bicycle"))
    job = await job_of(store, bot.id)
    lisbon = f.memory(bot.id, "Is living in Lisbon")
    volvo = f.memory(bot.id, "Has a Volvo")
    saved = await store.memory.complete_extraction(
        job, [lisbon, volvo], repeats={lisbon.id: gone.id, volvo.id: replaced.id}
    )
    assert saved == [lisbon, volvo]
    assert repeats_of(await store.memory.get_memory_history(replaced.id)) == []
    assert repeats_of(await store.memory.get_memory_history(gone.id)) == []


async def test_a_users_repeats_stay_in_their_scope_and_leave_with_them(store: Store) -> None:
    bot = await f.new_bot(store)
    theirs = await store.memory.save_memory(f.memory(bot.id, "Ana's cat is Miso", user_id="ana"))
    shared = await store.memory.save_memory(f.memory(bot.id, "The shop opens at 9"))
    job = await job_of(store, bot.id, "ben")
    # Ben does not see Ana's memory: his fact is his own new memory; the bot's own he sees.
    cat = f.memory(bot.id, "Ana has a cat named Miso", user_id="ben")
    shop = f.memory(bot.id, "The shop opens at nine", user_id="ben")
    saved = await store.memory.complete_extraction(
        job, [cat, shop], repeats={cat.id: theirs.id, shop.id: shared.id}
    )
    assert saved == [cat]
    assert repeats_of(await store.memory.get_memory_history(theirs.id)) == []
    assert repeats_of(await store.memory.get_memory_history(shared.id)) == [
        ("The shop opens at nine", "ben")  # Ben's words: Ben's data
    ]
    exported = await store.users.export_user(bot.id, "ben")
    assert "The shop opens at nine" in {e.fact for e in exported.history}
    await store.users.forget_user(bot.id, "ben")
    history = await store.memory.get_memory_history(shared.id)
    assert [e.event for e in history] == [MemoryEventKind.ADDED]  # the bot's memory stays
    assert await store.memory.get_memory(shared.id) == shared


async def test_repeats_must_name_a_memory_of_the_batch_that_supersedes_nothing(
    store: Store,
) -> None:
    bot = await f.new_bot(store)
    live = await store.memory.save_memory(f.memory(bot.id, "Lives in Porto"))
    job = await job_of(store, bot.id)
    new = f.memory(bot.id, "Lives in Braga")
    with pytest.raises(ValidationError, match="repeats names .* not in this batch"):
        await store.memory.complete_extraction(job, [], repeats={new.id: live.id})
    with pytest.raises(ValidationError, match="cannot both supersede and repeat"):
        await store.memory.complete_extraction(
            job, [new], supersedes={new.id: live.id}, repeats={new.id: live.id}
        )
    assert await store.memory.get_pending_extraction(job) is not None  # nothing was done
    unknown: MemoryEntry = f.memory(bot.id, "Lives in Faro")
    saved = await store.memory.complete_extraction(
        job, [unknown], repeats={unknown.id: uuid.uuid4()}
    )
    assert saved == [unknown]  # a memory that never was: saved
