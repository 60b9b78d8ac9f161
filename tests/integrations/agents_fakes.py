"""A scripted Agents SDK model that never leaves the machine (after the SDK's own testing
pattern: a ``Model`` whose ``get_response`` returns queued outputs and records its input)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from agents.agent_output import AgentOutputSchemaBase
from agents.handoffs import Handoff
from agents.items import ModelResponse, TResponseInputItem, TResponseOutputItem
from agents.model_settings import ModelSettings
from agents.models.interface import Model, ModelTracing
from agents.tool import Tool
from agents.usage import Usage
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseReasoningItem,
    ResponseUsage,
)
from openai.types.responses.response_reasoning_item import Summary
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails


def text(words: str, item_id: str = "msg_1") -> ResponseOutputMessage:
    return ResponseOutputMessage(
        id=item_id,
        type="message",
        role="assistant",
        status="completed",
        content=[ResponseOutputText(type="output_text", text=words, annotations=[])],
    )


def tool_call(name: str, arguments: str, call_id: str = "call_1") -> ResponseFunctionToolCall:
    return ResponseFunctionToolCall(
        id=f"fc_{call_id}", type="function_call", call_id=call_id, name=name, arguments=arguments
    )


def reasoning(summary: str, item_id: str = "rs_1") -> ResponseReasoningItem:
    return ResponseReasoningItem(
        id=item_id, type="reasoning", summary=[Summary(type="summary_text", text=summary)]
    )


class ScriptedModel(Model):
    """Each call takes the next (output, usage) from the script; ``inputs`` keeps what the
    model was sent, call by call."""

    def __init__(self) -> None:
        self.script: list[tuple[list[TResponseOutputItem], Usage]] = []
        self.inputs: list[list[TResponseInputItem]] = []

    def then(self, *output: TResponseOutputItem, tokens: tuple[int, int] = (0, 0)) -> None:
        usage = Usage(
            requests=1,
            input_tokens=tokens[0],
            output_tokens=tokens[1],
            total_tokens=tokens[0] + tokens[1],
        )
        self.script.append((list(output), usage))

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: Any | None,
    ) -> ModelResponse:
        if isinstance(input, str):
            self.inputs.append([{"role": "user", "content": input}])
        else:
            self.inputs.append(list(input))
        output, usage = self.script.pop(0)
        return ModelResponse(output=output, usage=usage, response_id=None)

    async def stream_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        *args: Any,
        **kwargs: Any,
    ) -> AsyncIterator[Any]:
        """The same turn as one terminal event: the runner takes the output from it."""
        turn = await self.get_response(system_instructions, input, *args, **kwargs)
        usage = turn.usage
        response = Response(
            id="resp_scripted",
            created_at=0,
            model="scripted",
            object="response",
            output=turn.output,
            tool_choice="auto",
            tools=[],
            parallel_tool_calls=False,
            usage=ResponseUsage(
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                total_tokens=usage.total_tokens,
                input_tokens_details=InputTokensDetails(cached_tokens=0, cache_write_tokens=0),
                output_tokens_details=OutputTokensDetails(reasoning_tokens=0),
            ),
        )
        yield ResponseCompletedEvent(
            type="response.completed", response=response, sequence_number=0
        )
