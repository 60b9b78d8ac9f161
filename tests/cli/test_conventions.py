"""What users of git, gh and llm expect of a CLI, through the real ``bnity`` in a subprocess:
choices shown in help, group options that apply to subcommands, listing without a filter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from boternity.cli import runtime
from boternity.models import BotCategory, BotStatus, MemoryCategory
from tests.cli.conftest import CLEAN_ENV, FakeLlm
from tests.cli.fixtures import World

pytestmark = pytest.mark.slow

BNITY = [sys.executable, "-m", "boternity.cli"]


def env(**extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k not in (*CLEAN_ENV, "COLUMNS")}
    out.update(PYTHONUTF8="1", **extra)
    return out


def bnity(
    db: Path, *args: str, extra_env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``bnity --db DB ARGS`` in a subprocess; stdin is empty (not a terminal) unless given."""
    return subprocess.run(
        [*BNITY, "--db", str(db), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        env=env(**(extra_env or {})),
        input=stdin or "",
    )


def ok_json(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_fixed_values_are_the_model_enums() -> None:
    assert tuple(c.value for c in BotCategory) == runtime.BOT_CATEGORIES
    assert tuple(s.value for s in BotStatus) == runtime.BOT_STATUSES
    assert tuple(c.value for c in MemoryCategory) == runtime.MEMORY_CATEGORIES


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (("session", "export"), "--format [md|json]"),
        (("bot", "create"), "--category [assistant|creative|research|utility]"),
        (("bot", "list"), "--status [active|disabled|archived]"),
        (("bot", "edit"), "--status [active|disabled|archived]"),
        (("remember",), "--category [preference|fact|decision|context|correction]"),
        (("queue", "run"), "--provider [anthropic|openai|offline]"),
        (("chat",), "--provider [anthropic|openai|offline]"),
        (("ask",), "--provider [anthropic|openai|offline]"),
    ],
)
def test_choices_are_shown_in_help(tmp_path: Path, args: tuple[str, ...], shown: str) -> None:
    done = bnity(tmp_path / "x.db", *args, "--help")
    assert done.returncode == 0, done.stderr
    assert shown in done.stdout


def test_a_wrong_choice_is_one_line_naming_the_choices(world: World) -> None:
    done = bnity(world.db, "remember", "helper", "a fact", "--category", "bogus")
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert "'bogus' is not one of 'preference', 'fact'" in line
    assert "MemoryEntry" not in line
    upper = bnity(world.db, "remember", "helper", "a fact", "--category", "FACT", "--json")
    assert ok_json(upper)["category"] == "fact"


def test_queue_group_json_applies_to_run(world: World, llm: FakeLlm) -> None:
    report = ok_json(bnity(world.db, "queue", "--json", "run", extra_env=llm.env()))
    assert report["claimed"] == 1 and report["completed"] == 1


def test_queue_group_json_and_bot_apply_to_retry_and_list(world: World) -> None:
    assert ok_json(bnity(world.db, "queue", "--json", "--bot", "other", "retry", "--all")) == []
    retried = ok_json(bnity(world.db, "queue", "--json", "retry", "--all"))
    assert {j["id"] for j in retried} == {str(j.id) for j in world.jobs}
    listed = ok_json(bnity(world.db, "queue", "list", "--json"))
    assert listed == ok_json(bnity(world.db, "queue", "--json"))
    assert ok_json(bnity(world.db, "queue", "--bot", "other", "list", "--json")) == []
    table = bnity(world.db, "queue", "list")
    assert table.returncode == 0 and "2 jobs" in table.stdout
    clash = bnity(world.db, "queue", "--bot", "other", "list", "--bot", "helper")
    assert clash.returncode == 2 and "two different --bot values" in clash.stderr


def test_sessions_without_a_bot_lists_every_bot(world: World, db_path: Path) -> None:
    import asyncio

    from boternity import open_store
    from boternity.models import ChatSession

    async def add() -> None:
        async with open_store(db_path, readers=1) as store:
            await store.chat.create_session(
                ChatSession(bot_id=world.other_bot.id, model="m", title="Other's chat")
            )

    asyncio.run(add())
    rows = ok_json(bnity(db_path, "sessions", "--json"))
    assert len(rows) == 4
    assert [r["bot_slug"] for r in rows] == ["other", "helper", "helper", "helper"]
    started = [r["started_at"] for r in rows]
    assert started == sorted(started, reverse=True)
    table = bnity(db_path, "sessions")
    assert table.returncode == 0, table.stderr
    header = next(line for line in table.stdout.splitlines() if "Title" in line)
    assert " Bot " in header
    assert "Other's chat" in table.stdout and "4 sessions" in table.stdout
    one = bnity(db_path, "sessions", "helper")
    assert " Bot " not in next(line for line in one.stdout.splitlines() if "Title" in line)
    assert len(ok_json(bnity(db_path, "sessions", "--limit", "2", "--json"))) == 2


# --- shell completion ---------------------------------------------------------------------------


def bash_complete(db: Path, *words: str) -> list[str]:
    """What real bash offers after ``words`` (the last one being completed), with the script
    ``bnity completion bash`` printed."""
    venv_bin = Path(sys.executable).parent
    line = " ".join(f"'{w}'" for w in ("bnity", "--db", str(db), *words))
    script = (
        'eval "$(bnity completion bash)"; '
        f"COMP_WORDS=({line}); COMP_CWORD={len(words) + 2}; "
        '_bnity_completion bnity; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env=env(PATH=f"{venv_bin}{os.pathsep}{os.environ['PATH']}"),
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return [w for w in done.stdout.splitlines() if w]


@pytest.mark.skipif(not Path("/bin/bash").exists(), reason="needs bash")
def test_bash_completion_of_commands_choices_and_bot_slugs(world: World, tmp_path: Path) -> None:
    assert bash_complete(world.db, "so") == ["soul"]
    assert bash_complete(world.db, "bot", "show", "") == ["helper", "other"]
    assert bash_complete(world.db, "memories", "h") == ["helper"]
    assert bash_complete(world.db, "sessions", "o") == ["other"]
    assert bash_complete(world.db, "queue", "--bot", "") == ["helper", "other"]
    assert bash_complete(world.db, "chat", "he") == ["helper"]
    assert bash_complete(world.db, "ask", "ot") == ["other"]
    assert bash_complete(world.db, "session", "export", "x", "--format", "") == ["md", "json"]
    # a missing database completes to nothing, quietly, and is not created
    assert bash_complete(tmp_path / "missing.db", "bot", "show", "") == []
    assert not (tmp_path / "missing.db").exists()


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_completion(world: World, shell: str) -> None:
    """The script names the variables it sets; bnity answers them with the slugs."""
    script = bnity(world.db, "completion", shell)
    assert script.returncode == 0, script.stderr
    assert f"_BNITY_COMPLETE=complete_{shell}" in script.stdout
    assert "_TYPER_COMPLETE_ARGS" in script.stdout
    asked = {
        "_BNITY_COMPLETE": f"complete_{shell}",
        "_TYPER_COMPLETE_ARGS": f"bnity --db {world.db} bot show h",
        "_TYPER_COMPLETE_FISH_ACTION": "get-args",
    }
    done = subprocess.run(BNITY, capture_output=True, text=True, timeout=60, env=env(**asked))
    assert done.returncode == 0, done.stderr
    assert "helper" in done.stdout and "other" not in done.stdout


def test_completion_of_an_unknown_shell_is_one_line(tmp_path: Path) -> None:
    done = bnity(tmp_path / "x.db", "completion", "tcsh")
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1 and "bash" in done.stderr


# --- pager --------------------------------------------------------------------------------------


def on_a_terminal(args: list[str], extra_env: dict[str, str]) -> tuple[int, str]:
    """Run ``bnity ARGS`` with stdin, stdout and stderr on a pseudo-terminal; its exit code
    and everything it wrote there."""
    import pty
    import select

    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.execve(sys.executable, [*BNITY, *args], env(COLUMNS="120", **extra_env))
    output = b""
    while True:
        ready, _, _ = select.select([fd], [], [], 30)
        assert ready, output
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode("utf-8", "replace")


@pytest.fixture
def recording_pager(tmp_path: Path) -> tuple[Path, Path]:
    """A pager that records each use and keeps what it was given."""
    used, paged = tmp_path / "pager-used", tmp_path / "paged.txt"
    script = tmp_path / "pager.sh"
    script.write_text(f"#!/bin/sh\necho used >> '{used}'\ncat > '{paged}'\n")
    script.chmod(0o755)
    return used, paged


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["session", "show", "SESSION"], "Ramen is great."),
        (["memories", "helper"], "Loves ramen"),
        (["sessions"], "Crashed"),  # a title: its column may wrap it
        (["search", "ramen"], "Nice to meet you!"),
    ],
)
def test_long_output_goes_through_the_pager_on_a_terminal(
    world: World,
    tmp_path: Path,
    recording_pager: tuple[Path, Path],
    command: list[str],
    expected: str,
) -> None:
    used, paged = recording_pager
    args = [
        "--db",
        str(world.db),
        *[str(world.sessions[0].id) if a == "SESSION" else a for a in command],
    ]
    pager = {"PAGER": str(tmp_path / "pager.sh")}
    code, shown = on_a_terminal(args, pager)
    assert code == 0, shown
    assert used.read_text() == "used\n"
    assert expected in paged.read_text()
    assert expected not in shown
    assert "\x1b[" in paged.read_text()  # colours kept, as for the terminal

    for off in ([*args, "--no-pager"], ["--no-pager", *args]):
        code, shown = on_a_terminal(off, pager)
        assert code == 0 and expected in shown
    code, shown = on_a_terminal(args, {"PAGER": ""})
    assert code == 0 and expected in shown
    assert used.read_text() == "used\n"  # not used again

    # not a terminal: never paged
    piped = bnity(world.db, *args[2:], extra_env=pager)
    assert piped.returncode == 0 and expected in piped.stdout
    assert used.read_text() == "used\n"


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_a_pager_that_cannot_run_leaves_the_text_on_the_terminal(world: World) -> None:
    code, shown = on_a_terminal(
        ["--db", str(world.db), "memories", "helper"], {"PAGER": "no-such-pager-xyz"}
    )
    assert code == 0 and "Loves ramen" in shown


# --- soul edit and diff -------------------------------------------------------------------------


def editor(tmp_path: Path, name: str, body: str) -> dict[str, str]:
    """EDITOR set to a script that edits the file it is given (``$1``)."""
    script = tmp_path / f"{name}.sh"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return {"EDITOR": str(script), "VISUAL": ""}


def souls(db: Path, slug: str) -> list[dict[str, Any]]:
    done = bnity(db, "soul", "history", slug, "--json")
    return list(ok_json(done))


def test_soul_edit_saves_a_new_version_when_changed(world: World, tmp_path: Path) -> None:
    seen = tmp_path / "seen.txt"
    append = editor(tmp_path, "append", f'cp "$1" "{seen}"; printf "Be brief.\\n" >> "$1"')
    done = bnity(world.db, "soul", "edit", "helper", "-m", "brevity", extra_env=append)
    assert done.returncode == 0, done.stderr
    assert "Saved soul v2 for 'helper'" in done.stdout
    assert seen.read_text().rstrip("\n") == "You are helpful. ✨"  # the editor got the soul
    versions = souls(world.db, "helper")
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[1]["content"].endswith("Be brief.\n") and versions[1]["message"] == "brevity"

    diff = bnity(world.db, "soul", "diff", "helper")
    assert diff.returncode == 0, diff.stderr
    lines = diff.stdout.splitlines()
    assert lines[:2] == ["--- helper soul v1", "+++ helper soul v2"]
    assert "+Be brief." in lines and " You are helpful. ✨" in lines
    assert bnity(world.db, "soul", "diff", "helper", "1", "2").stdout == diff.stdout
    assert bnity(world.db, "soul", "diff", "helper", "1").stdout == diff.stdout
    same = bnity(world.db, "soul", "diff", "helper", "2", "2")
    assert same.returncode == 0 and "are the same" in same.stdout


def test_soul_edit_without_a_change_or_emptied_saves_nothing(world: World, tmp_path: Path) -> None:
    unchanged = bnity(world.db, "soul", "edit", "helper", extra_env=editor(tmp_path, "noop", ":"))
    assert unchanged.returncode == 0, unchanged.stderr
    assert "unchanged" in unchanged.stdout
    emptied = bnity(
        world.db, "soul", "edit", "helper", extra_env=editor(tmp_path, "empty", ': > "$1"')
    )
    assert emptied.returncode == 2
    assert emptied.stderr.splitlines() == ["error: the edited soul is empty; nothing saved"]
    assert len(souls(world.db, "helper")) == 1


def test_soul_edit_of_a_bot_without_a_soul_writes_v1(world: World, tmp_path: Path) -> None:
    write = editor(tmp_path, "write", 'printf "You are Other.\\n" > "$1"')
    done = bnity(world.db, "soul", "edit", "other", extra_env=write)
    assert done.returncode == 0, done.stderr
    assert [v["content"] for v in souls(world.db, "other")] == ["You are Other.\n"]


def test_soul_diff_errors_are_one_line(world: World) -> None:
    only_one = bnity(world.db, "soul", "diff", "helper")
    assert only_one.returncode == 4
    assert "only soul v1" in only_one.stderr and len(only_one.stderr.splitlines()) == 1
    missing = bnity(world.db, "soul", "diff", "helper", "1", "7")
    assert missing.returncode == 4 and "no soul version 7" in missing.stderr
    none = bnity(world.db, "soul", "diff", "other")
    assert none.returncode == 4 and "no soul yet" in none.stderr


def test_model_errors_never_name_internal_classes() -> None:
    """The library's "MemoryEntry.category: unknown value …" reads, on the command line, as
    "unknown memory category …"; any "Class.field: problem" as "noun field: problem"."""
    import uuid

    from boternity.cli.runtime import user_message
    from boternity.errors import NotFoundError, ValidationError
    from boternity.models import MemoryEntry

    with pytest.raises(ValidationError) as bad:
        MemoryEntry(bot_id=uuid.uuid4(), fact="x", category="bogus", importance=3)  # type: ignore[arg-type]
    assert user_message(bad.value) == (
        "unknown memory category 'bogus' (one of: preference, fact, decision, context, correction)"
    )
    assert user_message(ValidationError("ChatSession.title: too long")) == "session title: too long"
    assert user_message(NotFoundError("Bot.x: kept as is")) == "Bot.x: kept as is"
