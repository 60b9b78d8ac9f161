"""Issue 9, files: what the real ``bnity`` writes, creates and refuses, run in subprocesses.

Files the CLI writes (export, backup) never land on the database or its companions and never
replace a file unasked; database files and folders are owner-only; a full disk leaves nothing
half-made; a read-only command does not wait for another process's write lock; bad numbers
and bad database URLs get one clear line.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import pytest
import typer

from boternity.cli.app import app
from boternity.cli.runtime import MAX_COUNT

BNITY = [sys.executable, "-m", "boternity.cli"]

pytestmark = pytest.mark.slow


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOTERNITY_", "OPENAI_"))}
    env.pop("ANTHROPIC_API_KEY", None)
    env.update(PYTHONUTF8="1", BOTERNITY_PROVIDER="offline", **extra)
    return env


def bnity(
    db: str | Path,
    *args: str,
    timeout: float = 60,
    stdin: str | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BNITY, "--db", str(db), *args],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        env=_env(),
        preexec_fn=preexec_fn,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and "unexpected" not in result.stderr, result.stderr
    return lines[0]


# --- numbers --------------------------------------------------------------------------------


def _int_params() -> list[tuple[str, click.Parameter]]:
    found = []

    def walk(command: click.Command, path: str) -> None:
        for param in command.params:
            if isinstance(param.type, click.types.IntParamType | click.types.FloatParamType):
                found.append((f"{path} {param.name}", param))
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, f"{path} {name}")

    walk(typer.main.get_command(app), "bnity")
    return found


def test_every_numeric_option_has_a_range() -> None:
    params = _int_params()
    assert len(params) >= 4  # sessions --limit, soul show --version, queue run --limit, ...
    for name, param in params:
        assert isinstance(param.type, click.IntRange), name
        assert param.type.min is not None and param.type.max is not None, name
        assert param.type.max <= MAX_COUNT, name


@pytest.mark.parametrize(
    "args",
    [
        ("sessions", "x", "--limit"),
        ("queue", "run", "--limit"),
        ("soul", "show", "x", "--version"),
        ("remember", "x", "fact", "--importance"),
    ],
)
@pytest.mark.parametrize("value", ["9223372036854775807", "99999999999999999999999", "-1", "0"])
def test_huge_or_negative_numbers_get_one_line_naming_option_and_range(
    tmp_path: Path, args: tuple[str, ...], value: str
) -> None:
    result = bnity(tmp_path / "n.db", *args, value)
    assert result.returncode == 2, result
    line = one_line(result)
    assert f"'{args[-1]}'" in line and "is not in the range" in line, line
    assert "9223372036854775808" not in line


# --- database URLs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("postgresql://[::1", "[::1"),
        ("postgresql://bob:s3cret@[::1/db", "[::1"),
        ("postgresql://bob:s3cret@localhost:99999/db", "99999"),
        ("postgresql://localhost:abc/db", "abc"),
        ("postgres://bob:s3cret@localhost/db?port=70000", "70000"),
    ],
)
def test_bad_postgres_urls_get_one_clear_line_without_the_password(url: str, named: str) -> None:
    result = bnity(url, "bot", "list")
    assert result.returncode == 2, result
    line = one_line(result)
    assert "bad PostgreSQL URL" in line and named in line, line
    assert "s3cret" not in result.stderr


# --- the write lock -----------------------------------------------------------------------------


def test_read_only_command_answers_while_another_process_holds_the_write_lock(
    tmp_path: Path,
) -> None:
    db = tmp_path / "locked.db"
    assert bnity(db, "bot", "create", "Ann").returncode == 0
    script = (
        "import sqlite3, sys, time\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "c.execute('BEGIN IMMEDIATE')\n"
        "c.execute(\"UPDATE bots SET name = 'held' WHERE 0\")\n"
        "print('locked', flush=True)\n"
        "time.sleep(120)\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", script, str(db)], stdout=subprocess.PIPE, text=True
    ) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
            # The lock is really held: a writer in this process cannot get it.
            probe = sqlite3.connect(db, isolation_level=None, timeout=0.05)
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                probe.execute("BEGIN IMMEDIATE")
            probe.close()
            start = time.monotonic()
            listed = bnity(db, "bot", "list", "--json", timeout=30)
            elapsed = time.monotonic() - start
            assert listed.returncode == 0, listed.stderr
            assert '"Ann"' in listed.stdout
            assert elapsed < 10, elapsed  # it used to wait busy_wait (60 s), then fail
        finally:
            holder.kill()


# --- database files and folders -------------------------------------------------------------------


def _umask_022() -> None:
    os.umask(0o022)  # the common default, under which a forgotten mode shows as 0644/0755


def test_a_dangling_symlink_db_gets_its_target_created_owner_only(tmp_path: Path) -> None:
    (tmp_path / "link.db").symlink_to("real.db")
    created = bnity(tmp_path / "link.db", "bot", "create", "Ann", preexec_fn=_umask_022)
    assert created.returncode == 0, created.stderr
    assert (tmp_path / "link.db").is_symlink()
    assert (tmp_path / "real.db").stat().st_mode & 0o777 == 0o600
    assert bnity(tmp_path / "real.db", "bot", "show", "ann").returncode == 0


def test_every_folder_made_for_a_database_is_owner_only_parents_included(
    tmp_path: Path,
) -> None:
    db = tmp_path / "a" / "b" / "c" / "x.db"
    created = bnity(db, "bot", "create", "Ann", preexec_fn=_umask_022)
    assert created.returncode == 0, created.stderr
    for folder in (tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "c"):
        assert folder.stat().st_mode & 0o777 == 0o700, folder
    assert db.stat().st_mode & 0o777 == 0o600


def _small_file_size_limit() -> None:
    """Writes past 16 KiB fail (EFBIG), as on a full disk: the process-wide file size limit
    is the fault injection that needs no special file system."""
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write instead of killing us
    resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384))


def test_creating_a_database_on_a_full_disk_leaves_nothing_behind(tmp_path: Path) -> None:
    folder = tmp_path / "full"
    folder.mkdir()
    failed = bnity(folder / "new.db", "bot", "create", "Ann", preexec_fn=_small_file_size_limit)
    assert failed.returncode == 1
    assert sorted(p.name for p in folder.iterdir()) == []  # was: a 0-byte new.db, -shm
    line = one_line(failed)
    assert "cannot create SQLite database" in line and "new.db" in line, line
    # Without the limit the same command works: nothing left over is in the way.
    assert bnity(folder / "new.db", "bot", "create", "Ann").returncode == 0


# --- files the CLI writes: export and backup ----------------------------------------------------


def _db_with_a_session(tmp_path: Path, *, message_bytes: int = 100) -> tuple[Path, str]:
    """A real database file with one session of four messages; returns (db, session id)."""
    db = tmp_path / "v.db"
    return db, _add_session(str(db), message_bytes=message_bytes)


def _add_session(db: str, *, message_bytes: int) -> str:
    """A bot and one session of four messages in ``db`` (any backend); the session id."""
    import asyncio

    from boternity import open_store
    from boternity.models import Bot, ChatMessage, ChatSession, MessageRole

    async def build() -> str:
        async with open_store(db, readers=1) as store:
            bot = await store.bots.create_bot(Bot(name="Ann"))
            session = await store.chat.create_session(ChatSession(bot_id=bot.id, model="m"))
            for i in range(4):
                await store.chat.save_message(
                    ChatMessage(
                        session_id=session.id,
                        role=MessageRole.USER if i % 2 == 0 else MessageRole.ASSISTANT,
                        content=f"message {i} " + "é" * (message_bytes // 2),
                    )
                )
            return str(session.id)

    return asyncio.run(build())


def _snapshot(db: Path) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes()
        for p in db.parent.iterdir()
        if p.name.startswith(db.name) and p.is_file()
    }


def _database_targets(tmp_path: Path, db: Path) -> list[tuple[str, Path, str]]:
    """(attack, --db, FILE): FILE is the database, or a file beside it, behind a path trick."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.db").symlink_to(db)
    os.link(db, tmp_path / "hard.db")
    link = tmp_path / "link.db"
    return [
        ("itself", db, str(db)),
        ("dotdot", db, str(tmp_path / "sub" / ".." / "v.db")),
        ("symlink", db, str(link)),
        ("hard link", db, str(tmp_path / "hard.db")),
        ("wal", db, f"{db}-wal"),
        ("shm", db, f"{db}-shm"),
        ("journal", db, f"{db}-journal"),
        ("--db is a symlink", link, str(db)),
        ("wal of a symlinked --db", link, f"{db}-wal"),
        ("lock folder", db, f"{db}.sessions/x.lock"),
    ]


@pytest.mark.parametrize("command", ["export", "backup"])
def test_export_and_backup_never_write_onto_the_database_or_its_files(
    tmp_path: Path, command: str
) -> None:
    db, sid = _db_with_a_session(tmp_path)
    # Keep a -wal and -shm around while the attacks run: another process has the store open.
    keeper = sqlite3.connect(db, isolation_level=None)
    keeper.execute("SELECT count(*) FROM bots").fetchone()
    (tmp_path / "v.db.sessions").mkdir()
    try:
        before = _snapshot(db)
        assert {"v.db", "v.db-wal", "v.db-shm"} <= set(before)
        for name, db_arg, target in _database_targets(tmp_path, db):
            args = (
                ("session", "export", sid, "-o", target, "--yes")
                if command == "export"
                else ("db", "backup", target, "--yes")
            )
            result = bnity(db_arg, *args)
            assert result.returncode == 2, (name, result)
            line = one_line(result)
            assert "refusing to write" in line and "database" in line, (name, line)
            assert _snapshot(db) == before, name
    finally:
        keeper.close()
    assert not (tmp_path / "v.db.sessions" / "x.lock").exists()
    listed = bnity(db, "bot", "list", "--json")
    assert listed.returncode == 0 and '"Ann"' in listed.stdout


@pytest.mark.parametrize("command", ["export", "backup"])
def test_an_existing_file_is_replaced_only_with_yes_or_force(tmp_path: Path, command: str) -> None:
    db, sid = _db_with_a_session(tmp_path)
    out = tmp_path / "out.txt"
    out.write_text("keep me")

    def write(*flags: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        if command == "export":
            return bnity(db, "session", "export", sid, "-o", str(out), *flags, stdin=stdin)
        return bnity(db, "db", "backup", str(out), *flags, stdin=stdin)

    refused = write()  # stdin is not a terminal: refuse, never wait
    assert refused.returncode == 2
    assert "--yes" in one_line(refused)
    assert write(stdin="y\n").returncode == 2  # a pipe is not a terminal either
    assert out.read_text() == "keep me"
    assert write("--force").returncode == 0
    assert out.read_bytes() != b"keep me"
    out.write_text("keep me")
    assert write("--yes").returncode == 0
    assert out.read_bytes() != b"keep me"
    assert out.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_an_export_that_fails_midway_leaves_the_old_file_whole(db_url: str, tmp_path: Path) -> None:
    db = db_url
    sid = _add_session(db, message_bytes=60_000)  # ~240 KB of Markdown
    out = tmp_path / "out.md"
    out.write_text("the previous export\n")

    def limit() -> None:  # past the 32 KiB -shm file SQLite needs, short of the export
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))

    failed = bnity(db, "session", "export", sid, "-o", str(out), "--yes", preexec_fn=limit)
    assert failed.returncode == 1, failed
    assert out.read_text() == "the previous export\n"  # was: truncated, then half-written
    assert "cannot write" in one_line(failed)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    refused = bnity(db, "session", "export", sid, "-o", str(out))
    assert refused.returncode == 2 and "--yes" in one_line(refused)
    done = bnity(db, "session", "export", sid, "-o", str(out), "--yes")
    assert done.returncode == 0, done.stderr
    assert "message 3" in out.read_text(encoding="utf-8")


# --- the session lock folder ----------------------------------------------------------------------


@contextlib.contextmanager
def _unwritable(folder: Path) -> Iterator[None]:
    """``folder`` made unwritable for the user running the tests: chmod for a normal user;
    root ignores modes, so the immutable attribute then (skipped where it is unavailable)."""
    if os.geteuid() != 0:
        folder.chmod(0o500)
        try:
            yield
        finally:
            folder.chmod(0o700)
        return
    made = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False)
    if made.returncode != 0:
        pytest.skip("running as root without chattr +i: cannot make a folder unwritable")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


@pytest.mark.parametrize("how", ["unwritable folder", "a file in its place"])
def test_an_unusable_session_lock_folder_gives_a_clear_error(tmp_path: Path, how: str) -> None:
    db = tmp_path / "v.db"
    assert bnity(db, "bot", "create", "Ann").returncode == 0
    locks = tmp_path / "v.db.sessions"
    if how == "a file in its place":
        locks.write_text("")
        result = bnity(db, "chat", "ann", stdin="hello\n")
    else:
        locks.mkdir(mode=0o700)
        with _unwritable(locks):
            result = bnity(db, "chat", "ann", stdin="hello\n")
    assert result.returncode == 1, result
    line = one_line(
        subprocess.CompletedProcess(
            result.args, result.returncode, result.stdout, _without_provider_notice(result.stderr)
        )
    )
    assert "cannot create session lock files" in line and "v.db.sessions" in line, line


def _without_provider_notice(stderr: str) -> str:
    return "".join(
        line for line in stderr.splitlines(keepends=True) if "offline provider" not in line
    )
