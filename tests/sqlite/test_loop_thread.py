"""Small units and bounded reads on the event-loop thread (durability normal): never waiting
there for another process's lock, never starving other tasks, never checkpointing there."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from boternity import open_store
from boternity.backends.sqlite import SqliteStore, pool
from boternity.backends.sqlite.dialect import uuid_of
from boternity.ids import new_id
from boternity.models import Bot, ChatMessage, ChatSession, MessageRole

pytestmark = pytest.mark.sqlite


@pytest.fixture
def inline_times() -> Iterator[list[tuple[float, float]]]:
    pool.inline_times = []
    try:
        yield pool.inline_times
    finally:
        pool.inline_times = None


async def _session(store: object) -> ChatSession:
    bot = await store.bots.create_bot(Bot(name=f"loop {uuid.uuid4().hex[:8]}"))  # type: ignore[attr-defined]
    return await store.chat.create_session(ChatSession(bot_id=bot.id, model="m"))  # type: ignore[attr-defined,no-any-return]


def _message(session: ChatSession, text: str = "hi") -> ChatMessage:
    return ChatMessage(session_id=session.id, role=MessageRole.USER, content=text)


@pytest.mark.parametrize("durability", ["normal", "full"])
async def test_only_normal_durability_writes_on_the_loop_thread(
    tmp_path: Path, durability: str, inline_times: list[tuple[float, float]]
) -> None:
    """A FULL commit waits for the disk: it stays on the writer thread."""
    async with open_store(tmp_path / "b.db", durability=durability) as store:  # type: ignore[arg-type]
        session = await _session(store)
        inline_times.clear()
        await store.chat.save_message(_message(session))
    assert isinstance(store, SqliteStore)
    assert store.writer.inline is (durability == "normal")
    assert len(inline_times) == (1 if durability == "normal" else 0)


async def test_bounded_reads_run_on_the_loop_thread(
    tmp_path: Path, inline_times: list[tuple[float, float]]
) -> None:
    async with open_store(tmp_path / "b.db") as store:
        session = await _session(store)
        await store.chat.save_message(_message(session))
        inline_times.clear()
        assert await store.chat.get_session(session.id) is not None
        assert len(await store.chat.get_recent_messages(session.id, 50)) == 1
        assert len(inline_times) == 2
        await store.chat.get_messages(session.id)  # unbounded: a reader thread
        await store.chat.get_recent_messages(session.id, 1000)
        assert len(inline_times) == 2


def _hold_write_lock(path: Path, seconds: float, started: threading.Event) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    started.set()
    time.sleep(seconds)
    conn.execute("ROLLBACK")
    conn.close()


async def test_a_held_write_lock_is_waited_for_on_the_writer_thread_not_the_loop(
    tmp_path: Path,
) -> None:
    """Another process holds the write lock: the write waits for it on the writer thread
    while the loop keeps running other tasks (busy wait off on the loop thread)."""
    path = tmp_path / "b.db"
    async with open_store(path) as store:
        session = await _session(store)
        started = threading.Event()
        holder = threading.Thread(target=_hold_write_lock, args=(path, 0.6, started))
        holder.start()
        await asyncio.to_thread(started.wait)
        ticks: list[float] = []

        async def ticker() -> None:
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        t0 = time.monotonic()
        saved = await store.chat.save_message(_message(session, "after the lock"))
        waited = time.monotonic() - t0
        task.cancel()
        holder.join()
        assert saved.seq == 1
        assert waited >= 0.3
        gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
        assert len(ticks) > 10 and max(gaps) < 0.3, max(gaps)
        assert [m.content for m in await store.chat.get_messages(session.id)] == ["after the lock"]


async def test_repeated_quick_calls_let_other_tasks_run(tmp_path: Path) -> None:
    """Each call yields to the loop once, as a thread hop did: a task that only reads and
    writes cannot starve the others."""
    async with open_store(tmp_path / "b.db") as store:
        session = await _session(store)
        others = 0

        async def other() -> None:
            nonlocal others
            while True:
                others += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(other())
        await asyncio.sleep(0)
        for calls in (
            lambda i: store.chat.save_message(_message(session, str(i))),
            lambda i: store.chat.get_session(session.id),
            lambda i: store.chat.get_recent_messages(session.id, 10),
        ):
            before = others
            for i in range(50):
                await calls(i)
            assert others - before >= 50
        task.cancel()


async def test_the_wal_is_checkpointed_off_the_loop(tmp_path: Path) -> None:
    """The writer connection does not checkpoint by itself (that would be two fsyncs on the
    loop thread at normal durability); the Checkpointer does, so the WAL stays small."""
    path = tmp_path / "b.db"
    async with open_store(path) as store:
        assert isinstance(store, SqliteStore)
        auto = await store.writer.run(lambda c: c.execute("PRAGMA wal_autocheckpoint").fetchone())
        assert auto == (0,)
        session = await _session(store)
        for i in range(4 * pool.CHECKPOINT_EVERY):
            await store.chat.save_message(_message(session, f"{i} " + "x" * 400))
        wal = await asyncio.to_thread(os.path.getsize, f"{path}-wal")
    # Unchecked, 800 messages leave ~4,000 pages (16 MB) in the WAL; checkpointed every
    # CHECKPOINT_EVERY commits it is reused from the start.
    assert wal < 8 * 1024 * 1024, wal


async def test_group_commit_still_shares_one_transaction(
    tmp_path: Path, inline_times: list[tuple[float, float]]
) -> None:
    """Writers woken together still commit together, on the loop thread too. After lone
    writes, the first write of a loop step runs at once and the ones after it in that step
    share one batch; once batches hold several units, every write waits for company."""
    async with open_store(tmp_path / "b.db") as store:
        sessions = [await _session(store) for _ in range(8)]
        inline_times.clear()
        await asyncio.gather(*(store.chat.save_message(_message(s)) for s in sessions))
        assert len(inline_times) == 2  # the first alone, then one batch of 7 units
        inline_times.clear()
        await asyncio.gather(*(store.chat.save_message(_message(s)) for s in sessions))
        assert len(inline_times) == 1  # all 8 in one batch


def test_ids_read_back_are_the_same_uuids() -> None:
    for _ in range(200):
        for value in (new_id(), uuid.uuid4()):
            got = uuid_of(str(value))
            assert got == value and hash(got) == hash(value) and str(got) == str(value)
            assert got.version == value.version and got.is_safe == value.is_safe
            assert type(got) is uuid.UUID
    import pickle

    value = new_id()
    assert pickle.loads(pickle.dumps(uuid_of(str(value)))) == value
    with pytest.raises(ValueError):
        uuid_of("not an id")


async def test_no_write_waits_for_a_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checkpoints run on their own connection and thread, beside the writes: while one is
    held up (a slow disk, say), writes go on, none of them checkpointing; once it ends, the
    writer's one catch-up checkpoint lets the WAL start over, so it stays small."""
    release = threading.Event()
    threads: list[str] = []
    real = pool.checkpoint

    def slow_checkpoint(conn: sqlite3.Connection) -> None:
        threads.append(threading.current_thread().name)
        if threads.count("boternity-sqlite-c") == 1:
            release.wait(timeout=60)
        real(conn)

    monkeypatch.setattr(pool, "checkpoint", slow_checkpoint)
    path = tmp_path / "b.db"
    for durability in ("normal", "full"):
        threads.clear()
        release.clear()
        async with open_store(path, durability=durability) as store:
            session = await _session(store)
            for i in range(3 * pool.CHECKPOINT_EVERY):
                await store.chat.save_message(_message(session, f"{i} " + "x" * 400))
            assert threads == ["boternity-sqlite-c"], threads  # one started, still running
            release.set()
            while len(threads) < 2:  # the writer's catch-up, with the next batch
                await store.chat.save_message(_message(session, "after"))
            assert threads[1] == "boternity-sqlite-w"
            for i in range(4 * pool.CHECKPOINT_EVERY):
                await store.chat.save_message(_message(session, f"{i} " + "x" * 400))
            in_use = await asyncio.to_thread(_wal_frames, path)
        # Frames in use since the WAL last started over; never starting over: ~4,000 more.
        assert in_use < 2_000, (durability, in_use)


def _wal_frames(path: Path) -> int:
    """How many frames the WAL holds (its file keeps its largest size); retried while the
    store's own checkpoint runs."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        for _ in range(500):
            busy, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if not busy:
                return int(frames)
            time.sleep(0.01)
    raise AssertionError("the WAL stayed busy for 5 s")


async def test_a_wal_grown_by_a_burst_is_cut_back_when_it_starts_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a checkpoint is held up the WAL grows; once the writer's catch-up lets it start
    over, its file is cut back to WAL_KEEP_BYTES instead of staying at its largest."""
    release = threading.Event()
    real = pool.checkpoint

    def slow_checkpoint(conn: sqlite3.Connection) -> None:
        if threading.current_thread().name == "boternity-sqlite-c":
            release.wait(timeout=60)
        real(conn)

    monkeypatch.setattr(pool, "checkpoint", slow_checkpoint)
    monkeypatch.setattr(pool, "WAL_KEEP_BYTES", 1024 * 1024)
    path = tmp_path / "b.db"
    async with open_store(path) as store:
        session = await _session(store)
        for i in range(3 * pool.CHECKPOINT_EVERY):
            await store.chat.save_message(_message(session, f"{i} " + "x" * 400))
        grown = await asyncio.to_thread(os.path.getsize, f"{path}-wal")
        release.set()
        for _ in range(2 * pool.CHECKPOINT_EVERY):
            await store.chat.save_message(_message(session, "after"))
        kept = await asyncio.to_thread(os.path.getsize, f"{path}-wal")
    # Cut back, then grown again by at most one checkpoint's worth of commits (~4 MB).
    assert grown > 10 * 1024 * 1024
    assert kept < 6 * 1024 * 1024, (grown, kept)
