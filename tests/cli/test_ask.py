"""bnity ask: one question, one answer, through the real bnity and the fake LLM server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.cli.conftest import FakeLlm, Invoke, parse
from tests.cli.fixtures import UNICODE, World
from tests.fakes.llm_server import openai_completion, openai_error, openai_frames, sse_reply


def bnity(
    db: Path, *args: str, env: dict[str, str], stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "boternity.cli", "--db", str(db), *args],
        input=stdin,
        capture_output=True,
        env={**os.environ, **env},
        timeout=60,
        check=False,
    )


def test_ask_prints_the_reply_and_completes_a_session_with_queued_extraction(
    cli: Invoke, world: World, llm: FakeLlm
) -> None:
    llm.script("chat", sse_reply(openai_frames(["Porto ", "is lovely."])))
    before = {s["id"] for s in parse(cli("sessions", "helper", "--json"))}
    done = bnity(world.db, "ask", "helper", f"I live in Porto {UNICODE}", env=llm.env(), stdin=b"")
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode() == "Porto is lovely.\n"
    [new] = [s for s in parse(cli("sessions", "helper", "--json")) if s["id"] not in before]
    assert new["status"] == "completed" and new["message_count"] == 2
    jobs = [j for j in parse(cli("queue", "--json")) if j["session_id"] == new["id"]]
    assert len(jobs) == 1  # memory extraction queued, not run
    [request] = llm.of("chat")
    assert request["messages"][-1]["content"] == f"I live in Porto {UNICODE}"


def test_piped_stdin_is_context_before_the_question(world: World, llm: FakeLlm) -> None:
    done = bnity(
        world.db, "ask", "helper", "Summarise it.", env=llm.env(), stdin=b"line one\nline two\n"
    )
    assert done.returncode == 0, done.stderr
    [request] = llm.of("chat")
    assert request["messages"][-1]["content"] == "line one\nline two\n\nSummarise it."
    only_stdin = bnity(world.db, "ask", "helper", env=llm.env(), stdin="café".encode())
    assert only_stdin.returncode == 0, only_stdin.stderr
    assert llm.of("chat")[-1]["messages"][-1]["content"] == "café"


def test_nothing_to_ask_and_undecodable_stdin_are_one_line_usage_errors(
    world: World, llm: FakeLlm
) -> None:
    empty = bnity(world.db, "ask", "helper", env=llm.env(), stdin=b"")
    assert empty.returncode == 2
    assert empty.stderr.decode().startswith("error: nothing to ask")
    bad = bnity(world.db, "ask", "helper", "hi", env=llm.env(), stdin=b"caf\xe9")
    assert bad.returncode == 2 and b"not valid UTF-8" in bad.stderr
    assert llm.of("chat") == []  # nothing was sent


def test_json_keeps_the_exact_reply(world: World, llm: FakeLlm) -> None:
    hostile = "x\x1b[2J\x1b]0;PWNED\x07 done"
    llm.script("chat", openai_completion(hostile))
    done = bnity(world.db, "ask", "helper", "hi", "--json", env=llm.env(), stdin=b"")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["reply"]["content"] == hostile and data["reply"]["role"] == "assistant"
    assert data["session_id"] == data["reply"]["session_id"]


def test_a_refused_request_is_one_line_exit_1_and_the_question_is_kept(
    cli: Invoke, world: World, llm: FakeLlm
) -> None:
    llm.script("chat", openai_error(400, "model not found"))
    before = {s["id"] for s in parse(cli("sessions", "helper", "--json"))}
    done = bnity(world.db, "ask", "helper", "still there?", env=llm.env(), stdin=b"")
    assert done.returncode == 1
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "model not found" in lines[0]
    [new] = [s for s in parse(cli("sessions", "helper", "--json")) if s["id"] not in before]
    assert new["status"] == "completed" and new["message_count"] == 1  # the question is kept
