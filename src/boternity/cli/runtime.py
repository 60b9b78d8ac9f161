"""Plumbing shared by every command: global state, running async work, errors, prompts.

Kept import-light (Typer and the exception tree only): it is loaded for ``bnity --help``.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, TypeVar

import click
import typer
from click.exceptions import ClickException, NoArgsIsHelpError, UsageError
from typer.core import TyperCommand, TyperGroup

from boternity.errors import (
    BoternityError,
    ConflictError,
    NotFoundError,
    SchemaError,
    StoreBusyError,
    ValidationError,
)

if TYPE_CHECKING:
    from boternity.embeddings import Embedder
    from boternity.store import Store

T = TypeVar("T")

EXIT_OK = 0
EXIT_ERROR = 1  # anything else, and "problems found" for `db check`
EXIT_USAGE = 2  # bad arguments or values (ValidationError), missing --yes without a terminal
EXIT_AMBIGUOUS = 3  # an id prefix matches more than one object
EXIT_NOT_FOUND = 4
EXIT_CONFLICT = 5
EXIT_SCHEMA = 6
EXIT_BUSY = 7
EXIT_INTERRUPTED = 130

DEBUG_ENV = "BOTERNITY_DEBUG"

EXIT_CODES_HELP = (
    "Exit codes: 0 ok, 1 error, 2 bad usage or value, 3 ambiguous id prefix, 4 not found,"
    " 5 conflict, 6 schema problem, 7 database busy, 130 interrupted."
)


class CliError(BoternityError):
    """An error the CLI itself detects; carries its exit code."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class AmbiguousError(CliError):
    exit_code = EXIT_AMBIGUOUS


class Cancelled(CliError):
    """The user answered no to a confirmation prompt."""


def exit_code_for(exc: BaseException) -> int:
    if isinstance(exc, CliError):
        return exc.exit_code
    if isinstance(exc, ValidationError):
        return EXIT_USAGE
    if isinstance(exc, NotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(exc, ConflictError):
        return EXIT_CONFLICT
    if isinstance(exc, SchemaError):
        return EXIT_SCHEMA
    if isinstance(exc, StoreBusyError):
        return EXIT_BUSY
    return EXIT_ERROR


def one_line(text: str) -> str:
    return " ".join(text.split())


#: What the models' classes are called for a user: their names are internal.
_MODEL_NOUNS = {
    "Bot": "bot",
    "SoulVersion": "soul",
    "ChatSession": "session",
    "ChatMessage": "message",
    "MemoryEntry": "memory",
    "MemoryEvent": "memory event",
    "ContextSummary": "summary",
    "PendingExtraction": "queued job",
}
_MODEL_FIELD = re.compile(r"^(?P<cls>[A-Z][A-Za-z]+)\.(?P<field>[a-z_]+): (?P<problem>.*)$", re.S)
_UNKNOWN = re.compile(r"^unknown value (?P<value>.*) \(expected one of: (?P<allowed>.*)\)$", re.S)


def user_message(exc: BaseException) -> str:
    """The text of an error as a user should read it: a model's "MemoryEntry.category:
    unknown value 'bogus' (expected one of: …)" becomes "unknown memory category 'bogus'
    (one of: …)", and "Bot.name: …" becomes "bot name: …"."""
    message = one_line(str(exc))
    match = _MODEL_FIELD.match(message)
    if not isinstance(exc, ValidationError) or match is None:
        return message
    noun = _MODEL_NOUNS.get(match["cls"], match["cls"].lower())
    field = match["field"].replace("_", " ")
    unknown = _UNKNOWN.match(match["problem"])
    if unknown is not None:
        return f"unknown {noun} {field} {unknown['value']} (one of: {unknown['allowed']})"
    return f"{noun} {field}: {match['problem']}"


def _fail(message: str, code: int) -> int:
    """The one line a failed command prints: it may quote user input or stored text (a bad
    slug, a fact), so control characters are made visible."""
    from boternity.cli.output import visible

    sys.stderr.write(f"{visible(message)}\n")
    sys.stderr.flush()
    return code


class _PlainHelpFormatter(click.HelpFormatter):
    """Typer escapes '[' for Rich even when Rich help is off, printing '\\[default: 20]';
    plain help is kept (Rich help costs ~0.2 s of start-up), so undo the escape here."""

    def write_dl(
        self, rows: Sequence[tuple[str, str]], col_max: int = 30, col_spacing: int = 2
    ) -> None:
        super().write_dl([(a, b.replace("\\[", "[")) for a, b in rows], col_max, col_spacing)


class BnityContext(click.Context):
    formatter_class = _PlainHelpFormatter


class BnityCommand(TyperCommand):
    context_class = BnityContext


class BnitySubGroup(TyperGroup):
    context_class = BnityContext


class BnityGroup(TyperGroup):
    """Root command group: every failure becomes one line on stderr and an exit code.

    Click and Typer would print multi-line usage panels, and an unexpected exception would
    print a traceback. Here the command runs in non-standalone mode and this method is the
    one boundary where exceptions turn into exit codes (set BOTERNITY_DEBUG=1 to re-raise).
    """

    context_class = BnityContext

    ORDER = (
        "demo",
        "bot",
        "soul",
        "chat",
        "ask",
        "sessions",
        "session",
        "search",
        "memories",
        "remember",
        "forget",
        "memory",
        "user",
    )

    #: Commands spelled as a subcommand of a plain command ('bnity memories reembed'): the
    #: word after the command picks another command, given by a factory (built on use).
    nested: ClassVar[dict[tuple[str, str], Callable[[], click.Command]]] = {}

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if name is not None and rest and (name, rest[0]) in self.nested:
            return f"{name} {rest[0]}", self.nested[name, rest[0]](), rest[1:]
        return name, command, rest

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Bots first, then chats, memories, the queue and the database (Typer would list
        plain commands before groups)."""
        names = super().list_commands(ctx)
        rank = {name: i for i, name in enumerate(self.ORDER)}
        return sorted(names, key=lambda n: rank.get(n, len(rank)))

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        code = self._run(args, prog_name, complete_var, windows_expand_args, extra)
        if standalone_mode:
            sys.exit(code)
        return code

    def _run(
        self,
        args: Sequence[str] | None,
        prog_name: str | None,
        complete_var: str | None,
        windows_expand_args: bool,
        extra: dict[str, Any],
    ) -> int:
        try:
            rv = super().main(
                args,
                prog_name,
                complete_var,
                standalone_mode=False,
                windows_expand_args=windows_expand_args,
                **extra,
            )
        except Cancelled as exc:
            return _fail(one_line(str(exc)), exc.exit_code)
        except BoternityError as exc:
            if os.environ.get(DEBUG_ENV):
                raise
            return _fail(f"error: {user_message(exc)}", exit_code_for(exc))
        except NoArgsIsHelpError as exc:
            # `bnity` or a group without a subcommand: the normal help, like git (exit 0).
            typer.echo(exc.ctx.get_help())
            return EXIT_OK
        except UsageError as exc:
            hint = ""
            if exc.ctx is not None:
                hint = f" (see '{exc.ctx.command_path} --help')"
            return _fail(f"error: {one_line(exc.format_message())}{hint}", exc.exit_code)
        except ClickException as exc:
            return _fail(f"error: {one_line(exc.format_message())}", exc.exit_code)
        except typer.Abort:
            return _fail("Cancelled.", EXIT_ERROR)
        except KeyboardInterrupt:
            return _fail("Interrupted.", EXIT_INTERRUPTED)
        except Exception as exc:
            if os.environ.get(DEBUG_ENV):
                raise
            detail = one_line(str(exc)) or "(no message)"
            return _fail(
                f"error: unexpected {type(exc).__name__}: {detail}"
                f" (set {DEBUG_ENV}=1 for a traceback)",
                EXIT_ERROR,
            )
        if rv == EXIT_INTERRUPTED:
            return _fail("Interrupted.", EXIT_INTERRUPTED)
        return rv if isinstance(rv, int) else EXIT_OK


# --- global state ---------------------------------------------------------------------------


@dataclass(slots=True)
class State:
    db: str | None = None
    no_pager: bool = False


def use_pager(ctx: typer.Context, no_pager: bool) -> bool:
    """Whether long output may go through the pager: not with ``--no-pager`` (given to the
    command or to ``bnity``)."""
    return not (no_pager or get_state(ctx).no_pager)


def get_state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, State) else State()


def checked_database(ctx: typer.Context, *, create: bool = False) -> str | None:
    """The ``--db`` value, after checking what it names: never a directory, and an existing
    SQLite file unless the command may ``create`` one."""
    from boternity.config import resolve_database

    db = get_state(ctx).db
    target = resolve_database(db)
    if target.path is not None and target.path.is_dir():
        raise ValidationError(f"{target.path} is a directory, not a database file")
    if not create and target.path is not None and not target.path.exists():
        raise NotFoundError(
            f"no database at {target.path} (create one with 'bnity bot create NAME'"
            " or 'bnity db migrate')"
        )
    return db


def run(ctx: typer.Context, work: Callable[[Store], Awaitable[T]], *, create: bool = False) -> T:
    """Open the store named by ``--db`` (else the environment, else the default), run
    ``work`` on it, and close it.

    Only commands that write something new (``create``) may create a SQLite file; the others
    report a missing one, so a mistyped ``--db`` path does not leave empty databases behind.
    """
    import asyncio

    from boternity.store import open_store

    db = checked_database(ctx, create=create)

    async def go() -> T:
        # One reader is plenty for a short-lived command and opens faster.
        async with open_store(db, readers=1) as store:
            return await work(store)

    return asyncio.run(go())


# --- prompts --------------------------------------------------------------------------------


def stdin_is_interactive() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def confirm(question: str, *, yes: bool) -> None:
    """Ask before a destructive action. ``--yes`` skips the question; without a terminal
    (scripts, pipes, CI) we refuse instead of waiting for an answer that never comes."""
    if yes:
        return
    if not stdin_is_interactive():
        raise CliError(
            f"not confirmed (stdin is not a terminal; pass --yes to do it): {question}",
            exit_code=EXIT_USAGE,
        )
    from boternity.cli.output import visible

    if not typer.confirm(visible(question), default=False, err=True):
        raise Cancelled("Cancelled.")


# --- shared option types ----------------------------------------------------------------------

#: Upper bound of every count or number option (``--limit``, ``--version``): far above any real
#: use, far below the 64-bit integers SQL takes, so a huge value gets Click's one-line
#: "Invalid value for '--limit': … is not in the range 1<=x<=1000000" instead of an overflow.
MAX_COUNT = 1_000_000

#: The fixed values of options, kept equal to the model enums by a test (importing the models
#: here would slow down ``bnity --help``).
BOT_CATEGORIES = ("assistant", "creative", "research", "utility")
BOT_STATUSES = ("active", "disabled", "archived")
MEMORY_CATEGORIES = ("preference", "fact", "decision", "context", "correction")
PROVIDERS = ("anthropic", "openai", "offline")
EMBEDDERS = ("local", "openai", "none")  # boternity.embeddings.EMBEDDERS, without importing it
SEARCH_MODES = ("hybrid", "semantic", "text")  # boternity.memory.SEARCH_MODES, likewise


def embedder_or_note(name: str | None = None) -> tuple[Embedder | None, str | None]:
    """The embedder a conversation recalls memories with and the extraction worker embeds
    them with (None: none), and a one-line note to show: why it is not the one asked for,
    or which one was chosen by default when not ``local`` (as for providers). Chatting and
    memory extraction never fail for want of one: memories are then found by shared words."""
    from boternity.embeddings import select_embedder
    from boternity.errors import EmbeddingError
    from boternity.llm import RetryPolicy

    try:
        return select_embedder(name, retry=RetryPolicy.interactive(max_retries=1))
    except EmbeddingError as exc:
        return None, f"{exc}: memories are not embedded (found by shared words only)"


def choice(values: Sequence[str]) -> click.Choice[str]:
    """An option with fixed values: help shows them (``--format [md|json]``) and a wrong one
    is one line naming them all. Case-insensitive; the value given back is the listed one."""
    return click.Choice(list(values), case_sensitive=False)


def complete_bot(ctx: click.Context, incomplete: str) -> list[str]:
    from boternity.cli.completion import bot_slugs

    return bot_slugs(ctx, incomplete)


#: A BOT argument: a slug, an id or an id prefix; completes to the bots' slugs.
BotArg = Annotated[
    str,
    typer.Argument(
        metavar="BOT", help="Bot slug, id or unique id prefix.", autocompletion=complete_bot
    ),
]


def user_option(help_text: str) -> Any:
    """A ``--user USER`` option: a person, as the application calls them (docs/users.md)."""
    return typer.Option("--user", metavar="USER", help=help_text, show_default=False)


#: ``--user`` of the commands that talk to a bot.
ConversationUserOpt = Annotated[
    str | None,
    user_option(
        "The person the conversation is with (the application's id for them, e.g."
        " discord:81234): only their memories and the bot's own are recalled, and what is"
        " learned is theirs [default: no user: only the bot's own memories]"
    ),
]

JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print JSON (stable field names) instead of a table.")
]
NoPagerOpt = Annotated[
    bool,
    typer.Option(
        "--no-pager", help="Print everything at once ($PAGER, else less, is used on a terminal)."
    ),
]
EmbeddingsOpt = Annotated[
    str | None,
    typer.Option(
        "--embeddings",
        click_type=choice(EMBEDDERS),
        help=(
            "Embedder [default: $BOTERNITY_EMBEDDINGS, else local when boternity[local] is"
            " installed, else openai when OPENAI_API_KEY or OPENAI_BASE_URL is set, else none];"
            " its model: $BOTERNITY_EMBEDDING_MODEL"
        ),
        show_default=False,
    ),
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
OverwriteOpt = Annotated[
    bool,
    typer.Option("--yes", "-y", "--force", help="Replace FILE if it exists, without asking."),
]
OutputOpt = Annotated[
    str | None,
    typer.Option("--output", "-o", metavar="FILE", help="Write to FILE instead of stdout."),
]


def sub_app(help_text: str, **kwargs: Any) -> typer.Typer:
    """A command group with the same look as the root (plain, fast help)."""
    kwargs.setdefault("no_args_is_help", True)
    return typer.Typer(
        help=help_text,
        cls=BnitySubGroup,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
        **kwargs,
    )


def read_text_file(path: str) -> str:
    """A UTF-8 text file, or stdin for '-'."""
    try:
        if path == "-":
            data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else None
            if data is None:
                return sys.stdin.read()
        else:
            with open(path, "rb") as fh:
                data = fh.read()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}", exit_code=EXIT_USAGE) from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        where = "stdin" if path == "-" else path
        raise ValidationError(
            f"{where} is not valid UTF-8 (byte {exc.start}); boternity stores text only"
        ) from exc
