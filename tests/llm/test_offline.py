"""The offline provider: labelled, deterministic, and useful for the auxiliary requests."""

from __future__ import annotations

import json

import pytest

from boternity.llm import (
    ChatTurn,
    CompletionRequest,
    Done,
    LlmProvider,
    OfflineProvider,
    Purpose,
    StreamEvent,
    TextDelta,
    Usage,
    estimate_tokens,
)

EXTRACT = (
    "Extract durable facts about the user. Respond with ONLY a JSON array of objects with"
    ' "fact", "category" and "importance", or [] when there is nothing to remember.'
)
TITLE = "Generate a short title (3-7 words) for this conversation. Reply with ONLY the title."
SUMMARY = "You summarize conversations: decisions, facts, goals and open questions."


def request(
    *user: str, system: str | None = None, max_tokens: int = 1024, purpose: Purpose = "reply"
) -> CompletionRequest:
    turns = []
    for index, text in enumerate(user):
        if index:
            turns.append(ChatTurn("assistant", "[offline] ok"))
        turns.append(ChatTurn("user", text))
    return CompletionRequest(
        model="offline", system=system, messages=turns, max_tokens=max_tokens, purpose=purpose
    )


async def events(req: CompletionRequest) -> list[StreamEvent]:
    async with OfflineProvider() as provider:
        return [e async for e in provider.stream(req)]


async def reply(req: CompletionRequest) -> str:
    async with OfflineProvider() as provider:
        return (await provider.complete(req)).text


async def test_is_a_provider_and_clearly_labelled() -> None:
    provider = OfflineProvider()
    assert isinstance(provider, LlmProvider)
    assert provider.label == "offline (canned replies)"
    text = await reply(request("Tell me a joke"))
    assert text.startswith("[offline] ")
    assert "Tell me a joke" in text


async def test_same_request_same_events_streamed_in_small_deltas() -> None:
    req = request("Hello there, how are you doing today?")
    first, second = await events(req), await events(req)
    assert first == second
    deltas = [e for e in first if isinstance(e, TextDelta)]
    assert len(deltas) > 5
    assert all(len(d.text) <= 20 for d in deltas)
    text = "".join(d.text for d in deltas)
    prompt = req.messages[0].content
    assert first[-2:] == [Usage(estimate_tokens(prompt), estimate_tokens(text)), Done("end_turn")]


async def test_acknowledges_and_recalls_stated_facts() -> None:
    assert await reply(request("Hi! My name is Ada and I live in Paris.")) == (
        "[offline] Noted: your name is Ada; you live in Paris."
    )
    assert await reply(request("My name is Ada.", "What is my name?")) == (
        "[offline] Your name is Ada."
    )
    # Recalled memories arrive in the system prompt.
    assert await reply(
        request("Where do I live?", system="Memories:\n- [fact] User lives in Oslo")
    ) == ("[offline] You live in Oslo.")
    assert await reply(request("Where do I live?")) == "[offline] I don't know where you live yet."
    # The bot's persona speaking in the first person is not the user.
    persona = "You are Nimbus. I live in the cloud."
    assert await reply(request("Where do I live?", system=persona)) == (
        "[offline] I don't know where you live yet."
    )


async def test_memory_extraction_returns_a_json_array_of_facts() -> None:
    req = request(
        "Hi, my name is Ada Lovelace. I live in London, and I love mathematics.",
        "I don't like rainy days. I work as an engineer.",
        system=EXTRACT,
        purpose="extraction",
    )
    facts = json.loads(await reply(req))
    assert facts == [
        {"fact": "User's name is Ada Lovelace", "category": "fact", "importance": 4},
        {"fact": "User lives in London", "category": "fact", "importance": 4},
        {"fact": "User likes mathematics", "category": "preference", "importance": 3},
        {"fact": "User dislikes rainy days", "category": "preference", "importance": 3},
        {"fact": "User works as an engineer", "category": "fact", "importance": 3},
    ]
    assert (
        json.loads(
            await reply(request("What's the weather?", system=EXTRACT, purpose="extraction"))
        )
        == []
    )


async def test_extraction_from_a_transcript_ignores_the_assistant() -> None:
    transcript = "user: I live in Rome\nassistant: I live in the cloud\nuser: I like pizza"
    facts = json.loads(await reply(request(transcript, system=EXTRACT, purpose="extraction")))
    assert [f["fact"] for f in facts] == ["User lives in Rome", "User likes pizza"]


async def test_title_is_short_and_unlabelled() -> None:
    title = await reply(
        request("how do I bake sourdough bread at home?", system=TITLE, purpose="title")
    )
    assert title == "How do I bake sourdough bread"
    assert await reply(request("???", system=TITLE, purpose="title")) == "New conversation"


async def test_summary_mentions_facts_and_what_was_said() -> None:
    summary = await reply(
        request("I live in Oslo.", "Let's plan a ski trip.", system=SUMMARY, purpose="summary")
    )
    assert summary.startswith("[offline] Summary:")
    assert "User lives in Oslo" in summary
    assert "plan a ski trip" in summary


async def test_max_tokens_cuts_the_reply_on_characters() -> None:
    req = request("é" * 400, max_tokens=5)
    got = await events(req)
    text = "".join(e.text for e in got if isinstance(e, TextDelta))
    assert len(text) == 20
    assert got[-1] == Done("max_tokens")


@pytest.mark.parametrize("text", ["", "abc", "abcd", "abcde", "日本語のテキスト"])
def test_token_estimate_is_characters_over_four_rounded_up(text: str) -> None:
    assert OfflineProvider().count_tokens(text) == -(-len(text) // 4)


def test_offline_greets_by_name_and_chat_prompts_are_never_mistaken_for_tasks() -> None:
    from boternity.llm.base import ChatTurn, CompletionRequest
    from boternity.llm.offline import answer

    system = "<soul>\nGives every answer a title and a summary.\n</soul>\n\n<identity>\nName: Luna\n</identity>"
    greeting = CompletionRequest(
        model="offline",
        system=system,
        messages=[
            ChatTurn(
                "user",
                "[The user has opened a new conversation. Greet them in character and"
                " introduce yourself in at most two sentences.]",
            )
        ],
        purpose="greeting",
    )
    assert (
        answer(greeting)
        == "[offline] Hello, I'm Luna! Tell me about yourself and I'll remember it."
    )
    chat = CompletionRequest(
        model="offline", system=system, messages=[ChatTurn("user", "I live in Rome")]
    )
    assert answer(chat) == "[offline] Noted: you live in Rome."
