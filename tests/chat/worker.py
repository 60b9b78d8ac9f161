"""A chatting process for multi-process tests: ``python -m tests.chat.worker URL BOT_ID ...``.

It opens its own store and engine, starts a session for the bot and sends ``--turns`` user
messages, printing (flushed) one line per fact the parent needs:

    session <id>
    streaming <turn> <user seq>     first text of a reply arrived (the user message is stored)
    turn <turn> <user seq> <reply seq>
    paused                          waiting for a line on stdin before turn --pause-before
    holding                         all turns done; the session stays live until stdin closes
    ended <status>

``--anthropic URL`` talks to a (fake) Anthropic server; otherwise the offline provider.
``--say TEXT`` (repeatable) gives the user turns to cycle through. ``--resume ID`` resumes
that session instead of starting one (BOT_ID is then ignored), ``--retry-busy S`` trying again
for S seconds while it is live elsewhere.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid

from boternity import open_store
from boternity.chat import ChatEngine, LiveSession, SessionBusyError
from boternity.errors import RepositoryError
from boternity.llm import AnthropicProvider, OfflineProvider


def say(*parts: object) -> None:
    print(*parts, flush=True)


async def resume(engine: ChatEngine, session_id: uuid.UUID, retry_for: float) -> LiveSession:
    """Resume, trying again for up to ``retry_for`` seconds while the session is live."""
    deadline = asyncio.get_running_loop().time() + retry_for
    while True:
        try:
            return await engine.resume_session(session_id)
        except (SessionBusyError, RepositoryError):  # live elsewhere, or the lock connection died
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.005)


async def chat(args: argparse.Namespace) -> None:
    provider: AnthropicProvider | OfflineProvider = (
        AnthropicProvider(api_key="test-key-not-secret", base_url=args.anthropic)
        if args.anthropic
        else OfflineProvider()
    )
    async with (
        open_store(args.url) as store,
        provider,
        ChatEngine(store, provider, extract_every=args.extract_every) as engine,
    ):
        live = (
            await resume(engine, uuid.UUID(args.resume), args.retry_busy)
            if args.resume
            else await engine.start_session(uuid.UUID(args.bot))
        )
        say("session", live.id)
        for i in range(args.turns):
            if i == args.pause_before:
                say("paused")
                await asyncio.to_thread(sys.stdin.readline)
            text = args.say[i % len(args.say)] if args.say else f"{args.tag} says hello number {i}"
            turn = live.send(text)
            first = True
            async for _ in turn:
                if first:
                    assert turn.user_message is not None
                    say("streaming", i, turn.user_message.seq)
                    first = False
            reply = await turn
            assert turn.user_message is not None
            say("turn", i, turn.user_message.seq, reply.seq)
        if args.hold:
            say("holding")
            await asyncio.to_thread(sys.stdin.read)
        ended = await live.end()
        say("ended", ended.status.value)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("bot")
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--resume", default=None, help="resume this session instead")
    parser.add_argument("--retry-busy", type=float, default=0, help="seconds to retry --resume")
    parser.add_argument("--tag", default="p")
    parser.add_argument("--anthropic", default=None)
    parser.add_argument("--pause-before", type=int, default=-1)
    parser.add_argument("--hold", action="store_true")
    parser.add_argument("--extract-every", type=int, default=10)
    parser.add_argument("--say", action="append", help="user turns to cycle through")
    asyncio.run(chat(parser.parse_args()))


if __name__ == "__main__":
    main()
