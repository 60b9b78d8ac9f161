"""Several real processes on one database, on every backend."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from boternity import open_store
from boternity.models import Bot, ChatSession, PendingExtraction

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.procs", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> list[str]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"worker failed ({proc.returncode}): {err}"
    return out.split()


async def make_session(url: str) -> tuple[uuid.UUID, uuid.UUID]:
    async with open_store(url) as store:
        bot = await store.bots.create_bot(Bot(name=f"bot {uuid.uuid4().hex[:8]}"))
        session = await store.chat.create_session(ChatSession(bot_id=bot.id, model="m"))
        return bot.id, session.id


async def test_save_message_from_four_processes_keeps_seq_and_counters_exact(db_url: str) -> None:
    _, session_id = await make_session(db_url)
    per_process = 60
    procs = [
        spawn("append", db_url, str(session_id), "--count", str(per_process), "--tag", f"p{i}")
        for i in range(4)
    ]
    printed = [finish(p) for p in procs]
    total = 4 * per_process
    assert sum(len(lines) // 2 for lines in printed) == total
    async with open_store(db_url) as store:
        messages = await store.chat.get_messages(session_id)
        session = await store.chat.get_session(session_id)
    assert [m.seq for m in messages] == list(range(1, total + 1))
    assert session is not None
    assert session.message_count == total
    assert session.total_input_tokens == total
    assert session.total_output_tokens == 2 * total
    for tag in ("p0", "p1", "p2", "p3"):
        own = [m.content for m in messages if m.content.startswith(f"{tag} ")]
        assert len(own) == per_process
        # each process's messages keep their own order
        assert [int(c.split()[2]) for c in own] == list(range(per_process))


async def test_writer_killed_mid_stream_loses_nothing_it_confirmed(db_url: str) -> None:
    _, session_id = await make_session(db_url)
    proc = spawn("append", db_url, str(session_id))
    assert proc.stdout is not None
    confirmed: dict[int, uuid.UUID] = {}
    deadline = time.monotonic() + 60
    while len(confirmed) < 150 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seq_text, id_text = line.split()
        confirmed[int(seq_text)] = uuid.UUID(id_text)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    assert proc.stderr is not None
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert len(confirmed) >= 150, "the writer did not get going"
    async with open_store(db_url) as store:
        messages = await store.chat.get_messages(session_id)
        session = await store.chat.get_session(session_id)
    by_seq = {m.seq: m for m in messages}
    for seq, message_id in confirmed.items():
        assert by_seq[seq].id == message_id
        assert by_seq[seq].content.startswith(f"p message {seq - 1} ✓")
    # nothing half-written: counters and rows agree, seq has no holes
    assert session is not None
    assert session.message_count == len(messages)
    assert [m.seq for m in messages] == list(range(1, len(messages) + 1))
    assert session.total_input_tokens == len(messages)


async def test_two_processes_claiming_never_get_the_same_job(db_url: str) -> None:
    bot_id, session_id = await make_session(db_url)
    async with open_store(db_url) as store:
        created = {
            (await store.memory.save_pending_extraction(
                PendingExtraction(session_id=session_id, bot_id=bot_id)
            )).id
            for _ in range(120)
        }  # fmt: skip
    procs = [spawn("claim", db_url, "--batch", "3") for _ in range(2)]
    claimed = [uuid.UUID(x) for p in procs for x in finish(p)]
    assert len(claimed) == len(set(claimed)), "a job was handed to two claimers"
    assert set(claimed) == created


async def test_concurrent_first_opens_migrate_once(db_url: str) -> None:
    procs = [spawn("open", db_url) for _ in range(4)]
    versions = {finish(p)[0] for p in procs}
    assert len(versions) == 1
    async with open_store(db_url) as store:
        assert str(store.schema_version) in versions
        assert await store.chat.count_sessions() == 0


async def test_processes_creating_the_same_keys_share_one_session_per_key(db_url: str) -> None:
    bot_id, _ = await make_session(db_url)
    keys = [f"k{i}" for i in range(10)]
    procs = [spawn("keyed", db_url, str(bot_id), *keys) for _ in range(4)]
    outputs = [finish(p) for p in procs]
    assert all(out == outputs[0] for out in outputs)
    assert len(set(outputs[0])) == len(keys)
    async with open_store(db_url) as store:
        assert await store.chat.count_sessions() == 1 + len(keys)
        bot = await store.bots.get_bot(bot_id)
        assert bot is not None and bot.conversation_count == 1 + len(keys)
