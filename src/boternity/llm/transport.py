"""What the HTTP clients share: one httpx client, error translation, the retry loop.

``HttpEndpoint`` owns everything that must behave the same for every JSON-over-HTTP API
boternity talks to (chat providers and embedding endpoints): timeouts, error translation,
retries, and keeping the API key out of every message, repr and log line. ``HttpProvider``
adds what chat providers share: retries before the first token, partial text on failures
after it. A subclass supplies the wire format (request body, headers, response and stream
parsing).
"""

from __future__ import annotations

import json
import logging
import socket
import urllib.parse
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from contextlib import aclosing, asynccontextmanager
from typing import Any, ClassVar, Protocol, TypeVar

import httpx

from boternity.errors import (
    AuthenticationError,
    ContextLengthError,
    InvalidRequestError,
    LlmError,
    OverloadedError,
    ProviderUnavailableError,
    RateLimitedError,
)
from boternity.llm.base import (
    ClosesOnExit,
    Completion,
    CompletionRequest,
    Done,
    StreamCollector,
    StreamEvent,
    TextDelta,
    Usage,
    estimate_prompt_tokens,
    estimate_tokens,
)
from boternity.llm.retry import RetryPolicy, parse_retry_after
from boternity.llm.sse import SseDecoder, SseEvent
from boternity.redact import redact_text, redact_url, url_secrets

# Generous read timeout: it bounds the gap between two chunks of a stream (or the whole wait for
# a non-streamed reply), and long completions from a busy model can take minutes.
DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=300.0, write=30.0, pool=10.0)
#: The most a reply read whole (a JSON reply, an error body) may hold, decompressed: far above
#: any real one (128 embeddings of 16,384 numbers are about 40 MB of JSON), far below what
#: would exhaust the memory of a worker talking to a broken or hostile server.
MAX_REPLY_BYTES = 256 << 20

_CONTEXT_PHRASES = (
    "prompt is too long",
    "context length",
    "context_length",
    "context window",
    "context limit",
    "maximum context",
    "too many tokens",
)
T = TypeVar("T")
# What a malformed (but JSON) event or body raises while being picked apart.
_MALFORMED = (KeyError, IndexError, TypeError, ValueError, AttributeError)


class _RedactUrls(logging.Filter):
    """httpx logs each request's URL at INFO, with the credentials a base URL may carry."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact_text(record.getMessage()), None
        return True


logging.getLogger("httpx").addFilter(_RedactUrls())


def classify_error(
    provider: str,
    *,
    status: int | None,
    kind: str | None,
    code: str | None,
    message: str,
    retry_after: float | None = None,
    key_env: str | None = None,
) -> LlmError:
    """Map an HTTP status and the provider's error type/code onto the exception tree.

    ``status`` is None for an error reported inside a stream (Anthropic ``event: error``).
    """
    kinds = {k for k in (kind, code) if k}
    where = f"HTTP {status}" if status is not None else "in the stream"
    detail = f"{provider}: {message or 'no details'} ({where}{', ' + kind if kind else ''})"
    lowered = message.lower()
    if (
        "context_length_exceeded" in kinds
        or "request_too_large" in kinds
        or status == 413
        or (status in (400, 422, None) and any(p in lowered for p in _CONTEXT_PHRASES))
    ):
        return ContextLengthError(detail, provider=provider, status=status)
    if "insufficient_quota" in kinds:
        # A 429 that retrying cannot fix: the account is out of credit.
        return InvalidRequestError(detail, provider=provider, status=status)
    if status == 529 or kinds & {"overloaded_error", "overloaded"}:
        return OverloadedError(detail, provider=provider, status=status)
    if status == 429 or kinds & {"rate_limit_error", "rate_limit_exceeded"}:
        if retry_after is not None:
            detail += f"; retry after {retry_after:g}s"
        return RateLimitedError(detail, provider=provider, status=status, retry_after=retry_after)
    if status in (401, 403) or kinds & {
        "authentication_error",
        "permission_error",
        "invalid_api_key",
    }:
        hint = f"; check {key_env}" if key_env else ""
        return AuthenticationError(detail + hint, provider=provider, status=status)
    if status is None or status >= 500 or status == 408 or kinds & {"api_error", "server_error"}:
        return ProviderUnavailableError(detail, provider=provider, status=status)
    return InvalidRequestError(detail, provider=provider, status=status)


def error_parts(data: object) -> tuple[str | None, str | None, str]:
    """(type, code, message) of an error object: Anthropic ``{"type": "error", "error": {...}}``,
    OpenAI and llama.cpp ``{"error": {...}}``, Ollama ``{"error": "text"}``, vLLM
    ``{"object": "error", "message": ...}``."""
    error = data.get("error", data) if isinstance(data, dict) else None
    if isinstance(error, str):
        return None, None, error
    if not isinstance(error, dict):
        return None, None, ""
    kind, code, message = error.get("type"), error.get("code"), error.get("message")
    return (
        kind if isinstance(kind, str) else None,
        str(code) if isinstance(code, str | int) else None,
        message if isinstance(message, str) else "",
    )


def error_fields(body: bytes) -> tuple[str | None, str | None, str]:
    """``error_parts`` of an HTTP error body; the start of the raw body when it says nothing."""
    try:
        kind, code, message = error_parts(json.loads(body))
    except ValueError:
        kind, code, message = None, None, ""
    return kind, code, message or body[:300].decode("utf-8", errors="replace").strip()


def load_json(provider: str, raw: str | bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise LlmError(f"{provider}: the server sent data that is not JSON") from exc
    if not isinstance(data, dict):
        raise LlmError(f"{provider}: expected a JSON object, got {type(data).__name__}")
    return data


class StreamParser(Protocol):
    """The wire format of one stream: SSE events in, stream events out."""

    def feed(self, event: SseEvent) -> list[StreamEvent]:
        """Events for one SSE event; raises ``LlmError`` for an error reported in the stream."""
        ...

    def finish(self) -> list[StreamEvent]:
        """The body ended before a ``Done``: the last events, or ProviderUnavailableError."""
        ...


class HttpEndpoint(ClosesOnExit):
    """One JSON-over-HTTP API (a chat provider, an embeddings endpoint): what every such client
    shares. It owns the httpx client, timeouts, error translation onto the ``LlmError`` tree,
    the retry loop, and keeping the API key (and credentials in the base URL) out of every
    message, repr and log line. A subclass supplies the headers and what it sends and reads."""

    name: ClassVar[str]
    path: ClassVar[str]
    default_base_url: ClassVar[str]
    key_env: ClassVar[str]  # where the key comes from, named in errors
    url_env: ClassVar[str]  # where the base URL comes from, named in errors
    requires_api_key: ClassVar[bool]
    max_reply_bytes: ClassVar[int] = MAX_REPLY_BYTES

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: httpx.Timeout | float | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._api_key = api_key or None
        if self.requires_api_key and self._api_key is None:
            raise AuthenticationError(
                f"{self.name}: no API key (set {self.key_env})", provider=self.name
            )
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        # Everything that must never be shown: the key, and credentials in the base URL.
        self._secrets = [*([self._api_key] if self._api_key else []), *url_secrets(self.base_url)]
        self.retry = retry or RetryPolicy()
        # A query in the base URL (?api-version=, ?api-key=) goes on every request, after the
        # path: httpx would otherwise append the path to the query.
        parts = urllib.parse.urlsplit(self.base_url)
        self._client = httpx.AsyncClient(
            base_url=urllib.parse.urlunsplit(parts._replace(query="", fragment="")).rstrip("/"),
            params=httpx.QueryParams(parts.query),
            timeout=timeout if timeout is not None else DEFAULT_TIMEOUT,
            transport=transport,
        )
        custom = base_url is not None and self.base_url != self.default_base_url.rstrip("/")
        self.label = f"{self.name} ({redact_url(self.base_url)})" if custom else self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={redact_url(self.base_url)!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    def headers(self, api_key: str | None) -> dict[str, str]:
        raise NotImplementedError

    @property
    def _what(self) -> str:
        return f"the request to {self.label}"

    async def post_json(self, body: dict[str, Any], read: Callable[[dict[str, Any]], T]) -> T:
        """POST ``body`` to ``path`` and return ``read`` of the reply's JSON object, retrying
        what the policy retries (``read`` runs within each attempt, so an error it finds in
        a 200 reply is retried like the same error as an HTTP status). Raises the ``LlmError``
        tree; a reply that is not a JSON object is an ``LlmError``, not retried."""
        return await self.retry.run(lambda: self._post_json_once(body, read), what=self._what)

    async def _post_json_once(self, body: dict[str, Any], read: Callable[[dict[str, Any]], T]) -> T:
        async with self._post(body) as response:
            raw = await self._aread(response)
        return read(load_json(self.name, raw))

    @asynccontextmanager
    async def _post(self, body: dict[str, Any]) -> AsyncIterator[httpx.Response]:
        http_request = self._client.build_request(
            "POST", self.path, json=body, headers=self.headers(self._api_key)
        )
        try:
            response = await self._client.send(http_request, stream=True)
        except httpx.RequestError as exc:
            raise self._unavailable(exc) from exc
        try:
            if response.is_error:
                body_bytes = await self._aread(response, cut=True)
                try:
                    response.raise_for_status()
                except httpx.HTTPStatusError as exc:
                    raise self._http_error(response, body_bytes) from self._scrub(exc)
            yield response
        finally:
            await response.aclose()

    async def _aread(self, response: httpx.Response, *, cut: bool = False) -> bytes:
        """The whole body, refused (``LlmError``, not retried) past ``max_reply_bytes``; with
        ``cut`` (an error reply, read for its message: its status decides) its start instead."""
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self.max_reply_bytes:
                    if cut:
                        chunks.append(chunk[: len(chunk) - (size - self.max_reply_bytes)])
                        break
                    raise LlmError(
                        f"{self.name}: the server's reply is larger than"
                        f" {self.max_reply_bytes:,} bytes; not reading it",
                        provider=self.name,
                        status=response.status_code,
                    )
                chunks.append(chunk)
        except httpx.RequestError as exc:
            raise self._unavailable(exc) from exc
        return b"".join(chunks)

    def _http_error(self, response: httpx.Response, body: bytes) -> LlmError:
        kind, code, message = error_fields(body)
        return classify_error(
            self.name,
            status=response.status_code,
            kind=kind,
            code=code,
            message=self.redact(message or response.reason_phrase),
            retry_after=parse_retry_after(response.headers),
            key_env=self.key_env,
        )

    def stream_error(self, kind: str | None, code: str | None, message: str) -> LlmError:
        """An error reported inside a 200 reply (a stream, or a JSON error object)."""
        return classify_error(
            self.name, status=None, kind=kind, code=code, message=self.redact(message)
        )

    def _unavailable(self, exc: httpx.RequestError) -> ProviderUnavailableError:
        what = type(exc).__name__
        detail = str(self._scrub(exc)) or "no details"
        where = redact_url(self.base_url)
        refused = _refused(exc)
        if refused is not None:
            # Nothing listens there (or no such host): a wrong base URL, not a passing glitch.
            error = ProviderUnavailableError(
                f"{self.name}: cannot connect to {where}: {refused}"
                f" (check the base URL in {self.url_env})",
                provider=self.name,
            )
            error.retryable = False
            return error
        return ProviderUnavailableError(
            f"{self.name}: {what} talking to {where}: {detail}", provider=self.name
        )

    def _scrub(self, exc: httpx.HTTPError) -> httpx.HTTPError:
        """``exc`` with its message redacted: it is chained, so tracebacks and logs show it,
        and httpx quotes the request URL (with any credentials in it)."""
        exc.args = (self.redact(str(exc)), *exc.args[1:])
        return exc

    def _malformed(self, what: str) -> LlmError:
        return LlmError(f"{self.name}: malformed {what} from the server", provider=self.name)

    def redact(self, text: str) -> str:
        return redact_text(text, self._secrets)


class HttpProvider(HttpEndpoint):
    """Base for chat providers spoken over HTTP with JSON requests and SSE streams."""

    context_windows: ClassVar[Mapping[str, int]]  # model-name prefix -> tokens
    fallback_context_window: ClassVar[int]
    model_default: ClassVar[str]

    def __init__(
        self,
        *,
        api_key: str | None = None,
        default_model: str | None = None,
        base_url: str | None = None,
        timeout: httpx.Timeout | float | None = None,
        retry: RetryPolicy | None = None,
        context_windows: Mapping[str, int] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            api_key=api_key, base_url=base_url, timeout=timeout, retry=retry, transport=transport
        )
        self.default_model = default_model or self.model_default
        windows = {**self.context_windows, **(context_windows or {})}
        # Longest prefix first, so "gpt-4o" wins over "gpt-4".
        self._windows = sorted(windows.items(), key=lambda item: len(item[0]), reverse=True)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={redact_url(self.base_url)!r},"
            f" default_model={self.default_model!r})"
        )

    def context_window(self, model: str) -> int:
        for prefix, tokens in self._windows:
            if model.startswith(prefix):
                return tokens
        return self.fallback_context_window

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    # -- the wire format, supplied by subclasses -------------------------------------------

    def body(self, request: CompletionRequest, *, stream: bool) -> dict[str, Any]:
        raise NotImplementedError

    def parse_completion(self, data: dict[str, Any], request: CompletionRequest) -> Completion:
        raise NotImplementedError

    def stream_parser(self, request: CompletionRequest) -> StreamParser:
        raise NotImplementedError

    # -- shared machinery -------------------------------------------------------------------

    async def complete(self, request: CompletionRequest) -> Completion:
        return await self.retry.run(lambda: self._complete_once(request), what=self._what)

    async def stream(self, request: CompletionRequest) -> AsyncGenerator[StreamEvent, None]:
        retries = self.retry.begin(self._what)
        while True:
            collector = StreamCollector(request.model)
            # Events of an attempt are held back until its first text (or Done), so a retried
            # attempt never leaves a stale Usage event behind at the caller.
            held: list[StreamEvent] = []
            started = False
            done: Done | None = None
            try:
                async with (
                    self._post(self.body(request, stream=True)) as response,
                    aclosing(self._events(response, request)) as events,
                ):
                    async for event in events:
                        collector.add(event)
                        if isinstance(event, Done):
                            # Yielded after the response is closed: a caller that stops
                            # at Done leaves no connection open.
                            done = event
                            break
                        if not started and isinstance(event, TextDelta):
                            started = True
                            for pending in held:
                                yield pending
                            held.clear()
                        if started:
                            yield event
                        else:
                            held.append(event)
            except LlmError as exc:
                if started:
                    collector.attach_partial(exc)
                    raise
                if not await retries.wait(exc):
                    raise
                continue
            for pending in held:
                yield pending
            if done is not None:
                yield done
            return

    async def _complete_once(self, request: CompletionRequest) -> Completion:
        async with self._post(self.body(request, stream=False)) as response:
            raw = await self._aread(response)
        return self._parse(raw, request, "response")

    def _parse(self, raw: bytes, request: CompletionRequest, what: str) -> Completion:
        """A whole (non-streamed) reply; LlmError, not retried, when it cannot be read."""
        try:
            return self.parse_completion(load_json(self.name, raw), request)
        except _MALFORMED as exc:
            raise self._malformed(what) from exc

    async def _events(
        self, response: httpx.Response, request: CompletionRequest
    ) -> AsyncGenerator[StreamEvent, None]:
        if _is_json(response):
            # Some proxies and mocks answer a streaming request with the whole reply as JSON.
            completion = self._parse(await self._aread(response), request, "JSON reply")
            yield Usage(completion.input_tokens, completion.output_tokens)
            if completion.text:
                yield TextDelta(completion.text)
            yield Done(completion.stop_reason)
            return
        parser = self.stream_parser(request)
        decoder = SseDecoder()
        try:
            async for chunk in response.aiter_bytes():
                for sse in decoder.feed(chunk):
                    try:
                        events = parser.feed(sse)
                    except _MALFORMED as exc:
                        raise self._malformed(f"{sse.event} event") from exc
                    for event in events:
                        yield event
                        if isinstance(event, Done):
                            return
        except httpx.RequestError as exc:
            raise self._unavailable(exc) from exc
        decoder.close()
        for event in parser.finish():
            yield event

    def estimated_usage(self, request: CompletionRequest, text: str) -> tuple[int, int]:
        """For servers that report no usage."""
        return estimate_prompt_tokens(request), estimate_tokens(text)


def _is_json(response: httpx.Response) -> bool:
    media = str(response.headers.get("content-type", "")).split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _refused(exc: BaseException) -> str | None:
    """Why ``exc`` could not connect, when that will not pass by retrying: nothing listens
    there ("connection refused") or there is no such host ("unknown host")."""
    if not isinstance(exc, httpx.ConnectError):
        return None
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror) and cause.errno == socket.EAI_NONAME:
            return "unknown host"
        cause = cause.__cause__ or cause.__context__
    return None
