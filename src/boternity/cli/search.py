"""``bnity search TEXT``: full-text search over the messages of every session."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated, Any

import typer

from boternity.cli.runtime import (
    MAX_COUNT,
    JsonOpt,
    NoPagerOpt,
    complete_bot,
    run,
    use_pager,
    user_option,
)

if TYPE_CHECKING:
    from rich.text import Text

    from boternity.models import Bot, MessageHit
    from boternity.store import Store

#: How a matched word is shown on a terminal (git grep's colour for a match).
MATCH_STYLE = "bold red"


def search(
    ctx: typer.Context,
    query: Annotated[
        str,
        typer.Argument(metavar="TEXT", help="Words to look for (quote several words)."),
    ],
    bot: Annotated[
        str | None,
        typer.Option(
            "--bot",
            metavar="BOT",
            help="Only this bot's sessions (slug, id or unique id prefix).",
            autocompletion=complete_bot,
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=MAX_COUNT, help="Show at most N messages, best first.")
    ] = 20,
    user: Annotated[
        str | None, user_option("Only the sessions with this user [default: every session].")
    ] = None,
    no_pager: NoPagerOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Search the messages of every session (or of one bot's), best match first, then newest.

    A message matches when it shares a word with TEXT: word forms, case and accents aside
    ('lived' finds 'lives', 'zoe' finds 'Zoë'); common words ('the', 'where') are left out, and
    quotes or operators are plain text. The first 50,000 characters of a message are searched.

    Columns: session id prefix, (bot,) (user,) message number, who said it, when, and a
    snippet with the matched words highlighted. --json gives each hit's message id, session,
    number, role, time and length, its bot and session's user, the snippet and the [start,
    end) spans of the snippet that matched ('session show' prints a message whole)."""
    from boternity.cli.resolve import resolve_bot, unique_prefixes
    from boternity.repositories import ANY_USER

    async def work(
        store: Store,
    ) -> tuple[
        Bot | None,
        list[MessageHit],
        bool,
        dict[uuid.UUID, Bot],
        dict[uuid.UUID, str],
        dict[uuid.UUID, str | None],
    ]:
        found = await resolve_bot(store, bot) if bot is not None else None
        hits = await store.chat.search_messages(
            query,
            bot_id=None if found is None else found.id,
            user_id=ANY_USER if user is None else user,
            limit=limit + 1,
        )
        more = len(hits) > limit
        hits = hits[:limit]
        bots: dict[uuid.UUID, Bot] = {}
        for bot_id in dict.fromkeys(h.bot_id for h in hits):
            got = await store.bots.get_bot(bot_id)
            if got is not None:
                bots[bot_id] = got
        users = {h.session_id: h.user_id for h in hits}
        ids = await unique_prefixes(store, "session", [h.session_id for h in hits])
        return found, hits, more, bots, ids, users

    found, hits, more, bots, ids, users = run(ctx, work)
    from boternity.cli.output import console, esc, fmt_time, paged, plural, print_json, table
    from boternity.text import ellipsis

    if json_:
        print_json([_as_json(h, bots) for h in hits])
        return
    with paged(use_pager(ctx, no_pager)):
        out = console()
        if not hits:
            where = f" in the sessions of '{esc(found.slug)}'" if found else ""
            whose = f" with user '{esc(user)}'" if user is not None else ""
            out.print(f"No messages match '{esc(ellipsis(query, 60))}'{where}{whose}.")
            return
        with_users = any(users.get(h.session_id) is not None for h in hits)
        t = table(
            "Session!",
            *(() if found else ("Bot",)),
            *(("User",) if with_users else ()),
            "#>",
            "From!",
            "Time (UTC)!",
            "Match",
        )
        for h in hits:
            owner = bots.get(h.bot_id)
            t.add_row(
                ids[h.session_id],
                *(() if found else (_bot_cell(owner, h.bot_id),)),
                *((_user_cell(users.get(h.session_id)),) if with_users else ()),
                str(h.seq),
                _role(h, owner),
                fmt_time(h.created_at),
                _snippet(h),
            )
        out.print(t)
        tail = f" (best {len(hits)}; use --limit for more)" if more else ""
        out.print(plural(len(hits), "message") + tail)


def _as_json(hit: MessageHit, bots: dict[uuid.UUID, Bot]) -> dict[str, Any]:
    """Every field of the hit, exact (the message's id, session, number, role, time and
    length, its session's bot and user, the snippet and its spans), and the bot's slug."""
    from boternity.cli.output import to_jsonable

    item: dict[str, Any] = to_jsonable(hit)
    owner = bots.get(hit.bot_id)
    item["bot_slug"] = None if owner is None else owner.slug
    return item


def _user_cell(user_id: str | None) -> Text:
    from boternity.cli.output import text
    from boternity.text import ellipsis

    return text(ellipsis(user_id or "-", 24))


def _bot_cell(owner: Bot | None, bot_id: uuid.UUID) -> Text:
    from boternity.cli.output import text

    return text(owner.slug if owner else str(bot_id)[:8])


def _role(hit: MessageHit, owner: Bot | None) -> Text:
    """Who said it, as ``session show`` labels it: the bot's name for its replies."""
    from rich.text import Text

    from boternity.cli.chatting import bot_colour, bot_label
    from boternity.cli.output import visible
    from boternity.cli.sessions import ROLE_NAMES

    role = hit.role.value
    if role == "assistant" and owner is not None:
        return Text(visible(bot_label(owner)), style=f"bold {bot_colour(owner)}")
    return Text(ROLE_NAMES.get(role, role), style="bold")


def _snippet(hit: MessageHit) -> Text:
    """The snippet with its matched words in MATCH_STYLE; stored text made visible piece by
    piece (an escape shown as text never swallows a mark)."""
    from rich.text import Text

    from boternity.cli.output import visible

    out = Text()
    for piece, matched in hit.parts():
        out.append(visible(piece), style=MATCH_STYLE if matched else "")
    return out
