"""``bnity ask BOT "question"``: one question, one answer, for scripts and quick looks.

A new session with one turn through the real chat engine (the bot's soul and memories are in
the prompt), the reply streamed to stdout, the session completed and its memory extraction
queued (``bnity queue run`` or the next chat processes it). Text piped on stdin comes first,
as context for the question, like ``llm "prompt"``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from boternity.cli.chat import ModelOpt, ProviderOpt
from boternity.cli.runtime import (
    EXIT_USAGE,
    BotArg,
    CliError,
    ConversationUserOpt,
    EmbeddingsOpt,
    JsonOpt,
    embedder_or_note,
    run,
    stdin_is_interactive,
)

if TYPE_CHECKING:
    from boternity.models import ChatMessage, ChatSession
    from boternity.store import Store


def ask(
    ctx: typer.Context,
    bot: BotArg,
    question: Annotated[
        str | None,
        typer.Argument(
            metavar="[QUESTION]",
            help="What to ask; piped stdin is added before it as context.",
            show_default=False,
        ),
    ] = None,
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    user: ConversationUserOpt = None,
    embeddings: EmbeddingsOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Ask a bot one question: a new session, one turn, the reply on stdout.

    Piped text is context: git diff | bnity ask reviewer "anything risky?". The session is
    completed and its memory extraction queued, like any chat; memories are recalled by
    meaning with the embedder (--embeddings)."""
    text = _prompt(question)

    async def work(store: Store) -> tuple[ChatSession, ChatMessage]:
        from contextlib import AsyncExitStack

        from boternity.chat import ChatEngine
        from boternity.cli.output import echo, echo_exact
        from boternity.cli.resolve import resolve_bot
        from boternity.llm import RetryPolicy, select_provider
        from boternity.memory import MemoryRecall

        found = await resolve_bot(store, bot)
        llm, notice = select_provider(provider, model, retry=RetryPolicy.interactive())
        embedder, embedder_note = embedder_or_note(embeddings)
        for note in (notice, embedder_note):
            if note:
                echo(f"note: {note}", err=True)
        closing = AsyncExitStack()
        if embedder is not None:
            closing.push_async_callback(embedder.aclose)
        recall = MemoryRecall(store, embedder=embedder)
        async with closing, llm as chosen, ChatEngine(store, chosen, recall=recall) as engine:
            live = await engine.start_session(found, greet=False, user_id=user)
            streamed = ""
            try:
                turn = live.send(text)
                async for piece in turn:
                    if not json_:
                        echo_exact(piece, nl=False)
                        streamed += piece
                reply = await turn
            finally:
                if streamed and not streamed.endswith("\n"):
                    echo_exact("")  # end the partial or whole reply's line
                session = await live.end()
        return session, reply

    session, reply = run(ctx, work)
    if json_:
        from boternity.cli.output import print_json

        print_json(
            {
                "session_id": session.id,
                "bot_id": session.bot_id,
                "user_id": session.user_id,
                "reply": reply,
            }
        )


def _prompt(question: str | None) -> str:
    """The question, after any piped stdin (decoded as UTF-8 whatever the locale)."""
    parts: list[str] = []
    if not stdin_is_interactive() and sys.stdin is not None:
        data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read()
        if isinstance(data, bytes):
            try:
                data = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise CliError(
                    f"stdin is not valid UTF-8 (byte {exc.start}); nothing was sent",
                    exit_code=EXIT_USAGE,
                ) from exc
        if data.strip():
            parts.append(data.strip("\n"))
    if question is not None and question.strip():
        parts.append(question)
    if not parts:
        raise CliError(
            "nothing to ask: give a QUESTION or pipe text in (bnity ask BOT 'question')",
            exit_code=EXIT_USAGE,
        )
    return "\n\n".join(parts)
