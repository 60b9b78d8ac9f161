"""``bnity user forget|export``: the data-subject requests a deployed bot must answer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from boternity.cli.runtime import (
    BnityCommand,
    BotArg,
    JsonOpt,
    OverwriteOpt,
    YesOpt,
    confirm,
    run,
    sub_app,
)

if TYPE_CHECKING:
    from boternity.models import Bot
    from boternity.repositories import UserCounts, UserData
    from boternity.store import Store

user_app = sub_app("Erase or export everything stored about one user of a bot.")

UserArg = Annotated[
    str,
    typer.Argument(
        metavar="USER",
        help="The user's id, as the application gave it (e.g. discord:81234).",
        show_default=False,
    ),
]


def describe(counts: UserCounts) -> str:
    """What a user's rows amount to, for people: "2 sessions (14 messages, …), 5 memories
    (9 history entries, 5 embeddings)"."""
    from boternity.cli.output import plural

    inside = [
        plural(counts.messages, "message"),
        plural(counts.summaries, "summary", "summaries"),
        plural(counts.jobs, "queued extraction job"),
    ]
    about = [
        plural(counts.history, "history entry", "history entries"),
        plural(counts.embeddings, "embedding"),
    ]
    return (
        f"{plural(counts.sessions, 'session')} ({', '.join(inside)}),"
        f" {plural(counts.memories, 'memory', 'memories')} ({', '.join(about)})"
    )


@user_app.command("forget", cls=BnityCommand)
def forget(
    ctx: typer.Context,
    bot: BotArg,
    user: UserArg,
    yes: YesOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Erase everything stored about USER for BOT, in one transaction (asks first).

    Their sessions with every message, summary and queued extraction job, their memories
    (with full-text index entries and embeddings) and the history of their memories. The bot's own memories
    and other users' data are not touched; the bot's token totals keep what was used."""
    from boternity.cli.resolve import resolve_bot

    async def work(store: Store) -> tuple[Bot, UserCounts]:
        found = await resolve_bot(store, bot)
        counts = await store.users.count_user(found.id, user)
        if counts.total == 0:
            return found, counts
        confirm(
            f"Erase everything of user '{user}' for '{found.name}' ({found.slug}):"
            f" {describe(counts)}? This cannot be undone.",
            yes=yes,
        )
        return found, await store.users.forget_user(found.id, user)

    found, deleted = run(ctx, work)
    if json_:
        from boternity.cli.output import print_json

        print_json(
            {"bot": found.slug, "bot_id": str(found.id), "user_id": user, "deleted": deleted}
        )
        return
    from boternity.cli.output import echo

    if deleted.total == 0:
        echo(f"Nothing stored for user '{user}' of '{found.slug}'.")
    else:
        echo(f"Erased user '{user}' of '{found.slug}': {describe(deleted)}.")


def export_json(bot: Bot, data: UserData) -> dict[str, Any]:
    """The export: each session with its messages, summaries and queued jobs, then the
    memories (superseded ones too), their history, and which of them have a vector of which
    embedding model (the numbers are derived from the facts, not exported)."""
    from boternity.ids import utc_now

    messages: dict[Any, list[Any]] = {}
    summaries: dict[Any, list[Any]] = {}
    jobs: dict[Any, list[Any]] = {}
    for found, rows in ((messages, data.messages), (summaries, data.summaries), (jobs, data.jobs)):
        for row in rows:
            found.setdefault(row.session_id, []).append(row)
    return {
        "bot": {"id": bot.id, "slug": bot.slug, "name": bot.name},
        "user_id": data.user_id,
        "exported_at": utc_now(),
        "sessions": [
            {
                "session": s,
                "messages": messages.get(s.id, []),
                "summaries": summaries.get(s.id, []),
                "queued_jobs": jobs.get(s.id, []),
            }
            for s in data.sessions
        ],
        "memories": data.memories,
        "memory_history": data.history,
        "memory_embeddings": data.embeddings,
    }


@user_app.command("export", cls=BnityCommand)
def export(
    ctx: typer.Context,
    bot: BotArg,
    user: UserArg,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write to FILE instead of stdout."),
    ] = None,
    yes: OverwriteOpt = False,
) -> None:
    """Export everything stored about USER for BOT as JSON (what 'user forget' would erase).

    {"bot", "user_id", "exported_at", "sessions": [{"session", "messages", "summaries",
    "queued_jobs"}], "memories", "memory_history", "memory_embeddings"}. FILE is never the database or one of its
    files, and an existing FILE is replaced only after confirmation (--yes/--force), whole or
    not at all (owner-only permissions)."""
    from boternity.cli.files import output_file, write_text
    from boternity.cli.resolve import resolve_bot
    from boternity.cli.runtime import get_state

    dest = None
    if output is not None and output != "-":
        dest = output_file(get_state(ctx).db, output, yes=yes, what="the export")

    async def work(store: Store) -> tuple[Bot, UserData]:
        found = await resolve_bot(store, bot)
        return found, await store.users.export_user(found.id, user)

    found, data = run(ctx, work)
    from boternity.cli.output import dumps, echo, echo_exact, plural

    body = dumps(export_json(found, data)) + "\n"
    if dest is None:
        echo_exact(body, nl=False)
        return
    write_text(dest, body)
    echo(
        f"Exported {plural(len(data.sessions), 'session')} and"
        f" {plural(len(data.memories), 'memory', 'memories')} of user '{user}' to {output}.",
        err=True,
    )
