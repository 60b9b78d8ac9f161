"""``bnity db info|migrate|backup|check``.

``info`` and ``migrate`` work on every backend. ``backup`` and ``check`` are SQLite-only: they
use the stdlib sqlite3 module on a separate read-only connection, next to (never inside) the
store, after checking that the target is a SQLite file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from boternity.cli.runtime import BnityCommand, JsonOpt, OverwriteOpt, get_state, run, sub_app

if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path

    from boternity.config import DatabaseTarget
    from boternity.store import Store

db_app = sub_app("The database: where it is, migrations, backups, integrity.")

# Fixed table names (no identifiers from outside ever reach SQL text).
SQLITE_TABLES = (
    "bots",
    "soul_versions",
    "chat_sessions",
    "chat_messages",
    "context_summaries",
    "session_memories",
    "pending_memory_extractions",
    "schema_migrations",
)
_COUNT_SQL = {name: f"SELECT count(*) FROM {name}" for name in SQLITE_TABLES}


def _target(ctx: typer.Context) -> DatabaseTarget:
    from boternity.config import resolve_database

    return resolve_database(get_state(ctx).db)


def _sqlite_path(ctx: typer.Context, command: str, *, must_exist: bool = True) -> Path:
    from boternity.cli.runtime import EXIT_USAGE, CliError
    from boternity.errors import NotFoundError

    target = _target(ctx)
    if target.backend != "sqlite" or target.path is None:
        raise CliError(
            f"'bnity db {command}' works on SQLite databases only"
            f" ({target.display} is {target.backend})",
            exit_code=EXIT_USAGE,
        )
    if must_exist and not target.path.is_file():
        raise NotFoundError(f"no SQLite database at {target.path}")
    return target.path


def _connect_ro(path: Path) -> sqlite3.Connection:
    import sqlite3
    import urllib.parse

    uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro"
    return sqlite3.connect(uri, uri=True, isolation_level=None)


def _sqlite_error(path: Path, exc: Exception) -> Exception:
    from boternity.errors import RepositoryError

    return RepositoryError(f"{path}: {exc}")


def _schema_version_on_disk(path: Path) -> int:
    """Applied migrations before opening (0 for a new or empty file)."""
    import contextlib
    import sqlite3

    if not path.is_file():
        return 0
    with contextlib.closing(_connect_ro(path)) as conn:
        try:
            row = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()
        except sqlite3.OperationalError:
            return 0
    return int(row[0])


def _sqlite_details(path: Path) -> dict[str, Any]:
    import contextlib

    files = {}
    for suffix in ("", "-wal", "-shm"):
        p = path.with_name(path.name + suffix)
        if p.exists():
            files[p.name] = p.stat().st_size
    with contextlib.closing(_connect_ro(path)) as conn:
        counts = {name: int(conn.execute(sql).fetchone()[0]) for name, sql in _COUNT_SQL.items()}
        page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        page_count = int(conn.execute("PRAGMA page_count").fetchone()[0])
        freelist = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
        journal = str(conn.execute("PRAGMA journal_mode").fetchone()[0])
    return {
        "files": files,
        "rows": counts,
        "page_size": page_size,
        "page_count": page_count,
        "freelist_pages": freelist,
        "journal_mode": journal,
    }


async def _generic_counts(store: Store) -> dict[str, int]:
    bots = await store.bots.list_bots()
    memories = 0
    for b in bots:
        memories += len(await store.memory.get_memories(b.id, include_superseded=True))
    return {
        "bots": len(bots),
        "chat_sessions": await store.chat.count_sessions(),
        "chat_messages": await store.chat.count_messages(),
        "session_memories": memories,
        "pending_memory_extractions": len(await store.memory.list_pending_extractions()),
    }


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


@db_app.command("info", cls=BnityCommand)
def info(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Where the database is, its backend and schema version, file sizes and row counts."""
    target = _target(ctx)

    async def work(store: Store) -> tuple[str, int, dict[str, int] | None]:
        counts = None if store.backend == "sqlite" else await _generic_counts(store)
        return store.backend, store.schema_version, counts

    backend, version, counts = run(ctx, work)
    report: dict[str, Any] = {
        "location": target.display,
        "backend": backend,
        "schema_version": version,
    }
    if backend == "sqlite" and target.path is not None:
        import sqlite3

        try:
            report.update(_sqlite_details(target.path))
        except sqlite3.Error as exc:
            raise _sqlite_error(target.path, exc) from exc
    else:
        report["rows"] = counts
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
    ]
    if "files" in report:
        for name, size in report["files"].items():
            rows.append((f"File {name}", _size(size)))
        rows.append(("Journal mode", report["journal_mode"]))
        rows.append(
            (
                "Pages",
                f"{report['page_count']} × {report['page_size']} B,"
                f" {report['freelist_pages']} free",
            )
        )
    out.print(key_values(rows))
    t = table("Table", "Rows>")
    for name, n in (report["rows"] or {}).items():
        t.add_row(name, f"{n:,}")
    out.print(t)


@db_app.command("migrate", cls=BnityCommand)
def migrate(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Create the database if needed and apply pending migrations (opening always does)."""
    target = _target(ctx)
    before: int | None = None
    if target.backend == "sqlite" and target.path is not None:
        import sqlite3

        try:
            before = _schema_version_on_disk(target.path)
        except sqlite3.Error as exc:
            raise _sqlite_error(target.path, exc) from exc

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
    """Copy a SQLite database consistently while it may be in use (SQLite's backup API).

    FILE is never the database or one of its files; an existing FILE is replaced only after
    confirmation (--yes/--force), and only by a complete, checked copy."""
    import contextlib
    import sqlite3
    from pathlib import Path

    from boternity.cli.files import atomic_write, output_file
    from boternity.cli.runtime import CliError

    source = _sqlite_path(ctx, "backup")
    dest = output_file(get_state(ctx).db, file, yes=yes, what="the backup")
    try:
        # Owner-only (0600), like the database itself: a backup holds every conversation.
        with (
            atomic_write(dest) as tmp,
            contextlib.closing(_connect_ro(source)) as src,
            contextlib.closing(sqlite3.connect(tmp, isolation_level=None)) as dst,
        ):
            src.backup(dst)  # one step: a single consistent snapshot
            check = str(dst.execute("PRAGMA quick_check").fetchone()[0])
            tables = int(
                dst.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
            )
            if check != "ok":
                raise CliError(f"the copy failed its quick_check: {check}")
    except sqlite3.Error as exc:
        raise _sqlite_error(source, exc) from exc
    size = dest.stat().st_size
    shown = Path(file).expanduser()  # as the user named it; dest is resolved
    if json_:
        from boternity.cli.output import print_json

        print_json({"source": str(source), "backup": str(shown), "bytes": size, "tables": tables})
        return
    typer.echo(f"Backed up {source} to {shown} ({_size(size)}).")


@db_app.command("check", cls=BnityCommand)
def check(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Check a SQLite database (integrity_check and foreign_key_check). Exit code 1 when
    problems are found."""
    import contextlib
    import sqlite3

    from boternity.cli.runtime import EXIT_ERROR

    path = _sqlite_path(ctx, "check")
    try:
        with contextlib.closing(_connect_ro(path)) as conn:
            integrity = [str(r[0]) for r in conn.execute("PRAGMA integrity_check")]
            fk_rows = conn.execute("PRAGMA foreign_key_check").fetchall()
    except sqlite3.Error as exc:
        raise _sqlite_error(path, exc) from exc
    integrity_problems = [] if integrity == ["ok"] else integrity
    foreign_keys = [
        {"table": r[0], "rowid": r[1], "parent": r[2], "fk_index": r[3]} for r in fk_rows
    ]
    ok = not integrity_problems and not foreign_keys
    if json_:
        from boternity.cli.output import print_json

        print_json(
            {
                "location": str(path),
                "ok": ok,
                "integrity": integrity_problems,
                "foreign_keys": foreign_keys,
            }
        )
    else:
        typer.echo(f"{path}:")
        if integrity_problems:
            typer.echo(f"  integrity_check: {len(integrity_problems)} problem(s)")
            for p in integrity_problems[:50]:
                typer.echo(f"    {' '.join(p.split())}")
        else:
            typer.echo("  integrity_check: ok")
        if foreign_keys:
            typer.echo(f"  foreign_key_check: {len(foreign_keys)} violation(s)")
            for v in foreign_keys[:50]:
                typer.echo(f"    {v['table']} rowid {v['rowid']} -> missing {v['parent']}")
        else:
            typer.echo("  foreign_key_check: ok")
    if not ok:
        raise typer.Exit(EXIT_ERROR)
