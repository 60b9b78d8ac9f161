"""``bnity db`` through the store's maintenance capability, on both backends: row counts
asked of the database itself, backup round trips, integrity checks of damaged files."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from boternity.cli.app import app
from tests.cli.conftest import one_line_error, parse
from tests.cli.fixtures import build_world
from tests.cli.test_files import bnity


def _cli(db: str | Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["--db", str(db), *args])


def _add_table_behind_boternitys_back(db_url: str) -> None:
    """A table boternity never made, with two rows: a hard-coded list would miss it."""
    sql = ["CREATE TABLE extra_notes (note text)", "INSERT INTO extra_notes VALUES ('a'), ('b')"]
    if db_url.startswith("postgresql://"):
        import asyncpg

        async def run() -> None:
            conn = await asyncpg.connect(db_url)
            try:
                for statement in sql:
                    await conn.execute(statement)
            finally:
                await conn.close()

        asyncio.run(run())
        return
    with contextlib.closing(sqlite3.connect(db_url, isolation_level=None)) as conn:
        for statement in sql:
            conn.execute(statement)


def test_db_info_counts_every_table_the_database_has(db_url: str, backend: str) -> None:
    asyncio.run(build_world(db_url))  # type: ignore[arg-type]
    _add_table_behind_boternitys_back(db_url)
    info = parse(_cli(db_url, "db", "info", "--json"))
    rows = info["rows"]
    assert rows["memory_history"] == 4  # one 'added' record per memory
    assert rows["extra_notes"] == 2
    assert rows["bots"] == 2 and rows["chat_messages"] == 9 and rows["session_memories"] == 4
    if backend == "sqlite":
        assert rows["memories_fts"] == 4  # the full-text indexes over memories and messages
        assert rows["messages_fts"] == 0 and rows["messages_indexed"] == 1  # all 9 still wait
        assert "files" in info and info["journal_mode"] == "wal"
    else:
        assert "memories_fts" not in rows  # columns and indexes there, not tables
        assert "messages_fts" not in rows
        assert info["server_version"]
    assert not [t for t in rows if t.startswith(("sqlite_", "memories_fts_", "messages_fts_"))]
    text = _cli(db_url, "db", "info")
    assert text.exit_code == 0, text.stderr
    assert "memory_history" in text.stdout and "extra_notes" in text.stdout


def test_db_backup_round_trip(db_url: str, backend: str, tmp_path: Path) -> None:
    asyncio.run(build_world(db_url))  # type: ignore[arg-type]
    copy = tmp_path / "copy.db"
    result = _cli(db_url, "db", "backup", str(copy), "--json")
    if backend != "sqlite":
        assert result.exit_code == 2
        line = one_line_error(result)
        assert "pg_dump" in line and "SQLite" in line
        assert not copy.exists()
        return
    assert parse(result)["backup"] == str(copy)
    original = parse(_cli(db_url, "db", "info", "--json"))["rows"]
    restored = parse(_cli(copy, "db", "info", "--json"))["rows"]
    assert restored == original
    assert parse(_cli(copy, "bot", "list", "--json"))[0]["slug"] == "other"
    assert parse(_cli(copy, "db", "check", "--json"))["ok"] is True


def test_db_check_on_postgres_points_at_pg_amcheck(db_url: str, backend: str) -> None:
    if backend == "sqlite":
        assert _cli(db_url, "db", "migrate").exit_code == 0
        assert parse(_cli(db_url, "db", "check", "--json"))["ok"] is True
        return
    refused = _cli(db_url, "db", "check")
    assert refused.exit_code == 2
    assert "pg_amcheck" in one_line_error(refused)


def _damage_index(db: Path, how: str) -> None:
    """Damage the memories' index of a closed database: one key changed in place (the rows
    and the index disagree), or the whole page overwritten (not a b-tree page any more)."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        (root,) = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'idx_memories_bot_importance'"
        ).fetchone()
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
        (bot_id,) = conn.execute("SELECT id FROM bots ORDER BY created_at LIMIT 1").fetchone()
    data = bytearray(db.read_bytes())
    start = (root - 1) * page_size
    if how == "key changed":
        at = data.index(bot_id.encode(), start, start + page_size) + len(bot_id) - 1
        data[at] ^= 0x01
    else:
        data[start : start + page_size] = b"\xff" * page_size
    db.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["key changed", "page overwritten"])
def test_db_check_finds_a_damaged_file(tmp_path: Path, how: str) -> None:
    db = tmp_path / "v.db"
    asyncio.run(build_world(db))
    good = bnity(db, "db", "check")
    assert good.returncode == 0 and "integrity_check: ok" in good.stdout
    _damage_index(db, how)
    bad = bnity(db, "db", "check")
    assert bad.returncode == 1, bad
    assert "integrity_check: ok" not in bad.stdout
    report = json.loads(bnity(db, "db", "check", "--json").stdout)
    assert report["ok"] is False and report["integrity"]
    if how == "key changed":
        assert any(
            "missing from index idx_memories_bot_importance" in p for p in report["integrity"]
        )
    else:
        assert "malformed" in report["integrity"][0]
    # A backup copies pages as they are and checks the copy (quick_check): a broken page
    # fails it and leaves no copy; a wrong index key is copied faithfully, and found again.
    copy = tmp_path / "copy.db"
    backed_up = bnity(db, "db", "backup", str(copy))
    if how == "key changed":
        assert backed_up.returncode == 0, backed_up
        assert bnity(copy, "db", "check").returncode == 1
    else:
        assert backed_up.returncode == 1 and "quick_check" in backed_up.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == ["v.db"]
