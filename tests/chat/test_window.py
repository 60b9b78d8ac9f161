"""The sliding window: summaries tile the transcript, requests stay under budget."""

from __future__ import annotations

import pytest

from boternity import Store
from boternity.chat import ChatEngine, WindowPolicy
from boternity.chat.window import conversation_limit, fold_count, request_tokens
from boternity.errors import ValidationError
from boternity.models import Bot, MessageRole
from tests.chat.conftest import ScriptedProvider, assert_valid_turns, fail

POLICY = WindowPolicy(context_share=0.8, keep_recent=6, summary_max_tokens=80)


def user_text(i: int) -> str:
    # Varied lengths, some long enough to force folding more than "all but keep_recent".
    return f"Message {i}: " + " ".join(f"w{i}x{j}" for j in range((i * 7) % 45 + 3))


async def test_a_long_conversation_is_folded_into_contiguous_summaries_under_budget(
    store: Store, bot: Bot, provider: ScriptedProvider
) -> None:
    provider.window = 1_200
    max_tokens = 100
    async with ChatEngine(store, provider, window=POLICY, max_tokens=max_tokens) as engine:
        live = await engine.start_session(bot, greet=True)
        for i in range(60):
            await live.ask(user_text(i))
        session_id = live.id
    limit = conversation_limit(provider, "scripted-1", max_tokens=max_tokens, policy=POLICY)
    chats = provider.of("chat")
    assert len(chats) == 61  # greeting + 60 turns
    for request in chats:
        assert request_tokens(provider, request, POLICY) <= limit
        assert request.system is not None and "SOUL-MARKER" in request.system
        assert_valid_turns(request.messages)
    for request in provider.of("summary"):
        assert request_tokens(provider, request, POLICY) <= provider.window

    # Nothing was deleted.
    messages = await store.chat.get_messages(session_id)
    assert [m.seq for m in messages] == list(range(1, 122))
    # The summaries tile 1..N without gaps or overlaps.
    summaries = await store.memory.list_summaries(session_id)
    assert len(summaries) >= 3
    assert summaries[0].messages_start == 1
    for before, after in zip(summaries, summaries[1:], strict=False):
        assert after.messages_start == before.messages_end + 1
    latest = await store.memory.get_latest_summary(session_id)
    assert latest == summaries[-1]
    # Each request after a fold carries the latest summary, then only newer messages.
    last = chats[-1]
    assert latest is not None and latest.summary in last.messages[0].content
    assert last.messages[-1].content == user_text(59)
    assert all(
        m.content not in "\n".join(t.content for t in last.messages)
        for m in messages[: latest.messages_end]
        if m.role is MessageRole.USER
    )


async def test_a_failed_summary_keeps_the_request_under_budget_and_is_retried(
    store: Store, bot: Bot, provider: ScriptedProvider
) -> None:
    provider.window = 1_200
    provider.failures["summary"] = [fail()]
    async with ChatEngine(store, provider, window=POLICY, max_tokens=100) as engine:
        live = await engine.start_session(bot)
        for i in range(20):
            await live.ask(user_text(i))
        summaries = await store.memory.list_summaries(live.id)
    limit = conversation_limit(provider, "scripted-1", max_tokens=100, policy=POLICY)
    assert all(request_tokens(provider, r, POLICY) <= limit for r in provider.of("chat"))
    assert len(provider.of("summary")) >= 2  # the failure, then a retry that worked
    assert summaries and summaries[0].messages_start == 1


def test_fold_count_keeps_recent_messages_and_never_the_newest() -> None:
    policy = WindowPolicy(keep_recent=2, summary_max_tokens=10)
    assert fold_count([5, 5, 5, 5, 5], fixed=10, limit=1000, policy=policy) == 3
    # Folds more when the recent ones alone would not fit with the summary.
    assert fold_count([5, 5, 5, 50, 50], fixed=10, limit=75, policy=policy) == 4
    assert fold_count([500], fixed=10, limit=75, policy=policy) == 0
    assert fold_count([5, 5], fixed=10, limit=1000, policy=WindowPolicy(keep_recent=5)) == 1


def test_window_policy_is_validated() -> None:
    with pytest.raises(ValidationError):
        WindowPolicy(context_share=0)
    with pytest.raises(ValidationError):
        WindowPolicy(keep_recent=0)
