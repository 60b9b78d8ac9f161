"""``bnity user forget|export``: the data-subject requests a deployed bot must answer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from boternity.cli.runtime import (
    BnityCommand,
    BotArg,
    JsonOpt,
    OutputOpt,
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

#: Rows per part of an export (UserRepository.export_user_parts): what it holds at once.
EXPORT_ROWS = 100

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


class JsonWriter:
    """JSON written as it comes, indented as ``json.dumps(indent=2)`` would: objects and
    arrays opened and closed by hand, each value dumped whole in its place. So a document of
    any size needs the memory of one value."""

    def __init__(self, write: Callable[[str], object]) -> None:
        self._write = write
        self._counts: list[int] = []  # per open container: how many entries so far

    def _entry(self) -> None:
        if self._counts:
            self._write(("," if self._counts[-1] else "") + "\n" + "  " * len(self._counts))
            self._counts[-1] += 1

    def _key(self, key: str | None) -> None:
        self._entry()
        if key is not None:
            self._write(json.dumps(key, ensure_ascii=False) + ": ")

    def open(self, bracket: str, key: str | None = None) -> None:
        self._key(key)
        self._write(bracket)
        self._counts.append(0)

    def close(self, bracket: str) -> None:
        if self._counts.pop():
            self._write("\n" + "  " * len(self._counts))
        self._write(bracket)

    def value(self, value: Any, key: str | None = None) -> None:
        from boternity.cli.output import to_jsonable

        self._key(key)
        text = json.dumps(to_jsonable(value), ensure_ascii=False, indent=2)
        self._write(text.replace("\n", "\n" + "  " * len(self._counts)))


#: The lists of each exported session, in their order: UserData's field, the export's key.
SESSION_LISTS = (("messages", "messages"), ("summaries", "summaries"), ("jobs", "queued_jobs"))
#: The lists after the sessions.
USER_LISTS = (
    ("memories", "memories"),
    ("history", "memory_history"),
    ("embeddings", "memory_embeddings"),
)


async def write_export(
    out: JsonWriter, bot: Bot, user_id: str, parts: AsyncIterator[UserData]
) -> tuple[int, int]:
    """The export, written as its parts come (UserRepository.export_user_parts): each session
    with its messages, summaries and queued jobs, then the memories (superseded ones too),
    their history, and which of them have a vector of which embedding model (the numbers are
    derived from the facts, not exported). Returns how many sessions and memories."""
    from boternity.ids import utc_now

    out.open("{")
    out.value({"id": bot.id, "slug": bot.slug, "name": bot.name}, "bot")
    out.value(user_id, "user_id")
    out.value(utc_now(), "exported_at")
    out.open("[", "sessions")
    counts = {"sessions": 0, "memories": 0}
    # The list being written (a UserData field), and the lists of the object being written
    # (a session, or the export itself after the sessions) still to come.
    state: dict[str, Any] = {"current": None, "todo": [], "in_sessions": True}

    def finish() -> None:
        """Close the list being written; the object's lists that had no rows are empty."""
        if state["current"] is not None:
            out.close("]")
            state["current"] = None
        for _, key in state["todo"]:
            out.value([], key)
        state["todo"] = []

    def end_sessions() -> None:
        finish()
        if counts["sessions"]:
            out.close("}")
        out.close("]")
        state.update(in_sessions=False, todo=list(USER_LISTS))

    async for part in parts:
        for session in part.sessions:
            finish()
            if counts["sessions"]:
                out.close("}")
            out.open("{")
            out.value(session, "session")
            state["todo"] = list(SESSION_LISTS)
            counts["sessions"] += 1
        for field, key in (*SESSION_LISTS, *USER_LISTS):
            rows = getattr(part, field)
            if not rows:
                continue
            if state["in_sessions"] and (field, key) in USER_LISTS:
                end_sessions()
            if field != state["current"]:
                if state["current"] is not None:
                    out.close("]")
                todo = state["todo"]
                while todo and todo[0][0] != field:
                    out.value([], todo.pop(0)[1])
                todo.pop(0)
                out.open("[", key)
                state["current"] = field
            for row in rows:
                out.value(row)
            if field == "memories":
                counts["memories"] += len(rows)
    if state["in_sessions"]:
        end_sessions()
    finish()
    out.close("}")
    return counts["sessions"], counts["memories"]


@user_app.command("export", cls=BnityCommand)
def export(
    ctx: typer.Context,
    bot: BotArg,
    user: UserArg,
    output: OutputOpt = None,
    yes: OverwriteOpt = False,
) -> None:
    """Export everything stored about USER for BOT as JSON (what 'user forget' would erase).

    {"bot", "user_id", "exported_at", "sessions": [{"session", "messages", "summaries",
    "queued_jobs"}], "memories", "memory_history", "memory_embeddings"}. FILE is never the database or one of its
    files, and an existing FILE is replaced only after confirmation (--yes/--force), whole or
    not at all (owner-only permissions)."""
    from boternity.cli.files import atomic_write, output_file
    from boternity.cli.resolve import resolve_bot
    from boternity.cli.runtime import get_state

    dest = None
    if output is not None and output != "-":
        dest = output_file(get_state(ctx).db, output, yes=yes, what="the export")

    async def export_to(store: Store, write: Callable[[str], object]) -> tuple[int, int]:
        found = await resolve_bot(store, bot)
        parts = store.users.export_user_parts(found.id, user, rows=EXPORT_ROWS)
        counts = await write_export(JsonWriter(write), found, user, parts)
        write("\n")
        return counts

    from boternity.cli.output import echo, echo_exact, plural

    if dest is None:
        run(ctx, lambda store: export_to(store, lambda text: echo_exact(text, nl=False)))
        return
    with atomic_write(dest) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        sessions, memories = run(ctx, lambda store: export_to(store, fh.write))
    echo(
        f"Exported {plural(sessions, 'session')} and"
        f" {plural(memories, 'memory', 'memories')} of user '{user}' to {output}.",
        err=True,
    )
