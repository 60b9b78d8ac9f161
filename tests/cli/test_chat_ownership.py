"""bnity chat and session ownership, with real processes: another path to the same SQLite
file cannot take a live session, and a chat whose session was taken over after its lock was
lost ends with one error line instead of writing on."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from boternity import Store
from boternity.models import MessageRole, SessionStatus
from tests.cli.conftest import with_store
from tests.cli.test_chat import BNITY, _env

pytestmark = pytest.mark.slow


def _session(db: Path) -> tuple[uuid.UUID, str | None, list[tuple[MessageRole, str]]]:
    async def read(store: Store) -> tuple[uuid.UUID, str | None, list[tuple[MessageRole, str]]]:
        bot = await store.bots.get_bot_by_slug("luna")
        assert bot is not None
        [session] = await store.chat.list_sessions(bot.id)
        messages = await store.chat.get_messages(session.id)
        return session.id, session.title, [(m.role, m.content) for m in messages]

    return with_store(db, read)


def _status(db: Path, session_id: uuid.UUID) -> SessionStatus:
    async def read(store: Store) -> SessionStatus:
        session = await store.chat.get_session(session_id)
        assert session is not None
        return session.status

    return with_store(db, read)


def _owner(db: Path) -> tuple[subprocess.Popen[str], uuid.UUID]:
    """A live `bnity chat` that has said "one" and got its reply and title."""
    subprocess.run([*BNITY, "--db", str(db), "bot", "create", "Luna"], check=True, env=_env())
    proc = subprocess.Popen(
        [*BNITY, "--db", str(db), "chat", "luna", "--no-greeting", "--provider", "offline"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        env=_env(),
    )
    assert proc.stdin is not None
    proc.stdin.write("one\n")
    proc.stdin.flush()
    deadline = time.monotonic() + 60
    while True:  # the state lives in another process: poll the database
        try:
            session_id, title, messages = _session(db)
            if title is not None and len(messages) == 2:
                return proc, session_id
        except ValueError:  # no session yet
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise AssertionError(f"the owner did not get going: {proc.communicate()}")
        time.sleep(0.05)


def _finish(proc: subprocess.Popen[str], text: str) -> tuple[int, str, str]:
    out, err = proc.communicate(text, timeout=60)
    return proc.returncode, out, err


def test_a_second_chat_through_a_symlink_cannot_take_the_live_session(tmp_path: Path) -> None:
    real = tmp_path / "real.db"
    link = tmp_path / "link.db"
    os.symlink(real, link)
    owner, session_id = _owner(real)
    try:
        second = subprocess.run(
            [*BNITY, "--db", str(link), "chat", "luna", "--resume", str(session_id)],
            input="intruder\n",
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=60,
            env=_env(),
        )
        assert second.returncode == 5, second.stderr
        line = second.stderr.strip().splitlines()[-1]
        assert line.startswith("error: ") and "live in another process" in line
        assert "Traceback" not in second.stderr
        assert _status(real, session_id) is SessionStatus.ACTIVE  # not marked crashed
        code, _, err = _finish(owner, "two\n")
    finally:
        owner.kill()
    assert code == 0, err
    _, _, messages = _session(real)
    assert [c for r, c in messages if r is MessageRole.USER] == ["one", "two"]
    assert _status(real, session_id) is SessionStatus.COMPLETED


def test_a_chat_whose_session_was_taken_over_ends_with_one_error_line(tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    owner, session_id = _owner(db)
    try:
        os.unlink(tmp_path / "chat.db.sessions" / f"{session_id}.lock")
        thief = subprocess.run(
            [*BNITY, "--db", str(db), "chat", "luna", "--resume", str(session_id)],
            input="thief\n",
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=60,
            env=_env(),
        )
        assert thief.returncode == 0, thief.stderr
        code, _, err = _finish(owner, "two\nthree\n")
    finally:
        owner.kill()
    assert code == 5, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and "taken over by another process" in last
    _, _, messages = _session(db)
    assert [c for r, c in messages if r is MessageRole.USER] == ["one", "thief"]
    assert _status(db, session_id) is SessionStatus.COMPLETED  # ended by the thief
