"""boternity quickstart: write a conversation, then read it back from a fresh process.

    python examples/quickstart.py [--db PATH_OR_URL]

Without --db it writes a fresh SQLite file in a temporary folder (removed at the end), never
your own ~/.boternity. Creates (or reuses) the bot "quickstart", starts a session, saves four messages, a memory
and a context summary, then starts a *new* Python process that opens the same database and
prints everything back: what was committed survives the process that wrote it.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from boternity import open_store
from boternity.models import Bot, ChatMessage, ChatSession, ContextSummary, MemoryEntry

CONVERSATION = [
    ("user", "Hi! I'm Ana, and I just moved to Lisbon. 🇵🇹"),
    ("assistant", "Welcome to Lisbon, Ana! How are you settling in?"),
    ("user", "Great, though I still prefer tea over the famous coffee."),
    ("assistant", "Noted: tea first. I can suggest a few tea houses near Alfama."),
]


async def write(db: str | None) -> uuid.UUID:
    async with open_store(db) as store:
        bot = await store.bots.get_bot_by_slug("quickstart")
        if bot is None:
            bot = await store.bots.create_bot(
                Bot(name="Quickstart", description="The bot of the README example")
            )
            await store.bots.save_soul(bot.id, "You are warm, brief and curious.")
        session = await store.chat.create_session(ChatSession(bot_id=bot.id, model="example"))
        saved = []
        for role, text in CONVERSATION:
            saved.append(
                await store.chat.save_message(
                    ChatMessage(
                        session_id=session.id,
                        role=role,
                        content=text,
                        input_tokens=len(text) // 4 if role == "assistant" else None,
                        output_tokens=len(text) // 4 if role == "assistant" else None,
                    )
                )
            )
        # Models are frozen: derive a changed copy. update_session writes title, status and
        # ended_at only, so this copy's (stale) counters cannot roll anything back.
        await store.chat.update_session(dataclasses.replace(session, title="Settling in Lisbon"))
        await store.memory.save_memory(
            MemoryEntry(
                bot_id=bot.id,
                fact="Ana prefers tea over coffee",
                category="preference",
                importance=4,
                session_id=session.id,
                source_message_id=saved[2].id,
            )
        )
        await store.memory.save_context_summary(
            ContextSummary(
                session_id=session.id,
                summary="Ana moved to Lisbon and prefers tea; the bot offered tea houses.",
                messages_start=1,
                messages_end=4,
                token_count=16,
            )
        )
        print(f"wrote session {session.id} to {getattr(store, 'path', db)} ({store.backend})")
        return session.id


async def show(db: str | None, session_id: uuid.UUID) -> None:
    async with open_store(db) as store:
        session = await store.chat.get_session(session_id)
        if session is None:
            raise SystemExit(f"session {session_id} not found")
        bot = await store.bots.get_bot(session.bot_id)
        assert bot is not None
        soul = await store.bots.get_soul(bot.id)
        print(f"\nread back in a fresh process (pid {__import__('os').getpid()}):")
        print(f"bot      {bot.name} ({bot.slug}), {bot.conversation_count} conversation(s)")
        if soul is not None:
            print(f"soul     v{soul.version}: {soul.content}")
        print(
            f"session  {session.title!r}: {session.message_count} messages, "
            f"{session.total_input_tokens} in / {session.total_output_tokens} out tokens"
        )
        for m in await store.chat.get_messages(session.id):
            print(f"  #{m.seq} {m.role:<9} {m.content}")
        for memory in await store.memory.get_memories_by_session(session.id):
            source = (
                await store.chat.get_message(memory.source_message_id)
                if memory.source_message_id
                else None
            )
            origin = f"message #{source.seq}" if source else "manual"
            print(
                f"memory   [{memory.category}] {memory.fact} (importance {memory.importance}, from {origin})"
            )
        summary = await store.memory.get_latest_summary(session.id)
        if summary is not None:
            print(
                f"summary  messages {summary.messages_start}..{summary.messages_end}: {summary.summary}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--db", help="path or URL (default: a new file in a temporary folder, removed after)"
    )
    parser.add_argument("--show", type=uuid.UUID, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.show is not None:
        asyncio.run(show(args.db, args.show))
        return
    if args.db is not None:
        run(args.db)
        return
    with tempfile.TemporaryDirectory(prefix="boternity-quickstart-") as folder:
        run(str(Path(folder) / "quickstart.db"))


def run(db: str) -> None:
    session_id = asyncio.run(write(db))
    command = [sys.executable, __file__, "--show", str(session_id), "--db", db]
    subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
