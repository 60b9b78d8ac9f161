"""``bnity chat BOT``: talk to a bot, on a terminal or through a pipe.

The work is in ``boternity.cli.chatting`` (imported when the command runs). The async side
(store, provider, :class:`~boternity.chat.ChatEngine`, the extraction worker) runs on a
:class:`~boternity.cli.loop.LoopThread`; the main thread reads input and renders.
On a terminal replies stream under a spinner and are re-rendered as Markdown once complete;
through a pipe each input line is one turn and replies are printed as plain text.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from boternity.cli.runtime import (
    PROVIDERS,
    BnityCommand,
    BotArg,
    ConversationUserOpt,
    EmbeddingsOpt,
    choice,
)

#: ``--resume`` given without a value: the bot's most recent session.
LATEST = "\x00latest"


class ChatCommand(BnityCommand):
    """``--resume`` takes an optional value (Typer cannot declare that): alone it means the
    most recent session."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if param.name == "resume":
                param._flag_needs_value = True  # type: ignore[attr-defined]
                param.flag_value = LATEST  # type: ignore[attr-defined]


ProviderOpt = Annotated[
    str | None,
    typer.Option(
        "--provider",
        click_type=choice(PROVIDERS),
        help=(
            "LLM provider: anthropic, openai or offline [default: $BOTERNITY_PROVIDER, else"
            " anthropic with ANTHROPIC_API_KEY, openai with OPENAI_API_KEY/OPENAI_BASE_URL,"
            " else offline]"
        ),
        show_default=False,
    ),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        metavar="MODEL",
        help="Model name [default: $BOTERNITY_MODEL, else the provider's default]",
        show_default=False,
    ),
]


def chat(
    ctx: typer.Context,
    bot: BotArg,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume",
            metavar="[SESSION]",
            help=(
                "Continue a session instead of starting one: the bot's most recent session,"
                " or the one with this id prefix."
            ),
            show_default=False,
        ),
    ] = None,
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    no_greeting: Annotated[
        bool, typer.Option("--no-greeting", help="Do not let the bot open the conversation.")
    ] = False,
    user: ConversationUserOpt = None,
    embeddings: EmbeddingsOpt = None,
) -> None:
    """Chat with a bot. Type /help for commands; Ctrl+D or /exit ends the session.

    Without a terminal on stdin, each input line is one turn and replies are printed as
    plain text (printf 'hi\\nbye\\n' | bnity chat luna); the end of input ends the session.
    Memories are extracted through the queue: pending jobs of the bot at the start, the
    session's final job before leaving. With --user, --resume picks among that user's
    sessions; a resumed session goes on with its own user. Memories are recalled by meaning
    with the embedder (--embeddings), which also embeds new ones in the background."""
    from boternity.cli.chatting import ChatCore, Conversation, PlainUi, TerminalUi, Ui
    from boternity.cli.loop import LoopThread, warnings_to_stderr
    from boternity.cli.runtime import checked_database, stdin_is_interactive

    db = checked_database(ctx)
    interactive = stdin_is_interactive() and sys.stdout.isatty()
    core = ChatCore(
        db, bot, resume=resume, provider=provider, model=model, user=user, embeddings=embeddings
    )
    with warnings_to_stderr() as warnings, LoopThread() as bg:
        ui: Ui | None = None
        try:
            bg.call(core.open())
            ui = TerminalUi(core) if interactive else PlainUi(core)
            warnings.sink = ui.warn  # above the prompt, never into a line being drawn
            greet = not no_greeting
            failed = Conversation(bg, core, ui, greet=greet).run()
        finally:
            try:
                bg.call(core.close())
            finally:
                if ui is not None:
                    ui.flush_warnings()
    if failed:
        raise typer.Exit(1)
