"""No user ever sees another's memories: property-based sequences of chats (through the real
chat engine, recall and ExtractionWorker, with the offline provider), manual memories and
supersessions for several users of one bot, on every backend; then one user is erased and
every table is checked.

Every fact a user states carries that user's mark ("anamark"); the bot's own (user-less)
memories carry "botmark". So any text the model is sent, or any memory a read returns, tells
whose it is: a conversation with Ana may only ever contain "anamark" and "botmark".
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncGenerator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from boternity import Store
from boternity.chat import ChatEngine
from boternity.embeddings import Embedder, LocalEmbedder
from boternity.errors import ConflictError, ValidationError
from boternity.llm import OfflineProvider
from boternity.llm.base import CompletionRequest, StreamEvent
from boternity.memory import (
    ExtractionWorker,
    MemoryRecall,
    MemorySearch,
    recall_memories,
    remember,
)
from boternity.models import Bot, MemoryCategory, MemoryEntry
from boternity.repositories import ANY_USER, visible
from tests.conformance import factories as f
from tests.tables import all_rows, check_erased, fts_matches

OWNERS: list[str | None] = ["ana", "ben", None]
MARKS = {"ana": "anamark", "ben": "benmark", None: "botmark"}
MARK = re.compile(r"\b(anamark|benmark|botmark)\b")
WORDS = ["tea", "jazz", "lisbon", "chess"]
SAYINGS = ["I live in {w} {m}.", "I like {w} {m}.", "I work as {w} {m}.", "What do I like, {m}?"]
BY_HAND = ["User lives in {w} {m}", "User likes {w} {m}"]

ISOLATION = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

owner = st.sampled_from(OWNERS)
word = st.sampled_from(WORDS)
# a chat of one user (turns from SAYINGS), then maybe the worker drains the queue
chat = st.tuples(
    st.just("chat"),
    owner,
    st.lists(st.tuples(st.sampled_from(SAYINGS), word), min_size=1, max_size=3),
    st.booleans(),
)
operation = st.one_of(
    chat,
    chat,  # twice as likely: chats and their extraction are what leaks would come from
    st.tuples(st.just("remember"), owner, st.sampled_from(BY_HAND), word),
    # replace a live memory of the first owner with a new one of the second
    st.tuples(st.just("supersede"), owner, owner, word),
)


class RecordingOffline(OfflineProvider):
    """The offline provider, keeping every request it is sent."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[CompletionRequest] = []

    async def stream(self, request: CompletionRequest) -> AsyncGenerator[StreamEvent, None]:
        self.requests.append(request)
        async for each in super().stream(request):
            yield each


def text_of(request: CompletionRequest) -> str:
    return "\n".join([request.system or "", *(turn.content for turn in request.messages)])


def marks(text: str) -> set[str]:
    return set(MARK.findall(text))


def allowed(viewer: str | None) -> set[str]:
    return {MARKS[viewer], MARKS[None]}


def check_requests(requests: list[CompletionRequest], viewer: str | None) -> None:
    """What a conversation with ``viewer`` sent the model: its own and the bot's marks only."""
    for request in requests:
        if request.purpose == "extraction":
            continue  # checked by check_extractions: several users' jobs may run in one pass
        assert marks(text_of(request)) <= allowed(viewer), request.purpose


def check_extractions(requests: list[CompletionRequest]) -> int:
    """Each extraction prompt: its known memories are those of the excerpt's user and the
    bot's own. Returns how many prompts were checked."""
    checked = 0
    for request in requests:
        if request.purpose != "extraction":
            continue
        known, _, excerpt = request.messages[0].content.partition("Conversation excerpt:")
        said = marks("\n".join(re.findall(r"^\[\d+\] user: .*$", excerpt, re.MULTILINE)))
        assert len(said) == 1, excerpt  # one session: one user's turns
        (mark,) = said
        viewer = next(o for o in OWNERS if MARKS[o] == mark)
        assert marks(known) <= allowed(viewer), known
        checked += 1
    return checked


async def check_reads(store: Store, bot: Bot, embedder: Embedder) -> None:
    """Every read a conversation makes, for every viewer: exactly what the scope rule lets it
    see (nothing of another user, nothing missing): listings, full-text search, search by
    meaning (the real local embedder's vectors, from a cache other writes keep current),
    hybrid search, recall."""
    await check_by_meaning(store, bot, embedder)
    for superseded in (False, True):
        everything = await store.memory.get_memories(
            bot.id, user_id=ANY_USER, include_superseded=superseded
        )
        for m in everything:  # the owner is the one whose words it holds
            assert marks(m.fact) == {MARKS[m.user_id]}, m
        for viewer in OWNERS:
            seen = await store.memory.get_memories(
                bot.id, user_id=viewer, include_superseded=superseded
            )
            assert seen == [m for m in everything if visible(viewer, m.user_id)]
            for w in (*WORDS, *MARKS.values()):
                found = await store.memory.search_memories(
                    bot.id, w, user_id=viewer, limit=1000, include_superseded=superseded
                )
                assert {m.user_id for m in found} <= {viewer, None}, (viewer, w)
                every = await store.memory.search_memories(
                    bot.id, w, user_id=ANY_USER, limit=1000, include_superseded=superseded
                )
                assert {m.id for m in found} == {m.id for m in every if visible(viewer, m.user_id)}
    for viewer in OWNERS:
        for budget in (12, 10_000):
            for w in WORDS:
                chosen = await recall_memories(
                    store, bot.id, f"tell me about {w}", budget_tokens=budget, user_id=viewer
                )
                assert all(visible(viewer, m.user_id) for m in chosen)


async def check_by_meaning(store: Store, bot: Bot, embedder: Embedder) -> None:
    (query,) = await embedder.embed(["what does the user like to drink or play?"])
    every = await store.memory.nearest_memories(
        bot.id, embedder.model, query, user_id=ANY_USER, limit=1000, include_superseded=True
    )
    event(f"vectors searched: {bool(every)}")
    search = MemorySearch(store, embedder)
    for viewer in OWNERS:
        found = await store.memory.nearest_memories(
            bot.id, embedder.model, query, user_id=viewer, limit=1000, include_superseded=True
        )
        assert {m.id for m, _ in found} == {m.id for m, _ in every if visible(viewer, m.user_id)}
        ids, _ = await store.memory.live_embeddings(bot.id, embedder.model, user_id=viewer)
        assert all(visible(viewer, m.user_id) for m in await _memories(store, ids))
        for mode in ("hybrid", "semantic", "text"):
            hits = await search.search(bot.id, "tea jazz", mode=mode, limit=50, user_id=viewer)
            assert all(visible(viewer, h.memory.user_id) for h in hits), mode


async def _memories(store: Store, ids: list[Any]) -> list[MemoryEntry]:
    return [m for i in ids if (m := await store.memory.get_memory(i)) is not None]


async def check_provenance(store: Store, bot: Bot) -> None:
    """A memory from a session is its user's, its source message is in that session, and a
    supersession never crosses users."""
    everything = await store.memory.get_memories(bot.id, user_id=ANY_USER, include_superseded=True)
    owners = {m.id: m.user_id for m in everything}
    for m in everything:
        if m.session_id is not None:
            session = await store.chat.get_session(m.session_id)
            assert session is not None and session.user_id == m.user_id
        if m.source_message_id is not None:
            message = await store.chat.get_message(m.source_message_id)
            assert message is not None and message.session_id == m.session_id
            assert MARKS[m.user_id] in message.content
        if m.superseded_by is not None:
            assert owners[m.superseded_by] == m.user_id


async def run_operation(
    store: Store,
    bot: Bot,
    engine: ChatEngine,
    provider: RecordingOffline,
    embedder: Embedder,
    op: tuple[Any, ...],
) -> None:
    kind, who = op[0], op[1]
    if kind == "chat":
        _, _, turns, drain = op
        start = len(provider.requests)
        live = await engine.start_session(bot, user_id=who)
        for saying, w in turns:
            await live.ask(saying.format(w=w, m=MARKS[who]))
        await live.end()  # queues the final extraction
        check_requests(provider.requests[start:], who)
        if drain:
            start = len(provider.requests)
            worker = ExtractionWorker(store, provider, embedder=embedder)
            report = await worker.run_once(bot_id=bot.id)
            event(f"extraction prompts checked: {check_extractions(provider.requests[start:]) > 0}")
            event(f"memories superseded by extraction: {report.superseded > 0}")
    elif kind == "remember":
        _, _, template, w = op
        with contextlib.suppress(ConflictError):  # that user (or the bot) already has it
            await remember(store, bot.id, template.format(w=w, m=MARKS[who]), user_id=who)
    else:
        _, new_owner, w = op[1:]
        memories = await store.memory.get_memories(bot.id, user_id=ANY_USER)
        old = next((m for m in memories if m.user_id == who), None)
        if old is None:
            return
        new = MemoryEntry(
            bot_id=bot.id,
            fact=f"User now likes {w} {MARKS[new_owner]}",
            category=MemoryCategory.CORRECTION,
            importance=3,
            user_id=new_owner,
        )
        if new_owner != who:
            with pytest.raises(ValidationError, match="same user"):
                await store.memory.supersede_memory(old.id, new)
            assert await store.memory.get_memory(old.id) == old
            assert await store.memory.get_memory(new.id) is None
        else:
            await store.memory.supersede_memory(old.id, new)


@ISOLATION
@given(
    operations=st.lists(operation, min_size=2, max_size=8), erased=st.sampled_from(["ana", "ben"])
)
async def test_no_user_ever_sees_another_users_memories(
    store: Store,
    db_url: str,
    local_embedder: LocalEmbedder,
    operations: list[tuple[Any, ...]],
    erased: str,
) -> None:
    embedder = local_embedder
    bot = await f.new_bot(store)
    provider = RecordingOffline()
    engine = ChatEngine(
        store, provider, recall=MemoryRecall(store, budget_tokens=60), extract_every=2
    )
    async with provider, engine:
        for op in operations:
            await run_operation(store, bot, engine, provider, embedder, op)
            await check_reads(store, bot, embedder)
            await check_provenance(store, bot)

    # Erasing one user takes exactly their rows, in every table (the queue: jobs of chats not
    # drained) and the full-text index.
    others = {m: await fts_matches(db_url, m, bot.id) for m in MARKS.values() if m != MARKS[erased]}
    before = await all_rows(db_url)
    counts = await store.users.count_user(bot.id, erased)
    deleted = await store.users.forget_user(bot.id, erased)
    assert deleted == counts
    event(f"erased memories: {deleted.memories > 0}, queued jobs: {deleted.jobs > 0}")
    gone = check_erased(before, await all_rows(db_url), bot.id, erased)
    assert gone["chat_sessions"] == deleted.sessions
    assert gone["pending_memory_extractions"] == deleted.jobs
    assert gone["session_memories"] == deleted.memories
    assert await fts_matches(db_url, MARKS[erased], bot.id) == 0
    assert {m: await fts_matches(db_url, m, bot.id) for m in others} == others
    await check_reads(store, bot, embedder)
    await check_provenance(store, bot)
