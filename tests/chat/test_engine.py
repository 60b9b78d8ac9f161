"""ChatEngine on a real store: turns, failures, greetings, titles, bookkeeping, resume."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Sequence

import pytest

from boternity import Store
from boternity.backends.sqlite.locks import FileSessionLocks
from boternity.chat import (
    BotUnavailableError,
    ChatEngine,
    SessionBusyError,
    WindowPolicy,
    locks_for_store,
)
from boternity.chat.prompt import GREETING_CUE
from boternity.errors import (
    AuthenticationError,
    ConflictError,
    ProviderUnavailableError,
    ValidationError,
)
from boternity.llm import AnthropicProvider, OfflineProvider
from boternity.llm.base import CompletionRequest, StreamEvent
from boternity.models import Bot, BotStatus, ChatMessage, MessageRole, SessionStatus
from tests.chat.conftest import ScriptedProvider, assert_valid_turns, fail
from tests.fakes.llm_server import FakeLlmServer, anthropic_error


async def test_user_message_is_committed_before_the_provider_is_called(
    store: Store, bot: Bot, provider: ScriptedProvider
) -> None:
    seen: list[list[str]] = []
    original = provider.stream

    def spying(request: CompletionRequest) -> AsyncGenerator[StreamEvent, None]:
        async def run() -> AsyncGenerator[StreamEvent, None]:
            session_id = engine.live_sessions[0].id
            seen.append([m.content for m in await store.chat.get_messages(session_id)])
            async for event in original(request):
                yield event

        return run()

    provider.stream = spying  # type: ignore[method-assign]
    async with ChatEngine(store, provider) as engine:
        live = await engine.start_session(bot)
        await live.ask("hello there")
    assert seen[0] == ["hello there"]  # (then the title request sees the reply too)


async def test_a_turn_streams_and_stores_the_reply_with_its_metadata(
    store: Store, bot: Bot, provider: ScriptedProvider
) -> None:
    provider.replies = ["Hello Bob, nice to meet you."]
    async with ChatEngine(store, provider) as engine:
        live = await engine.start_session(bot)
        turn = live.send("Hi, I'm Bob")
        pieces = [piece async for piece in turn]
        reply = await turn
    assert "".join(pieces) == "Hello Bob, nice to meet you."
    assert len(pieces) > 1
    assert turn.user_message is not None and turn.user_message.seq == 1
    assert reply.seq == 2
    assert reply.role is MessageRole.ASSISTANT
    assert reply.content == "Hello Bob, nice to meet you."
    assert reply.model == "scripted-1"
    assert reply.stop_reason == "end_turn"
    assert reply.input_tokens and reply.input_tokens > 0
    assert reply.output_tokens and reply.output_tokens > 0
    assert reply.response_ms is not None and reply.response_ms >= 0
    stored = await store.chat.get_messages(live.id)
    assert [(m.role, m.content) for m in stored] == [
        (MessageRole.USER, "Hi, I'm Bob"),
        (MessageRole.ASSISTANT, "Hello Bob, nice to meet you."),
    ]


async def test_request_carries_soul_identity_and_ends_with_the_user_turn(
    store: Store, bot: Bot, provider: ScriptedProvider
) -> None:
    async with ChatEngine(store, provider) as engine:
        live = await engine.start_session(bot)
        await live.ask("one")
        await store.bots.save_soul(bot.id, "Ada now loves haiku. SOUL-V2")
        await live.ask("two")
    first, second = provider.of("chat")
    assert first.system is not None and first.system.startswith("<soul>")
    assert "SOUL-MARKER" in first.system and "Name: Ada" in first.system
    # The current soul, read on every turn.
    assert second.system is not None and "SOUL-V2" in second.system
    assert [t.content for t in second.messages if t.role == "user"] == ["one", "two"]
    assert_valid_turns(second.messages)


async def test_stream_failure_mid_reply_saves_partial_as_error_and_raises(
    store: Store, bot: Bot, provider: ScriptedProvider
) -> None:
    provider.replies = ["one two three four five six", "fine now"]
    provider.failures["chat"] = [fail(after=3)]
    async with ChatEngine(store, provider) as engine:
        live = await engine.start_session(bot)
        turn = live.send("tell me")
        seen: list[str] = []
        with pytest.raises(ProviderUnavailableError):
            async for piece in turn:
                seen.append(piece)
        assert "".join(seen) == "one two three "
        assert turn.reply is not None
        assert turn.reply.stop_reason == "error"
        assert turn.reply.content == "one two three "
        with pytest.raises(ProviderUnavailableError):
            await turn
        reply = await live.ask("still there?")
        assert reply.content == "fine now"
    stored = await store.chat.get_messages(live.id)
    assert [(m.role.value, m.stop_reason) for m in stored] == [
        ("user", None),
        ("assistant", "error"),
        ("user", None),
        ("assistant", "end_turn"),
    ]
    retry = provider.of("chat")[-1]
    assert_valid_turns(retry.messages)
    assert [t.role for t in retry.messages] == ["user", "assistant", "user"]


async def test_failure_before_any_text_leaves_an_orphan_user_turn_that_is_merged_next_time(
    store: Store, bot: Bot, provider: ScriptedProvider
) -> None:
    provider.failures["chat"] = [fail(after=0)]
    async with ChatEngine(store, provider) as engine:
        live = await engine.start_session(bot)
        turn = live.send("first try")
        with pytest.raises(ProviderUnavailableError):
            await turn
        assert turn.reply is None
        await live.ask("second try")
    stored = await store.chat.get_messages(live.id)
    assert [m.role.value for m in stored] == ["user", "user", "assistant"]
    request = provider.of("chat")[-1]
    assert_valid_turns(request.messages)
    assert request.messages[0].content == "first try\n\nsecond try"


async def test_cancelling_a_turn_keeps_what_was_streamed(
    store: Store, bot: Bot, provider: ScriptedProvider
) -> None:
    provider.replies = ["a b c d e f g h"]
    async with ChatEngine(store, provider) as engine:
        live = await engine.start_session(bot)
        turn = live.send("go")
        async for _ in turn:
            turn.cancel()
            break
        with pytest.raises(asyncio.CancelledError):
            await turn
    stored = await store.chat.get_messages(live.id)
    assert stored[-1].role is MessageRole.ASSISTANT
    assert stored[-1].stop_reason == "cancelled"
    assert stored[-1].content.strip()


async def test_empty_or_invalid_messages_are_refused_before_anything_is_written(
    store: Store, bot: Bot, provider: ScriptedProvider
) -> None:
    async with ChatEngine(store, provider) as engine:
        live = await engine.start_session(bot)
        with pytest.raises(ValidationError):
            live.send("   ")
        with pytest.raises(ValidationError):
            live.send("nul \x00 here")
    assert await store.chat.get_messages(live.id) == []
    assert provider.of("chat") == []


async def test_greeting_is_stored_first_and_requests_still_start_with_a_user_turn(
    store: Store, bot: Bot, provider: ScriptedProvider
) -> None:
    provider.replies = ["Hello, I'm Ada!", "Sure."]
    async with ChatEngine(store, provider) as engine:
        live = await engine.start_session(bot, greet=True)
        assert live.greeting is not None
        assert live.greeting.seq == 1
        assert live.greeting.role is MessageRole.ASSISTANT
        assert live.greeting.output_tokens
        await live.ask("hi Ada")
    request = provider.of("chat")[-1]
    assert [t.content for t in request.messages] == [GREETING_CUE, "Hello, I'm Ada!", "hi Ada"]
    assert_valid_turns(request.messages)


async def test_greeting_failure_starts_the_session_without_one(
    store: Store, bot: Bot, provider: ScriptedProvider
) -> None:
    provider.failures["chat"] = [fail()]
    async with ChatEngine(store, provider) as engine:
        live = await engine.start_session(bot, greet=True)
        assert live.greeting is None
        await live.ask("hello")
    assert [m.role.value for m in await store.chat.get_messages(live.id)] == [
        "user",
        "assistant",
    ]


async def test_session_and_bot_bookkeeping_is_exact(
    store: Store, bot: Bot, provider: ScriptedProvider
) -> None:
    async with ChatEngine(store, provider) as engine:
        live = await engine.start_session(bot, greet=True)
        for i in range(3):
            await live.ask(f"message {i}")
        ended = await live.end()
    messages = await store.chat.get_messages(live.id)
    tokens_in = sum(m.input_tokens or 0 for m in messages)
    tokens_out = sum(m.output_tokens or 0 for m in messages)
    assert ended.message_count == len(messages) == 7
    assert (ended.total_input_tokens, ended.total_output_tokens) == (tokens_in, tokens_out)
    after = await store.bots.get_bot(bot.id)
    assert after is not None
    assert after.conversation_count == 1
    # The title call is not a message: only message tokens are counted, once.
    assert after.total_tokens_used == tokens_in + tokens_out
    assert after.last_active_at == messages[-1].created_at
    assert ended.last_activity_at == messages[-1].created_at


async def test_ending_marks_completed_and_queues_the_final_extraction(
    store: Store, bot: Bot, provider: ScriptedProvider
) -> None:
    async with ChatEngine(store, provider) as engine:
        live = await engine.start_session(bot)
        await live.ask("hello")
        ended = await live.end()
        assert ended.status is SessionStatus.COMPLETED
        assert ended.ended_at is not None
        with pytest.raises(ConflictError):
            live.send("too late")
    jobs = await store.memory.list_pending_extractions(bot_id=bot.id)
    assert [(j.session_id, j.messages_start, j.messages_end) for j in jobs] == [(live.id, 1, 2)]


async def test_extraction_is_queued_every_n_user_turns_without_overlap(
    store: Store, bot: Bot, provider: ScriptedProvider
) -> None:
    async with ChatEngine(store, provider, extract_every=3) as engine:
        live = await engine.start_session(bot, greet=True)  # seq 1
        for i in range(7):
            await live.ask(f"turn {i}")  # seqs 2..15
        jobs = await store.memory.list_pending_extractions(bot_id=bot.id)
        assert [(j.messages_start, j.messages_end) for j in jobs] == [(1, 7), (8, 13)]
        await live.end()
    live2_jobs = await store.memory.list_pending_extractions(bot_id=bot.id)
    ranges = sorted((j.messages_start or 0, j.messages_end or 0) for j in live2_jobs)
    assert ranges == [(1, 7), (8, 13), (14, 15)]


async def test_extraction_ranges_stay_disjoint_across_resume_and_worker_completion(
    store: Store, bot: Bot, provider: ScriptedProvider
) -> None:
    covered: list[tuple[int, int]] = []

    async def drain() -> None:
        # The memory worker: run every job and delete it (its range is no longer queued).
        for job in await store.memory.claim_pending_extractions(limit=100):
            assert job.messages_start is not None and job.messages_end is not None
            covered.append((job.messages_start, job.messages_end))
            await store.memory.complete_extraction(job.id, [])

    async with ChatEngine(store, provider, extract_every=2) as engine:
        live = await engine.start_session(bot)
        for i in range(3):
            await live.ask(f"a{i}")
        await drain()
        await live.end()
        await drain()
        live = await engine.resume_session(live.id)
        await drain()
        await live.end()  # nothing said: nothing queued, status kept
        live = await engine.resume_session(live.id)
        for i in range(3):
            await live.ask(f"b{i}")
        await drain()
        await live.end()
    await drain()
    covered.sort()
    assert covered == [(1, 4), (5, 6), (7, 10), (11, 12)]


async def test_titles_are_made_in_the_background_without_delaying_the_reply(
    store: Store, bot: Bot, provider: ScriptedProvider
) -> None:
    provider.gates["title"] = asyncio.Event()
    provider.title_replies = ['"Trip Planning For Japan"']
    async with ChatEngine(store, provider) as engine:
        live = await engine.start_session(bot)
        reply = await live.ask("plan my trip to Japan")  # returns while the title is held
        assert reply.content
        assert live.session.title is None
        provider.gates["title"].set()
        await live.end()
    session = await store.chat.get_session(live.id)
    assert session is not None
    assert session.title == "Trip Planning For Japan"


async def test_a_failed_title_is_retried_on_a_later_turn(
    store: Store, bot: Bot, provider: ScriptedProvider
) -> None:
    provider.failures["title"] = [fail()]
    provider.title_replies = ["  'Second Attempt Title'  "]
    async with ChatEngine(store, provider) as engine:
        live = await engine.start_session(bot)
        await live.ask("first")
        for _ in range(50):
            await asyncio.sleep(0)
        assert live.session.title is None
        await live.ask("second")
        await live.end()
    assert len(provider.of("title")) == 2
    # Both attempts title the first exchange.
    assert all(r.messages[0].content == "first" for r in provider.of("title"))
    session = await store.chat.get_session(live.id)
    assert session is not None and session.title == "Second Attempt Title"


async def test_title_falls_back_to_the_first_words_and_is_never_empty(
    store: Store, bot: Bot, provider: ScriptedProvider
) -> None:
    provider.title_replies = ['""']
    async with ChatEngine(store, provider) as engine:
        live = await engine.start_session(bot)
        await live.ask("what is the capital of France exactly please")
        await live.end()
    session = await store.chat.get_session(live.id)
    assert session is not None and session.title == "what is the capital of France"

    provider.failures["title"] = [fail(), fail(), fail()]
    async with ChatEngine(store, provider, title_attempts=3) as engine:
        live = await engine.start_session(bot)
        for text in ("hello world", "again", "and again"):
            await live.ask(text)
        await live.end()
    session = await store.chat.get_session(live.id)
    assert session is not None and session.title == "hello world"


async def test_a_title_still_running_at_end_is_awaited_then_cancelled(
    store: Store, bot: Bot, provider: ScriptedProvider
) -> None:
    provider.gates["title"] = asyncio.Event()  # never opens
    async with ChatEngine(store, provider, title_wait=0.05) as engine:
        live = await engine.start_session(bot)
        await live.ask("tell me about owls")
        await live.end()
    session = await store.chat.get_session(live.id)
    assert session is not None and session.title == "tell me about owls"


async def test_resume_uses_the_latest_summary_and_the_messages_after_it(
    store: Store, bot: Bot, provider: ScriptedProvider
) -> None:
    provider.window = 1_000
    policy = WindowPolicy(keep_recent=4, summary_max_tokens=60, context_share=1.0)
    async with ChatEngine(store, provider, window=policy, max_tokens=100) as engine:
        live = await engine.start_session(bot)
        for i in range(12):
            await live.ask(f"My name is Bob and this is message {i}. " + "pad " * 40)
        assert live.summary is not None
        summary = live.summary
        await live.end()
    provider.requests.clear()
    async with ChatEngine(store, provider, window=policy, max_tokens=100) as engine:
        live = await engine.resume_session(summary.session_id)
        assert live.summary == summary
        assert [m.seq for m in live.window] == list(range(summary.messages_end + 1, 25))
        await live.ask("what is my name?")
        assert live.session.status is SessionStatus.ACTIVE
    request = provider.of("chat")[0]
    assert summary.summary in request.messages[0].content
    users = [t.content for t in request.messages if t.role == "user"]
    assert users[-1] == "what is my name?"
    # Nothing the summary covers is sent verbatim (user texts are unique; replies repeat).
    covered = await store.chat.get_messages(summary.session_id, limit=summary.messages_end)
    body = "\n".join(t.content for t in request.messages)
    assert all(m.content not in body for m in covered if m.role is MessageRole.USER)
    assert_valid_turns(request.messages)


async def test_resume_of_a_session_live_elsewhere_is_refused(
    store: Store, bot: Bot, provider: ScriptedProvider
) -> None:
    async with (
        ChatEngine(store, provider) as first,
        ChatEngine(store, provider) as second,
    ):
        live = await first.start_session(bot)
        with pytest.raises(SessionBusyError):
            await second.resume_session(live.id)
        with pytest.raises(SessionBusyError):
            await first.resume_session(live.id)
        # And the second engine's start-up recovery left it alone.
        assert await second.start() == []
        session = await store.chat.get_session(live.id)
        assert session is not None and session.status is SessionStatus.ACTIVE


async def test_disabled_bots_get_no_new_sessions(
    store: Store, bot: Bot, provider: ScriptedProvider
) -> None:
    from dataclasses import replace

    async with ChatEngine(store, provider) as engine:
        live = await engine.start_session(bot)
        await live.ask("hello")
        await live.end()
    await store.bots.update_bot(replace(bot, status=BotStatus.DISABLED))
    async with ChatEngine(store, provider) as engine:
        with pytest.raises(BotUnavailableError):
            await engine.start_session(bot)
        with pytest.raises(BotUnavailableError):
            await engine.resume_session(live.id)
        # The refused resume gave the session back.
        await store.bots.update_bot(replace(bot, status=BotStatus.ACTIVE))
        again = await engine.resume_session(live.id)
        assert again.id == live.id


async def test_recall_lines_reach_the_prompt_and_recall_errors_do_not_cost_the_reply(
    store: Store, bot: Bot, provider: ScriptedProvider
) -> None:
    calls: list[tuple[str, str, str | None]] = []

    async def recall(for_bot: Bot, user_text: str, *, user_id: str | None) -> Sequence[str]:
        calls.append((for_bot.name, user_text, user_id))
        if user_text == "boom":
            raise RuntimeError("vector store down")
        return ["User lives in Paris"]

    async with ChatEngine(store, provider, recall=recall) as engine:
        live = await engine.start_session(bot, user_id="slack:U1")
        await live.ask("where do I live?")
        await live.ask("boom")
        anonymous = await engine.start_session(bot)
        await anonymous.ask("hi")
    first, second, _ = provider.of("chat")
    assert first.system is not None and "<memories>" in first.system
    assert "- User lives in Paris" in first.system
    assert second.system is not None and "- User lives in Paris" not in second.system
    # The session's user reaches recall, every turn; None for a session without one.
    assert calls == [
        ("Ada", "where do I live?", "slack:U1"),
        ("Ada", "boom", "slack:U1"),
        ("Ada", "hi", None),
    ]


async def test_parallel_sessions_of_one_bot_keep_separate_exact_transcripts(
    store: Store, bot: Bot, provider: ScriptedProvider
) -> None:
    async with ChatEngine(store, provider) as engine:

        async def chat(tag: str) -> tuple[object, list[str]]:
            live = await engine.start_session(bot)
            sent = []
            for i in range(15):
                text = f"{tag} says {i}"
                sent.append(text)
                await live.ask(text)
            return live.id, sent

        results = await asyncio.gather(*(chat(f"user{k}") for k in range(4)))
    total = 0
    for session_id, sent in results:
        messages = await store.chat.get_messages(session_id)  # type: ignore[arg-type]
        assert [m.content for m in messages if m.role is MessageRole.USER] == sent
        assert [m.seq for m in messages] == list(range(1, 31))
        for user, reply in zip(messages[::2], messages[1::2], strict=True):
            assert reply.role is MessageRole.ASSISTANT
            assert user.content in reply.content  # the scripted echo answers its own turn
        session = await store.chat.get_session(session_id)  # type: ignore[arg-type]
        assert session is not None and session.status is SessionStatus.COMPLETED
        assert session.total_input_tokens == sum(m.input_tokens or 0 for m in messages)
        assert session.total_output_tokens == sum(m.output_tokens or 0 for m in messages)
        total += session.total_input_tokens + session.total_output_tokens
    after = await store.bots.get_bot(bot.id)
    assert after is not None
    assert after.conversation_count == 4
    assert after.total_tokens_used == total


async def test_turns_sent_back_to_back_run_in_order(
    store: Store, bot: Bot, provider: ScriptedProvider
) -> None:
    async with ChatEngine(store, provider) as engine:
        live = await engine.start_session(bot)
        turns = [live.send(f"q{i}") for i in range(5)]
        replies = [await t for t in turns]
    assert [r.seq for r in replies] == [2, 4, 6, 8, 10]
    messages = await store.chat.get_messages(live.id)
    assert [m.content for m in messages[::2]] == [f"q{i}" for i in range(5)]
    # Stamped when written: time follows seq, so last activity never moves backwards.
    stamps = [m.created_at for m in messages]
    assert stamps == sorted(stamps)
    session = await store.chat.get_session(live.id)
    assert session is not None and session.last_activity_at == stamps[-1]


async def test_the_engine_works_with_the_offline_provider(store: Store, bot: Bot) -> None:
    async with (
        OfflineProvider() as offline,
        ChatEngine(store, offline) as engine,
    ):
        live = await engine.start_session(bot, greet=True)
        await live.ask("My name is Bob and I live in Paris.")
        reply = await live.ask("What is my name?")
        assert "Bob" in reply.content
        ended = await live.end()
    assert ended.title
    assert ended.status is SessionStatus.COMPLETED


async def test_close_ends_open_sessions_and_leaves_no_tasks_behind(
    store: Store, bot: Bot, provider: ScriptedProvider
) -> None:
    before = asyncio.all_tasks()
    engine = ChatEngine(store, provider)
    await engine.start()
    live = await engine.start_session(bot)
    turn = live.send("unawaited turn")
    del turn
    await engine.close()
    assert asyncio.all_tasks() == before
    session = await store.chat.get_session(live.id)
    assert session is not None and session.status is SessionStatus.COMPLETED
    assert session.message_count == 2
    # Ownership was given up: anyone may take the session now.
    locks = locks_for_store(store)
    lock = await locks.try_acquire(live.id)
    assert lock is not None
    await lock.release()
    await locks.aclose()
    if isinstance(locks, FileSessionLocks):
        assert not locks.path_for(live.id).exists()
    with pytest.raises(ConflictError):
        await engine.start_session(bot)


async def test_a_resumed_untitled_session_is_titled_from_its_stored_first_exchange(
    store: Store, bot: Bot, provider: ScriptedProvider
) -> None:
    provider.failures["title"] = [fail()]
    async with ChatEngine(store, provider, title_attempts=2, title_wait=0.0) as engine:
        live = await engine.start_session(bot)
        await live.ask("the very first question")
        await live.end()
    # The title failed once and the session ended before a retry: the fallback was used.
    session = await store.chat.get_session(live.id)
    assert session is not None and session.title == "the very first question"

    async with ChatEngine(store, provider) as engine:
        untitled = await engine.start_session(bot)
        await engine.close()
    # A session that ended without a user message has no title to give...
    bare = await store.chat.get_session(untitled.id)
    assert bare is not None and bare.title is None
    await store.chat.save_message(
        ChatMessage(session_id=untitled.id, role=MessageRole.USER, content="stored question")
    )
    await store.chat.save_message(
        ChatMessage(session_id=untitled.id, role=MessageRole.ASSISTANT, content="stored answer")
    )
    provider.title_replies = ["Stored Question Title"]
    async with ChatEngine(store, provider) as engine:
        live = await engine.resume_session(untitled.id)
        await live.ask("a later question")
        await live.end()
    title_request = provider.of("title")[-1]
    assert [t.content for t in title_request.messages[:2]] == ["stored question", "stored answer"]
    resumed = await store.chat.get_session(untitled.id)
    assert resumed is not None and resumed.title == "Stored Question Title"


async def test_talking_to_anthropic_never_logs_the_api_key(
    store: Store, bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    key = "sk-ant-very-secret-key-123"
    caplog.set_level(logging.DEBUG)
    async with (
        FakeLlmServer() as server,
        AnthropicProvider(api_key=key, base_url=server.base_url) as anthropic,
        ChatEngine(store, anthropic) as engine,
    ):
        live = await engine.start_session(bot, greet=True)
        await live.ask("My name is Bob.")
        # The next reply is refused (the background title request may take the first refusal:
        # its failure is logged; the reply's is raised).
        server.enqueue(anthropic_error(401, "authentication_error", "invalid x-api-key"))
        server.enqueue(anthropic_error(401, "authentication_error", "invalid x-api-key"))
        with pytest.raises(AuthenticationError):
            await live.ask("and again")
        await live.end()
        assert all(r.headers.get("x-api-key") == key for r in server.requests)
    assert "failed" in caplog.text
    assert key not in caplog.text
    assert key not in repr(engine.provider)


async def test_clearing_a_live_session_starts_its_context_and_extraction_afresh(
    store: Store, bot: Bot, provider: ScriptedProvider
) -> None:
    async with ChatEngine(store, provider, extract_every=2) as engine:
        live = await engine.start_session(bot)
        for i in range(3):
            await live.ask(f"old {i}")
        assert await engine.clear_session(live) == 6
        await live.ask("new question")
        await live.end()
    request = provider.of("chat")[-1]
    assert [t.content for t in request.messages] == ["new question"]
    messages = await store.chat.get_messages(live.id)
    assert [(m.seq, m.content) for m in messages][0] == (1, "new question")
    jobs = await store.memory.list_pending_extractions(bot_id=bot.id)
    assert [(j.messages_start, j.messages_end) for j in jobs] == [(1, 2)]
