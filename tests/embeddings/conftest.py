"""Fixtures for embedder tests: the fake LLM server on loopback and instant, recorded retries."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from boternity.llm import RetryPolicy
from tests.fakes.llm_server import FakeLlmServer
from tests.llm.wires import Sleeps


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
