"""A complete ``200 application/json`` reply to a streaming request (some proxies and mocks
answer so) is the finished reply, not a cut stream retried and thrown away."""

from __future__ import annotations

import pytest

from boternity.errors import LlmError
from boternity.llm import ChatTurn, CompletionRequest, Done, RetryPolicy, TextDelta, Usage
from boternity.llm.base import StreamEvent
from tests.fakes.llm_server import FakeLlmServer, Reply
from tests.llm.wires import Sleeps, Wire

REQUEST = CompletionRequest(model="test-model", messages=[ChatTurn("user", "I live in Oslo")])


async def test_a_json_reply_to_a_stream_is_the_finished_reply(wire: Wire, sleeps: Sleeps) -> None:
    async with FakeLlmServer(json_streams=True) as server:
        retry = RetryPolicy(sleep=sleeps)
        async with wire.make(base_url=wire.base_url(server), api_key="k", retry=retry) as llm:
            events: list[StreamEvent] = [e async for e in llm.stream(REQUEST)]
            expected = (await llm.complete(REQUEST)).text
        [first, _] = server.requests
    assert first.json["stream"] is True
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == expected
    assert expected == "[offline] Noted: you live in Oslo."
    usage = [e for e in events if isinstance(e, Usage)]
    assert usage and usage[-1].input_tokens > 0 and usage[-1].output_tokens > 0
    assert events[-1] == Done("end_turn")
    assert sleeps.delays == []


async def test_an_unreadable_json_reply_is_one_clear_error_not_retried(
    wire: Wire, sleeps: Sleeps
) -> None:
    broken = Reply(
        headers={"content-type": "application/json; charset=utf-8"},
        chunks=[b'{"usage": "lots"}'],
        framing="length",
    )
    not_json = Reply(headers={"content-type": "application/json"}, chunks=[b"<html>oops"])
    async with FakeLlmServer() as server:
        server.enqueue(broken, not_json)
        retry = RetryPolicy(sleep=sleeps)
        async with wire.make(base_url=wire.base_url(server), api_key="k", retry=retry) as llm:
            for expected in ("malformed JSON reply", "not JSON"):
                with pytest.raises(LlmError) as caught:
                    async for _ in llm.stream(REQUEST):
                        pass
                assert not caught.value.retryable
                assert expected in str(caught.value)
                assert "stream ended" not in str(caught.value)
        assert len(server.requests) == 2
    assert sleeps.delays == []


async def test_a_json_error_object_in_a_200_reply_is_classified(wire: Wire, sleeps: Sleeps) -> None:
    overloaded = wire.overloaded
    as_200 = Reply(headers=overloaded.headers, chunks=overloaded.chunks, framing="length")
    async with FakeLlmServer(json_streams=True) as server:
        server.enqueue(as_200)
        retry = RetryPolicy(sleep=sleeps)
        async with wire.make(base_url=wire.base_url(server), api_key="k", retry=retry) as llm:
            text = "".join([e.text async for e in llm.stream(REQUEST) if isinstance(e, TextDelta)])
    # reported as the provider's (transient) error and retried; the next reply is the answer
    assert text == "[offline] Noted: you live in Oslo."
    assert len(sleeps.delays) == 1
