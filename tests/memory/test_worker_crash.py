"""A worker process killed with SIGKILL in the middle of a job."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from datetime import timedelta

import pytest

from boternity import open_store
from boternity.ids import utc_now
from boternity.llm import OpenAIProvider, RetryPolicy
from boternity.memory import ExtractionWorker
from boternity.models import Bot, ChatMessage, ChatSession, MessageRole, PendingExtraction
from tests.fakes.llm_server import FakeLlmServer, json_reply
from tests.test_multiprocess import spawn

pytestmark = pytest.mark.slow


async def test_killed_worker_job_is_retried_after_its_lease_without_duplicates(
    db_url: str,
) -> None:
    async with open_store(db_url) as store:
        bot = await store.bots.create_bot(Bot(name="Crashy"))
        session = await store.chat.create_session(ChatSession(bot_id=bot.id, model="m"))
        for text in ("I live in Kyoto", "Nice", "I play the violin"):
            role = MessageRole.USER if text.startswith("I ") else MessageRole.ASSISTANT
            await store.chat.save_message(
                ChatMessage(session_id=session.id, role=role, content=text)
            )
        job = await store.memory.save_pending_extraction(
            PendingExtraction(
                session_id=session.id, bot_id=bot.id, messages_start=1, messages_end=3
            )
        )

    # A server that accepts connections and never answers: the worker hangs mid-request.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        worker = spawn("extract", db_url, f"http://127.0.0.1:{port}/v1")
        deadline = time.monotonic() + 60
        claimed = None
        async with open_store(db_url) as store:
            while time.monotonic() < deadline:
                claimed = await store.memory.get_pending_extraction(job.id)
                if claimed is not None and claimed.attempt_count == 1:
                    break
                await asyncio.sleep(0.05)
        assert claimed is not None and claimed.attempt_count == 1, "the worker never claimed"
        await asyncio.sleep(0.5)  # let it reach the model call
        os.kill(worker.pid, signal.SIGKILL)
        await asyncio.to_thread(worker.communicate)
        assert worker.returncode == -signal.SIGKILL

    async with open_store(db_url) as store:
        stuck = await store.memory.get_pending_extraction(job.id)
        assert stuck is not None and stuck.attempt_count == 1  # kept, leased
        assert stuck.next_attempt_at > utc_now() + timedelta(minutes=4)
        assert await store.memory.get_memories(bot.id) == []

        async with (
            FakeLlmServer() as server,
            OpenAIProvider(
                base_url=server.openai_base_url, retry=RetryPolicy(max_retries=0)
            ) as provider,
        ):
            reply = (
                '[{"fact": "Lives in Kyoto", "source_seq": 1},'
                ' {"fact": "Plays the violin", "source_seq": 3}]'
            )
            server.enqueue(
                json_reply(
                    {
                        "id": "x",
                        "object": "chat.completion",
                        "model": "gpt-test",
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": reply},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 5},
                    }
                )
            )
            before_lease = ExtractionWorker(store, provider, model="gpt-test")
            assert (await before_lease.run_once()).claimed == 0  # still leased
            after_lease = ExtractionWorker(
                store, provider, model="gpt-test", clock=lambda: utc_now() + timedelta(minutes=6)
            )
            report = await after_lease.run_once()
            assert (report.claimed, report.completed, report.memories_saved) == (1, 1, 2)
            again = await after_lease.run_once()
            assert again.claimed == 0
        facts = sorted(m.fact for m in await store.memory.get_memories(bot.id))
        assert facts == ["Lives in Kyoto", "Plays the violin"]
        assert await store.memory.get_pending_extraction(job.id) is None
