"""Ownership lost while the owner lives: the lock file removed (SQLite), the lock connection
terminated (PostgreSQL). The owner takes its lock back when nobody used the session meanwhile,
and otherwise stops with SessionLostError before its next write: a second process resuming the
session never interleaves with it. Also: every path to one SQLite file shares one lock."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import uuid
from pathlib import Path

import asyncpg
import pytest

from boternity import Store, open_store
from boternity.backends.sqlite.locks import FileSessionLocks
from boternity.chat import ChatEngine, SessionBusyError, locks_for_store
from boternity.errors import RepositoryError, SessionLostError
from boternity.llm import OfflineProvider
from boternity.models import Bot, SessionStatus
from tests.chat.test_processes import Worker, store_url

pytestmark = pytest.mark.slow


async def settled(store: Store, session_id: uuid.UUID) -> None:
    """Wait for the background title write, so the owner is idle when its lock goes."""
    async with asyncio.timeout(30):
        while True:
            session = await store.chat.get_session(session_id)
            if session is not None and session.title is not None:
                return
            await asyncio.sleep(0.02)


async def lose_lock(store: Store, session_id: uuid.UUID) -> None:
    """Take ownership away from its live holder, the way an operator or a cleaner could."""
    if store.backend == "sqlite":
        locks = locks_for_store(store)
        assert isinstance(locks, FileSessionLocks)
        os.unlink(locks.path_for(session_id))  # e.g. a tmp cleaner, or `rm -r x.db.sessions`
        return
    admin = await asyncpg.connect(store_url(store))
    try:
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = 'boternity-session-locks'"
            " AND datname = current_database()"
        )
    finally:
        await admin.close()
    assert killed == 1


@pytest.mark.parametrize("noticed_by", ["ask", "end"])
async def test_a_lost_lock_taken_over_by_another_process_stops_the_owner(
    store: Store, bot: Bot, noticed_by: str
) -> None:
    """The owner's next write finds the takeover and writes nothing: an ask raises
    SessionLostError (and every later one), while end() (perhaps the first to notice) just
    returns: the new owner ends the session."""
    async with OfflineProvider() as provider, ChatEngine(store, provider) as owner:
        live = await owner.start_session(bot)
        await live.ask("owner one")
        await settled(store, live.id)
        await lose_lock(store, live.id)
        # Another process now finds the session active with a free lock: it marks it
        # crashed, resumes it and writes.
        thief = await Worker.spawn(
            store_url(store), str(bot.id), "--resume", str(live.id), "--turns", "1"
        )
        thief.lines += await thief.finish()
        assert "ended completed" in thief.lines
        if noticed_by == "ask":
            with pytest.raises(SessionLostError, match="taken over by another process"):
                await live.ask("owner two")
            with pytest.raises(SessionLostError):  # and stays stopped
                await live.ask("owner three")
        ended = await live.end()  # writes nothing, does not fail
        assert ended.status is SessionStatus.ACTIVE  # the owner's last view of it
        assert live.final_job is None  # nothing queued by the owner
    contents = [m.content for m in await store.chat.get_messages(live.id)]
    assert contents[0] == "owner one"
    assert contents[2] == "p says hello number 0"
    assert len(contents) == 4  # the owner wrote nothing after the takeover
    final = await store.chat.get_session(live.id)
    assert final is not None and final.status is SessionStatus.COMPLETED  # the thief's end


async def test_a_lost_lock_nobody_took_is_taken_back(store: Store, bot: Bot) -> None:
    async with OfflineProvider() as provider, ChatEngine(store, provider) as owner:
        live = await owner.start_session(bot)
        await live.ask("one")
        await settled(store, live.id)
        await lose_lock(store, live.id)
        await live.ask("two")  # re-acquired: nobody touched the session
        # ... and really held again: another holder is refused.
        other = locks_for_store(store)
        try:
            assert await other.try_acquire(live.id) is None
            async with ChatEngine(store, provider) as second:
                assert await second.start() == []  # not marked crashed
                with pytest.raises(SessionBusyError):
                    await second.resume_session(live.id)
        finally:
            await other.aclose()
        await live.ask("three")
        ended = await live.end()
    assert ended.status is SessionStatus.COMPLETED
    messages = await store.chat.get_messages(live.id)
    assert [m.content for m in messages][::2] == ["one", "two", "three"]


# --- SQLite: one file, one set of locks ---------------------------------------------------------


def _aliases(tmp_path: Path) -> dict[str, str]:
    real = tmp_path / "data" / "real.db"
    (tmp_path / "other").mkdir()
    os.symlink(real, tmp_path / "link.db")
    return {
        "symlink": str(tmp_path / "link.db"),
        "dotdot": str(tmp_path / "other" / ".." / "data" / "real.db"),
        "relative": os.path.relpath(real),
        "url": f"sqlite:///{os.path.relpath(real)}",
        "absolute-url": f"sqlite:///{real}",
    }


@pytest.mark.parametrize("alias", ["symlink", "dotdot", "relative", "url", "absolute-url"])
async def test_every_path_to_one_sqlite_file_shares_its_locks(tmp_path: Path, alias: str) -> None:
    real = tmp_path / "data" / "real.db"
    real.parent.mkdir()
    async with open_store(real) as store:
        bot = await store.bots.create_bot(Bot(name="Ada"))
    other = _aliases(tmp_path)[alias]
    owner = await Worker.spawn(str(real), str(bot.id), "--turns", "1", "--hold")
    try:
        session_id = uuid.UUID((await owner.expect("session"))[1])
        await owner.expect("holding")
        async with (
            open_store(other) as aliased,
            OfflineProvider() as provider,
            ChatEngine(aliased, provider) as second,
        ):
            assert await second.start() == []  # the live session is not "crashed"
            with pytest.raises(SessionBusyError):
                await second.resume_session(session_id)
            live = await aliased.chat.get_session(session_id)
            assert live is not None and live.status is SessionStatus.ACTIVE
        rest = await owner.finish()
    except BaseException:
        await owner.kill()
        raise
    assert "ended completed" in rest
    assert not (tmp_path / "link.db.sessions").exists()


async def test_a_hard_linked_sqlite_file_is_refused_for_sessions(tmp_path: Path) -> None:
    """A hard link is a second name with its own lock folder (and, for SQLite, its own WAL):
    the second opener is refused instead of marking the live session crashed. (Through the
    other name SQLite reads another WAL: the live session may not even be visible.)"""
    real = tmp_path / "real.db"
    async with open_store(real) as store:
        bot = await store.bots.create_bot(Bot(name="Ada"))
    owner = await Worker.spawn(str(real), str(bot.id), "--turns", "1", "--hold")
    try:
        session_id = uuid.UUID((await owner.expect("session"))[1])
        await owner.expect("holding")
        os.link(real, tmp_path / "hard.db")
        async with open_store(tmp_path / "hard.db") as aliased, OfflineProvider() as provider:
            with pytest.raises(RepositoryError, match="has 2 hard links"):
                ChatEngine(aliased, provider)
        # Locks made earlier (before the link existed) refuse too.
        os.unlink(tmp_path / "hard.db")
        locks = FileSessionLocks.for_database(real)
        os.link(real, tmp_path / "hard.db")
        with pytest.raises(RepositoryError, match="has 2 hard links"):
            await locks.try_acquire(session_id)
        os.unlink(tmp_path / "hard.db")
        async with open_store(real) as store:
            live = await store.chat.get_session(session_id)
            assert live is not None and live.status is SessionStatus.ACTIVE
        rest = await owner.finish()
    except BaseException:
        await owner.kill()
        raise
    assert "ended completed" in rest


async def test_locks_killed_again_and_again_never_let_two_writers_interleave(
    store: Store, bot: Bot
) -> None:
    """The owner writes without pause while its lock is taken away every few milliseconds and
    another process keeps trying to resume the session: whoever wins, the transcript is the
    owner's messages, then (if it got in) the other process's, never a mix."""
    async with OfflineProvider() as provider, ChatEngine(store, provider) as owner:
        live = await owner.start_session(bot)
        await live.ask("owner 0")
        await settled(store, live.id)
        thief = await Worker.spawn(
            *(store_url(store), str(bot.id), "--resume", str(live.id), "--turns", "3"),
            *("--tag", "thief", "--retry-busy", "60"),
        )
        stolen = asyncio.Event()
        failures: list[RepositoryError] = []
        resumed = asyncio.create_task(thief.expect("session"))

        async def write() -> None:
            for i in itertools.count(1):
                if i >= 400:  # the other process got in only after a while (a slow start):
                    await resumed  # then the owner's next write must find out
                try:
                    await live.ask(f"owner {i}")
                except SessionLostError:
                    stolen.set()
                    return
                except RepositoryError as exc:
                    # The lock connection died while taking the lock back: nothing was
                    # written after the check; the next write checks again.
                    failures.append(exc)

        async def attack() -> None:
            # Until the other process has the session (then the owner must find out).
            while not resumed.done() and thief.proc.returncode is None:
                await lose_owners_lock(store, live.id, owner)
                await asyncio.sleep(0.005)

        try:
            async with asyncio.timeout(120):
                await asyncio.gather(write(), attack(), resumed)
            thief.lines += await thief.finish()
        except BaseException:
            await thief.kill()
            raise
        await live.end()
    messages = await store.chat.get_messages(live.id)
    authors = ["thief" if "thief" in m.content else "owner" for m in messages]
    assert authors == sorted(authors, key=lambda a: a == "thief"), authors
    assert authors.count("thief") == 6  # the other process got in and finished its turns
    assert stolen.is_set()
    assert all("session lock" in str(exc) for exc in failures)


async def lose_owners_lock(store: Store, session_id: uuid.UUID, owner: ChatEngine) -> None:
    """Take the owner's lock away (only the owner's: the other process is left alone)."""
    if store.backend == "sqlite":
        path = FileSessionLocks.for_database(store_url(store)).path_for(session_id)
        with contextlib.suppress(FileNotFoundError):
            if path.read_text().strip() == str(os.getpid()):
                os.unlink(path)
        return
    conn = getattr(owner.locks, "_conn", None)  # the owner's lock connection, if open
    if conn is None or conn.is_closed():
        return
    pid = conn.get_server_pid()
    admin = await asyncpg.connect(store_url(store))
    try:
        await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
