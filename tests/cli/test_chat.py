"""bnity chat: piped sessions against the fake LLM server, slash commands, --resume, errors,
a real subprocess, and Ctrl+C / Ctrl+D on a real terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from boternity import Store
from boternity.models import Bot, MessageRole, SessionStatus
from tests.cli.conftest import FakeLlm, Invoke, one_line_error, parse, with_store
from tests.cli.fixtures import UNICODE, World
from tests.fakes.llm_server import json_reply, openai_frames, sse_reply
from tests.terminal import Terminal

BNITY = [sys.executable, "-m", "boternity.cli"]
SECRET = "sk-test-secret-key"


@pytest.fixture
def luna(cli: Invoke) -> str:
    assert cli("bot", "create", "Luna").exit_code == 0
    return "luna"


def sessions_of(cli: Invoke, bot: str) -> list[dict[str, object]]:
    data: list[dict[str, object]] = parse(cli("sessions", bot, "--json"))
    return data


def transcript(cli: Invoke, session_id: object) -> list[dict[str, object]]:
    data = parse(cli("session", "show", str(session_id), "--json"))
    messages: list[dict[str, object]] = data["messages"]
    return messages


def test_piped_chat_through_the_fake_server(
    cli: Invoke, luna: str, llm: FakeLlm, db_path: Path
) -> None:
    result = cli(
        "chat", luna, input=f"Hello, my name is {UNICODE}\nI live in Paris\n", env=llm.env()
    )
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    # greeting, then one plain reply per input line (the fake answers like the offline bot)
    assert len(lines) == 3, result.stdout
    assert lines[1] == f"[offline] Noted: your name is {UNICODE}."
    assert lines[2] == "[offline] Noted: you live in Paris."
    assert SECRET not in result.stdout + result.stderr

    [session] = sessions_of(cli, luna)
    assert session["status"] == "completed" and session["ended_at"] is not None
    messages = transcript(cli, session["id"])
    assert [m["role"] for m in messages] == ["assistant", "user", "assistant", "user", "assistant"]
    assert messages[1]["content"] == f"Hello, my name is {UNICODE}"
    assert messages[4]["content"] == "[offline] Noted: you live in Paris."
    assert [m["seq"] for m in messages] == [1, 2, 3, 4, 5]

    # the provider saw the key and the unicode text; the final extraction was queued at the
    # end of the session and processed before the command returned
    chats = llm.of("chat")
    assert any(UNICODE in str(body["messages"]) for body in chats)
    assert all(r.headers["authorization"] == f"Bearer {SECRET}" for r in llm.server.requests)
    assert len(llm.of("extraction")) == 1
    assert "[5] assistant:" in llm.of("extraction")[0]["messages"][-1]["content"]
    assert parse(cli("queue", "--json")) == []
    memories = parse(cli("memories", luna, "--json"))
    facts = {m["fact"]: m for m in memories}
    assert set(facts) == {f"User's name is {UNICODE}", "User lives in Paris"}
    assert all(m["session_id"] == session["id"] for m in memories)
    assert "Memory extraction: 2 memories saved." in result.stderr


def test_final_extraction_failure_keeps_the_job_queued_for_queue_run(
    cli: Invoke, luna: str, llm: FakeLlm
) -> None:
    llm.script("extraction", json_reply({"choices": []}, status=200))  # unusable reply
    result = cli("chat", luna, "--no-greeting", input="I live in Oslo\n", env=llm.env())
    assert result.exit_code == 0, result.stderr
    assert "1 of 1 job failed" in result.stderr
    [job] = parse(cli("queue", "--json"))
    assert job["attempt_count"] == 1 and job["error_message"]
    [session] = sessions_of(cli, luna)
    assert job["session_id"] == session["id"] and session["status"] == "completed"

    # backed off for now: not due yet
    assert "No due jobs" in cli("queue", "run", env=llm.env()).stdout
    assert cli("queue", "retry", "--all").exit_code == 0
    done = cli("queue", "run", env=llm.env())
    assert done.exit_code == 0, done.stderr
    assert "1 completed" in done.stdout
    assert parse(cli("queue", "--json")) == []
    assert [m["fact"] for m in parse(cli("memories", luna, "--json"))] == ["User lives in Oslo"]


def test_slash_commands_when_piped(cli: Invoke, luna: str, llm: FakeLlm, db_path: Path) -> None:
    script = "\n".join(
        [
            "I like green tea",
            f"/remember My cat is called {UNICODE}",
            "/history 2",
            "/HISTORY x",
            "/sessions",
            "/new",
            "//slash message",
            "/nope",
            "/exit",
            "never sent",
        ]
    )
    result = cli("chat", luna, "--no-greeting", input=script + "\n", env=llm.env())
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert f"Remembered: My cat is called {UNICODE}" in out
    assert "[1] You: I like green tea" in out
    assert "[2] Luna: [offline] Noted: you like green tea." in out
    assert "usage: /history [N]" in result.stderr
    assert "unknown command /nope" in result.stderr
    assert out.count("* ") == 1  # /sessions marks the current one

    sessions = sessions_of(cli, luna)
    assert len(sessions) == 2
    assert all(s["status"] == "completed" for s in sessions)
    newest, first = sessions
    assert [m["content"] for m in transcript(cli, first["id"])][0] == "I like green tea"
    second = transcript(cli, newest["id"])
    assert second[0]["content"] == "/slash message"  # "//" sends a literal slash
    assert "never sent" not in str(second)
    manual = [m for m in parse(cli("memories", luna, "--json")) if m["is_manual"]]
    assert [m["fact"] for m in manual] == [f"My cat is called {UNICODE}"]
    assert manual[0]["session_id"] == first["id"]


def test_remember_twice_and_help(cli: Invoke, luna: str, llm: FakeLlm) -> None:
    result = cli(
        "chat",
        luna,
        "--no-greeting",
        input="/help\n/remember Likes tea\n/rem likes TEA.\n/remember\n",
        env=llm.env(),
    )
    assert result.exit_code == 0, result.stderr
    assert "/history [N]" in result.stdout and "/remember FACT" in result.stdout
    assert "Remembered: Likes tea" in result.stdout
    assert "Already remembered" in result.stdout
    assert "usage: /remember FACT" in result.stderr
    # nothing was said: an empty session, nothing to extract
    assert llm.of("extraction") == []


def test_resume_latest_and_by_prefix(cli: Invoke, luna: str, llm: FakeLlm) -> None:
    assert cli("chat", luna, input="first\n", env=llm.env()).exit_code == 0
    assert cli("chat", luna, "--no-greeting", input="second\n", env=llm.env()).exit_code == 0
    older, newer = reversed(sessions_of(cli, luna))

    again = cli("chat", luna, "--resume", input="third\n", env=llm.env())
    assert again.exit_code == 0, again.stderr
    assert f"session {newer['id']} resumed" in again.stderr
    assert len(sessions_of(cli, luna)) == 2
    messages = transcript(cli, newer["id"])
    assert [m["content"] for m in messages if m["role"] == "user"] == ["second", "third"]

    prefix = str(older["id"])[:13]
    back = cli("chat", luna, "--resume", prefix, input="fourth\n", env=llm.env())
    assert back.exit_code == 0, back.stderr
    contents = [m["content"] for m in transcript(cli, older["id"]) if m["role"] == "user"]
    assert contents == ["first", "fourth"]
    sessions = {s["id"]: s for s in sessions_of(cli, luna)}
    assert sessions[older["id"]]["status"] == "completed"
    # the resumed history was part of the context
    assert "first" in str(llm.of("chat")[-1]["messages"])


def test_resume_errors(cli: Invoke, luna: str, llm: FakeLlm) -> None:
    nothing = cli("chat", luna, "--resume", input="", env=llm.env())
    assert nothing.exit_code == 4
    assert "no session to resume" in one_line_error(nothing)
    missing = cli("chat", luna, "--resume", "ffffffff", input="", env=llm.env())
    assert missing.exit_code == 4
    one_line_error(missing)


def test_unknown_bot_and_missing_database(cli: Invoke, luna: str, llm: FakeLlm) -> None:
    result = cli("chat", "nobody", input="hi\n", env=llm.env())
    assert result.exit_code == 4
    assert "nobody" in one_line_error(result)
    assert sessions_of(cli, luna) == []


def test_missing_database_is_not_created(cli: Invoke, db_path: Path) -> None:
    result = cli("chat", "luna", input="hi\n")
    assert result.exit_code == 4
    assert "no database at" in one_line_error(result)
    assert not db_path.exists()


def test_offline_provider_is_announced_and_labelled(cli: Invoke, luna: str) -> None:
    result = cli("chat", luna, input="I live in Rome\n")
    assert result.exit_code == 0, result.stderr
    assert "offline provider" in result.stderr
    assert result.stdout == (
        "[offline] Hello, I'm Luna! Tell me about yourself and I'll remember it.\n"
        "[offline] Noted: you live in Rome.\n"
    )


def test_unknown_provider_is_one_line(cli: Invoke, luna: str) -> None:
    result = cli("chat", luna, "--provider", "nope", input="hi\n")
    assert result.exit_code == 2
    assert "'nope' is not one of 'anthropic', 'openai', 'offline'" in one_line_error(result)


def test_failed_reply_keeps_the_user_message_and_exits_1(
    cli: Invoke, luna: str, llm: FakeLlm
) -> None:
    from tests.fakes.llm_server import openai_error

    llm.script("chat", openai_error(400, "bad request from the test"))
    result = cli("chat", luna, "--no-greeting", input="one\ntwo\n", env=llm.env())
    assert result.exit_code == 1
    assert "bad request from the test" in result.stderr
    assert SECRET not in result.stderr
    [session] = sessions_of(cli, luna)
    contents = [m["content"] for m in transcript(cli, session["id"])]
    assert contents[0] == "one" and contents[1] == "two" and len(contents) == 3
    assert session["status"] == "completed"


def test_model_flag_reaches_the_provider(cli: Invoke, luna: str, llm: FakeLlm) -> None:
    result = cli("chat", luna, "--no-greeting", "--model", "gpt-flag", input="hi\n", env=llm.env())
    assert result.exit_code == 0, result.stderr
    assert llm.of("chat")[0]["model"] == "gpt-flag"
    [session] = sessions_of(cli, luna)
    assert session["model"] == "gpt-flag"


# --- real processes -----------------------------------------------------------------------------


def _env(llm: FakeLlm | None = None, **extra: str) -> dict[str, str]:
    from tests.cli.conftest import CLEAN_ENV

    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    env["PYTHONUTF8"] = "1"
    if llm is not None:
        env.update(llm.env())
    env.update(extra)
    return env


@pytest.mark.slow
def test_printf_pipe_in_a_subprocess(tmp_path: Path, llm: FakeLlm) -> None:
    db = str(tmp_path / "pipe.db")
    subprocess.run([*BNITY, "--db", db, "bot", "create", "Luna"], check=True, env=_env())
    result = subprocess.run(
        [*BNITY, "--db", db, "chat", "luna"],
        input=f"hi {UNICODE}\nbye\n",
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        env=_env(llm),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == '[offline] You said: "bye". ' + (
        "This is a canned reply; set ANTHROPIC_API_KEY, OPENAI_API_KEY or OPENAI_BASE_URL to"
        " talk to a real model."
    )
    assert "Traceback" not in result.stderr and SECRET not in result.stderr

    async def check(store: Store) -> None:
        bot = await store.bots.get_bot_by_slug("luna")
        assert bot is not None
        [session] = await store.chat.list_sessions(bot.id)
        assert session.status is SessionStatus.COMPLETED
        messages = await store.chat.get_messages(session.id)
        assert [m.role for m in messages][-2:] == [MessageRole.USER, MessageRole.ASSISTANT]
        assert messages[1].content == f"hi {UNICODE}"
        assert await store.memory.list_pending_extractions() == []

    with_store(Path(db), check)


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_terminal_ctrl_c_cancels_a_reply_and_ctrl_d_ends(tmp_path: Path, llm: FakeLlm) -> None:

    db = str(tmp_path / "tty.db")
    subprocess.run([*BNITY, "--db", db, "bot", "create", "Luna"], check=True, env=_env())
    slow = [f"word{i} " for i in range(200)]
    llm.script("chat", sse_reply(openai_frames(slow), chunk_delay=0.05))

    term = Terminal([*BNITY, "--db", db, "chat", "luna", "--no-greeting"], _env(llm))
    with term:
        term.read_until(b"You \xe2\x80\xba ")
        term.press(b"tell me a long story\r")
        term.read_until(b"word3 ")
        term.press(b"\x03")  # Ctrl+C: cancel this reply, keep the session
        term.read_until(b"reply cancelled")
        term.read_until(b"You \xe2\x80\xba ", timeout=30)
        term.press(b"I live in Rome\r")
        term.read_until(b"Noted: you live in Rome")
        footer = term.read_until(b"tokens \xc2\xb7")  # the stats footer
        term.read_until(b"You \xe2\x80\xba ", start=footer)
        term.press(b"\x04", settle=0.3)  # Ctrl+D (readline is reading): end the session
        term.read_until(b"completed")
    output = term.output
    assert term.close() == 0, output.decode(errors="replace")
    assert b"Traceback" not in output

    async def check(store: Store) -> None:
        bot = await store.bots.get_bot_by_slug("luna")
        assert bot is not None
        [session] = await store.chat.list_sessions(bot.id)
        assert session.status is SessionStatus.COMPLETED
        messages = await store.chat.get_messages(session.id)
        assert [m.content for m in messages if m.role is MessageRole.USER] == [
            "tell me a long story",
            "I live in Rome",
        ]
        cancelled = messages[1]
        assert cancelled.role is MessageRole.ASSISTANT and cancelled.stop_reason == "cancelled"
        assert cancelled.content.startswith("word0 word1 word2")

    with_store(Path(db), check)


def test_disabled_bot_is_refused(cli: Invoke, luna: str, llm: FakeLlm) -> None:
    assert cli("bot", "edit", luna, "--status", "disabled").exit_code == 0
    result = cli("chat", luna, input="hi\n", env=llm.env())
    assert result.exit_code == 5
    assert "disabled" in one_line_error(result)
    assert sessions_of(cli, luna) == []


def test_anthropic_wire_through_the_fake_server(cli: Invoke, luna: str, llm: FakeLlm) -> None:
    env = {
        "ANTHROPIC_BASE_URL": llm.server.base_url,
        "ANTHROPIC_API_KEY": "sk-ant-test-secret",
    }
    result = cli("chat", luna, "--no-greeting", input=f"I live in {UNICODE}\n", env=env)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"[offline] Noted: you live in {UNICODE}.\n"
    assert "sk-ant-test-secret" not in result.stdout + result.stderr
    assert all(r.path == "/v1/messages" for r in llm.server.requests)
    assert all(r.headers["x-api-key"] == "sk-ant-test-secret" for r in llm.server.requests)
    assert [m["fact"] for m in parse(cli("memories", luna, "--json"))] == [
        f"User lives in {UNICODE}"
    ]


def test_start_recovers_crashed_sessions_and_drains_the_bots_queue(
    cli: Invoke, world: World, llm: FakeLlm
) -> None:
    active = world.sessions[1]  # left "active" by a process that is gone
    result = cli("chat", "helper", "--no-greeting", input="hi\n", env=llm.env())
    assert result.exit_code == 0, result.stderr
    assert "Queued memory extraction:" in result.stderr
    sessions = {s["id"]: s for s in sessions_of(cli, "helper")}
    assert sessions[str(active.id)]["status"] == "crashed"
    # the due job and the crashed session's final job ran before the conversation; only
    # the exhausted job (out of attempts) is left
    left = parse(cli("queue", "--json"))
    assert [j["id"] for j in left] == [str(world.jobs[1].id)]
    # the first request of the conversation already recalled what those jobs found
    first_chat = llm.of("chat")[0]
    assert "Zürich" in str(first_chat["messages"][0]["content"])


async def test_the_background_worker_runs_while_chatting_and_stops_cleanly(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from boternity import open_store
    from boternity.cli import chatting
    from boternity.models import Bot, ChatMessage, ChatSession, PendingExtraction

    monkeypatch.setattr(chatting, "WORKER_INTERVAL", 0.02)
    async with open_store(db_path) as store:
        luna = await store.bots.create_bot(Bot(name="Luna"))
        other = await store.bots.create_bot(Bot(name="Other"))
    core = chatting.ChatCore(str(db_path), "luna", resume=None, provider="offline", model=None)
    await core.open()
    try:
        await core.catch_up()
        live = await core.start(greet=False)
        assert live.bot.id == luna.id
        # a job of another bot, queued while this chat runs, is done by the background worker
        session = await core.store.chat.create_session(ChatSession(bot_id=other.id, model="m"))
        await core.store.chat.save_message(
            ChatMessage(session_id=session.id, role="user", content="I live in Kyiv")  # type: ignore[arg-type]
        )
        await core.store.memory.save_pending_extraction(
            PendingExtraction(session_id=session.id, bot_id=other.id)
        )
        for _ in range(200):
            if not await core.store.memory.list_pending_extractions():
                break
            await asyncio.sleep(0.02)
        facts = [m.fact for m in await core.store.memory.get_memories(other.id)]
        assert facts == ["User lives in Kyiv"]
        worker = core.engine.worker_task
        assert worker is not None and not worker.done()
        ended = await core.end()
        assert ended is not None and ended.status is SessionStatus.COMPLETED
    finally:
        await core.close()
    assert worker.cancelled()
    assert core.engine.worker_task is None


def test_a_message_that_cannot_be_stored_is_refused_and_the_chat_goes_on(
    cli: Invoke, luna: str, llm: FakeLlm
) -> None:
    result = cli(
        "chat", luna, "--no-greeting", input="bad \x00 text\nI live in Rome\n", env=llm.env()
    )
    assert result.exit_code == 1  # piped: a failed turn makes the run fail
    assert "error:" in result.stderr and "NUL" in result.stderr.upper()
    assert result.stdout == "[offline] Noted: you live in Rome.\n"
    [session] = sessions_of(cli, luna)
    assert [m["content"] for m in transcript(cli, session["id"])][0] == "I live in Rome"


@pytest.mark.slow
def test_slash_command_errors_print_one_line_and_the_chat_goes_on(
    tmp_path: Path, llm: FakeLlm
) -> None:
    db = str(tmp_path / "slash.db")
    subprocess.run([*BNITY, "--db", db, "bot", "create", "Luna"], check=True, env=_env())
    script = [
        "/history 99999999999999999999",  # more than there is: all of it
        "/history " + "9" * 5000,  # beyond int() parsing
        "/history ²",  # a digit to str.isdigit(), not to int()
        "/remember bad \x00 fact",  # refused by the library
        "hello",
    ]
    result = subprocess.run(
        [*BNITY, "--db", db, "chat", "luna", "--no-greeting"],
        input="\n".join(script) + "\n",
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        env=_env(llm),
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "unexpected" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2, result.stderr  # /history ², /remember
    assert "usage: /history" in errors[0] and "NUL" in errors[1]
    assert result.stdout.count("No messages yet.") == 2  # the huge N: everything there is
    assert 'You said: "hello"' in result.stdout.splitlines()[-1]

    async def check(store: Store) -> None:
        [session] = await store.chat.list_sessions((await _luna(store)).id)
        messages = await store.chat.get_messages(session.id)
        assert [m.content for m in messages][0] == "hello"

    with_store(Path(db), check)


async def _luna(store: Store) -> Bot:
    bot = await store.bots.get_bot_by_slug("luna")
    assert bot is not None
    return bot


@pytest.mark.slow
@pytest.mark.parametrize(
    "io_encoding",
    [None, "utf-8:backslashreplace", "utf-8:strict", "latin-1"],
    ids=["default", "backslashreplace", "strict", "latin-1"],
)
def test_invalid_utf8_on_stdin_is_refused_like_as_an_argument(
    tmp_path: Path, llm: FakeLlm, io_encoding: str | None
) -> None:
    """Whatever the locale decodes stdin with, a line that is not UTF-8 is one failed turn
    with a clear error: never stored mangled (``caf\\xe9``), never a crash."""
    db = str(tmp_path / "utf8.db")
    subprocess.run([*BNITY, "--db", db, "bot", "create", "Luna"], check=True, env=_env())
    extra = {"PYTHONIOENCODING": io_encoding} if io_encoding else {}
    result = subprocess.run(
        [*BNITY, "--db", db, "chat", "luna", "--no-greeting"],
        input=b"caf\xe9\ncaf\xc3\xa9 ok\n",
        capture_output=True,
        timeout=60,
        env=_env(llm, **extra),
    )
    stderr = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 1, stderr  # piped: a failed turn fails the run
    assert "error: this line is not valid UTF-8 (byte 3); nothing was sent" in stderr
    assert "Traceback" not in stderr

    async def check(store: Store) -> None:
        [session] = await store.chat.list_sessions((await _luna(store)).id)
        messages = await store.chat.get_messages(session.id)
        assert [m.content for m in messages if m.role is MessageRole.USER] == ["café ok"]

    with_store(Path(db), check)
    # the same bytes as an argument: refused too
    arg = subprocess.run(
        [*BNITY, "--db", db, "remember", "luna", os.fsdecode(b"caf\xe9")],
        capture_output=True,
        timeout=60,
        env=_env(),
    )
    assert arg.returncode == 2 and b"not valid UTF-8" in arg.stderr


def _line_before(output: bytes, index: int) -> bytes:
    """What is drawn on the terminal line before ``output[index]`` (colour and cursor
    sequences aside)."""
    import re

    start = max(output.rfind(b"\n", 0, index), output.rfind(b"\r", 0, index)) + 1
    return re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", output[start:index])


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_terminal_warnings_go_above_the_prompt_and_slash_errors_keep_the_chat(
    tmp_path: Path, llm: FakeLlm
) -> None:
    """A retry warning while the spinner turns and a failed-title warning while the user is
    typing ("/ex") each get a line of their own; what was typed is drawn again and still
    works. A bad slash command is one error line and the chat goes on."""

    from tests.fakes.llm_server import openai_error

    db = str(tmp_path / "warn.db")
    subprocess.run([*BNITY, "--db", db, "bot", "create", "Luna"], check=True, env=_env())
    llm.script(
        "chat",
        openai_error(500, "server overloaded", kind="server_error"),
        sse_reply(openai_frames(["Hello ", "there"])),
    )
    late = openai_error(400, "no title today")
    late.delay = 2.0  # fails while the prompt waits for the next line
    llm.script("title", late)

    prompt = "You › ".encode()
    with Terminal([*BNITY, "--db", db, "chat", "luna", "--no-greeting"], _env(llm)) as term:
        term.read_until(prompt)
        term.press("/history ²\r".encode())
        at = term.read_until(b"usage: /history")
        at = term.read_until(prompt, start=at)
        term.press(b"/history 99999999999999999999\r")
        at = term.read_until(b"No messages yet.", start=at)
        at = term.read_until(prompt, start=at)
        term.press(b"hi\r")
        at = term.read_until(b"; retrying ", start=at)
        at = term.read_until(b"there", start=at)
        at = term.read_until(prompt, start=term.read_until("tokens ·".encode(), start=at))
        term.press(b"/ex", settle=0.3)  # readline is reading
        at = term.read_until(b"no title today", start=at)
        term.read_until(prompt + b"/ex", start=at)  # what was typed, drawn again
        term.press(b"it\r")
        term.read_until(b"completed", start=at)
    output = term.output
    text = output.decode(errors="replace")
    assert term.close() == 0, text
    assert b"Traceback" not in output
    warnings = [i for i in range(len(output)) if output.startswith(b"warning:", i)]
    assert len(warnings) == 2, text
    for i in warnings:
        assert _line_before(output, i) == b"", (output[max(0, i - 80) : i + 40], text)


def test_the_end_of_session_report_mentions_facts_over_the_per_job_cap() -> None:
    from boternity.cli.chatting import _report_line
    from boternity.memory import WorkerReport
    from boternity.memory.extraction import MAX_FACTS_PER_JOB

    report = WorkerReport(claimed=1, completed=1, memories_saved=MAX_FACTS_PER_JOB, dropped=3)
    line = _report_line("Memory extraction", report)
    assert line == (
        f"Memory extraction: {MAX_FACTS_PER_JOB} memories saved, 3 more facts dropped"
        f" (at most {MAX_FACTS_PER_JOB} new facts per job)."
    )
