"""A fake LLM server on loopback that speaks the Anthropic Messages and OpenAI Chat Completions
wire protocols over real HTTP/1.1, for tests of the real clients.

In-process::

    async with FakeLlmServer() as server:
        server.enqueue(anthropic_error(529, "overloaded_error", "Overloaded"))
        server.enqueue(sse_reply(anthropic_frames(["Hel", "lo"])))
        provider = AnthropicProvider(api_key="k", base_url=server.base_url)
        ...
        server.requests  # what the client sent

As a process (``python -m tests.fakes.llm_server --port 0`` prints the port on its first line
and serves until terminated; ``FakeLlmServerProcess`` does this and wraps the control calls)::

    POST /_fake/enqueue   body: a JSON list of replies (see ``Reply.from_json``)
    GET  /_fake/requests  the recorded requests as JSON
    POST /_fake/reset     forget queued replies and recorded requests

Scripted replies are served first-in first-out. With the queue empty the server answers like
the offline provider would (deterministic text, titles, JSON facts), in whichever protocol and
mode (streamed or not) the request asked for; ``POST /v1/embeddings`` gets deterministic
vectors (``fake_embedding``: a hashed bag of words, so texts sharing words are closer) (``json_streams=True``: a streaming request gets
the whole reply as ``200 application/json``, as some proxies and mocks answer). Anthropic paths are ``/v1/messages``; OpenAI
paths end in ``/chat/completions`` (so ``base_url + "/v1"`` is an OpenAI base URL).

Replies are written exactly as scripted: ``chunks`` are written one by one (as separate HTTP
chunks with ``framing="chunked"``), so a test can split a stream at any byte; ``cut=True``
drops the connection after the last chunk as if the body were unfinished.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import hashlib
import http
import json
import math
import re
import signal
import sys
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import httpx

from boternity.llm.base import (
    ChatTurn,
    CompletionRequest,
    Purpose,
    Role,
    estimate_prompt_tokens,
    estimate_tokens,
)
from boternity.llm.offline import answer

Framing = Literal["chunked", "length", "close"]


@dataclass(slots=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[bytes] = field(default_factory=list)
    framing: Framing = "chunked"
    cut: bool = False  # drop the connection after the chunks, body unfinished
    delay: float = 0.0  # seconds before the status line
    chunk_delay: float = 0.0  # seconds between chunks

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "headers": self.headers,
            "chunks": [c.decode("utf-8", errors="surrogateescape") for c in self.chunks],
            "framing": self.framing,
            "cut": self.cut,
            "delay": self.delay,
            "chunk_delay": self.chunk_delay,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reply:
        return cls(
            status=int(data.get("status", 200)),
            headers={str(k): str(v) for k, v in (data.get("headers") or {}).items()},
            chunks=[
                str(c).encode("utf-8", errors="surrogateescape") for c in data.get("chunks", [])
            ],
            framing=data.get("framing", "chunked"),
            cut=bool(data.get("cut", False)),
            delay=float(data.get("delay", 0.0)),
            chunk_delay=float(data.get("chunk_delay", 0.0)),
        )


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "headers": self.headers,
            "json": self.json,
        }


# -- wire builders ------------------------------------------------------------------------


def sse(data: Any, event: str | None = None) -> bytes:
    """One SSE frame; ``data`` is JSON-encoded unless it is already a str."""
    text = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}\n" if event else ""
    return (head + "".join(f"data: {line}\n" for line in text.split("\n")) + "\n").encode()


def sse_reply(frames: Sequence[bytes], **options: Any) -> Reply:
    """A 200 event stream, one chunk per frame (join or re-split ``frames`` for other cuts)."""
    headers = {"content-type": "text/event-stream", **options.pop("headers", {})}
    return Reply(headers=headers, chunks=list(frames), **options)


def json_reply(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return Reply(
        status=status,
        headers={"content-type": "application/json", **(headers or {})},
        chunks=[json.dumps(data).encode()],
        framing="length",
    )


def anthropic_frames(
    pieces: Sequence[str],
    *,
    input_tokens: int = 12,
    output_tokens: int | None = None,
    stop_reason: str = "end_turn",
    model: str = "claude-test",
    ping: bool = True,
) -> list[bytes]:
    """A complete Messages stream: message_start ... message_stop, one text delta per piece."""
    out_tokens = output_tokens if output_tokens is not None else len(pieces)
    frames = [
        sse(
            {
                "type": "message_start",
                "message": {
                    "id": "msg_fake",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "usage": {"input_tokens": input_tokens, "output_tokens": 1},
                },
            },
            "message_start",
        ),
        sse(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
            "content_block_start",
        ),
    ]
    if ping:
        frames.append(sse({"type": "ping"}, "ping"))
    frames += [
        sse(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}},
            "content_block_delta",
        )
        for p in pieces
    ]
    frames += [
        sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": out_tokens},
            },
            "message_delta",
        ),
        sse({"type": "message_stop"}, "message_stop"),
    ]
    return frames


def anthropic_error_frame(kind: str = "overloaded_error", message: str = "Overloaded") -> bytes:
    return sse({"type": "error", "error": {"type": kind, "message": message}}, "error")


def anthropic_message(
    text: str,
    *,
    input_tokens: int = 12,
    output_tokens: int = 5,
    stop_reason: str = "end_turn",
    model: str = "claude-test",
) -> Reply:
    return json_reply(
        {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": stop_reason,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        }
    )


def anthropic_error(
    status: int, kind: str, message: str, headers: dict[str, str] | None = None
) -> Reply:
    return json_reply(
        {"type": "error", "error": {"type": kind, "message": message}}, status, headers
    )


def openai_frames(
    pieces: Sequence[str],
    *,
    prompt_tokens: int = 12,
    completion_tokens: int | None = None,
    finish_reason: str = "stop",
    usage: bool = True,
    done: bool = True,
    model: str = "gpt-test",
) -> list[bytes]:
    """A complete Chat Completions stream: role chunk, content chunks, finish chunk, usage chunk
    (empty choices), ``[DONE]``."""

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        body = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": model}
        return sse({**body, "choices": choices, **extra})

    frames = [
        chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
    ]
    frames += [
        chunk([{"index": 0, "delta": {"content": p}, "finish_reason": None}]) for p in pieces
    ]
    frames.append(chunk([{"index": 0, "delta": {}, "finish_reason": finish_reason}]))
    if usage:
        tokens = completion_tokens if completion_tokens is not None else len(pieces)
        frames.append(
            chunk(
                [],
                usage={
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": tokens,
                    "total_tokens": prompt_tokens + tokens,
                },
            )
        )
    if done:
        frames.append(sse("[DONE]"))
    return frames


def openai_error_frame(message: str = "server overloaded", kind: str = "server_error") -> bytes:
    return sse({"error": {"message": message, "type": kind, "code": None}})


def openai_completion(
    text: str,
    *,
    prompt_tokens: int = 12,
    completion_tokens: int = 5,
    finish_reason: str = "stop",
    model: str = "gpt-test",
) -> Reply:
    return json_reply(
        {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
    )


def openai_error(
    status: int,
    message: str,
    *,
    kind: str = "invalid_request_error",
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    return json_reply(
        {"error": {"message": message, "type": kind, "param": None, "code": code}}, status, headers
    )


def openai_embeddings(
    vectors: Sequence[Sequence[float]],
    *,
    indices: Sequence[int] | None = None,
    model: str = "embed-test",
) -> Reply:
    """An ``/embeddings`` reply listing ``vectors`` with ``indices`` (default 0, 1, ...)."""
    order = list(indices) if indices is not None else list(range(len(vectors)))
    data = [
        {"object": "embedding", "index": index, "embedding": list(vector)}
        for index, vector in zip(order, vectors, strict=True)
    ]
    return json_reply(
        {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": 1, "total_tokens": 1},
        }
    )


#: The length of the fake server's vectors unless a request asks for ``dimensions``.
FAKE_EMBEDDING_DIMENSION = 64


def fake_embedding(text: str, dimension: int = FAKE_EMBEDDING_DIMENSION) -> list[float]:
    """A deterministic unit vector for ``text``: each lower-cased word adds +1 or -1 to one
    coordinate chosen by its hash, so texts sharing words are closer (cosine)."""
    vector = [0.0] * dimension
    for word in re.findall(r"\w+", text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        number = int.from_bytes(digest, "big")
        vector[number % dimension] += 1.0 if number >> 63 else -1.0
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else vector


def embeddings_reply(body: dict[str, Any]) -> Reply:
    texts = body.get("input")
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list) or not all(isinstance(t, str) and t for t in texts):
        return openai_error(400, "'input' must be a non-empty string or a list of them")
    dimension = body.get("dimensions") or FAKE_EMBEDDING_DIMENSION
    return openai_embeddings(
        [fake_embedding(t, int(dimension)) for t in texts], model=str(body.get("model") or "fake")
    )


# -- the default (unscripted) reply ---------------------------------------------------------


def _turns(messages: list[dict[str, Any]]) -> tuple[str | None, list[ChatTurn]]:
    system: list[str] = []
    turns: list[ChatTurn] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):  # content blocks
            content = "".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
        role = message.get("role")
        if role == "system":
            system.append(str(content))
        elif role in ("user", "assistant"):
            r: Role = "user" if role == "user" else "assistant"
            turns.append(ChatTurn(r, str(content or "")))
    return ("\n".join(system) or None), turns


def wire_purpose(system: str | None, turns: Sequence[ChatTurn]) -> Purpose:
    """What a request that came over the wire is for. The purpose is never sent, so the fake
    server recognises boternity's own prompts (the offline provider is told, not guessing)."""
    lowered = (system or "").lower()
    last = next((t.content for t in reversed(turns) if t.role == "user"), "").lower()
    # A chat prompt carries the bot's <identity>: words like "title" or "summary" in a bot's
    # soul must not turn its replies into titles or summaries.
    if "<identity>" in lowered:
        if last.startswith("[the user has opened a new conversation") and "greet" in last:
            return "greeting"
        return "reply"
    if "json" in lowered and ("fact" in lowered or "memor" in lowered):
        return "extraction"
    if "title" in lowered:
        return "title"
    if "summar" in lowered or last.startswith(("please summarize", "please summarise")):
        return "summary"
    return "reply"


def default_reply(request: RecordedRequest, *, json_streams: bool = False) -> Reply:
    """Answer like the offline provider, in the protocol and mode the request used.

    With ``json_streams`` a streaming request gets the whole reply as ``200 application/json``
    instead of an event stream, as some proxies and mocks answer."""
    body = request.json or {}
    path = request.path.split("?", 1)[0]
    if path.endswith("/embeddings"):
        return embeddings_reply(body)
    stream = bool(body.get("stream")) and not json_streams
    messages = list(body.get("messages") or [])
    system, turns = _turns(messages)
    if isinstance(body.get("system"), str):
        system = body["system"]
    if not turns:
        turns = [ChatTurn("user", "")]
    completion_request = CompletionRequest(
        model=str(body.get("model") or "fake"),
        system=system,
        messages=turns,
        purpose=wire_purpose(system, turns),
    )
    text = answer(completion_request)
    in_tokens = estimate_prompt_tokens(completion_request)
    out_tokens = estimate_tokens(text)
    pieces = re.findall(r"\s*\S+\s*|\s+", text) or [""]
    model = str(body.get("model") or "fake")
    if path.endswith("/chat/completions"):
        if stream:
            frames = openai_frames(
                pieces, prompt_tokens=in_tokens, completion_tokens=out_tokens, model=model
            )
            return sse_reply(frames)
        return openai_completion(
            text, prompt_tokens=in_tokens, completion_tokens=out_tokens, model=model
        )
    if path.endswith("/v1/messages"):
        if stream:
            frames = anthropic_frames(
                pieces, input_tokens=in_tokens, output_tokens=out_tokens, model=model
            )
            return sse_reply(frames)
        return anthropic_message(
            text, input_tokens=in_tokens, output_tokens=out_tokens, model=model
        )
    return json_reply({"error": {"type": "not_found_error", "message": "no such path"}}, 404)


# -- the server -----------------------------------------------------------------------------


class FakeLlmServer:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        default: Callable[[RecordedRequest], Reply] = default_reply,
        json_streams: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.requests: list[RecordedRequest] = []
        self._default = (
            functools.partial(default_reply, json_streams=True) if json_streams else default
        )
        self._queue: deque[Reply] = deque()
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        #: When set to an unset event, model replies wait for it: a test can hold concurrent
        #: clients at the model call until all of them are there.
        self.gate: asyncio.Event | None = None

    @property
    def base_url(self) -> str:
        """The Anthropic base URL (``/v1/messages`` is appended by the client)."""
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.base_url}/v1"

    def enqueue(self, *replies: Reply) -> None:
        self._queue.extend(replies)

    @property
    def pending(self) -> int:
        """Scripted replies not served yet."""
        return len(self._queue)

    def reset(self) -> None:
        self._queue.clear()
        self.requests.clear()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        await self._server.wait_closed()
        # Before 3.12 wait_closed() does not wait for the connections: end them here, so no
        # handler outlives the server (or the test's event loop).
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        self._server = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            request = await _read_request(reader)
            if request is None:
                return
            if request.path.startswith("/_fake/"):
                reply = self._control(request)
            else:
                self.requests.append(request)
                reply = self._queue.popleft() if self._queue else self._default(request)
                if self.gate is not None:
                    await self.gate.wait()
            await _write_reply(writer, reply)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away: that is its business
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()
            self._handlers.discard(task)

    def _control(self, request: RecordedRequest) -> Reply:
        if request.path == "/_fake/enqueue" and request.method == "POST":
            self.enqueue(*(Reply.from_json(item) for item in request.json or []))
            return json_reply({"pending": self.pending})
        if request.path == "/_fake/requests":
            return json_reply([r.to_json() for r in self.requests])
        if request.path == "/_fake/reset" and request.method == "POST":
            self.reset()
            return json_reply({"pending": 0})
        return json_reply({"error": "unknown control path"}, 404)


async def _read_request(reader: asyncio.StreamReader) -> RecordedRequest | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    request_line, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
    method, path, _ = request_line.split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return RecordedRequest(method, path, headers, body)


def _reason(status: int) -> str:
    if status == 529:
        return "Overloaded"
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


async def _write_reply(writer: asyncio.StreamWriter, reply: Reply) -> None:
    if reply.delay:
        await asyncio.sleep(reply.delay)
    headers = {"connection": "close", **{k.lower(): v for k, v in reply.headers.items()}}
    if reply.framing == "chunked":
        headers["transfer-encoding"] = "chunked"
    elif reply.framing == "length":
        # A cut length-framed body promises more than it sends.
        headers["content-length"] = str(len(reply.body) + (64 if reply.cut else 0))
    head = f"HTTP/1.1 {reply.status} {_reason(reply.status)}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    writer.write(head.encode("latin-1"))
    await writer.drain()
    for index, chunk in enumerate(reply.chunks):
        if index and reply.chunk_delay:
            await asyncio.sleep(reply.chunk_delay)
        if not chunk:
            continue  # an empty HTTP chunk would end a chunked body
        if reply.framing == "chunked":
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        else:
            writer.write(chunk)
        await writer.drain()
    if reply.cut:
        writer.transport.abort()
        return
    if reply.framing == "chunked":
        writer.write(b"0\r\n\r\n")
        await writer.drain()


# -- running it as a process ----------------------------------------------------------------


class FakeLlmServerProcess:
    """The fake server in a child process (for tests that run boternity as a subprocess too),
    scripted over its control endpoints::

        async with FakeLlmServerProcess() as server:
            await server.enqueue(openai_completion("hi"))
            env = {"OPENAI_BASE_URL": server.openai_base_url}
    """

    def __init__(self, *, cwd: str | None = None, json_streams: bool = False) -> None:
        self._cwd = cwd or str(Path(__file__).resolve().parents[2])
        self._json_streams = json_streams
        self._process: asyncio.subprocess.Process | None = None
        self._control: httpx.AsyncClient | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.base_url}/v1"

    async def __aenter__(self) -> Self:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.fakes.llm_server",
            "--port",
            "0",
            *(["--json-streams"] if self._json_streams else []),
            cwd=self._cwd,
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            assert self._process.stdout is not None
            line = await asyncio.wait_for(self._process.stdout.readline(), timeout=30)
            self.port = int(line)
        except BaseException:
            await self._stop()
            raise
        self._control = httpx.AsyncClient(base_url=self.base_url, timeout=10)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._control is not None:
            await self._control.aclose()
        await self._stop()

    async def _stop(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            await self._process.wait()

    def _client(self) -> httpx.AsyncClient:
        assert self._control is not None, "use FakeLlmServerProcess as an async context manager"
        return self._control

    async def enqueue(self, *replies: Reply) -> None:
        response = await self._client().post("/_fake/enqueue", json=[r.to_json() for r in replies])
        response.raise_for_status()

    async def requests(self) -> list[dict[str, Any]]:
        response = await self._client().get("/_fake/requests")
        response.raise_for_status()
        recorded: list[dict[str, Any]] = response.json()
        return recorded

    async def reset(self) -> None:
        (await self._client().post("/_fake/reset")).raise_for_status()

    @property
    def returncode(self) -> int | None:
        return None if self._process is None else self._process.returncode


async def serve(host: str, port: int, *, json_streams: bool = False) -> None:
    async with FakeLlmServer(host=host, port=port, json_streams=json_streams) as server:
        print(server.port, flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fake Anthropic/OpenAI server for tests.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    parser.add_argument(
        "--json-streams",
        action="store_true",
        help="answer streaming requests with a whole 200 application/json reply",
    )
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port, json_streams=args.json_streams))
    return 0


if __name__ == "__main__":
    sys.exit(main())
