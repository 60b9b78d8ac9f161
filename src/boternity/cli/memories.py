"""``bnity memories``, ``remember``, ``forget`` and ``memory delete``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer

from boternity.cli.runtime import (
    MEMORY_CATEGORIES,
    SEARCH_MODES,
    BnityCommand,
    BotArg,
    EmbeddingsOpt,
    JsonOpt,
    NoPagerOpt,
    YesOpt,
    choice,
    complete_bot,
    confirm,
    run,
    sub_app,
    use_pager,
    user_option,
)

if TYPE_CHECKING:
    from datetime import datetime

    from boternity.embeddings import Embedder
    from boternity.memory import MemoryHit
    from boternity.models import Bot, MemoryEntry, MemoryEvent
    from boternity.repositories import UserScope
    from boternity.store import Store

memory_app = sub_app("Show or delete a single memory.")

EXCERPT_CHARS = 200
SEARCH_LIMIT = 500
#: What the semantic ranking contributes to a hybrid search (as the library's default).
CANDIDATES = 50
#: Results of a hybrid or semantic search unless --limit says otherwise (meaning ranks every
#: embedded memory, so these searches always return their best few, not "every match").
RANKED_LIMIT = 10


@dataclass(slots=True)
class Provenance:
    """Where a memory came from, for people (the ids are in the memory itself)."""

    manual: bool
    session_title: str | None = None
    date: datetime | None = None
    excerpt: str | None = None

    def as_json(self) -> dict[str, Any]:
        from boternity.cli.output import to_jsonable
        from boternity.text import ellipsis

        return {
            "manual": self.manual,
            "session_title": self.session_title,
            "date": to_jsonable(self.date),
            # the whole message is one get_message(source_message_id) away
            "excerpt": None if self.excerpt is None else ellipsis(self.excerpt, EXCERPT_CHARS),
        }

    def describe(self) -> str:
        from boternity.cli.output import fmt_date
        from boternity.text import ellipsis

        if self.manual:
            return "manual"
        parts = []
        if self.session_title is not None:
            parts.append(f"“{ellipsis(self.session_title, 30)}”")
        if self.date is not None:
            parts.append(fmt_date(self.date))
        head = " ".join(parts) or "(session deleted)"
        if self.excerpt:
            return f"{head}: “{ellipsis(self.excerpt, 50)}”"
        return head


async def provenance(store: Store, memories: list[MemoryEntry]) -> dict[uuid.UUID, Provenance]:
    """Where each memory came from; two queries, however many memories."""
    sessions = await store.chat.get_sessions_by_ids(
        {m.session_id for m in memories if m.session_id is not None}
    )
    messages = await store.chat.get_messages_by_ids(
        {m.source_message_id for m in memories if m.source_message_id is not None}
    )
    out: dict[uuid.UUID, Provenance] = {}
    for m in memories:
        if m.is_manual and m.session_id is None:
            out[m.id] = Provenance(manual=True, date=m.created_at)
            continue
        session = None if m.session_id is None else sessions.get(m.session_id)
        message = None if m.source_message_id is None else messages.get(m.source_message_id)
        date = message.created_at if message else session.started_at if session else None
        out[m.id] = Provenance(
            manual=m.is_manual,
            session_title=(session.title or "(untitled)") if session else None,
            date=date,
            excerpt=message.content if message else None,
        )
    return out


async def _text_search(
    store: Store,
    bot_id: uuid.UUID,
    query: str,
    pool: list[MemoryEntry],
    include_superseded: bool,
    user_id: UserScope,
    ranked: list[MemoryEntry] | None = None,
) -> list[MemoryHit]:
    """``pool`` narrowed to the search hits: the store's full-text matches first (best
    first; ``ranked`` when given), then substring matches it missed (partial words such as
    'ram' for 'ramen'), scored by rank as the library scores a text search."""
    from boternity.memory.search import RRF_K, MemoryHit

    if ranked is None:
        ranked = await store.memory.search_memories(
            bot_id,
            query,
            user_id=user_id,
            limit=SEARCH_LIMIT,
            include_superseded=include_superseded,
        )
    allowed = {m.id for m in pool}
    hits = [m for m in ranked if m.id in allowed]
    seen = {m.id for m in hits}
    needle = query.strip().casefold()
    if needle:  # an empty or blank query is a substring of every fact, and matches nothing
        hits += [m for m in pool if m.id not in seen and needle in m.fact.casefold()]
    return [MemoryHit(m, 1 / (RRF_K + rank), rank) for rank, m in enumerate(hits, 1)]


def _embedder_or_notice(name: str | None, mode: str, notes: list[str]) -> Embedder | None:
    """The embedder to search with; None (and a note) when there is none to use, so hybrid
    runs as text. An explicit --mode semantic without one is an error instead."""
    from boternity.embeddings import select_embedder
    from boternity.errors import EmbeddingError
    from boternity.llm import RetryPolicy

    try:  # a person waits for the query's embedding: one quick retry, then the text search
        embedder, notice = select_embedder(name, retry=RetryPolicy.interactive(max_retries=1))
    except EmbeddingError as exc:
        if mode == "semantic":
            raise
        notes.append(f"{exc}: searching by shared words only.")
        return None
    if embedder is None and mode == "semantic":
        raise EmbeddingError(
            "semantic search needs an embedder: install boternity[local], or set"
            " OPENAI_API_KEY / OPENAI_BASE_URL (and not --embeddings none)"
        )
    if embedder is None:
        notes.append(notice or "No embedder (--embeddings none): searching by shared words only.")
    elif notice:
        notes.append(notice)
    return embedder


async def _ranked_search(
    store: Store,
    bot: Bot,
    query: str,
    pool: list[MemoryEntry],
    *,
    mode: str,
    limit: int,
    include_superseded: bool,
    embedder_name: str | None,
    narrowed: bool,
    notes: list[str],
    user_id: UserScope,
) -> list[MemoryHit]:
    """--search in any mode, narrowed to ``pool``. The text ranking is the full-text matches
    then the substring ones; hybrid fuses the semantic ranking with the text ranking of the
    facts having every word of the query (as the library does), and runs as text when the
    query cannot be embedded. Every ranking keeps to what ``user_id`` sees."""
    from contextlib import aclosing

    from boternity.errors import EmbeddingError
    from boternity.memory import MemorySearch
    from boternity.memory.search import fuse, hybrid_text

    embedder = None if mode == "text" else _embedder_or_notice(embedder_name, mode, notes)
    if embedder is None:
        return (await _text_search(store, bot.id, query, pool, include_superseded, user_id))[:limit]
    async with aclosing(embedder):
        missing = await store.memory.count_without_embedding(
            embedder.model, bot_id=bot.id, dimension=embedder.dimension
        )
        if missing:
            notes.append(
                f"{missing} of the bot's memories have no embedding for {embedder.model} yet"
                f" and are found by shared words only: run 'bnity memories reembed {bot.slug}'."
            )
        wanted = SEARCH_LIMIT if narrowed else max(limit, CANDIDATES)
        try:
            found = await MemorySearch(store, embedder).search(
                bot.id,
                query,
                mode="semantic",
                limit=wanted,
                include_superseded=include_superseded,
                user_id=user_id,
            )
        except EmbeddingError as exc:
            if mode == "semantic":
                raise
            notes.append(f"searching by shared words only: {exc}.")
            return (await _text_search(store, bot.id, query, pool, include_superseded, user_id))[
                :limit
            ]
    allowed = {m.id for m in pool}
    by_meaning = [h for h in found if h.memory.id in allowed]
    if mode == "semantic":
        return by_meaning[:limit]
    pairs = [(h.memory, h.similarity or 0.0) for h in by_meaning]
    words = await hybrid_text(
        store, bot.id, query, embedder.model, limit=SEARCH_LIMIT,
        include_superseded=include_superseded, user_id=user_id,
    )  # fmt: skip
    text = await _text_search(store, bot.id, query, pool, include_superseded, user_id, ranked=words)
    return fuse([h.memory for h in text], pairs)[:limit]


def list_memories(
    ctx: typer.Context,
    bot: BotArg,
    all_: Annotated[
        bool, typer.Option("--all", help="Include memories superseded by newer ones.")
    ] = False,
    session: Annotated[
        str | None,
        typer.Option(
            metavar="SESSION", help="Only memories extracted from this session (id or prefix)."
        ),
    ] = None,
    search: Annotated[
        str | None,
        typer.Option(
            metavar="QUERY",
            help=(
                "Search, best match first (see --mode). The text search lists facts sharing a"
                " word with QUERY, then facts containing QUERY as text (case-insensitive)."
            ),
        ),
    ] = None,
    mode: Annotated[
        str | None,
        typer.Option(
            click_type=choice(SEARCH_MODES),
            help=(
                "How --search ranks: hybrid (shared words and meaning, fused), semantic"
                " (meaning only: needs an embedder) or text (shared words only)"
                " [default: hybrid; text when no embedder is available, with a note]"
            ),
            show_default=False,
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=SEARCH_LIMIT,
            help=f"At most this many results [default: {RANKED_LIMIT} for hybrid and"
            f" semantic, every match (up to {SEARCH_LIMIT}) for text]",
            show_default=False,
        ),
    ] = None,
    embeddings: EmbeddingsOpt = None,
    user: Annotated[
        str | None,
        user_option(
            "What a conversation with this user recalls: their memories and the bot's own"
            " [default: every memory, whoever's]."
        ),
    ] = None,
    no_pager: NoPagerOpt = False,
    json_: JsonOpt = False,
) -> None:
    """List a bot's memories, most important first, with provenance and user; or search them.

    Provenance is the session title, date and an excerpt of the source message, or
    "manual" for remembered facts. The user column shows whose a memory is ("-": the bot's
    own, recalled in every conversation); --user lists and searches what a conversation
    with that user sees. A search by meaning uses each memory's embedding, made
    off the chat path by the extraction worker; 'bnity memories reembed [BOT]' embeds what
    is missing (after a change of embedding model, say). Search results carry a score
    (the fused rank score in hybrid, the cosine similarity in semantic)."""
    from boternity.cli.resolve import resolve_bot, resolve_session, unique_prefixes
    from boternity.errors import ValidationError
    from boternity.repositories import ANY_USER, visible

    whose = ANY_USER if user is None else user
    if search is None and (mode is not None or limit is not None):
        raise ValidationError("--mode and --limit apply to --search only")
    notes: list[str] = []
    hits: dict[uuid.UUID, MemoryHit] = {}

    async def work(
        store: Store,
    ) -> tuple[Bot, list[MemoryEntry], dict[uuid.UUID, Provenance], dict[uuid.UUID, str]]:
        found = await resolve_bot(store, bot)
        if session is not None:
            chosen = await resolve_session(store, session, bot_id=found.id)
            if chosen.bot_id != found.id:
                raise ValidationError(
                    f"session {chosen.id} belongs to another bot, not {found.slug!r}"
                )
            memories = await store.memory.get_memories_by_session(chosen.id)
            if not all_:
                memories = [m for m in memories if m.is_live]
            if user is not None:
                memories = [m for m in memories if visible(user, m.user_id)]
            # the same order as the full list: importance, then newest
            memories.sort(key=lambda m: (m.importance, m.created_at, m.id), reverse=True)
        else:
            memories = await store.memory.get_memories(
                found.id, user_id=whose, include_superseded=all_
            )
        if search is not None:
            chosen_mode = mode or "hybrid"
            default_limit = SEARCH_LIMIT if chosen_mode == "text" else RANKED_LIMIT
            ranked = await _ranked_search(
                store,
                found,
                search,
                memories,
                mode=chosen_mode,
                limit=limit or default_limit,
                include_superseded=all_,
                embedder_name=embeddings,
                narrowed=session is not None,
                notes=notes,
                user_id=whose,
            )
            hits.update((h.memory.id, h) for h in ranked)
            memories = [h.memory for h in ranked]
        ids = await unique_prefixes(store, "memory", [m.id for m in memories])
        return found, memories, await provenance(store, memories), ids

    found, memories, sources, ids = run(ctx, work)
    from boternity.cli.output import (
        console,
        echo,
        esc,
        fmt_date,
        paged,
        plural,
        print_json,
        stars,
        table,
        text,
        to_jsonable,
    )
    from boternity.text import ellipsis

    for note in notes:
        echo(f"note: {note}", err=True)
    if json_:
        items = []
        for m in memories:
            item = to_jsonable(m)
            item["provenance"] = sources[m.id].as_json()
            if m.id in hits:
                hit = hits[m.id]
                item["score"] = hit.score
                item["similarity"] = hit.similarity
                item["text_rank"] = hit.text_rank
                item["semantic_rank"] = hit.semantic_rank
            items.append(item)
        print_json(items)
        return
    with paged(use_pager(ctx, no_pager)):
        out = console()
        if not memories:
            what = "matching memories" if search or session else "memories"
            seen = "" if user is None else f" seen by user '{esc(user)}'"
            out.print(f"No {what} for '{esc(found.slug)}'{seen}.")
            return
        users = any(m.user_id is not None for m in memories)
        columns = ["ID!", "Fact", *(("User",) if users else ()), "Category", "Importance"]
        columns += ["Source", "Date"]
        if all_:
            columns.append("Live")
        if search is not None:
            columns.append("Score")
        t = table(*columns)
        for m in memories:
            row: list[Any] = [
                ids[m.id],
                text(ellipsis(m.fact, 60)),
                *((text(ellipsis(m.user_id or "-", 24)),) if users else ()),
                m.category.value,
                stars(m.importance),
                text(sources[m.id].describe()),
                fmt_date(m.created_at),
            ]
            if all_:
                row.append("yes" if m.is_live else "superseded")
            if search is not None:
                row.append(f"{hits[m.id].score:.4f}")
            t.add_row(*row)
        out.print(t)
        out.print(plural(len(memories), "memory", "memories"))


def remember(
    ctx: typer.Context,
    bot: BotArg,
    fact: Annotated[str, typer.Argument(help="The fact to remember.")],
    category: Annotated[
        str, typer.Option(click_type=choice(MEMORY_CATEGORIES), help="What kind of memory.")
    ] = "fact",
    importance: Annotated[int, typer.Option(min=1, max=5, help="1 (trivia) to 5 (essential).")] = 4,
    user: Annotated[
        str | None,
        user_option(
            "Remember it for this user only [default: the bot's own memory, recalled in every"
            " conversation]."
        ),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Save a fact by hand (a manual memory, not tied to any session); refused when the bot
    already remembers it (for --user: when a conversation with that user recalls it)."""
    from boternity.cli.resolve import resolve_bot
    from boternity.memory import remember as remember_fact

    async def work(store: Store) -> tuple[Bot, MemoryEntry]:
        found = await resolve_bot(store, bot)
        saved = await remember_fact(
            store, found.id, fact, category=category, importance=importance, user_id=user
        )
        return found, saved

    found, saved = run(ctx, work)
    if json_:
        from boternity.cli.output import print_json

        print_json(saved)
        return
    from boternity.cli.output import echo

    whom = "" if saved.user_id is None else f", user {saved.user_id}"
    echo(
        f"Remembered for '{found.slug}'"
        f" ({saved.category.value}, importance {saved.importance}{whom}): {saved.fact}"
    )


def forget(
    ctx: typer.Context,
    bot: BotArg,
    all_users: Annotated[
        bool,
        typer.Option(
            "--all-users",
            help="Also delete the memories of the bot's users (needed when it holds any).",
        ),
    ] = False,
    yes: YesOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Delete ALL memories of a bot, superseded ones too (asks first, saying whose). When
    some belong to users, --all-users is needed ('bnity user forget BOT USER' erases one
    user's data)."""
    from boternity.cli.output import plural
    from boternity.cli.resolve import resolve_bot
    from boternity.cli.runtime import EXIT_CONFLICT, EXIT_USAGE, CliError

    async def work(store: Store) -> tuple[Bot, int, list[tuple[str | None, int]]]:
        found = await resolve_bot(store, bot)
        owners = await store.users.memory_owners(found.id)
        count = sum(n for _, n in owners)
        if count == 0:
            return found, 0, owners
        whose = _whose(owners)
        users = sum(1 for user, _ in owners if user is not None)
        if users and not all_users:
            raise CliError(
                f"'{found.slug}' holds memories of {plural(users, 'user')} ({whose}): pass"
                " --all-users to delete every user's memories too, or use"
                f" 'bnity user forget {found.slug} USER' to erase one user's data",
                exit_code=EXIT_USAGE,
            )
        what = "the 1 memory" if count == 1 else f"all {count} memories"
        whose = f": {whose}" if users else ""  # all the bot's own: nothing to add
        confirm(
            f"Delete {what} of '{found.name}' ({found.slug}){whose}? This cannot be undone.",
            yes=yes,
        )
        # The question may wait for minutes while a chat or the worker adds memories (a
        # user's, perhaps, without --all-users): delete only what was asked about.
        if await store.users.memory_owners(found.id) != owners:
            raise CliError(
                f"the memories of '{found.slug}' changed while you were asked; nothing was"
                " deleted: run the command again",
                exit_code=EXIT_CONFLICT,
            )
        return found, await store.memory.delete_all_memories(found.id), owners

    found, deleted, owners = run(ctx, work)
    if json_:
        from boternity.cli.output import print_json

        print_json(
            {
                "bot": found.slug,
                "bot_id": str(found.id),
                "deleted": deleted,
                "by_user": [{"user_id": user, "memories": n} for user, n in owners],
            }
        )
        return
    from boternity.cli.output import echo

    if deleted == 0:
        echo(f"No memories to delete for '{found.slug}'.")
    else:
        whose = f" ({_whose(owners)})" if any(u is not None for u, _ in owners) else ""
        echo(f"Deleted {plural(deleted, 'memory', 'memories')} of '{found.slug}'{whose}.")


#: How many users the question and summary of ``forget`` name, the most first.
NAMED_USERS = 5


def _whose(owners: list[tuple[str | None, int]]) -> str:
    """Whose memories these are, in words: "2 of user 'ana', 1 the bot's own", the users
    with the most first, the rest counted."""
    from boternity.cli.output import plural
    from boternity.text import ellipsis

    users = [(u, n) for u, n in owners if u is not None]
    parts = [f"{n} of user {ellipsis(u, 40)!r}" for u, n in users[:NAMED_USERS]]
    if len(users) > NAMED_USERS:
        rest = users[NAMED_USERS:]
        parts.append(f"{sum(n for _, n in rest)} of {plural(len(rest), 'other user')}")
    own = sum(n for u, n in owners if u is None)
    if own:
        parts.append(f"{own} the bot's own")
    return ", ".join(parts)


@memory_app.command("show", cls=BnityCommand)
def show_memory(
    ctx: typer.Context,
    memory: Annotated[str, typer.Argument(metavar="MEMORY", help="Memory id or unique id prefix.")],
    json_: JsonOpt = False,
) -> None:
    """Show one memory: provenance, what superseded it, and its recorded history."""
    from boternity.cli.resolve import resolve_memory

    async def work(
        store: Store,
    ) -> tuple[MemoryEntry, Bot | None, Provenance, list[MemoryEvent]]:
        found = await resolve_memory(store, memory)
        bot = await store.bots.get_bot(found.bot_id)
        history = await store.memory.get_memory_history(found.id)
        return found, bot, (await provenance(store, [found]))[found.id], history

    found, bot, source, history = run(ctx, work)
    from boternity.cli.output import console, fmt_time, key_values, print_json, stars, to_jsonable
    from boternity.text import ellipsis

    if json_:
        item = to_jsonable(found)
        item["provenance"] = source.as_json()
        item["history"] = to_jsonable(history)
        print_json(item)
        return
    rows: list[tuple[str, object]] = [
        ("Fact", found.fact),
        ("ID", str(found.id)),
        ("Bot", f"{bot.name} ({bot.slug})" if bot else str(found.bot_id)),
        ("User", found.user_id if found.user_id is not None else "- (the bot's own)"),
        ("Category", found.category.value),
        ("Importance", f"{stars(found.importance)} ({found.importance}/5)"),
        ("Source", source.describe()),
        ("Session", str(found.session_id) if found.session_id else "-"),
        ("Created", fmt_time(found.created_at) + " UTC"),
        ("Superseded by", str(found.superseded_by) if found.superseded_by else "-"),
    ]
    for i, event in enumerate(history):
        line = f"{fmt_time(event.created_at)} UTC  {event.event.value} by {event.actor.value}"
        if event.related_memory_id is not None:
            line += f" (memory {event.related_memory_id})"
        if event.event.value == "repeated":  # in the words said again
            line += f": “{ellipsis(event.fact, 60)}”"
        rows.append(("History" if i == 0 else "", line))
    console().print(key_values(rows))


@memory_app.command("delete", cls=BnityCommand)
def delete_memory(
    ctx: typer.Context,
    memory: Annotated[str, typer.Argument(metavar="MEMORY", help="Memory id or unique id prefix.")],
    yes: YesOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Delete one memory (asks first)."""
    from boternity.cli.resolve import resolve_memory
    from boternity.text import ellipsis

    async def work(store: Store) -> MemoryEntry:
        found = await resolve_memory(store, memory)
        confirm(f"Delete memory {str(found.id)[:13]} “{ellipsis(found.fact, 60)}”?", yes=yes)
        await store.memory.delete_memory(found.id)
        return found

    deleted = run(ctx, work)
    if json_:
        from boternity.cli.output import print_json

        print_json({"deleted": True, "memory_id": str(deleted.id)})
        return
    typer.echo(f"Deleted memory {deleted.id}.")


def reembed(
    ctx: typer.Context,
    bot: Annotated[
        str | None,
        typer.Argument(
            metavar="[BOT]",
            help="Only this bot's memories (slug, id or prefix) [default: every bot's]",
            autocompletion=complete_bot,
            show_default=False,
        ),
    ] = None,
    embeddings: EmbeddingsOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Embed the memories that have no embedding of the embedder's model, live ones first,
    with a progress bar: after a change of embedding model, or to catch up.

    The extraction worker does the same off the chat path, a batch at a time. Embeddings
    of other models are kept, and never used by a search. Exit 1 when the embedder failed
    (what was embedded before stays; run it again later)."""
    import sys

    from boternity.cli.output import console, echo, esc, plural, print_json
    from boternity.cli.resolve import resolve_bot
    from boternity.errors import ValidationError

    progress: Any = None
    plain = not json_ and not sys.stdout.isatty()

    async def work(store: Store) -> dict[str, Any]:
        nonlocal progress
        from boternity.embeddings import select_embedder
        from boternity.llm import RetryPolicy
        from boternity.memory import EmbeddingBackfill

        found = await resolve_bot(store, bot) if bot is not None else None
        bot_id = None if found is None else found.id
        embedder, notice = select_embedder(embeddings, retry=RetryPolicy.interactive())
        if embedder is None:
            raise ValidationError(
                "no embedder to embed with: install boternity[local], or set OPENAI_API_KEY /"
                " OPENAI_BASE_URL (and not --embeddings none)"
            )
        if notice:
            echo(f"note: {notice}", err=True)
        from contextlib import aclosing

        async with aclosing(embedder):
            total = await store.memory.count_without_embedding(
                embedder.model, bot_id=bot_id, dimension=embedder.dimension
            )
            if total == 0 and embedder.dimension is None:
                # A model not known in advance whose stored vectors all look current: one
                # short request learns its dimension now, so vectors it made before under
                # the same name at another length are embedded again.
                await embedder.embed(["dimension"])
                total = await store.memory.count_without_embedding(
                    embedder.model, bot_id=bot_id, dimension=embedder.dimension
                )
            if not json_ and not plain and total:
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

                progress = Progress(
                    TextColumn(f"Embedding memories ({esc(embedder.model)})"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    console=console(),
                    transient=True,
                )
                task = progress.add_task("memories", total=total)
                progress.start()

            def advance(count: int) -> None:
                if progress is not None:
                    progress.advance(task, count)

            try:
                report = await EmbeddingBackfill(store, embedder).run(
                    bot_id=bot_id, wait=False, on_batch=advance
                )
            finally:
                if progress is not None:
                    progress.stop()
            left = await store.memory.count_without_embedding(
                embedder.model, bot_id=bot_id, dimension=embedder.dimension
            )
        return {
            "bot": None if found is None else found.slug,
            "embedder": embedder.name,
            "model": embedder.model,
            "embedded": report.embedded,
            "refused": report.refused,
            "remaining": left,
            "error": report.error,
        }

    result = run(ctx, work)
    if json_:
        print_json(result)
    else:
        where = f"'{result['bot']}'" if result["bot"] else "every bot"
        summary = (
            f"Embedded {plural(result['embedded'], 'memory', 'memories')} of {where}"
            f" with {result['model']}"
        )
        if result["refused"]:
            summary += f"; {result['refused']} refused by the embedder"
        if result["remaining"]:
            summary += f"; {result['remaining']} still without an embedding"
        echo(summary + ".")
    if result["error"] is not None:
        echo(f"error: {' '.join(result['error'].split())}", err=True)
        raise typer.Exit(1)


def reembed_command() -> click.Command:
    """'bnity memories reembed': a command of its own, reached through 'memories'."""
    single = sub_app("")
    single.command("reembed", cls=BnityCommand)(reembed)
    return typer.main.get_command(single)
