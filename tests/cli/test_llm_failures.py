"""A failing or misconfigured LLM endpoint, seen through real ``bnity`` processes: bounded
retries that say what they wait for, a wrong base URL failing at once, credentials in the base
URL shown nowhere (output, queue, database file), and the extraction model setting."""

from __future__ import annotations

import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest

from tests.cli.conftest import FakeLlm
from tests.cli.test_chat import BNITY, _env
from tests.fakes.llm_server import Reply, json_reply

URL_KEY = "sk-userinfo-SECRET-4242424242"
QUERY_KEY = "qk-query-SECRET-5151515151"
API_KEY = "sk-test-secret-key"  # FakeLlm.env()

pytestmark = pytest.mark.slow


def bnity(
    db: Path, *args: str, env: dict[str, str], stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BNITY, "--db", str(db), *args],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        env=env,
    )


def with_credentials(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(
        parts._replace(netloc=f"{URL_KEY}@{parts.netloc}", query=f"api-key={QUERY_KEY}")
    )


def plain_500(text: str = "Internal Server Error") -> Reply:
    return Reply(status=500, headers={"content-type": "text/plain"}, chunks=[text.encode()])


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "luna.db"
    subprocess.run([*BNITY, "--db", str(path), "bot", "create", "Luna"], check=True, env=_env())
    return path


def test_a_failing_provider_is_retried_briefly_and_the_warnings_say_what_for(
    db: Path, llm: FakeLlm
) -> None:
    # A plain-text 500 for the greeting, the turn and the final extraction: before, each was
    # tried 5 times (~20 s in all); now each gives up 3 s after its first attempt.
    for kind in ("greeting", "chat", "extraction", "title"):
        llm.script(kind, *[plain_500() for _ in range(10)])
    started = time.monotonic()
    result = bnity(db, "chat", "luna", stdin="hi\n", env=_env(llm))
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    kinds = llm.kinds()
    for kind in ("greeting", "chat", "extraction"):
        assert 2 <= kinds.count(kind) <= 4, kinds
    assert elapsed < 15, elapsed
    retrying = [line for line in result.stderr.splitlines() if "retrying" in line]
    assert retrying
    where = f"the request to openai ({llm.openai_base_url})"
    for line in retrying:
        assert line.startswith("warning: openai: Internal Server Error (HTTP 500); retrying")
        assert where in line and "giving up 3s after the first attempt" in line
    assert "error: no reply: openai: Internal Server Error (HTTP 500)" in result.stderr


def test_a_wrong_base_url_fails_at_once_naming_it_redacted(
    db: Path, llm: FakeLlm, unused_tcp_port: int
) -> None:
    base_url = with_credentials(f"http://127.0.0.1:{unused_tcp_port}/v1")
    env = _env(llm, OPENAI_BASE_URL=base_url)
    started = time.monotonic()
    result = bnity(db, "chat", "luna", "--no-greeting", stdin="hi\n", env=env)
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    shown = f"http://***@127.0.0.1:{unused_tcp_port}/v1?api-key=***"
    assert (
        f"error: no reply: openai: cannot connect to {shown}: connection refused"
        " (check the base URL in OPENAI_BASE_URL)"
    ) in result.stderr.splitlines()
    assert "retrying" not in result.stderr
    assert elapsed < 10, elapsed  # before: ~20 s of retries
    assert bnity(db, "queue", "retry", "--all", env=env).returncode == 0
    run = bnity(db, "queue", "run", env=env)
    assert run.returncode == 1
    assert "retrying" not in run.stderr
    assert f"cannot connect to {shown}" in run.stdout + run.stderr
    for text in (result.stdout, result.stderr, run.stdout, run.stderr):
        for secret in (URL_KEY, QUERY_KEY, API_KEY):
            assert secret not in text


def test_credentials_echoed_by_the_server_stay_out_of_the_queue_and_the_database(
    db: Path, llm: FakeLlm
) -> None:
    base_url = with_credentials(llm.openai_base_url)
    echo = f"no such deployment {base_url} for key {API_KEY} / {URL_KEY} / {QUERY_KEY}"
    llm.script("extraction", *[plain_500(echo) for _ in range(10)])
    env = _env(llm, OPENAI_BASE_URL=base_url)
    result = bnity(db, "chat", "luna", "--no-greeting", stdin="I live in Oslo\n", env=env)
    assert result.returncode == 0, result.stderr
    assert "1 of 1 job failed" in result.stderr
    # the query parameter really reached the server, after the path
    assert all(
        r.path.endswith(f"/v1/chat/completions?api-key={QUERY_KEY}") for r in llm.server.requests
    )
    queue = bnity(db, "queue", "--json", env=env)
    assert "no such deployment http://***@127.0.0.1" in queue.stdout
    backup = db.with_name("backup.db")
    assert bnity(db, "db", "backup", str(backup), env=env).returncode == 0
    stored = b"".join(
        p.read_bytes() for p in db.parent.iterdir() if p.is_file() and p.suffix != ".py"
    )
    assert b"no such deployment" in stored
    for text in (result.stdout, result.stderr, queue.stdout, queue.stderr):
        for secret in (URL_KEY, QUERY_KEY, API_KEY):
            assert secret not in text
    for secret in (URL_KEY, QUERY_KEY, API_KEY):
        assert secret.encode() not in stored


def test_the_extraction_model_setting(db: Path, llm: FakeLlm) -> None:
    env = _env(llm, BOTERNITY_MODEL="gpt-chat", BOTERNITY_EXTRACTION_MODEL="gpt-small")
    result = bnity(db, "chat", "luna", "--no-greeting", stdin="I live in Oslo\n", env=env)
    assert result.returncode == 0, result.stderr
    assert [body["model"] for body in llm.of("chat")] == ["gpt-chat"]
    assert [body["model"] for body in llm.of("extraction")] == ["gpt-small"]

    # queue run: --model wins over the setting, the setting over BOTERNITY_MODEL
    llm.script("extraction", json_reply({"choices": []}))  # unusable: the job stays queued
    assert (
        bnity(db, "chat", "luna", "--no-greeting", stdin="I work as a nurse\n", env=env).returncode
        == 0
    )
    assert bnity(db, "queue", "retry", "--all", env=env).returncode == 0
    llm.server.requests.clear()
    ran = bnity(db, "queue", "run", "--model", "gpt-flag", env=env)
    assert ran.returncode == 0, ran.stderr
    assert [body["model"] for body in llm.of("extraction")] == ["gpt-flag"]
