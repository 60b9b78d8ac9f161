"""``bnity queue`` (list extraction jobs) and ``bnity queue retry``."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated, Any

import typer

from boternity.cli.runtime import (
    MAX_COUNT,
    PROVIDERS,
    BnityCommand,
    EmbeddingsOpt,
    JsonOpt,
    choice,
    complete_bot,
    run,
    sub_app,
)

if TYPE_CHECKING:
    from datetime import datetime

    from boternity.models import Bot, ChatSession, PendingExtraction
    from boternity.store import Store

queue_app = sub_app(
    "List memory-extraction jobs (no subcommand, or 'list'), retry them, or run them now.",
    invoke_without_command=True,
    no_args_is_help=False,
)

BotOpt = Annotated[
    str | None,
    typer.Option(
        metavar="BOT",
        help="Only this bot's jobs (slug, id or prefix).",
        autocompletion=complete_bot,
    ),
]


def job_state(job: PendingExtraction, now: datetime) -> str:
    if job.exhausted:
        return "exhausted"
    return "due" if job.next_attempt_at <= now else "waiting"


@queue_app.callback()
def queue_group(ctx: typer.Context, bot: BotOpt = None, json_: JsonOpt = False) -> None:
    """List queued memory-extraction jobs, due first (as 'bnity queue list'). Exhausted jobs
    (out of attempts) stay listed until retried. --bot and --json given here apply to the
    subcommand too ('bnity queue --json run')."""
    if ctx.invoked_subcommand is None:
        list_jobs(ctx, bot, json_)


def group_options(ctx: typer.Context, bot: str | None, json_: bool) -> tuple[str | None, bool]:
    """A subcommand's --bot and --json, merged with the ones given to 'bnity queue'."""
    from boternity.cli.runtime import EXIT_USAGE, CliError

    given = ctx.parent.params if ctx.parent is not None else {}
    outer_bot = given.get("bot")
    if bot is not None and outer_bot is not None and bot != outer_bot:
        raise CliError(
            f"two different --bot values: {outer_bot!r} and {bot!r}", exit_code=EXIT_USAGE
        )
    return bot or outer_bot, json_ or bool(given.get("json_"))


@queue_app.command("list", cls=BnityCommand)
def list_command(ctx: typer.Context, bot: BotOpt = None, json_: JsonOpt = False) -> None:
    """List queued memory-extraction jobs, due first. Exhausted jobs (out of attempts) stay
    listed until retried."""
    list_jobs(ctx, *group_options(ctx, bot, json_))


def list_jobs(ctx: typer.Context, bot: str | None, json_: bool) -> None:
    from boternity.cli.resolve import resolve_bot, unique_prefixes
    from boternity.ids import utc_now
    from boternity.models import MAX_EXTRACTION_ATTEMPTS

    async def work(
        store: Store,
    ) -> tuple[
        list[PendingExtraction],
        dict[uuid.UUID, Bot],
        dict[uuid.UUID, ChatSession | None],
        dict[uuid.UUID, str],
        dict[uuid.UUID, str],
    ]:
        bot_id = (await resolve_bot(store, bot)).id if bot is not None else None
        jobs = await store.memory.list_pending_extractions(bot_id=bot_id)
        bots = {b.id: b for b in await store.bots.list_bots()}
        found = await store.chat.get_sessions_by_ids(j.session_id for j in jobs)
        sessions: dict[uuid.UUID, ChatSession | None] = {
            j.session_id: found.get(j.session_id) for j in jobs
        }
        ids = await unique_prefixes(store, "job", [j.id for j in jobs])
        session_ids = await unique_prefixes(store, "session", sessions)
        return jobs, bots, sessions, ids, session_ids

    jobs, bots, sessions, ids, session_ids = run(ctx, work)
    now = utc_now()
    from boternity.cli.output import (
        console,
        fmt_time,
        plural,
        print_json,
        styled,
        table,
        text,
        to_jsonable,
    )
    from boternity.text import ellipsis

    if json_:
        items: list[dict[str, Any]] = []
        for j in jobs:
            item = to_jsonable(j)
            item["exhausted"] = j.exhausted
            item["state"] = job_state(j, now)
            item["user_id"] = _user_of(sessions.get(j.session_id))
            items.append(item)
        print_json(items)
        return
    out = console()
    if not jobs:
        out.print("The extraction queue is empty.")
        return
    # The session's user, when any job has one ("-": a session without a user).
    with_users = any(_user_of(s) is not None for s in sessions.values())
    t = table(
        "ID!",
        "Bot",
        "Session",
        *(("User",) if with_users else ()),
        "Range!",
        "Attempts>",
        "Next attempt (UTC)!",
        "State!",
        "Last error",
    )
    for j in jobs:
        b = bots.get(j.bot_id)
        s = sessions.get(j.session_id)
        session_label = text(session_ids[j.session_id])
        if s is not None and s.title:
            session_label.append_text(text(" " + ellipsis(s.title, 24), style="dim"))
        span = "all" if j.messages_start is None else f"{j.messages_start}–{j.messages_end}"
        t.add_row(
            ids[j.id],
            text(b.slug if b else str(j.bot_id)[:8]),
            session_label,
            *((text(ellipsis(_user_of(s) or "-", 24)),) if with_users else ()),
            span,
            f"{j.attempt_count}/{MAX_EXTRACTION_ATTEMPTS}",
            "-" if j.exhausted else fmt_time(j.next_attempt_at),
            styled(job_state(j, now)),
            text(ellipsis(j.error_message or "", 50)),
        )
    out.print(t)
    exhausted = sum(j.exhausted for j in jobs)
    note = f", {exhausted} exhausted (retry with: bnity queue retry --all)" if exhausted else ""
    out.print(f"{plural(len(jobs), 'job')}{note}")


def _user_of(session: ChatSession | None) -> str | None:
    return None if session is None else session.user_id


@queue_app.command("retry", cls=BnityCommand)
def retry(
    ctx: typer.Context,
    job: Annotated[
        str | None, typer.Argument(metavar="[JOB]", help="Job id or unique id prefix.")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Retry every job in the queue.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Make jobs due now with a fresh set of attempts (attempt count back to 0)."""
    import dataclasses

    from boternity.cli.resolve import resolve_bot, resolve_job
    from boternity.cli.runtime import EXIT_USAGE, CliError
    from boternity.errors import NotFoundError
    from boternity.ids import utc_now

    if (job is None) == (not all_):
        raise CliError("give a JOB id or --all (not both)", exit_code=EXIT_USAGE)
    bot, json_ = group_options(ctx, None, json_)

    async def work(store: Store) -> list[PendingExtraction]:
        bot_id = (await resolve_bot(store, bot)).id if bot is not None else None
        if job is not None:
            jobs = [await resolve_job(store, job)]
            if bot_id is not None and jobs[0].bot_id != bot_id:
                raise NotFoundError(f"job {job!r} is not one of {bot!r}'s jobs")
        else:
            jobs = await store.memory.list_pending_extractions(bot_id=bot_id)
        now = utc_now()
        return [
            await store.memory.update_pending_extraction(
                dataclasses.replace(j, attempt_count=0, next_attempt_at=now)
            )
            for j in jobs
        ]

    done = run(ctx, work)
    if json_:
        from boternity.cli.output import print_json

        print_json(done)
        return
    if not done:
        typer.echo("The extraction queue is empty; nothing to retry.")
        return
    n = len(done)
    typer.echo(f"Reset {n} job{'s' if n != 1 else ''}: due now with fresh attempts.")


@queue_app.command("run", cls=BnityCommand)
def run_jobs(
    ctx: typer.Context,
    bot: BotOpt = None,
    limit: Annotated[
        int | None, typer.Option(min=1, max=MAX_COUNT, metavar="N", help="Process at most N jobs.")
    ] = None,
    provider: Annotated[
        str | None,
        typer.Option(
            "--provider",
            click_type=choice(PROVIDERS),
            help=("LLM provider [default: $BOTERNITY_PROVIDER, else chosen by the API keys set]"),
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            metavar="MODEL",
            help=(
                "Model name [default: $BOTERNITY_EXTRACTION_MODEL, else $BOTERNITY_MODEL, else"
                " the provider's default]"
            ),
            show_default=False,
        ),
    ] = None,
    embeddings: EmbeddingsOpt = None,
    json_: Annotated[
        bool, typer.Option("--json", help="Print the worker's report as JSON.")
    ] = False,
) -> None:
    """Process due extraction jobs now (exit 1 when any job failed or ran out of attempts),
    then embed memories that have no embedding yet (up to 4,096; see 'bnity memories
    reembed').

    A failed job keeps its error and is retried later with backoff; see 'bnity queue'. An
    embedder that fails delays only the embeddings: the memories are saved either way."""
    import sys

    bot, json_ = group_options(ctx, bot, json_)

    from boternity.cli.loop import warnings_to_stderr
    from boternity.cli.output import console, echo, plural, text
    from boternity.cli.resolve import resolve_bot, unique_prefixes
    from boternity.ids import utc_now

    if TYPE_CHECKING:
        from rich.progress import Progress

        from boternity.memory import WorkerReport

    err = console(stderr=True)
    progress: Progress | None = None
    plain = not json_ and not sys.stdout.isatty()

    async def work(store: Store) -> tuple[WorkerReport, str]:
        nonlocal progress
        from contextlib import AsyncExitStack

        from boternity.cli.runtime import embedder_or_note
        from boternity.llm import RetryPolicy, select_provider
        from boternity.memory import ExtractionWorker

        bot_id = (await resolve_bot(store, bot)).id if bot is not None else None
        # The queue is the retry mechanism: one quick provider retry, then the job backs off.
        retry = RetryPolicy.interactive(max_retries=1)
        llm, notice = select_provider(provider, model, retry=retry)
        if llm.name == "offline":
            err.print(
                text(
                    notice or "Using the offline provider: memories are found by simple patterns.",
                    style="yellow",
                )
            )
        now = utc_now()
        due = [
            j
            for j in await store.memory.list_pending_extractions(bot_id=bot_id)
            if not j.exhausted and j.next_attempt_at <= now
        ]
        total = len(due) if limit is None else min(limit, len(due))
        bots = {b.id: b.slug for b in await store.bots.list_bots()}
        job_ids = await unique_prefixes(store, "job", [j.id for j in due])
        session_ids = await unique_prefixes(store, "session", {j.session_id for j in due})

        def on_job(job: PendingExtraction, outcome: str) -> None:
            if progress is not None:
                progress.advance(task)
            elif plain:
                session = session_ids.get(job.session_id, str(job.session_id))
                where = f"{bots.get(job.bot_id, str(job.bot_id))}/{session}"
                echo(f"job {job_ids.get(job.id, str(job.id))} ({where}): {outcome}")

        if not json_ and not plain and total:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            progress = Progress(
                TextColumn("Extracting memories"),
                BarColumn(),
                MofNCompleteColumn(),
                console=console(),
                transient=True,
            )
            task = progress.add_task("jobs", total=total)
            progress.start()
        try:
            async with AsyncExitStack() as stack:
                await stack.enter_async_context(llm)
                embedder, note = embedder_or_note(embeddings)
                if note:
                    err.print(text(note, style="yellow"))
                if embedder is not None:
                    stack.push_async_callback(embedder.aclose)
                worker = ExtractionWorker(store, llm, model=model, embedder=embedder)
                report = await worker.run_once(limit=limit, bot_id=bot_id, on_job=on_job)
        finally:
            if progress is not None:
                progress.stop()
        return report, llm.label

    with warnings_to_stderr():
        report, label = run(ctx, work)
    bad = report.failed + report.exhausted
    embedded = report.embedding.embedded if report.embedding is not None else 0
    if report.claimed == 0:
        summary = "No due jobs in the extraction queue."
    else:
        summary = (
            f"Processed {plural(report.claimed, 'job')} with {label}: {report.completed}"
            f" completed, {report.failed} failed, {report.exhausted} exhausted;"
            f" {plural(report.memories_saved, 'memory', 'memories')} saved,"
            f" {report.superseded} superseded."
        )
        if report.repeated:
            summary += (
                f" {plural(report.repeated, 'fact')} already remembered (recorded in the"
                " memory's history)."
            )
        if report.dropped:
            from boternity.memory.extraction import MAX_FACTS_PER_JOB

            summary += (
                f" {plural(report.dropped, 'more fact')} dropped"
                f" (at most {MAX_FACTS_PER_JOB} new facts per job)."
            )
        if bad:
            summary += (
                f" Last error: {' '.join(report.errors[-1].split())}" if report.errors else ""
            )
    if embedded:
        summary += f" Embedded {plural(embedded, 'memory', 'memories')}."
    if report.embedding is not None and report.embedding.error is not None:
        err.print(text(f"note: embedding paused: {report.embedding.error}", style="yellow"))
    if json_:
        from boternity.cli.output import print_json

        print_json(report)
    elif not bad:
        echo(summary)
    if bad:
        echo(f"error: {summary}", err=True)
        raise typer.Exit(1)
