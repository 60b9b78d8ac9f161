"""Anthropic Messages API (POST {base_url}/v1/messages), streamed over SSE."""

from __future__ import annotations

from typing import Any

from boternity.errors import ProviderUnavailableError
from boternity.llm.base import (
    END_TURN,
    Completion,
    CompletionRequest,
    Done,
    StreamEvent,
    TextDelta,
    Usage,
)
from boternity.llm.sse import SseEvent
from boternity.llm.transport import HttpProvider, error_parts, load_json

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MODEL = "claude-sonnet-4-5"


def _input_tokens(usage: dict[str, Any]) -> int:
    # Cached prompt tokens are reported separately; all of them occupy the context window.
    return sum(
        int(usage.get(key) or 0)
        for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )


class AnthropicProvider(HttpProvider):
    name = "anthropic"
    path = "/v1/messages"
    default_base_url = "https://api.anthropic.com"
    context_windows = {"claude": 200_000}
    fallback_context_window = 200_000
    model_default = DEFAULT_MODEL
    key_env = "ANTHROPIC_API_KEY"
    url_env = "ANTHROPIC_BASE_URL"
    requires_api_key = True

    def headers(self, api_key: str | None) -> dict[str, str]:
        headers = {"anthropic-version": ANTHROPIC_VERSION, "accept": "application/json"}
        if api_key:
            headers["x-api-key"] = api_key
        return headers

    def body(self, request: CompletionRequest, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_tokens,
            "messages": [{"role": t.role, "content": t.content} for t in request.messages],
        }
        if request.system:
            body["system"] = request.system
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if stream:
            body["stream"] = True
        return body

    def parse_completion(self, data: dict[str, Any], request: CompletionRequest) -> Completion:
        if data.get("type") == "error":
            raise self.stream_error(*error_parts(data))
        blocks = data.get("content") or []
        text = "".join(
            str(b.get("text", ""))
            for b in blocks
            if isinstance(b, dict) and b.get("type") == "text"
        )
        usage = data.get("usage") or {}
        return Completion(
            text=text,
            input_tokens=_input_tokens(usage),
            output_tokens=int(usage.get("output_tokens") or 0),
            stop_reason=data.get("stop_reason") or END_TURN,
            model=request.model,
        )

    def stream_parser(self, request: CompletionRequest) -> _MessagesStream:
        return _MessagesStream(self)


class _MessagesStream:
    """message_start (input usage), content_block_delta (text), message_delta (stop reason,
    output usage), message_stop; ping and unknown events are ignored; ``error`` raises."""

    def __init__(self, provider: AnthropicProvider) -> None:
        self._provider = provider
        self._input = 0
        self._output = 0
        self._stop_reason: str | None = None

    def feed(self, event: SseEvent) -> list[StreamEvent]:
        if event.event == "ping":
            return []
        data = load_json("anthropic", event.data)
        kind = data.get("type") or event.event
        if kind == "content_block_delta":
            delta = data.get("delta") or {}
            text = delta.get("text")
            if delta.get("type") == "text_delta" and isinstance(text, str) and text:
                return [TextDelta(text)]
            return []  # thinking, tool-input JSON: not part of the reply text
        if kind == "message_start":
            usage = (data.get("message") or {}).get("usage") or {}
            self._input = _input_tokens(usage)
            self._output = int(usage.get("output_tokens") or 0)
            return [Usage(self._input, self._output)]
        if kind == "message_delta":
            self._stop_reason = (data.get("delta") or {}).get("stop_reason") or self._stop_reason
            usage = data.get("usage") or {}
            if usage.get("input_tokens") is not None:  # newer API versions repeat it here
                self._input = _input_tokens(usage)
            if usage.get("output_tokens") is not None:
                self._output = int(usage["output_tokens"])
            return [Usage(self._input, self._output)]
        if kind == "message_stop":
            return [Done(self._stop_reason or END_TURN)]
        if kind == "error":
            raise self._provider.stream_error(*error_parts(data))
        return []

    def finish(self) -> list[StreamEvent]:
        raise ProviderUnavailableError(
            "anthropic: the stream ended before message_stop (connection cut?)",
            provider="anthropic",
        )
