"""The fake server runs as its own process too (for CLI and chat-engine tests)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx
import pytest

from boternity.llm import ChatTurn, CompletionRequest, OpenAIProvider, RetryPolicy
from tests.fakes.llm_server import Reply, openai_completion

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
async def test_runs_as_a_module_and_takes_scripts_over_http() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.llm_server",
        "--port",
        "0",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        port = int(await asyncio.wait_for(process.stdout.readline(), timeout=30))
        base = f"http://127.0.0.1:{port}"
        scripted: Reply = openai_completion("scripted reply")
        async with httpx.AsyncClient(base_url=base) as control:
            response = await control.post("/_fake/enqueue", json=[scripted.to_json()])
            assert response.json() == {"pending": 1}
            request = CompletionRequest(model="m", messages=[ChatTurn("user", "My name is Bo")])
            async with OpenAIProvider(base_url=f"{base}/v1", retry=RetryPolicy()) as provider:
                assert (await provider.complete(request)).text == "scripted reply"
                assert (await provider.complete(request)).text == (
                    "[offline] Noted: your name is Bo."
                )
            recorded = (await control.get("/_fake/requests")).json()
            assert [r["path"] for r in recorded] == ["/v1/chat/completions"] * 2
            assert recorded[0]["json"]["messages"] == [{"role": "user", "content": "My name is Bo"}]
    finally:
        process.terminate()
        assert await process.wait() == 0
