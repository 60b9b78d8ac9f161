"""boternity chat engine: a streamed conversation with a bot, from a terminal.

    python examples/chat.py [--db PATH_OR_URL] [--resume SESSION_ID]

Uses the provider the environment selects (ANTHROPIC_API_KEY, OPENAI_API_KEY /
OPENAI_BASE_URL), else the offline provider. Every message is committed as soon as it is
complete; kill the process mid-reply and the next run marks that session ``crashed`` and
queues its memory extraction. An empty line or the end of input (Ctrl+D) ends the
session.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid

from boternity import open_store
from boternity.chat import ChatEngine, LiveSession
from boternity.llm import select_provider
from boternity.memory import MemoryRecall
from boternity.models import Bot


async def read_line(prompt: str) -> str:
    """The next line typed, stripped; "" at the end of input (Ctrl+D, or a pipe that ends)."""
    try:
        return (await asyncio.to_thread(input, prompt)).strip()
    except EOFError:
        print()
        return ""


async def chat(db: str | None, resume: uuid.UUID | None) -> None:
    provider, notice = select_provider()
    if notice:
        print(notice, file=sys.stderr)
    async with open_store(db) as store, provider:
        bot = await store.bots.get_bot_by_slug("chat-example")
        if bot is None:
            bot = await store.bots.create_bot(Bot(name="Chat example", slug="chat-example"))
            await store.bots.save_soul(bot.id, "A cheerful, concise assistant.")
        async with ChatEngine(store, provider, recall=MemoryRecall(store)) as engine:
            live: LiveSession
            if resume is not None:
                live = await engine.resume_session(resume)
            else:
                live = await engine.start_session(bot, greet=True)
                if live.greeting is not None:
                    print(f"{bot.name}: {live.greeting.content}")
            print(f"(session {live.id})")
            while text := await read_line("you: "):
                turn = live.send(text)
                print(f"{bot.name}: ", end="", flush=True)
                async for piece in turn:
                    print(piece, end="", flush=True)
                print()
            ended = await live.end()
            print(f"(session {ended.id} {ended.status.value}: {ended.title})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default=None)
    parser.add_argument("--resume", type=uuid.UUID, default=None)
    args = parser.parse_args()
    asyncio.run(chat(args.db, args.resume))


if __name__ == "__main__":
    main()
