"""Erasing and exporting one user of a bot, checked past the store, table by table (the
full-text index and the queue included), on every backend (docs/users.md)."""

from __future__ import annotations

import numpy as np
import pytest

from boternity import Store, open_store
from boternity.errors import ValidationError
from boternity.models import Bot, ChatSession, MessageRole
from boternity.repositories import ANY_USER, UserCounts
from tests.conformance import factories as f
from tests.tables import all_rows, check_erased, fts_matches, message_fts_matches

MODEL = "test-embedder"
#: One direction per word, so a search for one user's vector finds that user's memories.
VECTORS = {
    w: np.eye(4, dtype=np.float32)[n]
    for n, w in enumerate(("zanzibar", "yokohama", "xylophone", "wellington"))
}


async def _populate(store: Store, bot: Bot, who: str | None, word: str) -> ChatSession:
    """A bit of everything for ``who``: two sessions (messages, a summary, a queued job),
    memories from a session and by hand, one superseded, one deleted (its history stays)."""
    first = await f.new_session(store, bot.id, user_id=who, title=f"{word} chat")
    messages = [
        await store.chat.save_message(
            f.message(first.id, f"{word} message {i}", input_tokens=5, output_tokens=7)
        )
        for i in range(3)
    ]
    # A search indexes the messages waiting for the message index (SQLite batches them): the
    # first session's are indexed, the second's still wait when the user is erased.
    await store.chat.search_messages(word)
    await store.memory.save_context_summary(f.summary(first.id, 1, 2, summary=f"{word} summary"))
    await store.memory.save_pending_extraction(f.pending(bot.id, first.id))
    second = await f.new_session(store, bot.id, user_id=who)
    await store.chat.save_message(f.message(second.id, f"{word} again", role=MessageRole.ASSISTANT))
    await store.memory.save_pending_extraction(f.pending(bot.id, second.id))
    kept = await store.memory.save_memory(
        f.memory(bot.id, f"Lives in {word}", session_id=first.id,
                 source_message_id=messages[0].id, user_id=who)
    )  # fmt: skip
    await store.memory.supersede_memory(
        kept.id, f.memory(bot.id, f"Moved from {word}", session_id=first.id, user_id=who)
    )
    gone = await store.memory.save_memory(f.memory(bot.id, f"Likes {word} tea", user_id=who))
    await store.memory.save_embeddings(MODEL, [(gone.id, VECTORS[word])])
    await store.memory.delete_memory(gone.id)
    chess = await store.memory.save_memory(f.memory(bot.id, f"Plays {word} chess", user_id=who))
    # Vectors of a live and a superseded memory, of two models.
    await store.memory.save_embeddings(MODEL, [(chess.id, VECTORS[word]), (kept.id, VECTORS[word])])
    await store.memory.save_embeddings("other-model", [(chess.id, np.ones(2, np.float32))])
    return first


async def test_forget_user_erases_exactly_one_users_rows_in_every_table(
    store: Store, db_url: str
) -> None:
    bot = await f.new_bot(store)
    other_bot = await f.new_bot(store)
    for who, word in (("ana", "zanzibar"), ("ben", "yokohama"), (None, "xylophone")):
        await _populate(store, bot, who, word)
    await _populate(store, other_bot, "ana", "wellington")  # the same user of another bot
    bot_before = await store.bots.get_bot(bot.id)
    before = await all_rows(db_url)
    expected = await store.users.count_user(bot.id, "ana")
    # history: four memories added, one superseded, one deleted; embeddings: three (two of
    # one model, one of another; the deleted memory's went with it)
    assert expected == UserCounts(
        sessions=2, messages=4, summaries=1, jobs=2, memories=3, history=6, embeddings=3
    )
    everyone = await store.memory.get_memories(bot.id, user_id=ANY_USER, include_superseded=True)
    anas = {m.id for m in everyone if m.user_id == "ana"}
    # Another store on the same database (another process) holds the bot's vectors.
    async with open_store(db_url) as elsewhere:
        ids, _ = await elsewhere.memory.live_embeddings(bot.id, MODEL, user_id=ANY_USER)
        assert anas & set(ids)
    deleted = await store.users.forget_user(bot.id, "ana")
    assert deleted == expected
    gone = check_erased(before, await all_rows(db_url), bot.id, "ana")
    assert gone["memory_embeddings"] == deleted.embeddings
    # The other store's cached vectors drop hers at its next search.
    async with open_store(db_url) as elsewhere:
        ids, _ = await elsewhere.memory.live_embeddings(bot.id, MODEL, user_id=ANY_USER)
        assert ids and not anas & set(ids)
        found = await elsewhere.memory.nearest_memories(
            bot.id, MODEL, VECTORS["zanzibar"], user_id=ANY_USER, limit=100
        )
        assert found and all(m.user_id != "ana" for m, _ in found)
    assert gone["chat_sessions"] == 2 and gone["chat_messages"] == 4
    assert gone["context_summaries"] == 1 and gone["pending_memory_extractions"] == 2
    assert gone["session_memories"] == 3 and gone["memory_history"] == deleted.history
    # The full-text indexes forgot her facts and messages, and still have everyone else's.
    assert await fts_matches(db_url, "zanzibar", bot.id) == 0
    assert await fts_matches(db_url, "yokohama", bot.id) == 3
    assert await fts_matches(db_url, "wellington", other_bot.id) == 3
    assert await store.chat.search_messages("zanzibar") == []
    assert await message_fts_matches(db_url, "zanzibar", bot.id) == 0
    assert await message_fts_matches(db_url, "yokohama", bot.id) == 4
    assert len(await store.chat.search_messages("wellington", user_id="ana")) == 4
    # The bot's totals keep what her sessions used.
    bot_after = await store.bots.get_bot(bot.id)
    assert bot_after is not None and bot_before is not None
    assert bot_after.total_tokens_used == bot_before.total_tokens_used
    assert bot_after.conversation_count == bot_before.conversation_count
    assert await store.users.count_user(bot.id, "ana") == UserCounts()
    assert await store.users.forget_user(bot.id, "ana") == UserCounts()
    # Ben, the bot's own memories and Ana's data with the other bot are all there.
    assert await store.users.count_user(other_bot.id, "ana") == expected


async def test_export_user_holds_exactly_what_forget_would_erase(store: Store, db_url: str) -> None:
    bot = await f.new_bot(store)
    first = await _populate(store, bot, "ana", "zanzibar")
    await _populate(store, bot, "ben", "yokohama")
    await _populate(store, bot, None, "xylophone")
    data = await store.users.export_user(bot.id, "ana")
    counts = await store.users.count_user(bot.id, "ana")
    assert (data.bot_id, data.user_id) == (bot.id, "ana")
    assert [
        len(data.sessions), len(data.messages), len(data.summaries), len(data.jobs),
        len(data.memories), len(data.history),
    ] == [
        counts.sessions, counts.messages, counts.summaries, counts.jobs, counts.memories,
        counts.history,
    ]  # fmt: skip
    assert data.sessions[0] == await store.chat.get_session(first.id)
    assert {s.user_id for s in data.sessions} == {m.user_id for m in data.memories} == {"ana"}
    assert {e.user_id for e in data.history} == {"ana"}
    ids = {s.id for s in data.sessions}
    assert all(m.session_id in ids for m in data.messages)
    assert all(s.session_id in ids for s in data.summaries)
    assert all(j.session_id in ids for j in data.jobs)
    stored = [m for s in data.sessions for m in await store.chat.get_messages(s.id)]
    assert sorted(data.messages, key=lambda m: (str(m.session_id), m.seq)) == data.messages
    assert sorted(data.messages, key=lambda m: m.id) == sorted(stored, key=lambda m: m.id)
    assert any(not m.is_live for m in data.memories)  # superseded ones too
    everything = "".join(repr(x) for x in (data.messages, data.memories, data.history))
    assert "yokohama" not in everything and "xylophone" not in everything
    nobody = await store.users.export_user(bot.id, "nobody")
    assert (nobody.sessions, nobody.memories, nobody.history) == ([], [], [])


async def test_export_in_parts_holds_the_same_rows_a_page_at_a_time(store: Store) -> None:
    bot = await f.new_bot(store)
    for word in ("zanzibar", "yokohama"):  # two of everything of Ana's, Ben's apart
        await _populate(store, bot, "ana", word)
    await _populate(store, bot, "ben", "xylophone")
    extra = await f.new_session(store, bot.id, user_id="ana")
    await store.chat.save_messages([f.message(extra.id, f"more {i}") for i in range(7)])
    whole = await store.users.export_user(bot.id, "ana")
    for rows in (1, 2, 3, 100):
        parts = [p async for p in store.users.export_user_parts(bot.id, "ana", rows=rows)]
        assert all((p.bot_id, p.user_id) == (bot.id, "ana") for p in parts)
        sizes = [
            len(p.sessions) + len(p.messages) + len(p.summaries) + len(p.jobs)
            + len(p.memories) + len(p.history) + len(p.embeddings)
            for p in parts
        ]  # fmt: skip
        assert min(sizes) >= 1 and max(sizes) <= rows
        joined = {k: [x for p in parts for x in getattr(p, k)] for k in KINDS}
        assert joined["sessions"] == whole.sessions
        for kind in ("memories", "history", "embeddings", "summaries", "jobs"):
            assert sorted(map(repr, joined[kind])) == sorted(map(repr, getattr(whole, kind)))
        assert joined["memories"] == whole.memories and joined["history"] == whole.history
        assert joined["embeddings"] == whole.embeddings
        # Each session's rows follow it, messages in order.
        current = None
        for p in parts:
            current = p.sessions[0].id if p.sessions else current
            owners = [x.session_id for x in p.messages] + [x.session_id for x in p.summaries]
            assert all(o == current for o in owners + [j.session_id for j in p.jobs])
        by_session = sorted(joined["messages"], key=lambda m: (str(m.session_id), m.seq))
        assert by_session == whole.messages
    assert [p async for p in store.users.export_user_parts(bot.id, "nobody")] == []
    for bad in (0, 10_001, True):
        with pytest.raises(ValidationError, match="rows"):
            store.users.export_user_parts(bot.id, "ana", rows=bad)  # at the call
    for user in ("", " ", None):
        with pytest.raises(ValidationError, match="user"):
            store.users.export_user_parts(bot.id, user)  # type: ignore[arg-type]


KINDS = ("sessions", "messages", "summaries", "jobs", "memories", "history", "embeddings")


async def test_erasure_racing_extraction_and_chat_leaves_nothing(store: Store) -> None:
    """forget_user while a worker completes an extraction job of the user's session and the
    user's chat saves messages: whatever the interleaving (real concurrency on PostgreSQL's
    pool), nothing of the user is left once all three are done; the losers fail cleanly."""
    import asyncio

    from boternity.errors import NotFoundError

    bot = await f.new_bot(store)
    for round_ in range(8):
        user = f"racer:{round_}"
        session = await f.new_session(store, bot.id, user_id=user)
        said = await f.add_messages(store, session.id, 2)
        job = await store.memory.save_pending_extraction(f.pending(bot.id, session.id))
        memories = [
            f.memory(bot.id, f"Fact {round_}.{i}", session_id=session.id,
                     source_message_id=said[0].id, user_id=user)
            for i in range(3)
        ]  # fmt: skip

        results = await asyncio.gather(
            store.memory.complete_extraction(job.id, memories),
            store.chat.save_message(f.message(session.id, "one more")),
            store.users.forget_user(bot.id, user),
            return_exceptions=True,
        )
        for outcome in results[:2]:  # done before the erasure, or refused after it
            assert not isinstance(outcome, BaseException) or isinstance(outcome, NotFoundError)
        assert not isinstance(results[2], BaseException)
        assert await store.users.count_user(bot.id, user) == UserCounts()
        assert await store.memory.get_memories(bot.id, user_id=user) == []


async def test_erasing_a_user_who_repeated_the_bots_memory_keeps_that_memorys_changes_seen(
    store: Store, db_url: str
) -> None:
    """A user's repeat is a row of theirs in the history of the bot's own memory; erasing the
    user must not take the notes another process's cached vectors need about that memory."""
    bot = await f.new_bot(store)
    shop = await store.memory.save_memory(f.memory(bot.id, "The shop opens at 9"))
    await store.memory.save_embeddings(MODEL, [(shop.id, VECTORS["zanzibar"])])
    async with open_store(db_url) as other:
        [(seen, _)] = await other.memory.nearest_memories(bot.id, MODEL, VECTORS["zanzibar"])
        assert seen.id == shop.id  # the other process now holds the bot's vectors
        session = await f.new_session(store, bot.id, user_id="ben")
        job = await store.memory.save_pending_extraction(f.pending(bot.id, session.id))
        again = f.memory(bot.id, "The shop opens at nine", user_id="ben")
        await store.memory.complete_extraction(job.id, [again], repeats={again.id: shop.id})
        await store.memory.supersede_memory(shop.id, f.memory(bot.id, "The shop opens at 10"))
        assert (await store.users.forget_user(bot.id, "ben")).history == 1
        assert await other.memory.nearest_memories(bot.id, MODEL, VECTORS["zanzibar"]) == []


async def test_erasing_the_newest_messages_keeps_the_index_whole(store: Store, db_url: str) -> None:
    """The erased user's messages are the newest, and indexed: everyone else's rows stay as
    they were, and a message saved afterwards (on SQLite, maybe in a freed rowid) is found."""
    bot = await f.new_bot(store)
    ben = await f.new_session(store, bot.id, user_id="ben")
    await store.chat.save_message(f.message(ben.id, "yokohama first"))
    ana = await f.new_session(store, bot.id, user_id="ana")
    for i in range(3):
        await store.chat.save_message(f.message(ana.id, f"zanzibar newest {i}"))
    assert len(await store.chat.search_messages("zanzibar")) == 3  # indexed now
    before = await all_rows(db_url)
    await store.users.forget_user(bot.id, "ana")
    gone = check_erased(before, await all_rows(db_url), bot.id, "ana")
    assert gone["chat_messages"] == 3
    later = await store.chat.save_message(f.message(ben.id, "zanzibar after"))
    hits = await store.chat.search_messages("zanzibar")
    assert [h.message_id for h in hits] == [later.id]
