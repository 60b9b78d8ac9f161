"""``bnity demo``: the whole pipeline on a fresh machine, with no API key.

A demo bot (slug ``demo``, with a soul) has a short scripted conversation through the real
:class:`~boternity.chat.ChatEngine` with the offline provider (canned replies, labelled as
such). Ending the session queues its final memory extraction; the queue is then processed
by the real :class:`~boternity.memory.ExtractionWorker`, which also embeds the new memories
(the local embedder, when ``boternity[local]`` is installed: ``scripts/demo`` installs it).
The transcript and the memories (with their provenance) are shown, and a question that
shares no word with any memory finds its answer by meaning. Running it again reuses the bot
and adds a session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer

from boternity.cli.runtime import JsonOpt

if TYPE_CHECKING:
    from rich.text import Text

    from boternity.cli.memories import Provenance
    from boternity.memory import SearchResult, WorkerReport
    from boternity.models import Bot, ChatMessage, ChatSession, MemoryEntry
    from boternity.store import Store

SLUG = "demo"
NAME = "Demo"
SOUL = """\
You are Demo, the boternity demonstration bot: warm, brief and curious.
You remember what people tell you about themselves and use it naturally later on."""

#: Facts, then a correction: the correction supersedes the earlier memory.
SCRIPT = (
    "Hi! My name is Sam.",
    "I live in Lisbon and I work as a nurse.",
    "I love hiking in the mountains.",
    "Actually, I moved last month. I live in Berlin.",
    "Where do I live?",
)
#: The first three user turns close one extraction job; the final job covers the rest, so
#: the correction is extracted after the fact it corrects is stored.
EXTRACT_EVERY = 3
#: Shares no word with any memory (a search by words finds nothing): found by meaning.
MEANING_QUESTION = "What is my job?"


@dataclass(slots=True)
class DemoResult:
    bot: Bot
    created: bool
    session: ChatSession
    messages: list[ChatMessage]
    report: WorkerReport
    memories: list[MemoryEntry]
    sources: dict[Any, Provenance]
    queued: int
    session_ref: str  # the session's shortest unique id prefix
    #: MEANING_QUESTION searched by meaning (hybrid) and by shared words only.
    by_meaning: SearchResult
    by_words: SearchResult
    embedder: str | None  # the local embedder's model; None when it is not installed


async def run_demo(store: Store, say: Any) -> DemoResult:
    """The demo itself; ``say(role, text)`` is told each message as it is stored."""
    from contextlib import AsyncExitStack

    from boternity.chat import ChatEngine
    from boternity.cli.memories import provenance
    from boternity.cli.resolve import unique_prefix
    from boternity.embeddings import local
    from boternity.memory import ExtractionWorker, MemoryRecall, MemorySearch
    from boternity.models import Bot

    bot = await store.bots.get_bot_by_slug(SLUG)
    created = bot is None
    if bot is None:
        bot = await store.bots.create_bot(
            Bot(name=NAME, slug=SLUG, description="The bnity demo bot")
        )
        await store.bots.save_soul(bot.id, SOUL, message="bnity demo")
    from boternity.llm import OfflineProvider

    # The local embedder, or none: the demo never calls a remote service.
    embedder = local.LocalEmbedder() if local.available() else None
    async with AsyncExitStack() as stack:
        if embedder is not None:
            stack.push_async_callback(embedder.aclose)
        provider = await stack.enter_async_context(OfflineProvider())
        recall = MemoryRecall(store, embedder=embedder)
        engine = ChatEngine(store, provider, recall=recall, extract_every=EXTRACT_EVERY)
        async with engine:
            live = await engine.start_session(bot, greet=True)
            if live.greeting is not None:
                say("assistant", live.greeting.content)
            for text in SCRIPT:
                say("user", text)
                reply = await live.ask(text)
                say("assistant", reply.content)
            session = await live.end()  # queues the final extraction
        queued = len(await store.memory.list_pending_extractions(bot_id=bot.id))
        report = await ExtractionWorker(store, provider, embedder=embedder).run_once(bot_id=bot.id)
        by_meaning = await recall.search.search(bot.id, MEANING_QUESTION, limit=1)
        by_words = await MemorySearch(store).search(bot.id, MEANING_QUESTION, mode="text")
    messages = await store.chat.get_messages(session.id)
    ended = await store.chat.get_session(session.id)
    memories = await store.memory.get_memories(bot.id, include_superseded=True)  # no user here
    return DemoResult(
        bot=bot,
        created=created,
        session=ended or session,
        messages=messages,
        report=report,
        memories=memories,
        sources=await provenance(store, memories),
        queued=queued,
        session_ref=await unique_prefix(store, "session", session.id),
        by_meaning=by_meaning,
        by_words=by_words,
        embedder=None if embedder is None else embedder.model,
    )


def demo(
    ctx: typer.Context,
    json_: JsonOpt = False,
) -> None:
    """Try boternity without an API key: a scripted chat with a demo bot, memory extraction
    through the queue, and the memories with where they came from.

    Uses the offline provider (canned, pattern-matched replies: not a language model). Run
    it again to add another session; then chat yourself with 'bnity chat demo'."""
    from rich.text import Text

    from boternity.cli.output import (
        console,
        plural,
        print_json,
        stars,
        table,
        text,
        to_jsonable,
    )
    from boternity.cli.runtime import get_state, run
    from boternity.text import ellipsis

    out = console()
    err = console(stderr=True)
    err.print(
        Text(
            "bnity demo uses the offline provider: replies are canned (pattern-matched),"
            " not from a language model.",
            style="yellow",
        )
    )
    label = {"user": "You", "assistant": NAME}

    def say(role: str, content: str) -> None:
        if json_:
            return
        line = Text(f"{label[role]}: ", style="bold" if role == "user" else "bold cyan")
        line.append_text(text(content))
        out.print(line)

    if not json_:
        out.print(Text("A scripted conversation with the demo bot:", style="bold"))
    result: DemoResult = run(ctx, lambda store: run_demo(store, say), create=True)
    live = [m for m in result.memories if m.is_live]
    if json_:
        memories = []
        for m in result.memories:
            item = to_jsonable(m)
            item["provenance"] = result.sources[m.id].as_json()
            memories.append(item)
        print_json(
            {
                "bot": result.bot,
                "bot_created": result.created,
                "session": result.session,
                "messages": result.messages,
                "extraction": result.report,
                "memories": memories,
                "found_by_meaning": {
                    "question": MEANING_QUESTION,
                    "embedder": result.embedder,
                    "mode": result.by_meaning.mode,
                    "hits": [
                        {"fact": h.memory.fact, "score": h.score, "similarity": h.similarity}
                        for h in result.by_meaning
                    ],
                    "by_words": [h.memory.fact for h in result.by_words],
                },
            }
        )
        return
    s = result.session
    out.print()
    out.print(
        text(
            f"{'Created' if result.created else 'Reused'} bot '{result.bot.name}'"
            f" ({result.bot.slug}). Session {result.session_ref} “{s.title or 'untitled'}”:"
            f" {s.status.value}, {plural(s.message_count, 'message')} stored.",
        )
    )
    r = result.report
    out.print(
        Text(
            f"Memory extraction through the queue: {plural(result.queued, 'job')} processed,"
            f" {plural(r.memories_saved, 'memory', 'memories')} saved,"
            f" {r.superseded} superseded"
            + (f", {r.failed + r.exhausted} failed" if r.failed or r.exhausted else "")
            + "."
        )
    )
    out.print()
    t = table("Fact", "Category", "Importance", "Source (session: message)", "Status!")
    shown = [m for m in result.memories if m.session_id == s.id or m.is_live]
    for m in shown:
        t.add_row(
            text(ellipsis(m.fact, 50)),
            m.category.value,
            stars(m.importance),
            text(result.sources[m.id].describe()),
            "live" if m.is_live else "superseded",
        )
    t.title = f"What {NAME} remembers ({plural(len(live), 'live memory', 'live memories')})"
    out.print(t)
    out.print(meaning_line(result))
    db = get_state(ctx).db
    flag = f" --db {db}" if db else ""
    out.print(
        Text(
            "\nThat was the offline provider. To chat with a real model, set one of:\n"
            "  ANTHROPIC_API_KEY=…                       Anthropic\n"
            "  OPENAI_API_KEY=…                          OpenAI\n"
            "  OPENAI_BASE_URL=http://localhost:11434/v1  a local OpenAI-compatible server"
            " (Ollama, vLLM, llama.cpp, LM Studio)\n"
            f"then run: bnity{flag} chat {SLUG}\n"
            f"Look around: bnity{flag} sessions {SLUG} · bnity{flag} memories {SLUG}"
            f" · bnity{flag} session show {result.session_ref}"
        )
    )


def meaning_line(result: DemoResult) -> Text:
    """What the question that shares no word with any memory found, by words and by meaning."""
    from rich.text import Text

    from boternity.cli.output import text

    words = ", ".join(f"“{h.memory.fact}”" for h in result.by_words) or "nothing"
    line = Text("\nFound by meaning: ", style="bold")
    line.append_text(text(f"“{MEANING_QUESTION}” finds {words} by shared words; "))
    if result.embedder is None:
        return line.append_text(
            text(
                "by meaning, it needs the local embedder (pip install 'boternity[local]';"
                " scripts/demo installs it)."
            )
        )
    hits = [h for h in result.by_meaning if h.similarity is not None]
    found = (
        f"“{hits[0].memory.fact}” (cosine similarity {hits[0].similarity:.2f})"
        if hits
        else "nothing yet"
    )
    return line.append_text(text(f"by meaning ({result.embedder}), {found}."))
