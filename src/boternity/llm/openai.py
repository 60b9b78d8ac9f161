"""OpenAI Chat Completions (POST {base_url}/chat/completions) and compatible servers.

Works with OpenAI, Ollama, vLLM, llama.cpp and LM Studio: the API key is optional (local
servers need none), ``max_tokens`` is sent rather than ``max_completion_tokens`` because every
compatible server understands it, and when a server reports no usage it is estimated.
"""

from __future__ import annotations

from typing import Any

from boternity.errors import ProviderUnavailableError
from boternity.llm.base import (
    END_TURN,
    MAX_TOKENS,
    Completion,
    CompletionRequest,
    Done,
    StreamEvent,
    TextDelta,
    Usage,
)
from boternity.llm.sse import SseEvent
from boternity.llm.transport import HttpProvider, error_parts, load_json

DEFAULT_MODEL = "gpt-4o-mini"

_STOP_REASONS = {
    "stop": END_TURN,
    "length": MAX_TOKENS,
    "tool_calls": "tool_use",
    "function_call": "tool_use",
}


def stop_reason(finish_reason: object) -> str:
    """OpenAI finish_reason in Anthropic's vocabulary; unknown reasons pass through."""
    if not isinstance(finish_reason, str) or not finish_reason:
        return END_TURN
    return _STOP_REASONS.get(finish_reason, finish_reason)


def openai_headers(api_key: str | None) -> dict[str, str]:
    """What every OpenAI-compatible request carries (chat and embeddings)."""
    headers = {"accept": "application/json"}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    return headers


class OpenAIProvider(HttpProvider):
    name = "openai"
    path = "/chat/completions"
    default_base_url = "https://api.openai.com/v1"
    context_windows = {
        "gpt-5": 400_000,
        "gpt-4.1": 1_047_576,
        "gpt-4o": 128_000,
        "gpt-4-turbo": 128_000,
        "gpt-4": 8_192,
        "gpt-3.5-turbo": 16_385,
        "o1": 200_000,
        "o3": 200_000,
        "o4": 200_000,
    }
    # Local models (Ollama, llama.cpp, ...) are often served with small windows; guessing low
    # only means summarising earlier, guessing high means a context-length error.
    fallback_context_window = 8_192
    model_default = DEFAULT_MODEL
    key_env = "OPENAI_API_KEY"
    url_env = "OPENAI_BASE_URL"
    requires_api_key = False

    def headers(self, api_key: str | None) -> dict[str, str]:
        return openai_headers(api_key)

    def body(self, request: CompletionRequest, *, stream: bool) -> dict[str, Any]:
        messages = [{"role": "system", "content": request.system}] if request.system else []
        messages += [{"role": t.role, "content": t.content} for t in request.messages]
        body: dict[str, Any] = {
            "model": request.model,
            "messages": messages,
            "max_tokens": request.max_tokens,
        }
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    def parse_completion(self, data: dict[str, Any], request: CompletionRequest) -> Completion:
        if _is_error(data):
            raise self.stream_error(*error_parts(data))
        choices = data.get("choices") or [{}]
        choice = choices[0] if isinstance(choices[0], dict) else {}
        text = (choice.get("message") or {}).get("content") or ""
        usage = data.get("usage") or {}
        estimated_in, estimated_out = self.estimated_usage(request, text)
        return Completion(
            text=text,
            input_tokens=int(usage.get("prompt_tokens") or estimated_in),
            output_tokens=int(usage.get("completion_tokens") or estimated_out),
            stop_reason=stop_reason(choice.get("finish_reason")),
            model=request.model,
        )

    def stream_parser(self, request: CompletionRequest) -> _ChatStream:
        return _ChatStream(self, request)


def _is_error(data: dict[str, Any]) -> bool:
    # OpenAI and llama.cpp: {"error": {...}}; vLLM: {"object": "error", "message": ...}.
    return "error" in data or data.get("object") == "error"


class _ChatStream:
    """Chunks with ``choices[0].delta.content`` and ``finish_reason``, a usage chunk with empty
    choices, then ``data: [DONE]``. ``{"error": ...}`` in a chunk raises."""

    def __init__(self, provider: OpenAIProvider, request: CompletionRequest) -> None:
        self._provider = provider
        self._request = request
        self._parts: list[str] = []
        self._usage: Usage | None = None
        self._finish: str | None = None

    def feed(self, event: SseEvent) -> list[StreamEvent]:
        if event.data.strip() == "[DONE]":
            return self._done()
        data = load_json("openai", event.data)
        if _is_error(data):
            raise self._provider.stream_error(*error_parts(data))
        out: list[StreamEvent] = []
        for choice in data.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            text = (choice.get("delta") or {}).get("content")
            if isinstance(text, str) and text:
                self._parts.append(text)
                out.append(TextDelta(text))
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        usage = data.get("usage")
        if isinstance(usage, dict):
            self._usage = Usage(
                int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
            )
            out.append(self._usage)
        return out

    def finish(self) -> list[StreamEvent]:
        # Some compatible servers close the body without [DONE]; a finish_reason is enough.
        if self._finish is None:
            raise ProviderUnavailableError(
                "openai: the stream ended before finish_reason or [DONE] (connection cut?)",
                provider="openai",
            )
        return self._done()

    def _done(self) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        if self._usage is None:  # the server ignored stream_options.include_usage
            out.append(Usage(*self._provider.estimated_usage(self._request, "".join(self._parts))))
        out.append(Done(stop_reason(self._finish)))
        return out
