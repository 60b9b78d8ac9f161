"""Worker processes for multi-process tests: ``python -m tests.procs COMMAND URL ...``.

Each command opens its own store on the given path or URL (any backend), does its work and
prints one line per finished operation, flushed, so the parent knows exactly what was
committed before it kills or joins the process.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid

from boternity import open_store
from boternity.models import ChatMessage, ChatSession, MessageRole


async def append(url: str, session_id: uuid.UUID, count: int, tag: str) -> None:
    """Save ``count`` messages (count 0 = forever), printing 'seq id' after each returns."""
    async with open_store(url) as store:
        i = 0
        while count == 0 or i < count:
            saved = await store.chat.save_message(
                ChatMessage(
                    session_id=session_id,
                    role=MessageRole.USER if i % 2 == 0 else MessageRole.ASSISTANT,
                    content=f"{tag} message {i} ✓ " + "x" * (i % 50),
                    input_tokens=1,
                    output_tokens=2,
                )
            )
            print(saved.seq, saved.id, flush=True)
            i += 1


async def claim(url: str, batch: int) -> None:
    """Claim jobs until none are due, printing each claimed job id."""
    async with open_store(url) as store:
        while True:
            jobs = await store.memory.claim_pending_extractions(limit=batch)
            if not jobs:
                return
            for job in jobs:
                print(job.id, flush=True)


async def extract(url: str, base_url: str, limit: int | None = None) -> None:
    """Run the extraction worker once against an OpenAI-compatible server at ``base_url``
    (claiming at most ``limit`` jobs)."""
    from boternity.llm import OpenAIProvider, RetryPolicy
    from boternity.memory import ExtractionWorker

    async with (
        open_store(url) as store,
        OpenAIProvider(base_url=base_url, retry=RetryPolicy(max_retries=0), timeout=600) as llm,
    ):
        report = await ExtractionWorker(store, llm, model="gpt-test").run_once(limit=limit)
        print(report.completed, report.memories_saved, flush=True)


async def keyed(url: str, bot_id: uuid.UUID, keys: list[str]) -> None:
    """get_or_create_session_by_key for each key, printing the session id of each."""
    async with open_store(url) as store:
        for key in keys:
            session = await store.chat.get_or_create_session_by_key(
                ChatSession(bot_id=bot_id, model="m"), key
            )
            print(session.id, flush=True)


async def open_only(url: str) -> None:
    async with open_store(url) as store:
        print(store.schema_version, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("append")
    p.add_argument("url")
    p.add_argument("session", type=uuid.UUID)
    p.add_argument("--count", type=int, default=0)
    p.add_argument("--tag", default="p")
    p = sub.add_parser("claim")
    p.add_argument("url")
    p.add_argument("--batch", type=int, default=3)
    p = sub.add_parser("extract")
    p.add_argument("url")
    p.add_argument("base_url")
    p.add_argument("--limit", type=int, default=None)
    p = sub.add_parser("keyed")
    p.add_argument("url")
    p.add_argument("bot", type=uuid.UUID)
    p.add_argument("keys", nargs="+")
    p = sub.add_parser("open")
    p.add_argument("url")
    args = parser.parse_args()
    if args.command == "append":
        asyncio.run(append(args.url, args.session, args.count, args.tag))
    elif args.command == "claim":
        asyncio.run(claim(args.url, args.batch))
    elif args.command == "keyed":
        asyncio.run(keyed(args.url, args.bot, args.keys))
    elif args.command == "extract":
        asyncio.run(extract(args.url, args.base_url, args.limit))
    else:
        asyncio.run(open_only(args.url))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
