"""BoternityChatMessageHistory under real LangChain (langchain_core's fake chat models, no
network), on every backend."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.prompt_values import PromptValue
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import RunnableLambda
from langchain_core.runnables.history import RunnableWithMessageHistory

from boternity import Store, open_store
from boternity.errors import ConflictError, NotFoundError, ValidationError
from boternity.integrations.langchain import MESSAGE_KEY, BoternityChatMessageHistory
from boternity.models import Bot, MessageRole

# langchain-core 1.x deprecates RunnableWithMessageHistory (for LangGraph's persistence) but
# still ships it, and it is how most LangChain apps use a chat message history today.
pytestmark = pytest.mark.filterwarnings("ignore:RunnableWithMessageHistory is deprecated")


def replies(*texts: str, tokens: tuple[int, int] = (10, 2)) -> Iterator[AIMessage]:
    return iter(
        AIMessage(
            content=t,
            usage_metadata={
                "input_tokens": tokens[0],
                "output_tokens": tokens[1],
                "total_tokens": sum(tokens),
            },
        )
        for t in texts
    )


def chain_with_history(
    model: GenericFakeChatModel, history: Any, seen: list[list[BaseMessage]]
) -> RunnableWithMessageHistory:
    prompt = ChatPromptTemplate.from_messages(
        [("system", "You are Luna."), MessagesPlaceholder("history"), ("human", "{question}")]
    )

    def record(value: PromptValue) -> PromptValue:
        seen.append(value.to_messages())
        return value

    return RunnableWithMessageHistory(
        prompt | RunnableLambda(record) | model,
        history,
        input_messages_key="question",
        history_messages_key="history",
    )


def config(session_id: str) -> Any:
    return {"configurable": {"session_id": session_id}}


# --- RunnableWithMessageHistory -----------------------------------------------------------


async def test_runnable_with_message_history_over_several_turns(store: Store, bot: Bot) -> None:
    seen: list[list[BaseMessage]] = []
    model = GenericFakeChatModel(messages=replies("Hi Ana!", "You live in Porto.", "Ana."))
    chain = chain_with_history(
        model,
        lambda sid: BoternityChatMessageHistory(sid, store=store, bot=bot.slug),
        seen,
    )
    questions = ["Hi, I'm Ana and I live in Porto.", "Where do I live?", "What's my name?"]
    answers = [(await chain.ainvoke({"question": q}, config("ana"))).content for q in questions]
    assert answers == ["Hi Ana!", "You live in Porto.", "Ana."]
    # The third call saw the system prompt, the four stored messages and the new question.
    assert [m.content for m in seen[2]] == [
        "You are Luna.",
        questions[0],
        "Hi Ana!",
        questions[1],
        "You live in Porto.",
        questions[2],
    ]
    # What boternity holds, through its own API.
    history = BoternityChatMessageHistory("ana", store=store, bot=bot.slug)
    chat_id = await history.chat_session_id()
    assert chat_id is not None
    stored = await store.chat.get_messages(chat_id)
    assert [(m.seq, m.role, m.content) for m in stored] == [
        (1, MessageRole.USER, questions[0]),
        (2, MessageRole.ASSISTANT, "Hi Ana!"),
        (3, MessageRole.USER, questions[1]),
        (4, MessageRole.ASSISTANT, "You live in Porto."),
        (5, MessageRole.USER, questions[2]),
        (6, MessageRole.ASSISTANT, "Ana."),
    ]
    assert all(m.metadata is not None and MESSAGE_KEY in m.metadata for m in stored)
    chat = await store.chat.get_session(chat_id)
    assert chat is not None and (chat.total_input_tokens, chat.total_output_tokens) == (30, 6)


async def test_sync_invoke_from_worker_threads_of_a_running_loop(store: Store, bot: Bot) -> None:
    seen: list[list[BaseMessage]] = []
    model = GenericFakeChatModel(messages=replies("one", "two"))
    loop = asyncio.get_running_loop()
    chain = chain_with_history(
        model,
        lambda sid: BoternityChatMessageHistory(sid, store=store, bot=bot.slug, loop=loop),
        seen,
    )
    first = await asyncio.to_thread(chain.invoke, {"question": "first"}, config("t"))
    second = await asyncio.to_thread(chain.invoke, {"question": "second"}, config("t"))
    assert (first.content, second.content) == ("one", "two")
    assert [m.content for m in seen[1]] == ["You are Luna.", "first", "one", "second"]
    history = BoternityChatMessageHistory("t", store=store, bot=bot.slug)
    assert [m.content for m in await history.aget_messages()] == ["first", "one", "second", "two"]
    # The sync API, on the loop's own thread, would block the loop: refused.
    with pytest.raises(RuntimeError, match="aget_messages"):
        _ = history.messages


def test_sync_use_from_plain_code(db_url: str) -> None:
    async def make_bot() -> None:
        async with open_store(db_url) as store:
            await store.bots.create_bot(Bot(name="Luna"))

    asyncio.run(make_bot())
    seen: list[list[BaseMessage]] = []
    with (
        BoternityChatMessageHistory.open("plain", db_url, bot="luna") as plain,
        BoternityChatMessageHistory.open("other", db_url, bot="luna") as other,
    ):
        histories = {"plain": plain, "other": other}
        chain = chain_with_history(
            GenericFakeChatModel(messages=replies("a1", "b1", "a2")),
            lambda session_id: histories[session_id],
            seen,
        )
        assert chain.invoke({"question": "qa1"}, config("plain")).content == "a1"
        assert chain.invoke({"question": "qb1"}, config("other")).content == "b1"
        assert chain.invoke({"question": "qa2"}, config("plain")).content == "a2"
        assert [m.content for m in plain.messages] == ["qa1", "a1", "qa2", "a2"]
        assert [m.content for m in other.messages] == ["qb1", "b1"]
        # Concurrent writers from threads: every message kept, each batch in order.
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(
                pool.map(
                    lambda i: plain.add_messages(
                        [HumanMessage(content=f"t{i}"), AIMessage(content=f"r{i}")]
                    ),
                    range(8),
                )
            )
        found = [str(m.content) for m in plain.messages]
        assert len(found) == 4 + 16
        for i in range(8):
            assert found.index(f"r{i}") == found.index(f"t{i}") + 1
        plain.clear()
        assert plain.messages == []
        assert [m.content for m in other.messages] == ["qb1", "b1"]
    # Reopened: durable.
    with BoternityChatMessageHistory.open("other", db_url, bot="luna") as again:
        assert [m.content for m in again.messages] == ["qb1", "b1"]
    with pytest.raises(NotFoundError):
        BoternityChatMessageHistory.open("x", db_url, bot="nobody")


async def test_sync_api_without_a_known_loop_is_refused(store: Store, bot: Bot) -> None:
    def make_and_read() -> list[BaseMessage]:
        history = BoternityChatMessageHistory("x", store=store, bot=bot.slug)  # no loop here
        return history.messages

    with pytest.raises(RuntimeError, match="does not know the event loop"):
        await asyncio.to_thread(make_and_read)


# --- the frameworks' history behaviours, on boternity -------------------------------------


async def test_messages_round_trip_with_everything_they_carry(store: Store, bot: Bot) -> None:
    history = BoternityChatMessageHistory("full", store=store, bot=bot.slug)
    sent: list[BaseMessage] = [
        SystemMessage(content="Be kind.", id="s1"),
        HumanMessage(
            content=[
                {"type": "text", "text": "What's this?"},
                {"type": "image_url", "image_url": {"url": "data:x"}},
            ],
            id="h1",
            name="ana",
            additional_kwargs={"x": [1, 2.5, None]},
        ),
        AIMessage(
            content="",
            id="a1",
            tool_calls=[
                {"name": "lookup", "args": {"q": "Porto ☀"}, "id": "call_1", "type": "tool_call"}
            ],
            usage_metadata={"input_tokens": 7, "output_tokens": 3, "total_tokens": 10},
            response_metadata={"model_name": "fake"},
        ),
        ToolMessage(content="22°C", tool_call_id="call_1", name="lookup", id="t1"),
        AIMessage(content="It is 22°C.", id="a2"),
        ChatMessage(content="Looks fine.", role="critic"),
        FunctionMessage(content="42", name="answer"),
    ]
    await history.aadd_messages(sent)
    assert await history.aget_messages() == sent
    chat_id = await history.chat_session_id()
    assert chat_id is not None
    stored = await store.chat.get_messages(chat_id)
    assert [(m.role, m.content) for m in stored] == [
        (MessageRole.SYSTEM, "Be kind."),
        (MessageRole.USER, "What's this?"),
        (MessageRole.ASSISTANT, '[tool call lookup] {"q": "Porto ☀"}'),
        (MessageRole.ASSISTANT, "[tool output] 22°C"),
        (MessageRole.ASSISTANT, "It is 22°C."),
        (MessageRole.ASSISTANT, "Looks fine."),
        (MessageRole.ASSISTANT, "42"),
    ]
    assert (stored[2].input_tokens, stored[2].output_tokens) == (7, 3)


async def test_unicode_quotes_and_sql_looking_content(store: Store, bot: Bot) -> None:
    history = BoternityChatMessageHistory("O'Reilly; --", store=store, bot=bot.slug)
    texts = [
        "こんにちは",
        "😊👍",
        "Привет",
        "O'Reilly",
        "DROP TABLE sessions;",
        "Robert'); DROP TABLE students;--",
        '"SELECT * FROM users WHERE name = "admin";"',
    ]
    await history.aadd_messages([HumanMessage(content=t) for t in texts])
    assert [m.content for m in await history.aget_messages()] == texts


async def test_multiple_sessions_and_clear(store: Store, bot: Bot) -> None:
    one = BoternityChatMessageHistory("123", store=store, bot=bot.slug)
    two = BoternityChatMessageHistory("456", store=store, bot=bot.slug)
    assert await one.aget_messages() == []
    await one.aadd_messages([HumanMessage(content="Hello!"), AIMessage(content="Hi there!")])
    await one.aadd_messages([HumanMessage(content="Whats cracking?")])
    await two.aadd_messages([HumanMessage(content="Hellox")])
    got = await one.aget_messages()
    assert [type(m) for m in got] == [HumanMessage, AIMessage, HumanMessage]
    assert [m.content for m in got] == ["Hello!", "Hi there!", "Whats cracking?"]
    assert [m.content for m in await two.aget_messages()] == ["Hellox"]
    await one.aclear()
    assert await one.aget_messages() == []
    assert [m.content for m in await two.aget_messages()] == ["Hellox"]
    await one.aclear()  # clearing an empty history is fine
    await BoternityChatMessageHistory("never used", store=store, bot=bot.slug).aclear()
    assert await store.chat.count_sessions() == 2


async def test_concurrent_tasks_on_one_session(store: Store, bot: Bot) -> None:
    histories = [
        BoternityChatMessageHistory("shared", store=store, bot=bot.slug) for _ in range(10)
    ]
    await asyncio.gather(
        *(
            h.aadd_messages([HumanMessage(content=f"q{i}"), AIMessage(content=f"a{i}")])
            for i, h in enumerate(histories)
        )
    )
    found = [str(m.content) for m in await histories[0].aget_messages()]
    assert sorted(found) == sorted(f"{x}{i}" for i in range(10) for x in "qa")
    for i in range(10):
        assert found.index(f"a{i}") == found.index(f"q{i}") + 1
    assert await store.chat.count_sessions() == 1


async def test_a_failed_add_stores_nothing(store: Store, bot: Bot) -> None:
    history = BoternityChatMessageHistory("atomic", store=store, bot=bot.slug)
    await history.aadd_messages([HumanMessage(content="kept")])
    with pytest.raises(ValidationError):
        await history.aadd_messages([HumanMessage(content="fine"), AIMessage(content="nul \x00")])
    with pytest.raises(ValidationError):
        await history.aadd_messages(["not a message"])  # type: ignore[list-item]
    await history.aadd_messages([])
    assert [m.content for m in await history.aget_messages()] == ["kept"]


async def test_messages_written_by_boternity_itself_read_as_their_role(
    store: Store, bot: Bot
) -> None:
    from boternity.models import ChatMessage as Stored

    history = BoternityChatMessageHistory("mixed", store=store, bot=bot.slug)
    await history.aadd_messages([HumanMessage(content="from LangChain")])
    chat_id = await history.chat_session_id()
    assert chat_id is not None
    for role in (MessageRole.ASSISTANT, MessageRole.SYSTEM, MessageRole.USER):
        await store.chat.save_message(Stored(session_id=chat_id, role=role, content=role.value))
    assert await history.aget_messages() == [
        HumanMessage(content="from LangChain"),
        AIMessage(content="assistant"),
        SystemMessage(content="system"),
        HumanMessage(content="user"),
    ]


async def test_limit_gives_the_latest_messages(store: Store, bot: Bot) -> None:
    full = BoternityChatMessageHistory("window", store=store, bot=bot.slug)
    await full.aadd_messages([HumanMessage(content=f"m{i}") for i in range(6)])
    window = BoternityChatMessageHistory("window", store=store, bot=bot.slug, limit=2)
    assert [m.content for m in await window.aget_messages()] == ["m4", "m5"]
    none = BoternityChatMessageHistory("window", store=store, bot=bot.slug, limit=0)
    assert await none.aget_messages() == []
    assert len(await full.aget_messages()) == 6
    with pytest.raises(ValidationError):
        BoternityChatMessageHistory("window", store=store, bot=bot.slug, limit=-1)


async def test_a_history_belongs_to_its_user_and_is_refused_to_another(
    store: Store, bot: Bot
) -> None:
    anas = BoternityChatMessageHistory("chat-7", store=store, bot=bot.slug, user_id="ana")
    await anas.aadd_messages([HumanMessage(content="I am Ana")])
    [stored] = await store.chat.list_sessions(bot.id, user_id="ana")
    bens = BoternityChatMessageHistory("chat-7", store=store, bot=bot.slug, user_id="ben")
    with pytest.raises(ConflictError, match="another user"):
        await bens.aget_messages()
    with pytest.raises(ConflictError, match="another user"):
        await bens.aadd_messages([HumanMessage(content="hi")])
    assert [m.content for m in await store.chat.get_messages(stored.id)] == ["I am Ana"]
