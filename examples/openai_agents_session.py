"""boternity as the session store of the OpenAI Agents SDK.

    pip install 'boternity[openai-agents]'
    python examples/openai_agents_session.py [--db PATH_OR_URL] [--model gpt-4.1-mini]

Runs two turns of an agent with a tool through the SDK's ``Runner``, keeping the
conversation in boternity under the SDK session id "ana", then prints what boternity stored.
Without ``--model`` the agent uses a small scripted model, so the example runs offline; with
``--model`` (and ``OPENAI_API_KEY`` set) it uses that OpenAI model. Run it again: the
session continues where it stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from agents import Agent, Model, ModelResponse, RunConfig, Runner, Usage, function_tool
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

from boternity import open_store
from boternity.integrations.openai_agents import BoternitySession
from boternity.models import Bot


@function_tool
def get_weather(city: str) -> str:
    """Today's weather in a city."""
    return f"Sunny and 22°C in {city}"


class OfflineModel(Model):
    """Calls get_weather for the first question, then answers from the conversation."""

    async def get_response(
        self, system_instructions: Any, input: Any, *args: Any, **kw: Any
    ) -> Any:
        history: list[Any] = (
            [{"role": "user", "content": input}] if isinstance(input, str) else input
        )
        last = history[-1]
        usage = Usage(requests=1, input_tokens=40 + 10 * len(history), output_tokens=12)
        if last.get("type") == "function_call_output":
            text = f"{last['output']}. Enjoy Porto!"
        elif "weather" in str(last.get("content", "")):
            call = ResponseFunctionToolCall(
                type="function_call",
                id="fc_1",
                call_id=f"call_{len(history)}",
                name="get_weather",
                arguments=json.dumps({"city": "Porto"}),
            )
            return ModelResponse(output=[call], usage=usage, response_id=None)
        else:
            said = [h["content"] for h in history if h.get("role") == "user"]
            text = f"So far you said: {' / '.join(str(s) for s in said[:-1]) or 'nothing'}."
        reply = ResponseOutputMessage(
            id="msg_1",
            type="message",
            role="assistant",
            status="completed",
            content=[ResponseOutputText(type="output_text", text=text, annotations=[])],
        )
        return ModelResponse(output=[reply], usage=usage, response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


async def main(db: str | None, model: str | None) -> None:
    async with open_store(db) as store:
        if await store.bots.get_bot_by_slug("porto-guide") is None:
            await store.bots.create_bot(Bot(name="Porto guide"))

        agent = Agent(
            name="Porto guide",
            instructions="You are a friendly guide to Porto. Be brief.",
            model=model or OfflineModel(),
            tools=[get_weather],
        )
        session = BoternitySession("ana", store=store, bot="porto-guide")
        config = RunConfig(tracing_disabled=model is None)
        for question in ("What's the weather like in Porto today?", "What did I ask you?"):
            result = await Runner.run(agent, question, session=session, run_config=config)
            print(f"> {question}\n{result.final_output}\n")

        chat_id = await session.chat_session_id()
        assert chat_id is not None
        chat = await store.chat.get_session(chat_id)
        assert chat is not None
        print(f"boternity session {chat_id} ({chat.message_count} messages):")
        for m in await store.chat.get_recent_messages(chat_id, 10):
            print(f"  [{m.seq}] {m.role.value}: {m.content}")
        print(f"tokens: {chat.total_input_tokens} in, {chat.total_output_tokens} out")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--db", help="path or URL (default: BOTERNITY_DATABASE_URL or ~/.boternity)"
    )
    parser.add_argument("--model", help="an OpenAI model name (needs OPENAI_API_KEY)")
    args = parser.parse_args()
    asyncio.run(main(args.db, args.model))
