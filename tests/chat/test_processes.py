"""Real processes chatting on one database: SIGKILL mid-reply and recovery, parallel sessions."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from boternity import Store
from boternity.backends.sqlite.locks import FileSessionLocks
from boternity.chat import ChatEngine, locks_for_store
from boternity.llm import OfflineProvider
from boternity.models import Bot, MessageRole, SessionStatus
from tests.fakes.llm_server import FakeLlmServer, anthropic_frames, sse_reply

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


class Worker:
    """``python -m tests.chat.worker`` with line-by-line access to what it printed."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []

    @classmethod
    async def spawn(cls, *args: str) -> Worker:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.chat.worker",
            *args,
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        return cls(proc)

    async def expect(self, word: str, within: float = 60) -> list[str]:
        """Read lines until one starts with ``word``; returns its fields."""
        assert self.proc.stdout is not None
        async with asyncio.timeout(within):
            while True:
                raw = await self.proc.stdout.readline()
                if not raw:
                    err = await self.stderr()
                    raise AssertionError(f"worker exited before {word!r}: {err}")
                line = raw.decode().strip()
                self.lines.append(line)
                if line.split()[0] == word:
                    return line.split()

    async def stderr(self) -> str:
        assert self.proc.stderr is not None
        return (await self.proc.stderr.read()).decode()

    async def send_line(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode() + b"\n")
        await self.proc.stdin.drain()

    async def finish(self, within: float = 60) -> list[str]:
        """Close stdin, wait for a clean exit; returns the remaining lines."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()  # communicate() without input leaves it open
        async with asyncio.timeout(within):
            out, err = await self.proc.communicate()
        assert self.proc.returncode == 0, err.decode()
        rest = out.decode().split("\n")
        self.lines += [line for line in rest if line]
        return rest

    async def kill(self) -> None:
        self.proc.kill()
        await self.proc.communicate()


async def wait_until(check: Callable[[], bool], within: float = 30) -> None:
    async with asyncio.timeout(within):
        # Polling: the state lives in another process or in the fake server, not an Event.
        while not check():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def test_process_killed_mid_reply_is_recovered_and_a_live_one_is_not_touched(
    store: Store, bot: Bot
) -> None:
    async with FakeLlmServer() as server:
        doomed = await Worker.spawn(
            *(store_url(store), str(bot.id), "--turns", "3", "--tag", "doomed"),
            *("--anthropic", server.base_url, "--pause-before", "2"),
        )
        keeper = await Worker.spawn(
            store_url(store), str(bot.id), "--turns", "1", "--tag", "keeper", "--hold"
        )
        try:
            doomed_id = uuid.UUID((await doomed.expect("session"))[1])
            keeper_id = uuid.UUID((await keeper.expect("session"))[1])
            await keeper.expect("holding")
            await doomed.expect("paused")
            # Two replies and the title request went by; the next reply streams slowly.
            await wait_until(lambda: len(server.requests) >= 3)
            server.enqueue(sse_reply(anthropic_frames(["word "] * 400), chunk_delay=0.05))
            await doomed.send_line("go")
            streaming = await doomed.expect("streaming")
            await doomed.kill()
            # Let the server notice the dead client rather than cancel its handler on close
            # (Python 3.11's start_server logs an error for a cancelled handler).
            await wait_until(lambda: not server._handlers, within=10)
        except BaseException:
            await doomed.kill()
            await keeper.kill()
            raise
    assert doomed.proc.returncode == -9
    confirmed = [line.split() for line in doomed.lines if line.startswith("turn ")]
    assert [(int(t[2]), int(t[3])) for t in confirmed] == [(1, 2), (3, 4)]
    assert int(streaming[2]) == 5

    # Every message the process had confirmed is stored; the killed reply is not.
    messages = await store.chat.get_messages(doomed_id)
    assert [(m.seq, m.role) for m in messages] == [
        (1, MessageRole.USER),
        (2, MessageRole.ASSISTANT),
        (3, MessageRole.USER),
        (4, MessageRole.ASSISTANT),
        (5, MessageRole.USER),
    ]
    assert messages[4].content == "doomed says hello number 2"
    before = await store.chat.get_session(doomed_id)
    assert before is not None and before.status is SessionStatus.ACTIVE

    async with OfflineProvider() as offline:
        engine = ChatEngine(store, offline)
        recovered = await engine.start()
        await engine.close()
    assert [s.id for s in recovered] == [doomed_id]
    crashed = await store.chat.get_session(doomed_id)
    assert crashed is not None
    assert crashed.status is SessionStatus.CRASHED
    assert crashed.ended_at == messages[-1].created_at == crashed.last_activity_at
    assert crashed.title  # generated by the dead process before it died
    jobs = await store.memory.list_pending_extractions(bot_id=bot.id)
    assert [(j.session_id, j.messages_start, j.messages_end) for j in jobs] == [(doomed_id, 1, 5)]
    locks = locks_for_store(store)
    if isinstance(locks, FileSessionLocks):
        assert not locks.path_for(doomed_id).exists()

    # The session another live process holds was left alone, and it ends normally.
    alive = await store.chat.get_session(keeper_id)
    assert alive is not None and alive.status is SessionStatus.ACTIVE
    assert await locks.try_acquire(keeper_id) is None  # still owned by the live process
    await locks.aclose()
    rest = await keeper.finish()
    assert "ended completed" in rest
    done = await store.chat.get_session(keeper_id)
    assert done is not None and done.status is SessionStatus.COMPLETED
    # A second recovery finds nothing to do.
    async with OfflineProvider() as offline, ChatEngine(store, offline) as engine:
        assert await engine.start() == []


async def test_two_processes_chatting_with_one_bot_keep_exact_transcripts_and_totals(
    store: Store, bot: Bot
) -> None:
    turns = 12
    workers = [
        await Worker.spawn(
            store_url(store),
            str(bot.id),
            "--turns",
            str(turns),
            "--tag",
            tag,
            "--extract-every",
            "5",
        )  # fmt: skip
        for tag in ("alpha", "beta")
    ]
    ids = []
    for worker in workers:
        ids.append(uuid.UUID((await worker.expect("session"))[1]))
    for worker in workers:
        assert "ended completed" in await worker.finish()
    total = 0
    for tag, session_id in zip(("alpha", "beta"), ids, strict=True):
        messages = await store.chat.get_messages(session_id)
        assert [m.seq for m in messages] == list(range(1, 2 * turns + 1))
        assert [m.content for m in messages if m.role is MessageRole.USER] == [
            f"{tag} says hello number {i}" for i in range(turns)
        ]
        assert all(m.role is MessageRole.ASSISTANT for m in messages[1::2])
        assert all(f"number {i}" in m.content for i, m in enumerate(messages[1::2]))
        session = await store.chat.get_session(session_id)
        assert session is not None
        assert session.message_count == 2 * turns
        assert session.total_input_tokens == sum(m.input_tokens or 0 for m in messages)
        assert session.total_output_tokens == sum(m.output_tokens or 0 for m in messages)
        total += session.total_input_tokens + session.total_output_tokens
        jobs = [
            (j.messages_start, j.messages_end)
            for j in await store.memory.list_pending_extractions(bot_id=bot.id)
            if j.session_id == session_id
        ]
        assert sorted(jobs) == [(1, 10), (11, 20), (21, 24)]
    after = await store.bots.get_bot(bot.id)
    assert after is not None
    assert after.conversation_count == 2
    assert after.total_tokens_used == total


def store_url(store: Store) -> str:
    """Where a worker process opens the same database."""
    where = getattr(store, "path", None) or getattr(store, "url", None)
    assert where is not None
    return str(where)
