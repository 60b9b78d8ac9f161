"""``bnity db info|migrate|backup|check``.

Every command works through the store (its ``maintenance``) and, before opening one, its
``Backend``: the CLI never asks which backend it talks to. A backend that leaves backups or
integrity checks to its own tools (PostgreSQL: pg_dump, pg_amcheck) says so before anything
is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from boternity.cli.runtime import BnityCommand, JsonOpt, OverwriteOpt, get_state, run, sub_app

if TYPE_CHECKING:
    from boternity.config import DatabaseTarget
    from boternity.repositories import (
        BackupReport,
        IntegrityReport,
        MaintenanceOperation,
        StoreDetails,
    )
    from boternity.store import Store

db_app = sub_app("The database: where it is, migrations, backups, integrity.")


def _target(ctx: typer.Context) -> DatabaseTarget:
    from boternity.config import resolve_database

    return resolve_database(get_state(ctx).db)


def _refuse_unsupported(ctx: typer.Context, command: str, operation: MaintenanceOperation) -> None:
    """Stop before connecting when the backend does not offer ``operation``."""
    from boternity.errors import UnsupportedError
    from boternity.store import backend_of

    backend = backend_of(get_state(ctx).db)
    reason = backend.unsupported(operation)
    if reason is not None:
        raise UnsupportedError(
            f"'bnity db {command}' cannot run on {_target(ctx).display} ({backend.name}): {reason}"
        )


@db_app.command("info", cls=BnityCommand)
def info(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Where the database is, its backend and schema version, sizes and row counts."""
    target = _target(ctx)

    async def work(store: Store) -> tuple[str, int, StoreDetails, dict[str, int]]:
        details = await store.maintenance.details()
        counts = await store.maintenance.table_counts()
        return store.backend, store.schema_version, details, counts

    backend, version, details, counts = run(ctx, work)
    report: dict[str, Any] = {
        "location": target.display,
        "backend": backend,
        "schema_version": version,
        **details.fields,
        "rows": counts,
    }
    if json_:
        from boternity.cli.output import print_json

        print_json(report)
        return
    from boternity.cli.output import console, key_values, table

    out = console()
    rows: list[tuple[str, object]] = [
        ("Location", report["location"]),
        ("Backend", backend),
        ("Schema version", version),
        *details.lines,
    ]
    out.print(key_values(rows))
    t = table("Table", "Rows>")
    for name, n in counts.items():
        t.add_row(name, f"{n:,}")
    out.print(t)


@db_app.command("migrate", cls=BnityCommand)
def migrate(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Create the database if needed and apply pending migrations (opening always does)."""
    from boternity.store import backend_of

    target = _target(ctx)
    before = backend_of(get_state(ctx).db).schema_version_on_disk(target)

    async def work(store: Store) -> int:
        return store.schema_version

    after = run(ctx, work, create=True)
    if json_:
        from boternity.cli.output import print_json

        print_json(
            {"location": target.display, "schema_version": after, "previous_version": before}
        )
        return
    if before is None:
        typer.echo(f"{target.display}: schema at version {after}.")
    elif before == after:
        typer.echo(f"{target.display}: schema at version {after}, already up to date.")
    else:
        typer.echo(f"{target.display}: migrated schema from version {before} to {after}.")


@db_app.command("backup", cls=BnityCommand)
def backup(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(metavar="FILE", help="Where to write the copy.")],
    yes: OverwriteOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Copy the database consistently while it may be in use (SQLite's backup API; for
    PostgreSQL use pg_dump).

    FILE is never the database or one of its files; an existing FILE is replaced only after
    confirmation (--yes/--force), and only by a complete, checked copy."""
    from pathlib import Path

    from boternity.cli.files import atomic_write, output_file
    from boternity.cli.runtime import checked_database
    from boternity.units import format_size

    _refuse_unsupported(ctx, "backup", "backup")
    checked_database(ctx)  # a missing database is reported before FILE is looked at
    dest = output_file(get_state(ctx).db, file, yes=yes, what="the backup")

    async def work(store: Store) -> BackupReport:
        # Owner-only (0600), like the database itself: a backup holds every conversation.
        with atomic_write(dest) as tmp:
            return await store.maintenance.backup(tmp)

    report = run(ctx, work)
    source = _target(ctx).display
    size = dest.stat().st_size
    shown = Path(file).expanduser()  # as the user named it; dest is resolved
    if json_:
        from boternity.cli.output import print_json

        print_json({"source": source, "backup": str(shown), "bytes": size, "tables": report.tables})
        return
    typer.echo(f"Backed up {source} to {shown} ({format_size(size)}).")


@db_app.command("check", cls=BnityCommand)
def check(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Check the database (SQLite: integrity_check and foreign_key_check). Exit code 1 when
    problems are found."""
    from boternity.cli.runtime import EXIT_ERROR

    _refuse_unsupported(ctx, "check", "integrity_check")

    async def work(store: Store) -> IntegrityReport:
        return await store.maintenance.integrity_check()

    report = run(ctx, work)
    location = _target(ctx).display
    foreign_keys = [
        {"table": v.table, "rowid": v.rowid, "parent": v.parent, "fk_index": v.fk_index}
        for v in report.foreign_keys
    ]
    if json_:
        from boternity.cli.output import print_json

        print_json(
            {
                "location": location,
                "ok": report.ok,
                "integrity": report.problems,
                "foreign_keys": foreign_keys,
            }
        )
    else:
        typer.echo(f"{location}:")
        if report.problems:
            typer.echo(f"  integrity_check: {len(report.problems)} problem(s)")
            for p in report.problems[:50]:
                typer.echo(f"    {' '.join(p.split())}")
        else:
            typer.echo("  integrity_check: ok")
        if foreign_keys:
            typer.echo(f"  foreign_key_check: {len(foreign_keys)} violation(s)")
            for v in foreign_keys[:50]:
                typer.echo(f"    {v['table']} rowid {v['rowid']} -> missing {v['parent']}")
        else:
            typer.echo("  foreign_key_check: ok")
    if not report.ok:
        raise typer.Exit(EXIT_ERROR)
