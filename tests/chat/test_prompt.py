"""Request building: whatever the store holds, the request is valid for every provider."""

from __future__ import annotations

import uuid

from boternity.chat.prompt import (
    CONTINUE_CUE,
    GREETING_CUE,
    build_request,
    build_system_prompt,
    summary_turn,
    to_turns,
)
from boternity.llm.base import ChatTurn
from boternity.models import Bot, ChatMessage, ContextSummary, MessageRole
from tests.chat.conftest import assert_valid_turns

SID = uuid.uuid4()


def msg(role: str, content: str, seq: int = 1) -> ChatMessage:
    return ChatMessage(session_id=SID, role=MessageRole(role), content=content, seq=seq)


def test_orphan_user_message_is_merged_with_the_next_one() -> None:
    turns, notes = to_turns([msg("user", "first?"), msg("user", "hello again")])
    assert turns == [ChatTurn("user", "first?\n\nhello again")]
    assert notes == []


def test_leading_greeting_gets_a_user_cue_before_it() -> None:
    turns, _ = to_turns([msg("assistant", "Hi, I'm Ada."), msg("user", "hey")])
    assert turns == [
        ChatTurn("user", GREETING_CUE),
        ChatTurn("assistant", "Hi, I'm Ada."),
        ChatTurn("user", "hey"),
    ]


def test_system_messages_go_to_notes_and_blank_messages_are_dropped() -> None:
    turns, notes = to_turns(
        [
            msg("user", "a"),
            msg("system", "Speak French from now on."),
            msg("assistant", "   "),
            msg("user", "b"),
        ]
    )
    assert turns == [ChatTurn("user", "a\n\nb")]
    assert notes == ["Speak French from now on."]


def test_trailing_assistant_turn_is_followed_by_a_user_cue() -> None:
    turns, _ = to_turns([msg("user", "a"), msg("assistant", "b")])
    assert turns[-1] == ChatTurn("user", CONTINUE_CUE)
    assert_valid_turns(turns)


def test_empty_transcript_still_gives_a_valid_request() -> None:
    turns, _ = to_turns([])
    assert_valid_turns(turns)


def test_any_mix_of_roles_gives_valid_turns() -> None:
    roles = ["user", "assistant", "system"]
    for n in range(1, 6):
        for mask in range(3**n):
            seq = []
            m = mask
            for i in range(n):
                seq.append(msg(roles[m % 3], "x" if (m // 3 + i) % 4 else " ", i + 1))
                m //= 3
            turns, _ = to_turns(seq)
            assert_valid_turns(turns)


def test_system_prompt_sections_in_order_with_soul_first() -> None:
    bot = Bot(name="Ada", description="A patient tutor")
    text = build_system_prompt(
        bot=bot,
        soul="Curious and kind.",
        model="m1",
        memories=["User lives in Paris", "  "],
        notes=["Be brief."],
    )
    order = ["<soul>", "<identity>", "<memories>", "<session_notes>", "<instructions>"]
    positions = [text.index(tag) for tag in order]
    assert positions == sorted(positions)
    assert text.startswith("<soul>\nCurious and kind.\n</soul>")
    assert "Name: Ada\nDescription: A patient tutor\nModel: m1" in text
    assert "- User lives in Paris" in text
    assert "You are Ada." in text


def test_system_prompt_without_soul_or_memories_omits_those_sections() -> None:
    text = build_system_prompt(bot=Bot(name="Ada"), soul="  ", model="m")
    assert not text.startswith("<soul>")
    assert "<memories>\n" not in text
    assert "<identity>" in text


def test_summary_opens_the_turns_and_merges_with_a_leading_user_turn() -> None:
    summary = ContextSummary(
        session_id=SID, summary="They met.", messages_start=1, messages_end=4, token_count=3
    )
    request = build_request(
        bot=Bot(name="Ada"),
        soul="S",
        model="m",
        messages=[msg("user", "next", 5)],
        summary=summary,
    )
    assert request.messages == (ChatTurn("user", summary_turn(summary) + "\n\nnext"),)
    request = build_request(
        bot=Bot(name="Ada"),
        soul="S",
        model="m",
        messages=[msg("assistant", "reply", 5), msg("user", "next", 6)],
        summary=summary,
    )
    assert [t.role for t in request.messages] == ["user", "assistant", "user"]
    assert "They met." in request.messages[0].content
    assert "1-4" in request.messages[0].content
