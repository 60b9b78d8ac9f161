"""Every id bnity prints is a prefix unique in the database when it is printed (at least 8
characters), so it works when typed back; and the wording a newcomer reads. Through the real
``bnity`` in a subprocess or on a pseudo-terminal."""

from __future__ import annotations

import os
import re
import select
import sys
import time
from pathlib import Path

import pytest

from tests.cli.test_conventions import bnity, env, ok_json

pytestmark = pytest.mark.slow

BNITY = [sys.executable, "-m", "boternity.cli"]


def works(db: Path, prefix: str) -> str:
    """The full id of the session ``prefix`` names (the command must not call it ambiguous)."""
    assert len(prefix) >= 8, prefix
    return str(ok_json(bnity(db, "session", "show", prefix, "--json"))["session"]["id"])


def test_demo_run_twice_prints_session_ids_that_work(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    printed: list[str] = []
    for _ in range(2):  # within a minute: the sessions' ids share their first 8 characters
        done = bnity(db, "demo")
        assert done.returncode == 0, done.stderr
        [hint] = re.findall(r"session show (\S+)", done.stdout)
        [line] = re.findall(r"Session (\S+) “", done.stdout)
        assert hint == line
        printed.append(hint)
    sessions = ok_json(bnity(db, "sessions", "demo", "--json"))
    newest, oldest = sessions[0]["id"], sessions[1]["id"]
    assert works(db, printed[1]) == newest
    if newest[:8] == oldest[:8]:  # the case the issue met: 8 characters were ambiguous
        assert len(printed[1]) > 8
        assert bnity(db, "session", "show", newest[:8]).returncode == 3


def test_piped_chat_completed_line_prints_a_working_id(tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    assert bnity(db, "bot", "create", "Luna").returncode == 0
    for _ in range(2):  # the second session's id shares its first 8 characters
        done = bnity(db, "chat", "luna", "--no-greeting", stdin="I live in Rome\n")
        assert done.returncode == 0, done.stderr
        [(ref, count)] = re.findall(
            r"Session (\S+) completed \((\d+ messages?)\)", done.stderr + done.stdout
        )
        assert count == "2 messages"
        # unique when printed: it names the session just completed
        newest = ok_json(bnity(db, "sessions", "--json"))[0]["id"]
        assert works(db, ref) == newest


def test_memory_ids_are_the_shortest_unique_prefixes(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    assert bnity(db, "demo").returncode == 0
    table = bnity(db, "memories", "demo", "--all")
    memories = ok_json(bnity(db, "memories", "demo", "--all", "--json"))
    everyone = [m["id"] for m in memories]
    for m in memories:
        [prefix] = [w for w in table.stdout.split() if m["id"].startswith(w) and len(w) >= 8]
        others = [i for i in everyone if i != m["id"]]
        assert not any(o.startswith(prefix) for o in others)  # unique
        shorter = prefix[:-1].rstrip("-")
        assert len(shorter) < 8 or any(o.startswith(shorter) for o in others)  # shortest
        shown = ok_json(bnity(db, "memory", "show", prefix, "--json"))
        assert shown["id"] == m["id"]


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_chat_header_on_a_terminal(tmp_path: Path) -> None:
    """The header names the provider once ("offline (canned replies)", never "offline ·
    offline") and a session id that works; Ctrl+D ends with "(N messages)"."""
    import pty

    db = tmp_path / "tty.db"
    assert bnity(db, "bot", "create", "Luna").returncode == 0
    assert bnity(db, "chat", "luna", stdin="hi\n").returncode == 0  # an earlier session
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.execve(sys.executable, [*BNITY, "--db", str(db), "chat", "luna"], env(COLUMNS="120"))
    output = b""

    def read_until(needle: bytes) -> None:
        nonlocal output
        end = time.monotonic() + 30
        while needle not in output:
            assert time.monotonic() < end, output.decode(errors="replace")
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    output += os.read(fd, 65536)
                except OSError:
                    break

    try:
        read_until("You › ".encode())
        time.sleep(0.3)
        os.write(fd, b"\x04")
        read_until(b"completed")
        read_until(b").")
    finally:
        os.waitpid(pid, 0)
        os.close(fd)
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output.decode(errors="replace"))
    assert "offline · offline" not in shown
    [header] = re.findall(r"offline \(canned replies\) · session (\S+)", shown)
    [ended] = re.findall(r"Session (\S+) completed \((\d+ messages?)\)", shown)
    assert header == ended[0]
    sessions = ok_json(bnity(db, "sessions", "--json"))
    assert works(db, header) == sessions[0]["id"]
    assert ended[1] == "1 message"  # the greeting


def test_wording(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    assert bnity(db, "bot", "create", "Luna").returncode == 0
    assert bnity(db, "remember", "luna", "Lives in Rome").returncode == 0
    forget = bnity(db, "forget", "luna")
    assert forget.returncode == 2
    assert forget.stderr.splitlines() == [
        "error: not confirmed (stdin is not a terminal; pass --yes to do it): Delete the 1 memory"
        " of 'Luna' (luna)? This cannot be undone."
    ]
    bad = bnity(db, "bot", "create", "x" * 300)
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: bot name: 300 characters") and "Bot." not in bad.stderr
    done = bnity(db, "chat", "luna", "--no-greeting", stdin="hi\n")
    ref = re.findall(r"Session (\S+) completed", done.stderr + done.stdout)[0]
    show = bnity(db, "session", "show", ref)
    assert "Luna  #2" in show.stdout and "Assistant" not in show.stdout  # as chat labels it
    delete = bnity(db, "session", "delete", ref)
    assert "(2 messages)" in delete.stderr
