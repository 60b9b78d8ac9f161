"""``bnity sessions BOT`` and ``bnity session show|export|delete``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from boternity.cli.runtime import (
    MAX_COUNT,
    BnityCommand,
    JsonOpt,
    NoPagerOpt,
    OutputOpt,
    OverwriteOpt,
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
    from boternity.models import Bot, ChatMessage, ChatSession
    from boternity.store import Store

session_app = sub_app("Show, export and delete chat sessions.")

SessionArg = Annotated[
    str, typer.Argument(metavar="SESSION", help="Session id or unique id prefix.")
]
ROLE_NAMES = {"user": "You", "assistant": "Assistant", "system": "System"}


@dataclass(slots=True)
class SessionRow:
    session: ChatSession
    first: ChatMessage | None
    last: ChatMessage | None


def duration(session: ChatSession) -> str:
    from boternity.cli.output import fmt_duration

    if session.ended_at is not None:
        return fmt_duration(session.ended_at - session.started_at)
    if session.status.value == "active":
        return "ongoing"
    if session.last_activity_at is not None:  # crashed: as long as it was seen alive
        return fmt_duration(session.last_activity_at - session.started_at)
    return "-"


def list_sessions(
    ctx: typer.Context,
    bot: Annotated[
        str | None,
        typer.Argument(
            metavar="[BOT]",
            help="Bot slug, id or unique id prefix [default: all bots].",
            autocompletion=complete_bot,
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=MAX_COUNT, help="Show at most N sessions, newest first.")
    ] = 20,
    user: Annotated[
        str | None, user_option("Only the sessions with this user [default: every session].")
    ] = None,
    no_pager: NoPagerOpt = False,
    json_: JsonOpt = False,
) -> None:
    """List chat sessions (of one bot, or of all bots), newest first, with message previews.

    Columns: id prefix, (bot,) title, (user,) start, duration, messages, tokens, status, and
    the first and last message."""
    from boternity.cli.resolve import resolve_bot, unique_prefixes
    from boternity.repositories import ANY_USER

    async def work(
        store: Store,
    ) -> tuple[Bot | None, list[SessionRow], bool, dict[uuid.UUID, str], dict[uuid.UUID, str]]:
        slugs = {b.id: b.slug for b in await store.bots.list_bots()}
        found = await resolve_bot(store, bot) if bot is not None else None
        whose = ANY_USER if user is None else user
        if found is not None:
            sessions = await store.chat.list_sessions(found.id, user_id=whose, limit=limit + 1)
        else:
            sessions = await store.chat.list_all_sessions(user_id=whose, limit=limit + 1)
        more = len(sessions) > limit
        sessions = sessions[:limit]
        ends = await store.chat.get_first_and_last_messages(s.id for s in sessions)
        rows = [SessionRow(s, *ends.get(s.id, (None, None))) for s in sessions]
        ids = await unique_prefixes(store, "session", [r.session.id for r in rows])
        return found, rows, more, ids, slugs

    found, rows, more, ids, slugs = run(ctx, work)
    from boternity.cli.output import (
        console,
        esc,
        fmt_time,
        paged,
        print_json,
        styled,
        table,
        text,
        to_jsonable,
    )
    from boternity.text import ellipsis

    if json_:
        out_rows = []
        for r in rows:
            item = to_jsonable(r.session)
            item["bot_slug"] = slugs.get(r.session.bot_id)
            item["first_message"] = to_jsonable(r.first)
            item["last_message"] = to_jsonable(r.last)
            out_rows.append(item)
        print_json(out_rows)
        return
    with paged(use_pager(ctx, no_pager)):
        out = console()
        if not rows:
            whose = "" if user is None else f" with user '{esc(user)}'"
            out.print(
                f"No sessions for '{esc(found.slug)}'{whose} yet."
                if found
                else f"No sessions{whose} yet."
            )
            return
        users = any(r.session.user_id is not None for r in rows)
        t = table(
            "ID!",
            *(() if found else ("Bot",)),
            "Title",
            *(("User",) if users else ()),
            "Started (UTC)!",
            "Duration!",
            "Msgs>",
            "Tokens in/out>",
            "Status!",
            "First / last message",
        )
        for r in rows:
            s = r.session
            preview = text(ellipsis(r.first.content if r.first else "", 40))
            if r.last is not None and r.first is not None and r.last.id != r.first.id:
                preview.append_text(text("\n→ " + ellipsis(r.last.content, 38), style="dim"))
            t.add_row(
                ids[s.id],
                *(() if found else (text(slugs.get(s.bot_id, str(s.bot_id)[:8])),)),
                text(ellipsis(s.title or "(untitled)", 40)),
                *((text(ellipsis(s.user_id or "-", 24)),) if users else ()),
                fmt_time(s.started_at),
                duration(s),
                str(s.message_count),
                f"{s.total_input_tokens:,}/{s.total_output_tokens:,}",
                styled(s.status.value),
                preview,
            )
        out.print(t)
        shown = len(rows)
        tail = f" (newest {shown}; use --limit for more)" if more else ""
        out.print(f"{shown} session{'s' if shown != 1 else ''}{tail}")


async def _load(store: Store, ref: str) -> tuple[Bot | None, ChatSession, list[ChatMessage]]:
    from boternity.cli.resolve import resolve_session

    session = await resolve_session(store, ref)
    bot = await store.bots.get_bot(session.bot_id)
    return bot, session, await store.chat.get_messages(session.id)


def _export_json(session: ChatSession, messages: list[ChatMessage]) -> dict[str, Any]:
    """The session with every field, then its messages in seq order."""
    return {"session": session, "messages": messages}


def _metadata(bot: Bot | None, session: ChatSession) -> list[tuple[str, str]]:
    from boternity.cli.output import fmt_time

    rows = [
        ("Session", str(session.id)),
        ("Bot", f"{bot.name} ({bot.slug})" if bot else str(session.bot_id)),
        ("User", session.user_id if session.user_id is not None else "-"),
        ("Model", session.model),
        ("Status", session.status.value),
        ("Started", fmt_time(session.started_at) + " UTC"),
    ]
    if session.ended_at is not None:
        rows.append(("Ended", fmt_time(session.ended_at) + " UTC"))
    rows += [
        ("Duration", duration(session)),
        ("Messages", str(session.message_count)),
        ("Tokens", f"{session.total_input_tokens:,} in / {session.total_output_tokens:,} out"),
    ]
    return rows


@session_app.command("show", cls=BnityCommand)
def show(
    ctx: typer.Context, session: SessionArg, json_: JsonOpt = False, no_pager: NoPagerOpt = False
) -> None:
    """Show a session's metadata and its whole transcript."""
    bot, found, messages = run(ctx, lambda store: _load(store, session))
    from rich.text import Text

    from boternity.cli.chatting import bot_colour, bot_label
    from boternity.cli.output import console, fmt_time, key_values, paged, print_json, text

    if json_:
        print_json(_export_json(found, messages))
        return
    with paged(use_pager(ctx, no_pager)):
        out = console()
        rule = Text("─" * min(out.width, 72), style="dim")
        out.print(text(found.title or "(untitled)", style="bold"))
        out.print(key_values(_metadata(bot, found)))
        for m in messages:
            out.print(rule)
            if m.role.value == "assistant" and bot is not None:
                header = Text(bot_label(bot), style=f"bold {bot_colour(bot)}")  # as in chat
            else:
                header = Text(ROLE_NAMES.get(m.role.value, m.role.value), style="bold")
            header.append(f"  #{m.seq}  {fmt_time(m.created_at)} UTC", style="dim")
            out.print(header)
            out.print(text(m.content))
        if not messages:
            out.print(Text("(no messages)", style="dim"))


def to_markdown(bot: Bot | None, session: ChatSession, messages: list[ChatMessage]) -> str:
    from boternity.cli.output import fmt_time

    lines = [f"# {session.title or 'Untitled session'}", ""]
    lines += [f"- **{k}:** {v}" for k, v in _metadata(bot, session)]
    lines += ["", "---", ""]
    for m in messages:
        role = ROLE_NAMES.get(m.role.value, m.role.value)
        lines += [f"### {role} ({fmt_time(m.created_at)} UTC)", "", m.content, ""]
    return "\n".join(lines).rstrip("\n") + "\n"


@session_app.command("export", cls=BnityCommand)
def export(
    ctx: typer.Context,
    session: SessionArg,
    format_: Annotated[
        str,
        typer.Option(
            "--format", "-f", click_type=choice(("md", "json")), help="Markdown transcript or JSON."
        ),
    ] = "md",
    output: OutputOpt = None,
    yes: OverwriteOpt = False,
) -> None:
    """Export a session: Markdown (title, metadata, each message with role and time) or JSON
    ({"session": {...}, "messages": [...]}).

    FILE is never the database or one of its files, and an existing FILE is replaced only
    after confirmation (--yes/--force), whole or not at all."""
    from boternity.cli.files import output_file, write_text
    from boternity.cli.runtime import get_state

    fmt = format_
    dest = None
    if output is not None and output != "-":
        dest = output_file(get_state(ctx).db, output, yes=yes, what="the export")
    bot, found, messages = run(ctx, lambda store: _load(store, session))
    from boternity.cli.output import dumps, echo, echo_exact

    body = (
        dumps(_export_json(found, messages)) + "\n"
        if fmt == "json"
        else to_markdown(bot, found, messages)
    )
    if dest is None:
        echo_exact(body, nl=False)
        return
    # A transcript is as private as the database: owner-only (0600), like every file we write.
    write_text(dest, body)
    n = len(messages)
    echo(f"Exported {n} message{'s' if n != 1 else ''} to {output}.", err=True)


@session_app.command("delete", cls=BnityCommand)
def delete(
    ctx: typer.Context, session: SessionArg, yes: YesOpt = False, json_: JsonOpt = False
) -> None:
    """Delete a session with its messages, summaries and queued jobs (its memories are kept)."""
    from boternity.cli.resolve import resolve_session

    async def work(store: Store) -> ChatSession:
        found = await resolve_session(store, session)
        title = found.title or "(untitled)"
        from boternity.cli.output import plural

        confirm(
            f"Delete session '{title}' ({plural(found.message_count, 'message')})?"
            " Its memories are kept.",
            yes=yes,
        )
        await store.chat.delete_session(found.id)
        return found

    deleted = run(ctx, work)
    if json_:
        from boternity.cli.output import print_json

        print_json({"deleted": True, "session_id": str(deleted.id)})
        return
    from boternity.cli.output import echo

    echo(f"Deleted session {deleted.id} ('{deleted.title or '(untitled)'}').")
