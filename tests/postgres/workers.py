"""Code run in child processes by the multi-process tests (must be importable by name)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

from boternity import open_store
from boternity.models import ChatMessage, MessageRole


def open_and_report(url: str) -> int:
    async def main() -> int:
        async with open_store(url, pool_size=1) as store:
            return store.schema_version

    return asyncio.run(main())


def append_messages(url: str, session_id: str, count: int, worker: int) -> list[int]:
    """Save ``count`` messages (input_tokens=worker, output_tokens=1) with 4 tasks at once."""

    async def main() -> list[int]:
        async with open_store(url, pool_size=4) as store:

            async def one(i: int) -> int:
                saved = await store.chat.save_message(
                    ChatMessage(
                        session_id=uuid.UUID(session_id), role=MessageRole.USER,
                        content=f"w{worker} m{i}", input_tokens=worker, output_tokens=1,
                    )
                )  # fmt: skip
                assert saved.seq is not None
                return saved.seq

            seqs: list[int] = []
            for start in range(0, count, 4):
                batch = range(start, min(start + 4, count))
                seqs.extend(await asyncio.gather(*(one(i) for i in batch)))
            return seqs

    return asyncio.run(main())


def claim_all(url: str, now_iso: str) -> list[str]:
    """Claim jobs three at a time until none are due; the ids this process got."""

    async def main() -> list[str]:
        now = datetime.fromisoformat(now_iso)
        got: list[str] = []
        async with open_store(url, pool_size=2) as store:
            while True:
                claimed = await store.memory.claim_pending_extractions(limit=3, now=now)
                if not claimed:
                    return got
                got.extend(str(p.id) for p in claimed)

    return asyncio.run(main())
