"""What reaches a real provider's wire (the fake server records it) after a greeting, a
reply that failed mid-stream and an orphan user turn: valid requests for both protocols."""

from __future__ import annotations

import asyncio

import pytest

from boternity import Store
from boternity.chat import ChatEngine, LiveSession
from boternity.errors import LlmError
from boternity.llm import AnthropicProvider, LlmProvider, OpenAIProvider
from boternity.models import Bot
from tests.fakes.llm_server import (
    FakeLlmServer,
    Reply,
    anthropic_error,
    anthropic_frames,
    openai_error,
    openai_frames,
    sse_reply,
)


def cut_reply(protocol: str, pieces: list[str]) -> Reply:
    """A stream that delivers ``pieces`` and then loses the connection."""
    if protocol == "anthropic":
        frames = anthropic_frames(pieces)[:-3]  # no content_block_stop / delta / stop
    else:
        frames = openai_frames(pieces)[:-3]  # no finish, usage or [DONE]
    return sse_reply(frames, cut=True)


def refusal(protocol: str) -> Reply:
    """A non-retryable error before any text."""
    if protocol == "anthropic":
        return anthropic_error(400, "invalid_request_error", "try again later")
    return openai_error(400, "try again later")


def provider_for(protocol: str, server: FakeLlmServer) -> LlmProvider:
    if protocol == "anthropic":
        return AnthropicProvider(api_key="test-key-1", base_url=server.base_url)
    return OpenAIProvider(api_key="test-key-1", base_url=server.openai_base_url)


async def settle_title(live: LiveSession) -> None:
    async with asyncio.timeout(10):
        while live.session.title is None:  # noqa: ASYNC110 (state set by a background task)
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("protocol", ["anthropic", "openai"])
async def test_requests_stay_valid_on_the_wire_after_greeting_failure_and_orphan(
    store: Store, bot: Bot, protocol: str
) -> None:
    async with FakeLlmServer() as server:
        async with (
            provider_for(protocol, server) as provider,
            ChatEngine(store, provider) as engine,
        ):
            live = await engine.start_session(bot, greet=True)
            assert live.greeting is not None
            await live.ask("My name is Bob.")
            await settle_title(live)
            server.enqueue(cut_reply(protocol, ["Half ", "a ", "reply"]))
            turn = live.send("Tell me a story.")
            with pytest.raises(LlmError):
                await turn
            assert turn.reply is not None and turn.reply.content == "Half a reply"
            server.enqueue(refusal(protocol))  # fails before any text: an orphan user turn
            with pytest.raises(LlmError):
                await live.ask("Hello?")
            await live.ask("Are you there?")
            await live.end()
        last = server.requests[-1].json
    assert isinstance(last, dict)
    if protocol == "anthropic":
        assert "SOUL-MARKER" in last["system"]
        messages = last["messages"]
    else:
        assert last["messages"][0]["role"] == "system"
        assert "SOUL-MARKER" in last["messages"][0]["content"]
        messages = last["messages"][1:]
    said = [(m["role"], m["content"]) for m in messages]
    assert [r for r, _ in said] == ["user", "assistant"] * 3 + ["user"]
    assert said[1][1] == live.greeting.content
    assert said[4:] == [
        ("user", "Tell me a story."),
        ("assistant", "Half a reply"),
        ("user", "Hello?\n\nAre you there?"),
    ]
    assert all(content.strip() for _, content in said)


HOSTILE_STOP_REASONS = ["x" * 5000, "stop\x00\x1b[2J", "\ud800"]


@pytest.mark.parametrize("protocol", ["anthropic", "openai"])
@pytest.mark.parametrize("reason", HOSTILE_STOP_REASONS, ids=["huge", "controls", "surrogate"])
async def test_a_hostile_stop_reason_never_makes_a_reply_unsavable(
    store: Store, bot: Bot, protocol: str, reason: str
) -> None:
    """A server's stop reason is stored with the reply: whatever it sends (5,000 characters,
    NUL and escapes), the reply is saved with a short, printable stop reason."""
    async with (
        FakeLlmServer() as server,
        provider_for(protocol, server) as provider,
        ChatEngine(store, provider) as engine,
    ):
        live = await engine.start_session(bot, greet=False)
        if protocol == "anthropic":
            frames = anthropic_frames(["Hello"], stop_reason=reason)
        else:
            frames = openai_frames(["Hello"], finish_reason=reason)
        server.enqueue(sse_reply(frames))
        reply = await live.ask("Hi")
        await live.end()
    stored = await store.chat.get_message(reply.id)
    assert stored is not None and stored.content == "Hello"
    assert stored.stop_reason is not None
    assert 0 < len(stored.stop_reason) <= 64 and stored.stop_reason.isprintable()


@pytest.mark.parametrize("protocol", ["anthropic", "openai"])
@pytest.mark.parametrize(
    ("said", "kept"),
    [
        ("a\x00b", "a\ufffdb"),
        ("x\ud800y", "x\ufffdy"),
        ("\x00", "\ufffd"),
        ("\x1b[2Jok", "\x1b[2Jok"),
    ],
    ids=["nul", "surrogate", "only-nul", "escape"],
)
async def test_a_reply_with_unstorable_characters_is_kept(
    store: Store, bot: Bot, protocol: str, said: str, kept: str
) -> None:
    """A server may send a NUL or a lone surrogate (JSON escapes) in the reply. No backend
    can store them: they become U+FFFD, so the turn is saved instead of lost (it failed with
    a ValidationError, the reply gone). Other characters are stored as sent (the terminal
    shows them harmlessly)."""
    async with (
        FakeLlmServer() as server,
        provider_for(protocol, server) as provider,
        ChatEngine(store, provider) as engine,
    ):
        live = await engine.start_session(bot, greet=False)
        frames = anthropic_frames([said]) if protocol == "anthropic" else openai_frames([said])
        server.enqueue(sse_reply(frames))
        reply = await live.ask("Hi")
        await live.end()
    assert reply.content == kept
    stored = await store.chat.get_messages(reply.session_id)
    assert [m.content for m in stored] == ["Hi", kept]
