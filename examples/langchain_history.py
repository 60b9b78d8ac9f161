"""boternity as a LangChain chat message history, from plain synchronous code.

    pip install 'boternity[langchain]'
    python examples/langchain_history.py [--db PATH_OR_URL]

Runs three turns of a prompt | model chain through ``RunnableWithMessageHistory``, keeping
the conversation in boternity under the LangChain session id "ana", then prints what
boternity stored. The model is langchain_core's ``GenericFakeChatModel`` with canned replies,
so the example runs offline; any LangChain chat model (``ChatOpenAI``, ``ChatAnthropic``, …)
goes in its place. Run it again: the history is still there.
"""

from __future__ import annotations

import argparse
import asyncio
import warnings

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables.history import RunnableWithMessageHistory

from boternity import open_store
from boternity.integrations.langchain import BoternityChatMessageHistory
from boternity.models import Bot

# langchain-core 1.x marks RunnableWithMessageHistory deprecated (in favour of LangGraph's
# persistence) but still ships it; it is how most LangChain apps keep chat history today.
warnings.filterwarnings("ignore", message="RunnableWithMessageHistory is deprecated")

REPLIES = [
    "Nice to meet you, Ana! Porto is lovely.",
    "You told me you live in Porto.",
    "Your name is Ana.",
]


async def ensure_bot(db: str | None) -> None:
    async with open_store(db) as store:
        if await store.bots.get_bot_by_slug("luna") is None:
            await store.bots.create_bot(Bot(name="Luna"))


def main(db: str | None) -> None:
    asyncio.run(ensure_bot(db))
    model = GenericFakeChatModel(
        messages=iter(
            AIMessage(
                content=text,
                usage_metadata={"input_tokens": 30, "output_tokens": 9, "total_tokens": 39},
            )
            for text in REPLIES
        )
    )
    prompt = ChatPromptTemplate.from_messages(
        [
            ("system", "You are Luna, a kind assistant."),
            MessagesPlaceholder("history"),
            ("human", "{question}"),
        ]
    )
    # The history runs its own store on a private event-loop thread; close it when done.
    with BoternityChatMessageHistory.open("ana", db, bot="luna") as history:
        chain = RunnableWithMessageHistory(
            prompt | model,
            lambda session_id: history,  # one session here; usually: look it up by id
            input_messages_key="question",
            history_messages_key="history",
        )
        config = {"configurable": {"session_id": "ana"}}
        for question in ("Hi, I'm Ana and I live in Porto.", "Where do I live?", "Who am I?"):
            answer = chain.invoke({"question": question}, config)  # type: ignore[arg-type]
            print(f"> {question}\n{answer.content}\n")

        stored = history.messages
        print(f"{len(stored)} messages in boternity for LangChain session 'ana':")
        for message in stored[-6:]:
            print(f"  {message.type}: {message.content}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--db", help="path or URL (default: BOTERNITY_DATABASE_URL or ~/.boternity)"
    )
    main(parser.parse_args().db)
