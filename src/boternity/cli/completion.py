"""Shell completion: ``bnity completion bash|zsh|fish`` prints the script, and BOT arguments
complete to the bots' slugs.

Typer answers the shell's completion requests itself (``_BNITY_COMPLETE`` set by the
script); this module only adds the script command and the slug lookup. Completion runs on
every Tab press, so the lookup asks the backend for a quick read without opening a store
(SQLite: the file, read-only, with a short timeout) and never prints an error: a missing,
locked or PostgreSQL database (not read, to stay fast) completes to nothing.
"""

from __future__ import annotations

from typing import Annotated

import click
import typer

PROG = "bnity"
COMPLETE_VAR = "_BNITY_COMPLETE"
SHELLS = ("bash", "zsh", "fish")
#: Enough for any real list of bots; a shell shows no more anyway.
MAX_SLUGS = 500


def bot_slugs(ctx: click.Context, incomplete: str) -> list[str]:
    """The slugs of the bots in the database ``--db`` names (else the default) that start
    with ``incomplete``; [] when they cannot be read at once."""
    try:
        return _read_slugs(ctx.find_root().params.get("db_"), incomplete)
    except Exception:
        return []


def _read_slugs(db: str | None, incomplete: str) -> list[str]:
    from boternity.config import resolve_database
    from boternity.store import backend_of

    return backend_of(db).quick_slugs(resolve_database(db), incomplete, MAX_SLUGS)


def completion(
    shell: Annotated[
        str,
        typer.Argument(
            metavar="SHELL",
            click_type=click.Choice(SHELLS),
            help="bash, zsh or fish.",
        ),
    ],
) -> None:
    """Print the shell completion script (commands, options, choices and bot slugs).

    \b
    bash:  eval "$(bnity completion bash)"    in ~/.bashrc
    zsh:   eval "$(bnity completion zsh)"     in ~/.zshrc, after compinit
    fish:  bnity completion fish > ~/.config/fish/completions/bnity.fish"""
    from typer._completion_shared import get_completion_script

    typer.echo(get_completion_script(prog_name=PROG, complete_var=COMPLETE_VAR, shell=shell))


def init_if_completing() -> None:
    """When the shell asks for completions, use Typer's completion classes (they read the
    variables the scripts above set); costs nothing otherwise."""
    import os

    if os.environ.get(COMPLETE_VAR):
        from typer._completion_classes import completion_init

        completion_init()
