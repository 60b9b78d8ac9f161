"""BoternitySession under the real OpenAI Agents SDK, on every backend (no network: the
model is scripted)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

import pytest
from agents import Agent, RunConfig, Runner, SessionSettings, TResponseInputItem, function_tool

from boternity import Store
from boternity.errors import ConflictError, NotFoundError, ValidationError
from boternity.integrations.openai_agents import ITEM_KEY, BoternitySession
from boternity.models import Bot, MessageRole
from tests.integrations.agents_fakes import ScriptedModel, reasoning, text, tool_call

NO_TRACING = RunConfig(tracing_disabled=True)


def items(*contents: str, role: str = "user") -> list[TResponseInputItem]:
    return [cast(TResponseInputItem, {"role": role, "content": c}) for c in contents]


def contents(found: list[TResponseInputItem]) -> list[Any]:
    return [cast(dict[str, Any], i).get("content") for i in found]


# --- a real Runner turn -------------------------------------------------------------------


async def run(agent: Agent[Any], question: str, session: BoternitySession, how: str) -> Any:
    if how == "run":
        return await Runner.run(agent, question, session=session, run_config=NO_TRACING)
    streamed = Runner.run_streamed(agent, question, session=session, run_config=NO_TRACING)
    async for _event in streamed.stream_events():
        pass
    return streamed


@pytest.mark.parametrize("how", ["run", "run_streamed"])
async def test_runner_turn_with_a_tool_call_is_stored_and_seen_next_turn(
    store: Store, bot: Bot, how: str
) -> None:
    calls: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        calls.append(city)
        return f"Sunny, 22°C in {city}"

    model = ScriptedModel()
    agent = Agent(name="Luna", instructions="Be brief.", model=model, tools=[get_weather])
    session = BoternitySession("user-42", store=store, bot=bot.slug)

    model.then(
        reasoning("The user wants the weather; call the tool."),
        tool_call("get_weather", json.dumps({"city": "Porto"})),
        tokens=(100, 20),
    )
    model.then(text("It is sunny in Porto: 22°C."), tokens=(150, 10))
    first = await run(agent, "What's the weather in Porto?", session, how)
    assert first.final_output == "It is sunny in Porto: 22°C."
    assert calls == ["Porto"]

    # What boternity holds, through its own API.
    chat_id = await session.chat_session_id()
    assert chat_id is not None
    stored = await store.chat.get_messages(chat_id)
    assert [(m.seq, m.role, m.content) for m in stored] == [
        (1, MessageRole.USER, "What's the weather in Porto?"),
        (2, MessageRole.SYSTEM, "[reasoning] The user wants the weather; call the tool."),
        (3, MessageRole.ASSISTANT, '[tool call get_weather] {"city": "Porto"}'),
        (4, MessageRole.ASSISTANT, "[tool output] Sunny, 22°C in Porto"),
        (5, MessageRole.ASSISTANT, "It is sunny in Porto: 22°C."),
    ]
    raw = [m.metadata[ITEM_KEY] for m in stored if m.metadata is not None]
    assert [r.get("type") for r in raw] == [
        None,
        "reasoning",
        "function_call",
        "function_call_output",
        "message",
    ]
    assert raw[2]["call_id"] == raw[3]["call_id"] == "call_1"
    chat = await store.chat.get_session(chat_id)
    assert chat is not None and chat.message_count == 5
    # The SDK's usage for the run lands in the totals (250 in, 30 out over two requests).
    assert (chat.total_input_tokens, chat.total_output_tokens) == (250, 30)
    assert sum(m.input_tokens or 0 for m in stored) == 250
    stored_bot = await store.bots.get_bot(bot.id)
    assert stored_bot is not None and stored_bot.total_tokens_used == 280

    # The next turn sends the whole stored history, item for item, then the new input.
    history = await session.get_items()
    assert history == raw
    model.then(text("You asked about Porto."), tokens=(200, 5))
    second = await run(agent, "Which city did I ask about?", session, how)
    assert second.final_output == "You asked about Porto."
    sent = model.inputs[-1]
    assert [cast(dict[str, Any], i).get("type") for i in sent[:5]] == [r.get("type") for r in raw]
    assert cast(dict[str, Any], sent[-1])["content"] == "Which city did I ask about?"
    assert await store.chat.get_message_count(chat_id) == 7
    chat = await store.chat.get_session(chat_id)
    assert chat is not None and (chat.total_input_tokens, chat.total_output_tokens) == (450, 35)


async def test_runner_with_a_session_limit_sends_only_the_latest_items(
    store: Store, bot: Bot
) -> None:
    session = BoternitySession("limited", store=store, bot=bot.slug)
    await session.add_items(items(*(f"Turn {i}" for i in range(10))))
    model = ScriptedModel()
    model.then(text("Got it"))
    await Runner.run(
        Agent(name="a", model=model),
        "New question",
        session=session,
        run_config=RunConfig(tracing_disabled=True, session_settings=SessionSettings(limit=2)),
    )
    assert contents(model.inputs[-1]) == ["Turn 8", "Turn 9", "New question"]


async def test_two_session_ids_keep_separate_histories(store: Store, bot: Bot) -> None:
    model = ScriptedModel()
    agent = Agent(name="a", model=model)
    cats = BoternitySession("cats", store=store, bot=bot.slug)
    dogs = BoternitySession("dogs", store=store, bot=bot.slug)
    model.then(text("Cats!"))
    await Runner.run(agent, "I like cats", session=cats, run_config=NO_TRACING)
    model.then(text("Dogs!"))
    await Runner.run(agent, "I like dogs", session=dogs, run_config=NO_TRACING)
    model.then(text("You like cats"))
    await Runner.run(agent, "What do I like?", session=cats, run_config=NO_TRACING)
    sent = contents(model.inputs[-1])
    assert "I like cats" in sent and "I like dogs" not in sent


# --- the SDK's session behaviours, on boternity -------------------------------------------


async def test_items_round_trip_and_clear(store: Store, bot: Bot) -> None:
    session = BoternitySession("direct", store=store, bot=bot.slug)
    assert await session.get_items() == []
    await session.add_items(items("Hello") + items("Hi there!", role="assistant"))
    assert await session.get_items() == [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi there!"},
    ]
    await session.clear_session()
    assert await session.get_items() == []
    await session.add_items(items("again"))
    assert contents(await session.get_items()) == ["again"]
    chat_id = await session.chat_session_id()
    assert chat_id is not None
    assert [m.seq for m in await store.chat.get_messages(chat_id)] == [1]


async def test_unicode_quotes_and_sql_looking_content(store: Store, bot: Bot) -> None:
    session = BoternitySession("special ' \" ; -- 🔑", store=store, bot=bot.slug)
    sent = items(
        "こんにちは",
        "😊👍",
        "Привет",
        "O'Reilly",
        "DROP TABLE sessions;",
        '"SELECT * FROM users WHERE name = "admin";"',
        "Robert'); DROP TABLE students;--",
        "%_\\",
    )
    await session.add_items(sent)
    assert await session.get_items() == sent
    assert await store.chat.count_sessions() == 1


async def test_limits(store: Store, bot: Bot) -> None:
    session = BoternitySession("limits", store=store, bot=bot.slug)
    await session.add_items(items(*(f"Message {i}" for i in range(6))))
    assert contents(await session.get_items()) == [f"Message {i}" for i in range(6)]
    assert contents(await session.get_items(limit=2)) == ["Message 4", "Message 5"]
    assert contents(await session.get_items(limit=4)) == [f"Message {i}" for i in range(2, 6)]
    assert len(await session.get_items(limit=10)) == 6
    assert await session.get_items(limit=0) == []
    assert len(await session.get_items(limit=-1)) == 6
    with_default = BoternitySession(
        "limits", store=store, bot=bot.slug, session_settings=SessionSettings(limit=3)
    )
    assert contents(await with_default.get_items()) == [f"Message {i}" for i in range(3, 6)]
    assert len(await with_default.get_items(limit=5)) == 5


async def test_pop_item(store: Store, bot: Bot) -> None:
    session = BoternitySession("pop", store=store, bot=bot.slug)
    assert await session.pop_item() is None  # nothing stored yet: no session is created
    assert await store.chat.count_sessions() == 0
    await session.add_items(
        items("Hello") + items("Hi there!", role="assistant") + items("How are you?")
    )
    assert await session.pop_item() == {"role": "user", "content": "How are you?"}
    assert contents(await session.get_items()) == ["Hello", "Hi there!"]
    await session.add_items(items("Replaced"))
    chat_id = await session.chat_session_id()
    assert chat_id is not None
    assert [(m.seq, m.content) for m in await store.chat.get_messages(chat_id)] == [
        (1, "Hello"),
        (2, "Hi there!"),
        (3, "Replaced"),
    ]
    assert [await session.pop_item() for _ in range(4)] == [
        {"role": "user", "content": "Replaced"},
        {"role": "assistant", "content": "Hi there!"},
        {"role": "user", "content": "Hello"},
        None,
    ]
    assert await session.get_items() == []


async def test_pop_only_touches_its_own_session(store: Store, bot: Bot) -> None:
    one = BoternitySession("one", store=store, bot=bot.slug)
    two = BoternitySession("two", store=store, bot=bot.slug)
    await one.add_items(items("Session 1 message"))
    await two.add_items(items("Session 2 message 1", "Session 2 message 2"))
    popped = await two.pop_item()
    assert popped == {"role": "user", "content": "Session 2 message 2"}
    assert contents(await one.get_items()) == ["Session 1 message"]
    assert contents(await two.get_items()) == ["Session 2 message 1"]


async def test_concurrent_tasks_on_one_session_id(store: Store, bot: Bot) -> None:
    # Several adapters (as separate requests would make) race to create the session.
    sessions = [BoternitySession("shared", store=store, bot=bot.slug) for _ in range(10)]
    await asyncio.gather(
        *(s.add_items(items(f"Message {i}a", f"Message {i}b")) for i, s in enumerate(sessions))
    )
    found = contents(await sessions[0].get_items())
    assert sorted(found) == sorted(f"Message {i}{x}" for i in range(10) for x in "ab")
    # Each add_items call is one transaction: its items stay together, in order.
    for i in range(10):
        assert found.index(f"Message {i}b") == found.index(f"Message {i}a") + 1
    assert await store.chat.count_sessions() == 1
    popped = await asyncio.gather(*(s.pop_item() for s in sessions[:5]))
    assert len({json.dumps(p) for p in popped}) == 5
    assert len(await sessions[0].get_items()) == 15


async def test_many_sessions_in_one_store(store: Store, bot: Bot) -> None:
    other = await store.bots.create_bot(Bot(name="Sol"))
    pairs = [(b, f"s{i}") for b in (bot.slug, str(other.id)) for i in range(5)]
    sessions = [BoternitySession(key, store=store, bot=b) for b, key in pairs]
    await asyncio.gather(
        *(
            s.add_items(items(f"{b}:{s.session_id}"))
            for (b, _), s in zip(pairs, sessions, strict=True)
        )
    )
    for (b, key), s in zip(pairs, sessions, strict=True):
        assert contents(await s.get_items()) == [f"{b}:{key}"]
    assert await store.chat.count_sessions() == 10


async def test_items_keep_their_exact_shape(store: Store, bot: Bot) -> None:
    session = BoternitySession("shapes", store=store, bot=bot.slug)
    shaped: list[dict[str, Any]] = [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "look"},
                {"type": "input_image", "image_url": "data:x", "detail": "auto"},
            ],
        },
        {
            "type": "function_call",
            "call_id": "c1",
            "name": "f",
            "arguments": '{"a": [1, 2.5, null]}',
            "id": "fc1",
            "status": "completed",
        },
        {"type": "function_call_output", "call_id": "c1", "output": "done"},
        {"type": "reasoning", "id": "r1", "summary": [], "encrypted_content": "abc"},
        {
            "type": "web_search_call",
            "id": "w1",
            "status": "completed",
            "action": {"type": "search", "query": "q"},
        },
        {
            "id": "m1",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": "ok", "annotations": []}],
        },
    ]
    await session.add_items(cast(list[TResponseInputItem], shaped))
    assert await session.get_items() == shaped
    chat_id = await session.chat_session_id()
    assert chat_id is not None
    stored = await store.chat.get_messages(chat_id)
    assert [(m.role, m.content) for m in stored] == [
        (MessageRole.USER, "look\n[image]"),
        (MessageRole.ASSISTANT, '[tool call f] {"a": [1, 2.5, null]}'),
        (MessageRole.ASSISTANT, "[tool output] done"),
        (MessageRole.SYSTEM, "[reasoning]"),
        (MessageRole.ASSISTANT, "[web_search_call]"),
        (MessageRole.ASSISTANT, "ok"),
    ]


async def test_messages_written_by_boternity_itself_read_as_plain_items(
    store: Store, bot: Bot
) -> None:
    from boternity.models import ChatMessage

    session = BoternitySession("mixed", store=store, bot=bot.slug)
    await session.add_items(items("from the SDK"))
    chat_id = await session.chat_session_id()
    assert chat_id is not None
    await store.chat.save_message(
        ChatMessage(session_id=chat_id, role=MessageRole.ASSISTANT, content="from boternity")
    )
    assert await session.get_items() == [
        {"role": "user", "content": "from the SDK"},
        {"role": "assistant", "content": "from boternity"},
    ]


async def test_a_failed_add_stores_nothing(store: Store, bot: Bot) -> None:
    session = BoternitySession("atomic", store=store, bot=bot.slug)
    await session.add_items(items("kept"))
    with pytest.raises(ValidationError):
        await session.add_items(items("fine", "bad \x00 text"))
    with pytest.raises(ValidationError):
        await session.add_items([cast(TResponseInputItem, {"role": "user", "content": object()})])
    assert contents(await session.get_items()) == ["kept"]


async def test_a_session_deleted_behind_the_adapter_is_made_again(store: Store, bot: Bot) -> None:
    session = BoternitySession("deleted", store=store, bot=bot.slug)
    await session.add_items(items("one"))
    first = await session.chat_session_id()
    assert first is not None
    await store.chat.delete_session(first)
    assert await session.pop_item() is None
    await session.add_items(items("two"))
    assert contents(await session.get_items()) == ["two"]
    assert await session.chat_session_id() != first


async def test_missing_bot_is_not_found(store: Store) -> None:
    session = BoternitySession("x", store=store, bot="nobody")
    with pytest.raises(NotFoundError, match="nobody"):
        await session.add_items(items("hi"))


async def test_bot_by_id(store: Store, bot: Bot) -> None:
    by_id = BoternitySession("k", store=store, bot=bot.id)
    by_text = BoternitySession("k", store=store, bot=str(bot.id))
    await by_id.add_items(items("hi"))
    assert contents(await by_text.get_items()) == ["hi"]


async def test_open_from_a_url_closes_its_store(db_url: str) -> None:
    from boternity import open_store

    async with open_store(db_url) as store:
        await store.bots.create_bot(Bot(name="Luna"))
    async with await BoternitySession.open("user-1", db_url, bot="luna") as session:
        await session.add_items(items("persisted"))
    async with await BoternitySession.open("user-1", db_url, bot="luna") as session:
        assert contents(await session.get_items()) == ["persisted"]
    with pytest.raises(NotFoundError):
        await BoternitySession.open("user-1", db_url, bot="nobody")


async def test_a_session_belongs_to_its_user_and_is_refused_to_another(
    store: Store, bot: Bot
) -> None:
    anas = BoternitySession("support-42", store=store, bot=bot.slug, user_id="slack:ana")
    await anas.add_items(items("My order is late"))
    [stored] = await store.chat.list_sessions(bot.id, user_id="slack:ana")
    assert stored.id == await anas.chat_session_id()
    for other in ("slack:ben", None):
        intruder = BoternitySession("support-42", store=store, bot=bot.slug, user_id=other)
        with pytest.raises(ConflictError, match="another user"):
            await intruder.get_items()
        with pytest.raises(ConflictError, match="another user"):
            await intruder.add_items(items("show me"))
    assert [m.content for m in await store.chat.get_messages(stored.id)] == ["My order is late"]
    with pytest.raises(ValidationError, match="user_id"):
        BoternitySession("x", store=store, bot=bot.slug, user_id=" ")
