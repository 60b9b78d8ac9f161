"""The ``bnity`` Typer app: global options and the command tree.

Only Typer and the command modules are imported here; every command imports the store,
models and Rich lazily, so ``bnity --help`` starts fast.
"""

from __future__ import annotations

from typing import Annotated

import typer

from boternity.cli import (
    ask,
    bots,
    chat,
    completion,
    db,
    demo,
    memories,
    queue,
    search,
    sessions,
    users,
)
from boternity.cli.runtime import EXIT_CODES_HELP, BnityCommand, BnityGroup, State

VERSION = "0.1.0"  # kept equal to boternity.__version__ by a test; importing it costs startup

app = typer.Typer(
    name="bnity",
    cls=BnityGroup,
    help=(
        "boternity: durable chat sessions and long-term memory for LLM bots.\n\n"
        "BOT is a slug or a bot id; any id (session, memory, job) may be given as a"
        " unique prefix, like git.\n\n" + EXIT_CODES_HELP
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"bnity {VERSION}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    db_: Annotated[
        str | None,
        typer.Option(
            "--db",
            metavar="PATH_OR_URL",
            help=(
                "Database: a file path, sqlite:///rel.db, sqlite:////abs.db or postgresql://…"
                " [default: $BOTERNITY_DATABASE_URL, else $BOTERNITY_DATA_DIR/boternity.db,"
                " else ~/.boternity/boternity.db]"
            ),
            show_default=False,
        ),
    ] = None,
    no_pager: Annotated[
        bool,
        typer.Option(
            "--no-pager",
            help=(
                "Never send long output ('session show', 'sessions', 'search', 'memories')"
                " to a pager."
            ),
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    ctx.obj = State(db=db_, no_pager=no_pager)


app.command("demo", cls=BnityCommand)(demo.demo)
app.add_typer(bots.bot_app, name="bot")
app.add_typer(bots.soul_app, name="soul")
app.command("chat", cls=chat.ChatCommand)(chat.chat)
app.command("ask", cls=BnityCommand)(ask.ask)
app.command("sessions", cls=BnityCommand)(sessions.list_sessions)
app.add_typer(sessions.session_app, name="session")
app.command("search", cls=BnityCommand)(search.search)
app.command("memories", cls=BnityCommand)(memories.list_memories)
BnityGroup.nested["memories", "reembed"] = memories.reembed_command
app.command("remember", cls=BnityCommand)(memories.remember)
app.command("forget", cls=BnityCommand)(memories.forget)
app.add_typer(memories.memory_app, name="memory")
app.add_typer(users.user_app, name="user")
app.add_typer(queue.queue_app, name="queue")
app.add_typer(db.db_app, name="db")
app.command("completion", cls=BnityCommand)(completion.completion)
