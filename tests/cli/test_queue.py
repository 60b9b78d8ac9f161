"""bnity queue and bnity queue retry."""

from __future__ import annotations

from pathlib import Path

from boternity.cli.output import short_ids
from boternity.ids import utc_now
from tests.cli.conftest import Invoke, one_line_error, parse, with_store
from tests.cli.fixtures import World

JOB_FIELDS = {
    "session_id",
    "bot_id",
    "next_attempt_at",
    "attempt_count",
    "last_attempt_at",
    "error_message",
    "messages_start",
    "messages_end",
    "id",
    "created_at",
}


def job_prefix(world: World, index: int) -> str:
    ids = [j.id for j in world.jobs]
    return short_ids([ids[index]], ids)[ids[index]]


def test_queue_lists_jobs_with_state(cli: Invoke, world: World) -> None:
    result = cli("queue")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert job_prefix(world, 0) in out and job_prefix(world, 1) in out
    assert "helper" in out
    assert "1–3" in out and "all" in out
    assert "0/3" in out and "3/3" in out
    assert "exhausted" in out and "due" in out
    assert "LLM down: 503 Service Unavailable retry later" in out  # one line
    assert "Crashed one" in out
    assert "2 jobs, 1 exhausted" in out
    assert "User" not in out  # no job's session has a user: no column


def test_queue_json(cli: Invoke, world: World) -> None:
    data = parse(cli("queue", "--json"))
    assert isinstance(data, list) and len(data) == 2
    assert all(set(j) == JOB_FIELDS | {"exhausted", "state", "user_id"} for j in data)
    assert all(j["user_id"] is None for j in data)  # the world's sessions have no user
    by_id = {j["id"]: j for j in data}
    assert by_id[str(world.jobs[0].id)]["exhausted"] is False
    assert by_id[str(world.jobs[1].id)]["exhausted"] is True
    assert by_id[str(world.jobs[1].id)]["state"] == "exhausted"
    assert by_id[str(world.jobs[0].id)]["messages_end"] == 3


def test_queue_filtered_by_bot_and_empty(cli: Invoke, world: World) -> None:
    assert parse(cli("queue", "--bot", "other", "--json")) == []
    assert "empty" in cli("queue", "--bot", "other").stdout


def test_queue_retry_one_job_resets_attempts(cli: Invoke, world: World, db_path: Path) -> None:
    before = utc_now()
    result = cli("queue", "retry", job_prefix(world, 1))
    assert result.exit_code == 0, result.stderr
    assert "Reset 1 job" in result.stdout
    job = with_store(db_path, lambda s: s.memory.get_pending_extraction(world.jobs[1].id))
    assert job is not None
    assert job.attempt_count == 0
    assert job.next_attempt_at >= before
    assert not job.exhausted
    # it is claimable again
    claimed = with_store(db_path, lambda s: s.memory.claim_pending_extractions(limit=10))
    assert world.jobs[1].id in {j.id for j in claimed}


def test_queue_retry_all_json(cli: Invoke, world: World) -> None:
    data = parse(cli("queue", "retry", "--all", "--json"))
    assert len(data) == 2
    assert all(j["attempt_count"] == 0 for j in data)


def test_queue_retry_needs_exactly_one_of_job_or_all(cli: Invoke, world: World) -> None:
    neither = cli("queue", "retry")
    assert neither.exit_code == 2
    assert "--all" in one_line_error(neither)
    both = cli("queue", "retry", job_prefix(world, 0), "--all")
    assert both.exit_code == 2


def test_queue_retry_unknown_job(cli: Invoke, world: World) -> None:
    result = cli("queue", "retry", "ffffffff")
    assert result.exit_code == 4
    one_line_error(result)


def test_queue_retry_all_on_empty_queue(cli: Invoke, db_path: Path) -> None:
    assert cli("db", "migrate").exit_code == 0
    assert "empty" in cli("queue").stdout
    result = cli("queue", "retry", "--all")
    assert result.exit_code == 0
    assert "nothing to retry" in result.stdout
