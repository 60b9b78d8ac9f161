"""bnity queue run: process due jobs now, against the fake LLM server."""

from __future__ import annotations

import re
from pathlib import Path

from tests.cli.conftest import FakeLlm, Invoke, one_line_error, parse
from tests.cli.fixtures import UNICODE, World
from tests.fakes.llm_server import openai_completion, openai_error

REPORT_FIELDS = {
    "claimed",
    "completed",
    "failed",
    "exhausted",
    "memories_saved",
    "superseded",
    "dropped",
    "repeated",
    "errors",
    "embedding",
}

OVERFLOW = '[{"fact": "Lives in Porto", "importance": 1e999}, {"fact": "Loves cats"}]'


def test_queue_run_processes_due_jobs(cli: Invoke, world: World, llm: FakeLlm) -> None:
    result = cli("queue", "run", env=llm.env())
    assert result.exit_code == 0, result.stderr
    # not a terminal: one plain line per job, then the summary
    lines = result.stdout.splitlines()
    printed = re.fullmatch(r"job (\S+) \(helper/(\S+)\): completed", lines[0])
    assert printed is not None, lines[0]
    assert str(world.jobs[0].id).startswith(printed[1]) and len(printed[1]) >= 8
    # the session id printed is a prefix unique in the database: it works when typed back
    assert str(world.sessions[1].id).startswith(printed[2]) and len(printed[2]) >= 8
    assert parse(cli("session", "show", printed[2], "--json"))["session"]["id"] == str(
        world.sessions[1].id
    )
    assert "Processed 1 job with openai" in lines[-1] and "1 completed" in lines[-1]
    assert "sk-test-secret-key" not in result.stdout + result.stderr
    left = parse(cli("queue", "--json"))
    assert [j["id"] for j in left] == [str(world.jobs[1].id)]  # the exhausted one stays
    facts = [m["fact"] for m in parse(cli("memories", "helper", "--json"))]
    assert "User lives in Zürich" in facts
    assert len(llm.of("extraction")) == 1
    assert UNICODE in llm.of("extraction")[0]["messages"][-1]["content"]


def test_queue_run_json_report(cli: Invoke, world: World, llm: FakeLlm) -> None:
    data = parse(cli("queue", "run", "--json", env=llm.env()))
    assert set(data) == REPORT_FIELDS
    assert data["claimed"] == 1 and data["completed"] == 1 and data["errors"] == []
    assert data["memories_saved"] >= 1


def test_queue_run_failure_keeps_the_job_and_exits_1(
    cli: Invoke, world: World, llm: FakeLlm
) -> None:
    llm.script("extraction", *[openai_error(529, "Overloaded", kind="overloaded")] * 4)
    result = cli("queue", "run", env=llm.env())
    assert result.exit_code == 1
    # retry warnings (one line each), then the one-line summary
    line = result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr
    assert line.startswith("error: Processed 1 job") and "1 failed" in line
    [job] = [j for j in parse(cli("queue", "--json")) if j["id"] == str(world.jobs[0].id)]
    assert job["attempt_count"] == 1
    assert "529" in job["error_message"] or "verloaded" in job["error_message"]
    assert job["state"] == "waiting"

    assert cli("queue", "retry", "--all").exit_code == 0
    llm.script("extraction", *[openai_error(529, "Overloaded", kind="overloaded")] * 4)
    failed = cli("queue", "run", "--json", env=llm.env())
    assert failed.exit_code == 1
    import json

    report = json.loads(failed.stdout)
    assert report["failed"] + report["exhausted"] == 2  # both jobs were due again
    assert len(report["errors"]) == 2


def test_queue_run_bot_filter_limit_and_nothing_due(
    cli: Invoke, world: World, llm: FakeLlm
) -> None:
    other = cli("queue", "run", "--bot", "other", env=llm.env())
    assert other.exit_code == 0, other.stderr
    assert "No due jobs" in other.stdout
    assert len(parse(cli("queue", "--json"))) == 2
    limited = parse(cli("queue", "run", "--limit", "1", "--json", env=llm.env()))
    assert limited["claimed"] == 1
    missing = cli("queue", "run", "--bot", "nobody", env=llm.env())
    assert missing.exit_code == 4
    one_line_error(missing)


def test_queue_run_offline_says_so(cli: Invoke, world: World) -> None:
    result = cli("queue", "run")
    assert result.exit_code == 0, result.stderr
    assert "offline provider" in result.stderr


def test_queue_run_needs_a_database(cli: Invoke, db_path: Path) -> None:
    result = cli("queue", "run")
    assert result.exit_code == 4
    assert not db_path.exists()


def test_queue_run_skips_an_overflowing_number_and_keeps_the_rest(
    cli: Invoke, world: World, llm: FakeLlm
) -> None:
    """Issue 9: importance 1e999 made 'bnity queue run' fail with 'unexpected OverflowError'
    and left the job claimed without an error."""
    llm.script("extraction", openai_completion(OVERFLOW))
    result = cli("queue", "run", env=llm.env())
    assert result.exit_code == 0, result.stderr
    assert "unexpected" not in result.stderr and "1 completed" in result.stdout
    assert [j["id"] for j in parse(cli("queue", "--json"))] == [str(world.jobs[1].id)]
    facts = [m["fact"] for m in parse(cli("memories", "helper", "--json"))]
    assert "Loves cats" in facts and "Lives in Porto" not in facts


def test_chat_starts_despite_an_overflowing_number_in_a_queued_extraction(
    cli: Invoke, world: World, llm: FakeLlm
) -> None:
    """The start of 'bnity chat' runs the bot's due jobs: the same reply must not stop it."""
    llm.script("extraction", openai_completion(OVERFLOW))
    result = cli("chat", "helper", input="", env=llm.env())
    assert result.exit_code == 0, result.stderr
    assert "unexpected" not in result.stderr
    assert [j["id"] for j in parse(cli("queue", "--json"))] == [str(world.jobs[1].id)]
    facts = [m["fact"] for m in parse(cli("memories", "helper", "--json"))]
    assert "Loves cats" in facts


def test_queue_run_says_how_many_facts_of_a_huge_reply_were_dropped(
    cli: Invoke, world: World, llm: FakeLlm
) -> None:
    import json

    facts = [{"fact": f"Fact number {i}"} for i in range(5000)]
    llm.script("extraction", openai_completion(json.dumps(facts)))
    result = cli("queue", "run", env=llm.env())
    assert result.exit_code == 0, result.stderr
    assert "50 memories saved" in result.stdout
    assert "4950 more facts dropped (at most 50 new facts per job)" in result.stdout


def test_ctrl_c_during_queue_run_gives_the_job_back_due_now(
    cli: Invoke, world: World, llm: FakeLlm, db_path: Path
) -> None:
    """Ctrl+C while the model is thinking: the attempt is not used up and the job is due at
    once, so the suggested `bnity queue run` processes it (it used to wait 5 minutes)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.fakes.llm_server import Reply

    llm.script("extraction", Reply(delay=60))  # hangs until interrupted
    env = {**os.environ, **llm.env(), "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen(
        [sys.executable, "-m", "boternity.cli", "--db", str(db_path), "queue", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not llm.of("extraction"):
            assert time.monotonic() < deadline and child.poll() is None
            time.sleep(0.05)
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=30)
    finally:
        child.kill()
    assert child.returncode == 130, err
    [job] = [j for j in parse(cli("queue", "--json")) if j["id"] == str(world.jobs[0].id)]
    assert job["attempt_count"] == 0 and job["state"] != "waiting", job
    again = cli("queue", "run", "--json", env=llm.env())
    assert parse(again)["completed"] == 1, again.stderr


def test_a_fact_already_remembered_is_reported_and_shown_in_the_memorys_history(
    cli: Invoke, world: World, llm: FakeLlm
) -> None:
    llm.script(
        "extraction",
        openai_completion('[{"fact": "loves RAMEN 🍜!"}, {"fact": "Plays the oboe"}]'),
    )
    result = cli("queue", "run", "--embeddings", "none", env=llm.env())
    assert result.exit_code == 0, result.stderr
    summary = result.stdout.splitlines()[-1]
    assert "1 memory saved" in summary
    assert "1 fact already remembered (recorded in the memory's history)." in summary
    ramen = next(m for m in world.memories if m.fact == "Loves ramen 🍜")
    shown = cli("memory", "show", str(ramen.id))
    assert shown.exit_code == 0, shown.stderr
    assert "repeated by extraction: “loves RAMEN 🍜!”" in shown.stdout
    history = parse(cli("memory", "show", str(ramen.id), "--json"))["history"]
    assert [(e["event"], e["fact"]) for e in history][-1] == ("repeated", "loves RAMEN 🍜!")
