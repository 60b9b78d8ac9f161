"""examples/chat.py and examples/quickstart.py as a new user runs them: a fresh HOME, no API
key (the offline provider)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import CLEAN_ENV

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def run_example(
    tmp_path: Path, name: str, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    env.update(HOME=str(tmp_path / "home"), PYTHONUTF8="1")
    return subprocess.run(
        [sys.executable, "-W", "error", str(ROOT / "examples" / name), *args],
        capture_output=True,
        text=True,
        input=stdin,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )


def test_chat_example_ends_cleanly_at_the_end_of_input(tmp_path: Path) -> None:
    """No empty line, just the end of the input (Ctrl+D, or a pipe that ends): the session is
    completed and nothing is printed on stderr but the offline notice."""
    done = run_example(
        tmp_path, "chat.py", "--db", str(tmp_path / "chat.db"), stdin="I live in Porto\n"
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "EOFError" not in done.stderr
    assert "offline provider" in done.stderr
    assert "[offline]" in done.stdout
    assert " completed" in done.stdout.splitlines()[-1]


def test_quickstart_uses_its_own_database(tmp_path: Path) -> None:
    done = run_example(tmp_path, "quickstart.py")
    assert done.returncode == 0, done.stderr
    assert "read back in a fresh process" in done.stdout
    assert "session  'Settling in Lisbon': 4 messages" in done.stdout
    assert not (tmp_path / "home" / ".boternity").exists()  # never the user's database
    assert not list(tmp_path.rglob("*.db"))  # and its temporary database is gone


def test_quickstart_with_a_given_database_twice(tmp_path: Path) -> None:
    db = tmp_path / "mine.db"
    for runs in (1, 2):
        done = run_example(tmp_path, "quickstart.py", "--db", str(db))
        assert done.returncode == 0, done.stderr
        assert f"{runs} conversation(s)" in done.stdout
    assert db.exists()
    assert not (tmp_path / "home" / ".boternity").exists()
