"""The fake server runs as its own process too (for CLI and chat-engine tests)."""

from __future__ import annotations

import pytest

from boternity.llm import ChatTurn, CompletionRequest, OpenAIProvider
from tests.fakes.llm_server import FakeLlmServerProcess, openai_completion


@pytest.mark.slow
async def test_runs_as_a_module_and_takes_scripts_over_http() -> None:
    async with FakeLlmServerProcess() as server:
        await server.enqueue(openai_completion("scripted reply"))
        request = CompletionRequest(model="m", messages=[ChatTurn("user", "My name is Bo")])
        async with OpenAIProvider(base_url=server.openai_base_url) as provider:
            assert (await provider.complete(request)).text == "scripted reply"
            # Unscripted, it answers like the offline provider.
            assert (await provider.complete(request)).text == "[offline] Noted: your name is Bo."
        recorded = await server.requests()
        assert [r["path"] for r in recorded] == ["/v1/chat/completions"] * 2
        assert recorded[0]["json"]["messages"] == [{"role": "user", "content": "My name is Bo"}]
        await server.reset()
        assert await server.requests() == []
    assert server.returncode == 0  # SIGTERM is a clean shutdown
