"""``bnity bot …`` and ``bnity soul …``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import click
import typer

from boternity.cli.runtime import (
    BOT_CATEGORIES,
    BOT_STATUSES,
    MAX_COUNT,
    BnityCommand,
    BotArg,
    JsonOpt,
    YesOpt,
    choice,
    confirm,
    read_text_file,
    run,
    sub_app,
)

if TYPE_CHECKING:
    import uuid

    from boternity.models import Bot, SoulVersion
    from boternity.store import Store

bot_app = sub_app("Create, list, show, edit and delete bots.")
soul_app = sub_app("A bot's soul (its system prompt); every version is kept.")

CATEGORY = choice(BOT_CATEGORIES)
STATUS = choice(BOT_STATUSES)


def _bot_rows(bot: Bot) -> list[tuple[str, object]]:
    from boternity.cli.output import fmt_time, styled

    return [
        ("Name", bot.name),
        ("Slug", bot.slug),
        ("ID", str(bot.id)),
        ("Status", styled(bot.status.value)),
        ("Category", bot.category.value),
        ("Description", bot.description or "-"),
        ("Tags", ", ".join(bot.tags) or "-"),
        ("Sessions", bot.conversation_count),
        ("Tokens used", f"{bot.total_tokens_used:,}"),
        ("Soul versions", bot.version_count),
        ("Created", fmt_time(bot.created_at) + " UTC"),
        ("Updated", fmt_time(bot.updated_at) + " UTC"),
        ("Last active", fmt_time(bot.last_active_at) + (" UTC" if bot.last_active_at else "")),
    ]


@bot_app.command("create", cls=BnityCommand)
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Display name, e.g. 'Research Helper'.")],
    slug: Annotated[
        str | None, typer.Option(help="URL-safe handle [default: derived from NAME].")
    ] = None,
    description: Annotated[str, typer.Option(help="One-line description.")] = "",
    category: Annotated[str, typer.Option(click_type=CATEGORY, help="What the bot is for.")] = (
        "assistant"
    ),
    soul: Annotated[
        str | None,
        typer.Option(
            metavar="FILE", help="Initial soul (system prompt) from a file, or - for stdin."
        ),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Create a bot (optionally with its first soul version)."""
    from boternity.models import Bot

    bot = Bot(name=name, slug=slug or "", description=description, category=category)  # type: ignore[arg-type]
    soul_text = read_text_file(soul) if soul is not None else None

    async def work(store: Store) -> Bot:
        created = await store.bots.create_bot(bot)
        if soul_text is not None:
            await store.bots.save_soul(created.id, soul_text, message="initial soul")
            found = await store.bots.get_bot(created.id)
            created = found or created
        return created

    created = run(ctx, work, create=True)
    if json_:
        from boternity.cli.output import print_json

        print_json(created)
        return
    from boternity.cli.output import console, esc

    soul_note = " with soul v1" if soul_text is not None else ""
    console().print(
        f"Created bot [bold]{esc(created.name)}[/] ({esc(created.slug)}, {created.id}){soul_note}."
    )


@bot_app.command("list", cls=BnityCommand)
def list_bots(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option(click_type=STATUS, help="Only bots with this status.")
    ] = None,
    category: Annotated[
        str | None, typer.Option(click_type=CATEGORY, help="Only this category.")
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """List bots, newest first."""

    async def work(store: Store) -> tuple[list[Bot], dict[uuid.UUID, str]]:
        from boternity.cli.resolve import unique_prefixes

        bots = await store.bots.list_bots(status=status, category=category)
        return bots, await unique_prefixes(store, "bot", [b.id for b in bots])

    bots, ids = run(ctx, work)
    from boternity.cli.output import (
        console,
        fmt_time,
        print_json,
        styled,
        table,
        text,
    )
    from boternity.text import ellipsis

    if json_:
        print_json(bots)
        return
    out = console()
    if not bots:
        out.print("No bots yet. Create one with: bnity bot create NAME")
        return
    t = table(
        "ID!",
        "Slug",
        "Name",
        "Category!",
        "Status!",
        "Sessions>",
        "Tokens>",
        "Soul>",
        "Created (UTC)!",
    )
    for b in bots:
        t.add_row(
            ids[b.id],
            text(b.slug),
            text(ellipsis(b.name, 30)),
            b.category.value,
            styled(b.status.value),
            str(b.conversation_count),
            f"{b.total_tokens_used:,}",
            f"v{b.version_count}" if b.version_count else "-",
            fmt_time(b.created_at),
        )
    out.print(t)
    out.print(f"{len(bots)} bot{'s' if len(bots) != 1 else ''}")


@bot_app.command("show", cls=BnityCommand)
def show(ctx: typer.Context, bot: BotArg, json_: JsonOpt = False) -> None:
    """Show a bot's details."""
    from boternity.cli.resolve import resolve_bot

    async def work(store: Store) -> tuple[Bot, SoulVersion | None, int]:
        found = await resolve_bot(store, bot)
        soul = await store.bots.get_soul(found.id)
        return found, soul, await store.memory.count_memories(found.id)

    found, soul, memories = run(ctx, work)
    from boternity.cli.output import console, fmt_time, key_values, print_json

    if json_:
        print_json(found)
        return
    rows = _bot_rows(found)
    if soul is not None:
        rows.append(
            (
                "Soul",
                f"v{soul.version}, {len(soul.content):,} characters, {fmt_time(soul.created_at)} UTC",
            )
        )
    rows.append(("Memories", f"{memories:,} live"))
    console().print(key_values(rows))


@bot_app.command("edit", cls=BnityCommand)
def edit(
    ctx: typer.Context,
    bot: BotArg,
    name: Annotated[str | None, typer.Option(help="New display name.")] = None,
    slug: Annotated[str | None, typer.Option(help="New slug.")] = None,
    description: Annotated[str | None, typer.Option(help="New description.")] = None,
    category: Annotated[str | None, typer.Option(click_type=CATEGORY, help="New category.")] = None,
    status: Annotated[str | None, typer.Option(click_type=STATUS, help="New status.")] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", help="Set the tags (repeat for several); replaces the old tags."),
    ] = None,
    clear_tags: Annotated[bool, typer.Option("--clear-tags", help="Remove all tags.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Change a bot's name, slug, description, category, status or tags."""
    import dataclasses

    from boternity.cli.resolve import resolve_bot
    from boternity.cli.runtime import EXIT_USAGE, CliError

    changes: dict[str, object] = {
        k: v
        for k, v in {
            "name": name,
            "slug": slug,
            "description": description,
            "category": category,
            "status": status,
        }.items()
        if v is not None
    }
    if tag and clear_tags:
        raise CliError("give --tag or --clear-tags, not both", exit_code=EXIT_USAGE)
    if tag:
        changes["tags"] = list(tag)
    if clear_tags:
        changes["tags"] = []
    if not changes:
        raise CliError(
            "nothing to change: give at least one of --name, --slug, --description,"
            " --category, --status, --tag, --clear-tags",
            exit_code=EXIT_USAGE,
        )

    async def work(store: Store) -> Bot:
        current = await resolve_bot(store, bot)
        return await store.bots.update_bot(dataclasses.replace(current, **changes))  # type: ignore[arg-type]

    updated = run(ctx, work)
    from boternity.cli.output import console, esc, key_values, print_json

    if json_:
        print_json(updated)
        return
    out = console()
    out.print(f"Updated bot {esc(updated.slug)}.")
    out.print(key_values(_bot_rows(updated)))


@bot_app.command("delete", cls=BnityCommand)
def delete(ctx: typer.Context, bot: BotArg, yes: YesOpt = False, json_: JsonOpt = False) -> None:
    """Delete a bot and everything it owns (souls, sessions, messages, memories, queued jobs)."""
    from boternity.cli.output import plural
    from boternity.cli.resolve import resolve_bot

    async def work(store: Store) -> Bot:
        found = await resolve_bot(store, bot)
        memories = await store.memory.count_memories(found.id, include_superseded=True)
        sessions = await store.chat.count_sessions(bot_id=found.id)
        confirm(
            f"Delete bot '{found.name}' ({found.slug}) with {plural(sessions, 'session')}"
            f" and {plural(memories, 'memory', 'memories')}? This cannot be undone.",
            yes=yes,
        )
        await store.bots.delete_bot(found.id)
        return found

    deleted = run(ctx, work)
    if json_:
        from boternity.cli.output import print_json

        print_json({"deleted": True, "bot_id": str(deleted.id), "slug": deleted.slug})
        return
    from boternity.cli.output import echo

    echo(f"Deleted bot '{deleted.name}' ({deleted.slug}).")


# --- souls --------------------------------------------------------------------------------------


@soul_app.command("show", cls=BnityCommand)
def soul_show(
    ctx: typer.Context,
    bot: BotArg,
    version: Annotated[
        int | None, typer.Option(min=1, max=MAX_COUNT, help="Version number [default: latest].")
    ] = None,
    raw: Annotated[bool, typer.Option("--raw", help="Print only the soul text.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Print a bot's soul (the latest version, or --version N)."""
    from boternity.cli.resolve import resolve_bot
    from boternity.errors import NotFoundError

    async def work(store: Store) -> tuple[Bot, SoulVersion]:
        found = await resolve_bot(store, bot)
        soul = await store.bots.get_soul(found.id, version)
        if soul is None:
            if version is None:
                raise NotFoundError(
                    f"bot {found.slug!r} has no soul yet"
                    f" (set one with: bnity soul set {found.slug} FILE)"
                )
            raise NotFoundError(
                f"bot {found.slug!r} has no soul version {version} (it has {found.version_count})"
            )
        return found, soul

    found, soul = run(ctx, work)
    from boternity.cli.output import console, echo, echo_exact, esc, fmt_time, print_json

    if json_:
        print_json(soul)
        return
    if raw:
        echo_exact(soul.content, nl=not soul.content.endswith("\n"))
        return
    err = console(stderr=True)
    note = f" — {soul.message}" if soul.message else ""
    err.print(
        f"[bold]{esc(found.slug)}[/] soul v{soul.version} of {found.version_count},"
        f" {fmt_time(soul.created_at)} UTC, sha256 {soul.hash[:12]}{esc(note)}",
    )
    echo(soul.content, nl=not soul.content.endswith("\n"))


@soul_app.command("set", cls=BnityCommand)
def soul_set(
    ctx: typer.Context,
    bot: BotArg,
    file: Annotated[str, typer.Argument(metavar="FILE", help="The new soul text, or - for stdin.")],
    message: Annotated[
        str | None, typer.Option("--message", "-m", help="Why it changed (kept in history).")
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Save a new soul version (the old ones are kept). An unchanged text saves nothing."""
    from boternity.cli.resolve import resolve_bot
    from boternity.models import soul_hash

    content = read_text_file(file)

    async def work(store: Store) -> tuple[Bot, SoulVersion, bool]:
        found = await resolve_bot(store, bot)
        latest = await store.bots.get_soul(found.id)
        if latest is not None and latest.hash == soul_hash(content):
            return found, latest, False
        return found, await store.bots.save_soul(found.id, content, message=message), True

    found, soul, saved = run(ctx, work)
    if json_:
        from boternity.cli.output import print_json

        print_json(soul)
        return
    from boternity.cli.output import echo

    if saved:
        echo(f"Saved soul v{soul.version} for '{found.slug}' ({len(content)} characters).")
    else:
        typer.echo(f"Soul unchanged (same as v{soul.version}); nothing saved.")


@soul_app.command("history", cls=BnityCommand)
def soul_history(ctx: typer.Context, bot: BotArg, json_: JsonOpt = False) -> None:
    """List every soul version of a bot, oldest first."""
    from boternity.cli.resolve import resolve_bot

    async def work(store: Store) -> tuple[Bot, list[SoulVersion]]:
        found = await resolve_bot(store, bot)
        return found, await store.bots.list_soul_versions(found.id)

    found, versions = run(ctx, work)
    from boternity.cli.output import console, esc, fmt_time, print_json, table, text
    from boternity.text import ellipsis

    if json_:
        print_json(versions)
        return
    out = console()
    if not versions:
        out.print(f"Bot '{esc(found.slug)}' has no soul yet.")
        return
    t = table("Version>", "Saved (UTC)!", "SHA-256", "Chars>", "Message")
    for v in versions:
        t.add_row(
            f"v{v.version}",
            fmt_time(v.created_at),
            v.hash[:12],
            str(len(v.content)),
            text(ellipsis(v.message or "", 50)),
        )
    out.print(t)


@soul_app.command("edit", cls=BnityCommand)
def soul_edit(
    ctx: typer.Context,
    bot: BotArg,
    message: Annotated[
        str | None, typer.Option("--message", "-m", help="Why it changed (kept in history).")
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Open the current soul in $VISUAL or $EDITOR (else vi) and save what you write as a
    new version. Quitting without a change, or leaving it empty, saves nothing."""
    from boternity.cli.resolve import resolve_bot
    from boternity.cli.runtime import EXIT_USAGE, CliError

    async def load(store: Store) -> tuple[Bot, SoulVersion | None]:
        found = await resolve_bot(store, bot)
        return found, await store.bots.get_soul(found.id)

    found, current = run(ctx, load)
    before = current.content if current is not None else ""
    # The editor runs between two short store sessions: no database lock is held meanwhile.
    edited = click.edit(before, extension=".md", require_save=False)
    if edited is None or edited.rstrip("\n") == before.rstrip("\n"):
        typer.echo("Soul unchanged; nothing saved.")
        return
    if not edited.strip():
        raise CliError("the edited soul is empty; nothing saved", exit_code=EXIT_USAGE)

    async def save(store: Store) -> SoulVersion:
        return await store.bots.save_soul(found.id, edited, message=message)

    soul = run(ctx, save)
    if json_:
        from boternity.cli.output import print_json

        print_json(soul)
        return
    from boternity.cli.output import echo

    echo(f"Saved soul v{soul.version} for '{found.slug}' ({len(edited)} characters).")


@soul_app.command("diff", cls=BnityCommand)
def soul_diff(
    ctx: typer.Context,
    bot: BotArg,
    old: Annotated[
        int | None,
        typer.Argument(
            metavar="[V1]", min=1, max=MAX_COUNT, help="Older version [default: the one before V2]."
        ),
    ] = None,
    new: Annotated[
        int | None,
        typer.Argument(
            metavar="[V2]", min=1, max=MAX_COUNT, help="Newer version [default: latest]."
        ),
    ] = None,
) -> None:
    """Show what changed between two soul versions as a unified diff (with no versions: the
    latest change; with V1 alone: from V1 to the latest)."""
    from boternity.cli.resolve import resolve_bot
    from boternity.errors import NotFoundError

    async def work(store: Store) -> tuple[Bot, SoulVersion, SoulVersion]:
        found = await resolve_bot(store, bot)
        latest = found.version_count
        if latest == 0:
            raise NotFoundError(f"bot {found.slug!r} has no soul yet")
        v2 = new if new is not None else latest
        v1 = old if old is not None else v2 - 1
        if v1 < 1:
            raise NotFoundError(f"bot {found.slug!r} has only soul v1: nothing to compare it with")
        souls = []
        for v in (v1, v2):
            soul = await store.bots.get_soul(found.id, v)
            if soul is None:
                raise NotFoundError(f"bot {found.slug!r} has no soul version {v} (it has {latest})")
            souls.append(soul)
        return found, souls[0], souls[1]

    found, a, b = run(ctx, work)
    import difflib

    from boternity.cli.output import console, text

    lines = list(
        difflib.unified_diff(
            a.content.splitlines(),
            b.content.splitlines(),
            fromfile=f"{found.slug} soul v{a.version}",
            tofile=f"{found.slug} soul v{b.version}",
            lineterm="",
        )
    )
    out = console()
    if not lines:
        out.print(f"Soul v{a.version} and v{b.version} are the same.")
        return
    styles = {"+": "green", "-": "red", "@": "cyan"}
    for line in lines:
        style = "bold" if line.startswith(("+++", "---")) else styles.get(line[:1], "")
        out.print(text(line, style=style))
