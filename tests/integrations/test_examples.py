"""The integration examples in examples/ run as documented, on every backend, twice (the
second run continues the stored conversation)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def run_example(name: str, db_url: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "BOTERNITY_"))}
    done = subprocess.run(
        [sys.executable, "-W", "error", str(ROOT / "examples" / name), "--db", db_url],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout


def test_openai_agents_example(db_url: str) -> None:
    first = run_example("openai_agents_session.py", db_url)
    assert "Sunny and 22°C in Porto. Enjoy Porto!" in first
    assert "(6 messages)" in first
    assert '[2] assistant: [tool call get_weather] {"city": "Porto"}' in first
    assert "tokens: 210 in, 36 out" in first
    second = run_example("openai_agents_session.py", db_url)
    assert "(12 messages)" in second


def test_langchain_example(db_url: str) -> None:
    first = run_example("langchain_history.py", db_url)
    assert "Your name is Ana." in first
    assert "6 messages in boternity for LangChain session 'ana'" in first
    second = run_example("langchain_history.py", db_url)
    assert "12 messages in boternity" in second
