"""Fixtures for provider tests: a fake LLM server on loopback and instant, recorded retries."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from boternity.llm import RetryPolicy
from tests.fakes.llm_server import FakeLlmServer
from tests.llm.wires import ANTHROPIC, OPENAI, Sleeps, Wire


@pytest.fixture
async def server() -> AsyncIterator[FakeLlmServer]:
    async with FakeLlmServer() as fake:
        yield fake


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def retry(sleeps: Sleeps) -> RetryPolicy:
    return RetryPolicy(max_retries=3, base_delay=0.01, max_delay=0.04, jitter=0.0, sleep=sleeps)


@pytest.fixture(params=[ANTHROPIC, OPENAI], ids=lambda wire: wire.name)
def wire(request: pytest.FixtureRequest) -> Wire:
    chosen: Wire = request.param
    return chosen
