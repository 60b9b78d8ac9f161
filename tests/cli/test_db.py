"""bnity db info|migrate|backup|check."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from tests.cli.conftest import Invoke, one_line_error, parse
from tests.cli.fixtures import World


def test_db_info_json(cli: Invoke, world: World, db_path: Path) -> None:
    data = parse(cli("db", "info", "--json"))
    assert data["location"] == str(db_path)
    assert data["backend"] == "sqlite"
    assert data["schema_version"] >= 1
    assert data["files"][db_path.name] > 0
    assert data["rows"]["bots"] == 2
    assert data["rows"]["chat_sessions"] == 3
    assert data["rows"]["chat_messages"] == 9
    assert data["rows"]["session_memories"] == 4
    assert data["rows"]["pending_memory_extractions"] == 2
    assert data["rows"]["soul_versions"] == 1


def test_db_info_text(cli: Invoke, world: World, db_path: Path) -> None:
    out = cli("db", "info").stdout
    assert str(db_path) in out and "sqlite" in out and "chat_messages" in out


def test_db_uses_environment_when_no_db_option(world: World, db_path: Path) -> None:
    from typer.testing import CliRunner

    from boternity.cli.app import app

    result = CliRunner().invoke(
        app, ["db", "info", "--json"], env={"BOTERNITY_DATABASE_URL": f"sqlite:///{db_path}"}
    )
    assert parse(result)["location"] == str(db_path)


def test_db_migrate_creates_and_reports(cli: Invoke, db_path: Path) -> None:
    first = parse(cli("db", "migrate", "--json"))
    assert first["previous_version"] == 0
    assert first["schema_version"] >= 1
    assert db_path.is_file()
    again = cli("db", "migrate")
    assert again.exit_code == 0
    assert "already up to date" in again.stdout


def test_db_backup_is_a_consistent_checked_copy(cli: Invoke, world: World, tmp_path: Path) -> None:
    target = tmp_path / "backup.db"
    data = parse(cli("db", "backup", str(target), "--json"))
    assert data["backup"] == str(target)
    assert target.is_file() and target.stat().st_mode & 0o777 == 0o600
    with contextlib.closing(sqlite3.connect(target)) as conn:
        assert conn.execute("SELECT count(*) FROM chat_messages").fetchone()[0] == 9
    from typer.testing import CliRunner

    from boternity.cli.app import app

    check = CliRunner().invoke(app, ["--db", str(target), "db", "check"])
    assert check.exit_code == 0, check.stderr
    assert not list(tmp_path.glob(".backup.db*"))  # no temporary file left


def test_db_backup_overwrite_needs_yes(cli: Invoke, world: World, tmp_path: Path) -> None:
    target = tmp_path / "backup.db"
    target.write_text("old")
    refused = cli("db", "backup", str(target))
    assert refused.exit_code == 2
    assert "--yes" in one_line_error(refused)
    assert target.read_text() == "old"
    assert cli("db", "backup", str(target), "--yes").exit_code == 0
    assert target.read_bytes().startswith(b"SQLite format 3")


def test_db_backup_onto_itself_is_refused(cli: Invoke, world: World, db_path: Path) -> None:
    result = cli("db", "backup", str(db_path), "--yes")
    assert result.exit_code == 2
    one_line_error(result)


def test_db_check_ok(cli: Invoke, world: World) -> None:
    result = cli("db", "check")
    assert result.exit_code == 0
    assert "integrity_check: ok" in result.stdout
    assert "foreign_key_check: ok" in result.stdout
    assert parse(cli("db", "check", "--json"))["ok"] is True


def test_db_check_reports_foreign_key_problems_with_exit_code(
    cli: Invoke, world: World, db_path: Path
) -> None:
    with contextlib.closing(sqlite3.connect(db_path, isolation_level=None)) as conn:
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("DELETE FROM bots WHERE slug = 'other'")
    result = cli("db", "check")
    assert result.exit_code == 1
    # the memory and its history row both point at the deleted bot
    assert "foreign_key_check: 2 violation(s)" in result.stdout
    assert "session_memories rowid" in result.stdout
    data = cli("db", "check", "--json")
    assert data.exit_code == 1
    import json

    report = json.loads(data.stdout)
    assert report["ok"] is False
    assert {v["table"] for v in report["foreign_keys"]} == {"session_memories", "memory_history"}


def test_db_check_missing_file_and_wrong_backend(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from boternity.cli.app import app

    runner = CliRunner()
    missing = runner.invoke(app, ["--db", str(tmp_path / "none.db"), "db", "check"])
    assert missing.exit_code == 4
    one_line_error(missing)
    assert not (tmp_path / "none.db").exists()  # check never creates a database
    pg = runner.invoke(app, ["--db", "postgresql://u:secret@localhost/x", "db", "backup", "f"])
    assert pg.exit_code == 2
    line = one_line_error(pg)
    assert "SQLite" in line and "secret" not in line


def test_db_backup_while_another_connection_is_writing(
    cli: Invoke, world: World, db_path: Path, tmp_path: Path
) -> None:
    # An open write transaction (as the chat engine would hold for a moment) neither blocks
    # the backup nor leaks into it: the copy is the last committed state.
    target = tmp_path / "online.db"
    with contextlib.closing(sqlite3.connect(db_path, isolation_level=None)) as writer:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE bots SET description = 'uncommitted' WHERE slug = 'helper'")
        result = cli("db", "backup", str(target))
        writer.execute("ROLLBACK")
    assert result.exit_code == 0, result.stderr
    with contextlib.closing(sqlite3.connect(target)) as conn:
        row = conn.execute("SELECT description FROM bots WHERE slug = 'helper'").fetchone()
    assert row == ("helps",)


def test_schema_problem_has_its_own_exit_code(cli: Invoke, world: World, db_path: Path) -> None:
    with contextlib.closing(sqlite3.connect(db_path, isolation_level=None)) as conn:
        conn.execute("UPDATE schema_migrations SET checksum = 'tampered'")
    result = cli("bot", "list")
    assert result.exit_code == 6
    one_line_error(result)
