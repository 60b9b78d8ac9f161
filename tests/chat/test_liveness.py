"""Session ownership locks, crash recovery and the extraction high-water mark (in process)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from boternity import Store
from boternity.backends.sqlite.locks import FileSessionLocks
from boternity.chat import ChatEngine, locks_for_store
from boternity.chat.liveness import extraction_mark, recover_crashed_sessions
from boternity.errors import RepositoryError
from boternity.models import Bot, ChatMessage, ChatSession, MessageRole, SessionStatus
from boternity.repositories import ChatRepository
from tests.chat.conftest import ScriptedProvider


async def test_file_lock_excludes_other_holders_even_in_one_process(tmp_path: Path) -> None:
    session = ChatSession(bot_id=Bot(name="x").id, model="m")
    first, second = FileSessionLocks(tmp_path / "locks"), FileSessionLocks(tmp_path / "locks")
    lock = await first.try_acquire(session.id)
    assert lock is not None
    assert await second.try_acquire(session.id) is None
    assert (tmp_path / "locks").stat().st_mode & 0o777 == 0o700
    path = first.path_for(session.id)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_text().strip() == str(os.getpid())
    await lock.release()
    await lock.release()  # idempotent
    assert not path.exists()
    again = await second.try_acquire(session.id)
    assert again is not None
    await again.release()


async def test_lock_descriptors_are_not_inherited_by_child_processes(tmp_path: Path) -> None:
    locks = FileSessionLocks(tmp_path)
    session = ChatSession(bot_id=Bot(name="x").id, model="m")
    lock = await locks.try_acquire(session.id)
    assert lock is not None
    lock_fds = _open_fds_of(locks.path_for(session.id))
    assert lock_fds and all(not os.get_inheritable(fd) for fd in lock_fds)
    await lock.release()


def _open_fds_of(path: Path) -> list[int]:
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == str(path):
                found.append(int(name))
        except OSError:
            continue
    return found


async def make_orphan(store: Store, bot: Bot, messages: int) -> ChatSession:
    """A session left active by a process that died (no lock held)."""
    session = await store.chat.create_session(ChatSession(bot_id=bot.id, model="m"))
    for i in range(messages):
        role = MessageRole.USER if i % 2 == 0 else MessageRole.ASSISTANT
        await store.chat.save_message(
            ChatMessage(session_id=session.id, role=role, content=f"m{i}", input_tokens=1)
        )
    found = await store.chat.get_session(session.id)
    assert found is not None
    return found


async def test_start_marks_orphaned_sessions_crashed_and_queues_their_extraction(
    store: Store, bot: Bot, provider: ScriptedProvider
) -> None:
    orphan = await make_orphan(store, bot, 5)
    empty = await make_orphan(store, bot, 0)
    held = await make_orphan(store, bot, 3)
    other_process = locks_for_store(store)  # its own descriptors / connection
    held_lock = await other_process.try_acquire(held.id)
    assert held_lock is not None
    try:
        async with ChatEngine(store, provider) as engine:
            assert await engine.start() == []  # already ran on enter
        crashed = await store.chat.get_session(orphan.id)
        assert crashed is not None and crashed.status is SessionStatus.CRASHED
        assert crashed.ended_at == orphan.last_activity_at
        crashed_empty = await store.chat.get_session(empty.id)
        assert crashed_empty is not None and crashed_empty.status is SessionStatus.CRASHED
        assert crashed_empty.ended_at == empty.started_at
        untouched = await store.chat.get_session(held.id)
        assert untouched is not None and untouched.status is SessionStatus.ACTIVE
        jobs = await store.memory.list_pending_extractions(bot_id=bot.id)
        assert [(j.session_id, j.messages_start, j.messages_end) for j in jobs] == [
            (orphan.id, 1, 5)
        ]
    finally:
        await held_lock.release()
        await other_process.aclose()
    # Once its owner is gone, the next sweep takes it.
    locks = locks_for_store(store)
    try:
        recovered = await recover_crashed_sessions(store, locks)
    finally:
        await locks.aclose()
    assert [s.id for s in recovered] == [held.id]


async def test_an_owner_that_loses_its_connection_or_exits_frees_the_session(
    store: Store, bot: Bot, provider: ScriptedProvider
) -> None:
    first, second = locks_for_store(store), locks_for_store(store)
    session = await make_orphan(store, bot, 0)
    try:
        lock = await first.try_acquire(session.id)
        assert lock is not None
        assert await first.try_acquire(session.id) is None  # not re-entrant
        assert await second.try_acquire(session.id) is None
        await first.aclose()  # what the OS / server does when the owner dies
        taken = await second.try_acquire(session.id)
        assert taken is not None
        await taken.release()
    finally:
        await first.aclose()
        await second.aclose()


async def test_recovery_after_completed_periodic_jobs_never_overlaps_them(
    store: Store, bot: Bot, provider: ScriptedProvider
) -> None:
    engine = ChatEngine(store, provider, extract_every=2)
    live = await engine.start_session(bot)
    for i in range(5):
        await live.ask(f"q{i}")  # jobs 1..4 and 5..8 are queued
    done = []
    for job in await store.memory.claim_pending_extractions(limit=10):
        done.append((job.messages_start, job.messages_end))
        await store.memory.complete_extraction(job.id, [])  # and deleted from the queue
    assert sorted(done) == [(1, 4), (5, 8)]
    await _settle(live)
    # The process dies: its locks go away (descriptors closed / connection dropped).
    await engine.locks.aclose()
    session = await store.chat.get_session(live.id)
    assert session is not None
    assert await extraction_mark(store, session) == (8, 10)
    async with ChatEngine(store, provider) as second:
        recovered = await second.start()
        assert recovered == []  # ran on enter already
    jobs = await store.memory.list_pending_extractions(bot_id=bot.id)
    assert [(j.messages_start, j.messages_end) for j in jobs] == [(9, 10)]


async def test_resuming_a_dead_owners_session_recovers_it_first(
    store: Store, bot: Bot, provider: ScriptedProvider
) -> None:
    async with ChatEngine(store, provider) as engine:
        orphan = await make_orphan(store, bot, 4)
        live = await engine.resume_session(orphan.id)
        # Recovered (crashed, final job 1..4), and stays so until something new is written.
        assert live.session.status is SessionStatus.CRASHED
        await live.ask("back again")
        status: SessionStatus = live.session.status
        assert status is SessionStatus.ACTIVE
        assert live.session.ended_at is None
        await live.end()
    jobs = await store.memory.list_pending_extractions(bot_id=bot.id)
    assert sorted((j.messages_start, j.messages_end) for j in jobs) == [(1, 4), (5, 6)]
    final = await store.chat.get_session(orphan.id)
    assert final is not None and final.status is SessionStatus.COMPLETED


async def _settle(live: object) -> None:
    task = getattr(live, "_title_task", None)
    if task is not None:
        await task


class _FailingChat:
    """The store's chat repository, except that updating one session fails."""

    def __init__(self, inner: ChatRepository, bad: uuid.UUID) -> None:
        self._inner = inner
        self._bad = bad

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def update_session(self, session: ChatSession) -> ChatSession:
        if session.id == self._bad:
            raise RepositoryError("disk on fire")
        return await self._inner.update_session(session)


class _Store:
    def __init__(self, inner: Store, chat: Any) -> None:
        self._inner = inner
        self.chat = chat

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


async def test_one_session_that_cannot_be_recovered_does_not_block_the_others(
    store: Store, bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    bad = await make_orphan(store, bot, 2)
    good = await make_orphan(store, bot, 2)
    flaky: Any = _Store(store, _FailingChat(store.chat, bad.id))
    locks = locks_for_store(store)
    try:
        recovered = await recover_crashed_sessions(flaky, locks)
    finally:
        await locks.aclose()
    assert [s.id for s in recovered] == [good.id]
    assert "could not recover session" in caplog.text
    still = await store.chat.get_session(bad.id)
    assert still is not None and still.status is SessionStatus.ACTIVE


async def test_engines_give_back_every_lock_descriptor_and_connection(
    store: Store, bot: Bot, provider: ScriptedProvider
) -> None:
    async def cycle() -> None:
        async with ChatEngine(store, provider) as engine:
            for _ in range(3):
                live = await engine.start_session(bot)
                await live.ask("hi")
            await engine.start_session(bot)  # left open: close() ends it

    await cycle()  # warm up (first connection, lock folder)
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        await cycle()
    assert len(os.listdir("/proc/self/fd")) <= before
