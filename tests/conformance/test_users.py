"""Users: sessions and memories that belong to someone, the scope rule, erasure and export,
on every backend (docs/users.md)."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from boternity import Store
from boternity.errors import ConflictError, NotFoundError, ValidationError
from boternity.models import (
    MAX_USER_ID_LENGTH,
    Bot,
    MemoryEntry,
    MemoryEventKind,
)
from boternity.repositories import ANY_USER, UserCounts, visible
from tests.conformance import factories as f

OWNERS = ("ana", "ben", None)


async def _memories_of_three(store: Store, bot: Bot) -> dict[str | None, MemoryEntry]:
    return {
        who: await store.memory.save_memory(f.memory(bot.id, f"Likes tea {who}", user_id=who))
        for who in OWNERS
    }


async def test_sessions_keep_their_user_and_are_listed_by_user(store: Store) -> None:
    bot = await f.new_bot(store)
    made = {
        who: await f.new_session(store, bot.id, user_id=who, started_at=f.at(i))
        for i, who in enumerate(OWNERS)
    }
    assert (await store.chat.get_session(made["ana"].id)) == made["ana"]
    everyone = await store.chat.list_sessions(bot.id)
    assert [s.user_id for s in everyone] == [None, "ben", "ana"]  # newest first
    assert await store.chat.list_sessions(bot.id, user_id=ANY_USER) == everyone
    assert await store.chat.list_sessions(bot.id, user_id="ana") == [made["ana"]]
    assert await store.chat.list_sessions(bot.id, user_id=None) == [made[None]]
    assert await store.chat.list_sessions(bot.id, user_id="nobody") == []
    other = await f.new_bot(store)
    elsewhere = await f.new_session(store, other.id, user_id="ana", started_at=f.at(9))
    assert await store.chat.list_all_sessions(user_id="ana") == [elsewhere, made["ana"]]
    assert made[None] in await store.chat.list_all_sessions(user_id=None)
    assert len(await store.chat.list_all_sessions()) >= 4
    # update_session writes title, status and end only: the user never changes.
    renamed = await store.chat.update_session(
        dataclasses.replace(made["ana"], title="t", user_id="ben")
    )
    assert renamed.user_id == "ana"


@pytest.mark.parametrize("bad", ["", "   ", "\x00x", "x" * (MAX_USER_ID_LENGTH + 1)])
async def test_a_blank_or_bad_user_id_is_refused_everywhere(store: Store, bad: str) -> None:
    bot = await f.new_bot(store)
    with pytest.raises(ValidationError, match="user_id"):
        f.session(bot.id, user_id=bad)
    with pytest.raises(ValidationError, match="user_id"):
        f.memory(bot.id, user_id=bad)
    with pytest.raises(ValidationError, match="user_id"):
        await store.chat.list_sessions(bot.id, user_id=bad)
    with pytest.raises(ValidationError, match="user_id"):
        await store.memory.get_memories(bot.id, user_id=bad)
    with pytest.raises(ValidationError, match="user_id"):
        await store.users.forget_user(bot.id, bad)
    with pytest.raises(ValidationError, match="user_id"):
        await store.users.export_user(bot.id, bad)


@pytest.mark.parametrize(
    "bad",
    ["-", "\u200b", "ana\u200b", "\u202eana", "a\nb", "a\tb", " ana", "ana ", "\ufdd0"],
)
async def test_a_user_id_that_does_not_read_as_itself_is_refused(store: Store, bad: str) -> None:
    # "-" is how listings show "no user"; invisible, control and edge-space characters make
    # one id look like another (or like none). Refused when a session or memory is made,
    # naming the field; nothing is stored.
    bot = await f.new_bot(store)
    with pytest.raises(ValidationError, match="ChatSession.user_id"):
        f.session(bot.id, user_id=bad)
    with pytest.raises(ValidationError, match="MemoryEntry.user_id"):
        f.memory(bot.id, user_id=bad)
    assert await store.chat.list_sessions(bot.id, user_id=ANY_USER) == []
    # Reads and erasure still take any key a row may hold (rows written before the rule).
    assert (await store.users.count_user(bot.id, bad)).sessions == 0


async def test_erasure_and_export_need_a_user(store: Store) -> None:
    bot = await f.new_bot(store)
    for call in (store.users.forget_user, store.users.count_user, store.users.export_user):
        with pytest.raises(ValidationError, match="user's id"):
            await call(bot.id, None)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="user's id"):
            await call(bot.id, 42)  # type: ignore[arg-type]


async def test_each_user_sees_their_memories_and_the_bots_own(store: Store) -> None:
    bot = await f.new_bot(store)
    saved = await _memories_of_three(store, bot)
    for viewer in OWNERS:
        seen = {m.user_id for m in await store.memory.get_memories(bot.id, user_id=viewer)}
        assert seen == {o for o in OWNERS if visible(viewer, o)}, viewer
        found = await store.memory.search_memories(bot.id, "tea", user_id=viewer)
        assert {m.user_id for m in found} == seen, viewer
    # The default is a session without a user; ANY_USER is the admin's view.
    assert await store.memory.get_memories(bot.id) == [saved[None]]
    assert await store.memory.search_memories(bot.id, "tea") == [saved[None]]
    assert len(await store.memory.get_memories(bot.id, user_id=ANY_USER)) == 3
    assert len(await store.memory.search_memories(bot.id, "tea", user_id=ANY_USER)) == 3
    # Someone new sees the bot's own only.
    assert await store.memory.get_memories(bot.id, user_id="carla") == [saved[None]]
    # Counts agree with the listings: every memory by default, a viewer's when asked.
    assert await store.memory.count_memories(bot.id) == 3
    assert await store.memory.count_memories(bot.id, user_id="ana") == 2
    assert await store.memory.count_memories(bot.id, user_id=None) == 1


async def test_get_memories_keeps_its_order_and_limit_within_a_scope(store: Store) -> None:
    bot = await f.new_bot(store)
    rows = [(who, imp) for who in OWNERS for imp in (1, 3, 5)]
    for i, (who, imp) in enumerate(rows):
        await store.memory.save_memory(
            f.memory(bot.id, f"fact {i}", user_id=who, importance=imp, created_at=f.at(i))
        )
    everyone = await store.memory.get_memories(bot.id, user_id=ANY_USER)
    for viewer in OWNERS:
        expected = [m for m in everyone if visible(viewer, m.user_id)]
        assert await store.memory.get_memories(bot.id, user_id=viewer) == expected
        assert await store.memory.get_memories(bot.id, user_id=viewer, limit=4) == expected[:4]


async def test_a_memory_from_a_session_belongs_to_the_sessions_user(store: Store) -> None:
    bot = await f.new_bot(store)
    anas = await f.new_session(store, bot.id, user_id="ana")
    [said] = await f.add_messages(store, anas.id, 1)
    for wrong in ("ben", None):
        with pytest.raises(ValidationError, match="session's user"):
            await store.memory.save_memory(f.memory(bot.id, session_id=anas.id, user_id=wrong))
        with pytest.raises(ValidationError, match="session's user"):
            await store.memory.save_memory(
                f.memory(bot.id, source_message_id=said.id, user_id=wrong)
            )
    nobodys = await f.new_session(store, bot.id)
    with pytest.raises(ValidationError, match="session's user"):
        await store.memory.save_memory(f.memory(bot.id, session_id=nobodys.id, user_id="ana"))
    assert await store.memory.get_memories(bot.id, user_id=ANY_USER) == []
    ok = await store.memory.save_memory(
        f.memory(bot.id, session_id=anas.id, source_message_id=said.id, user_id="ana")
    )
    assert await store.memory.get_memories_by_session(anas.id) == [ok]


async def test_a_memory_is_only_superseded_by_one_of_the_same_user(store: Store) -> None:
    bot = await f.new_bot(store)
    saved = await _memories_of_three(store, bot)
    for old, new in (("ana", "ben"), ("ana", None), (None, "ana"), ("ben", "ana")):
        with pytest.raises(ValidationError, match="same user"):
            await store.memory.supersede_memory(
                saved[old].id, f.memory(bot.id, "replacement", user_id=new)
            )
        with pytest.raises(ValidationError, match="another user"):
            # a memory saved as already replaced by another user's
            await store.memory.save_memory(
                f.memory(bot.id, "older", user_id=old, superseded_by=saved[new].id)
            )
    everyone = await store.memory.get_memories(bot.id, user_id=ANY_USER)
    assert sorted(m.fact for m in everyone) == sorted(m.fact for m in saved.values())
    assert all(m.is_live for m in everyone)
    for who in ("ana", None):
        newer = await store.memory.supersede_memory(
            saved[who].id, f.memory(bot.id, f"Likes coffee {who}", user_id=who)
        )
        got = await store.memory.get_memory(saved[who].id)
        assert got is not None and got.superseded_by == newer.id


async def test_extraction_duplicates_and_supersessions_stay_within_a_user(store: Store) -> None:
    bot = await f.new_bot(store)
    await store.memory.save_memory(f.memory(bot.id, "Likes tea", user_id="ana"))
    shared = await store.memory.save_memory(f.memory(bot.id, "Office opens at 9"))
    sessions = {who: await f.new_session(store, bot.id, user_id=who) for who in ("ana", "ben")}

    async def complete(who: str, *facts: str) -> list[MemoryEntry]:
        job = await store.memory.save_pending_extraction(f.pending(bot.id, sessions[who].id))
        batch = [f.memory(bot.id, fact, session_id=sessions[who].id, user_id=who) for fact in facts]
        return await store.memory.complete_extraction(job.id, batch)

    # Ana's fact is no duplicate for Ben (nor revealed to him); the bot's own is one for both.
    assert [m.fact for m in await complete("ben", "likes tea!", "Office opens at 9")] == [
        "likes tea!"
    ]
    assert await complete("ana", "Likes tea.", "office opens at 9") == []
    # A job of Ben's session may not retire Ana's memory nor the bot's own: all or nothing.
    seen = await store.memory.get_memories(bot.id, user_id="ana")
    anas = next(m for m in seen if m.user_id == "ana")
    for old in (anas, shared):
        job = await store.memory.save_pending_extraction(f.pending(bot.id, sessions["ben"].id))
        new = f.memory(bot.id, "Likes green tea", session_id=sessions["ben"].id, user_id="ben")
        with pytest.raises(ValidationError, match="same user"):
            await store.memory.complete_extraction(job.id, [new], supersedes={new.id: old.id})
        assert await store.memory.get_pending_extraction(job.id) is not None
        assert (await store.memory.get_memory(old.id)) == old
        assert await store.memory.get_memory(new.id) is None


async def test_remember_unique_checks_only_what_the_user_sees(store: Store) -> None:
    bot = await f.new_bot(store)
    anas = await store.memory.save_memory(f.memory(bot.id, "Likes tea", user_id="ana"))
    bens = await store.memory.save_memory(f.memory(bot.id, "likes tea", user_id="ben"), unique=True)
    shared = await store.memory.save_memory(f.memory(bot.id, "Likes  TEA."), unique=True)
    with pytest.raises(ConflictError) as refused:
        await store.memory.save_memory(f.memory(bot.id, "likes tea", user_id="ben"), unique=True)
    # The error names what Ben's conversations see (his or the bot's), never Ana's memory.
    assert str(anas.id) not in str(refused.value)
    assert str(bens.id) in str(refused.value) or str(shared.id) in str(refused.value)
    with pytest.raises(ConflictError):
        await store.memory.save_memory(f.memory(bot.id, "LIKES TEA", user_id="carla"), unique=True)


async def test_a_session_key_never_hands_a_session_to_another_user(store: Store) -> None:
    bot = await f.new_bot(store)
    anas = await store.chat.get_or_create_session_by_key(f.session(bot.id, user_id="ana"), "k1")
    again = await store.chat.get_or_create_session_by_key(f.session(bot.id, user_id="ana"), "k1")
    assert again == anas
    for other in ("ben", None):
        with pytest.raises(ConflictError, match="another user"):
            await store.chat.get_or_create_session_by_key(f.session(bot.id, user_id=other), "k1")
    assert await store.chat.list_sessions(bot.id) == [anas]


async def test_history_rows_carry_the_memorys_user(store: Store) -> None:
    bot = await f.new_bot(store)
    old = await store.memory.save_memory(f.memory(bot.id, "Lives in Porto", user_id="ana"))
    new = await store.memory.supersede_memory(
        old.id, f.memory(bot.id, "Lives in Lisbon", user_id="ana")
    )
    await store.memory.delete_memory(new.id)  # old is restored
    events = [
        *await store.memory.get_memory_history(old.id),
        *await store.memory.get_memory_history(new.id),
    ]
    assert sorted(e.event for e in events) == sorted(
        [MemoryEventKind.ADDED, MemoryEventKind.SUPERSEDED, MemoryEventKind.RESTORED]
        + [MemoryEventKind.ADDED, MemoryEventKind.DELETED]
    )
    assert {e.user_id for e in events} == {"ana"}
    await store.memory.delete_all_memories(bot.id)
    [*_, last] = await store.memory.get_memory_history(old.id)
    assert (last.event, last.user_id) == (MemoryEventKind.DELETED, "ana")


async def test_user_requests_for_a_missing_bot(store: Store) -> None:
    missing = uuid.uuid4()
    assert await store.users.count_user(missing, "ana") == UserCounts()
    assert await store.users.forget_user(missing, "ana") == UserCounts()
    with pytest.raises(NotFoundError):
        await store.chat.create_session(f.session(missing, user_id="ana"))


HOSTILE_USERS = [
    "'; DROP TABLE session_memories; --",
    "%",
    "_",
    "a%",
    "Ana",
    "an a",
    "\\",
    "ünï 🚀 日本",
    "\U00020000" * MAX_USER_ID_LENGTH,
    "NULL",
]


async def test_hostile_user_ids_are_plain_keys(store: Store) -> None:
    """Quotes, LIKE wildcards, case, spaces and 4-byte text are just keys: each user sees
    exactly their own memories and sessions, compared exactly."""
    bot = await f.new_bot(store)
    base = await store.memory.save_memory(f.memory(bot.id, "shared", user_id=None))
    saved = {}
    for i, who in enumerate(HOSTILE_USERS):
        session = await f.new_session(store, bot.id, user_id=who)
        saved[who] = await store.memory.save_memory(
            f.memory(bot.id, f"fact {i}", user_id=who, session_id=session.id)
        )
    for who in [*HOSTILE_USERS, "ana", "A%"]:
        seen = await store.memory.get_memories(bot.id, user_id=who)
        expected = [saved[who], base] if who in saved else [base]
        assert sorted(m.fact for m in seen) == sorted(m.fact for m in expected), who
        sessions = await store.chat.list_sessions(bot.id, user_id=who)
        assert [s.user_id for s in sessions] == ([who] if who in saved else []), who
        assert (await store.users.count_user(bot.id, who)).memories == (who in saved)
    assert (await store.users.forget_user(bot.id, "%")).memories == 1
    assert len(await store.memory.get_memories(bot.id, user_id=ANY_USER)) == len(HOSTILE_USERS)


async def test_transcript_search_for_a_user_finds_only_their_sessions(store: Store) -> None:
    bot = await f.new_bot(store)
    other = await f.new_bot(store)
    said = {}
    for b, who in ((bot, "ana"), (bot, "ben"), (bot, None), (other, "ana")):
        session = await f.new_session(store, b.id, user_id=who)
        said[(b.id, who)] = await store.chat.save_message(
            f.message(session.id, f"my passport number is secret {who}")
        )
    anas = await store.chat.search_messages("passport", user_id="ana", limit=100)
    assert {h.message_id for h in anas} == {said[(bot.id, "ana")].id, said[(other.id, "ana")].id}
    one = await store.chat.search_messages("passport", bot_id=bot.id, user_id="ana")
    assert [h.message_id for h in one] == [said[(bot.id, "ana")].id]
    assert len(await store.chat.search_messages("passport", bot_id=bot.id)) == 3
    assert await store.chat.search_messages("passport", user_id="carla") == []
    with pytest.raises(ValidationError, match="user_id"):
        await store.chat.search_messages("passport", user_id="")


async def test_transcript_search_without_a_user_finds_only_sessions_without_one(
    store: Store,
) -> None:
    """user_id=None is a conversation without a user, as for get_memories and list_sessions
    (rule 3): it never finds a user's transcript. (None used to mean every session, so a
    caller passing its session's user_id, None in a user-less conversation, searched every
    user's messages.) ANY_USER, the default, is every session."""
    bot = await f.new_bot(store)
    said = {}
    for who in ("ana", None, "ben"):
        session = await f.new_session(store, bot.id, user_id=who)
        said[who] = await store.chat.save_message(f.message(session.id, f"passport of {who}"))
    nobody = await store.chat.search_messages("passport", bot_id=bot.id, user_id=None)
    assert [h.message_id for h in nobody] == [said[None].id]
    every = await store.chat.search_messages("passport", bot_id=bot.id, user_id=ANY_USER)
    assert {h.message_id for h in every} == {m.id for m in said.values()}
    default = await store.chat.search_messages("passport", bot_id=bot.id)
    assert {h.message_id for h in default} == {m.id for m in said.values()}


async def test_search_by_meaning_keeps_to_what_the_user_sees(store: Store) -> None:
    """nearest_memories and live_embeddings apply the scope rule to the cached vectors, and a
    vector written later (the cache updated, not reloaded) keeps its owner."""
    import numpy as np

    bot = await f.new_bot(store)
    saved = await _memories_of_three(store, bot)
    same = np.ones(4, np.float32)  # every memory equally close to the query
    await store.memory.save_embeddings("m", [(m.id, same) for m in saved.values()])
    for viewer in OWNERS:
        found = await store.memory.nearest_memories(bot.id, "m", same, user_id=viewer, limit=10)
        assert {m.user_id for m, _ in found} == {o for o in OWNERS if visible(viewer, o)}
        ids, matrix = await store.memory.live_embeddings(bot.id, "m", user_id=viewer)
        assert sorted(map(str, ids)) == sorted(str(m.id) for m, _ in found)
        assert matrix.shape == (len(ids), 4)
    assert len(await store.memory.nearest_memories(bot.id, "m", same, user_id=ANY_USER)) == 3
    assert [m.user_id for m, _ in await store.memory.nearest_memories(bot.id, "m", same)] == [None]
    # A new memory of Ben's, embedded after the cache was filled: still only Ben's.
    bens = await store.memory.save_memory(f.memory(bot.id, "Likes jazz", user_id="ben"))
    await store.memory.save_embeddings("m", [(bens.id, same)])
    for viewer in ("ana", None):
        found = await store.memory.nearest_memories(bot.id, "m", same, user_id=viewer)
        assert bens.id not in {m.id for m, _ in found}
    found = await store.memory.nearest_memories(bot.id, "m", same, user_id="ben")
    assert bens.id in {m.id for m, _ in found}


async def test_memory_owners_counts_each_users_memories(store: Store) -> None:
    bot, other = await f.new_bot(store), await f.new_bot(store)
    for user, n in (("ana", 3), (None, 2), ("ben", 2), ("'%", 1)):
        for i in range(n):
            await store.memory.save_memory(f.memory(bot.id, f"fact {user} {i}", user_id=user))
    await store.memory.save_memory(f.memory(other.id, "elsewhere", user_id="ana"))
    owners = await store.users.memory_owners(bot.id)
    assert owners == [("ana", 3), (None, 2), ("ben", 2), ("'%", 1)]
    assert await store.users.memory_owners(bot.id, limit=2) == owners[:2]
    assert await store.users.memory_owners(uuid.uuid4()) == []
    with pytest.raises(ValidationError, match="limit"):
        await store.users.memory_owners(bot.id, limit=-1)
