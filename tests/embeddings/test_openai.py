"""The ``openai`` embedder over real HTTP against the fake server's ``/v1/embeddings``."""

from __future__ import annotations

import logging
import socket
import traceback
import urllib.parse

import httpx
import numpy as np
import pytest

from boternity.embeddings import Embedder, OpenAIEmbedder
from boternity.errors import (
    EmbeddingDimensionError,
    EmbeddingError,
    EmbeddingUnavailableError,
    ProviderUnavailableError,
    RateLimitedError,
    ValidationError,
)
from boternity.llm import RetryPolicy
from boternity.models import MAX_EMBEDDING_DIMENSION
from tests.fakes.llm_server import (
    FakeLlmServer,
    Reply,
    fake_embedding,
    json_reply,
    openai_embeddings,
    openai_error,
)
from tests.llm.wires import KEY, Sleeps

URL_KEY = "sk-userinfo-SECRET-4242424242"
QUERY_KEY = "qk-query-SECRET-5151515151"


def embedder(server: FakeLlmServer, retry: RetryPolicy, **options: object) -> OpenAIEmbedder:
    return OpenAIEmbedder(
        base_url=server.openai_base_url,
        api_key=KEY,
        model="embed-test",
        retry=retry,
        **options,  # type: ignore[arg-type]
    )


async def test_embeds_in_order_with_unit_float32_vectors(
    server: FakeLlmServer, retry: RetryPolicy
) -> None:
    texts = ["Ana's cat is called Miso", "Ben works at a bank", "Ana's cat sleeps a lot"]
    async with embedder(server, retry) as openai:
        assert isinstance(openai, Embedder)
        assert (openai.name, openai.model, openai.dimension) == ("openai", "embed-test", None)
        vectors = await openai.embed(texts)
        assert openai.dimension == 64  # learnt from the first reply
    assert len(vectors) == 3
    for text, vector in zip(texts, vectors, strict=True):
        assert vector.dtype == np.float32 and vector.shape == (64,)
        assert float(np.linalg.norm(vector)) == pytest.approx(1.0, abs=1e-5)
        assert np.allclose(vector, fake_embedding(text), atol=1e-6)
    # Texts sharing words are closer.
    assert vectors[0] @ vectors[2] > vectors[0] @ vectors[1]
    (request,) = server.requests
    assert request.path == "/v1/embeddings"
    assert request.json == {"model": "embed-test", "input": texts}
    assert request.headers["authorization"] == f"Bearer {KEY}"


async def test_empty_input_sends_nothing(server: FakeLlmServer, retry: RetryPolicy) -> None:
    async with embedder(server, retry) as openai:
        assert await openai.embed([]) == []
    assert server.requests == []


@pytest.mark.parametrize(
    ("texts", "words"),
    [
        ("one string", "not a single string"),
        (["ok", ""], "text 1 to embed is empty"),
        (["  \n"], "text 0 to embed is empty"),
        (["a\x00b"], "NUL"),
        (["a\ud800b"], "lone surrogate"),
        ([b"bytes"], "expected str"),
    ],
)
async def test_bad_texts_are_refused_before_any_request(
    server: FakeLlmServer, retry: RetryPolicy, texts: object, words: str
) -> None:
    async with embedder(server, retry) as openai:
        with pytest.raises(ValidationError, match=words):
            await openai.embed(texts)  # type: ignore[arg-type]
    assert server.requests == []


async def test_batches_keep_the_order(server: FakeLlmServer, retry: RetryPolicy) -> None:
    texts = [f"fact number {i} about topic {i % 3}" for i in range(7)]
    async with embedder(server, retry, batch_size=3) as openai:
        vectors = await openai.embed(texts)
    assert [r.json["input"] for r in server.requests] == [texts[0:3], texts[3:6], texts[6:]]
    for text, vector in zip(texts, vectors, strict=True):
        assert np.allclose(vector, fake_embedding(text), atol=1e-6)


async def test_results_are_ordered_by_index_not_by_position(
    server: FakeLlmServer, retry: RetryPolicy
) -> None:
    server.enqueue(openai_embeddings([[0.0, 2.0], [3.0, 0.0], [0.0, 0.0]], indices=[2, 0, 1]))
    async with embedder(server, retry) as openai:
        first, second, third = await openai.embed(["a", "b", "c"])
    assert first.tolist() == [1.0, 0.0]  # index 0, scaled to unit length
    assert second.tolist() == [0.0, 0.0]  # a zero vector stays zero
    assert third.tolist() == [0.0, 1.0]


def _raw_json(body: bytes) -> Reply:
    return Reply(headers={"content-type": "application/json"}, chunks=[body])


def _second_fine(first: dict[str, object]) -> Reply:
    return json_reply({"data": [first, {"index": 1, "embedding": [1.0, 0.0]}]})


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        (openai_embeddings([[1.0, 0.0]]), "1 vectors for 2 texts"),
        (openai_embeddings([[1.0], [2.0]], indices=[0, 0]), "repeated or wrong index"),
        (openai_embeddings([[1.0], [2.0]], indices=[0, 5]), "repeated or wrong index"),
        (json_reply({"data": [{"index": 0, "embedding": "AAAA"}, {"index": 1}]}), "numbers"),
        (json_reply({"data": [{"index": 0, "embedding": []}, {"index": 1}]}), "finite"),
        (json_reply({"object": "list"}), "no vectors"),
        # Numbers only: not text that looks like one, not booleans, not NaN (Python's json
        # reads it), not an integer no float holds (numpy raised a bare OverflowError).
        (_second_fine({"index": 0, "embedding": ["0.5", "1"]}), "numbers"),
        (_second_fine({"index": 0, "embedding": [True, False]}), "numbers"),
        (_second_fine({"index": 0, "embedding": [[1, 2], [3, 4]]}), "numbers"),
        (_raw_json(b'{"data": [{"embedding": [NaN, 1]}, {"embedding": [1, 0]}]}'), "finite"),
        (_raw_json(b'{"data": [{"embedding": [1' + b"0" * 400 + b", 1]}, {}]}"), "numbers"),
        (Reply(headers={"content-type": "text/html"}, chunks=[b"<html>"]), "not JSON"),
    ],
)
async def test_a_malformed_reply_is_a_clear_error(
    server: FakeLlmServer, retry: RetryPolicy, sleeps: Sleeps, reply: Reply, words: str
) -> None:
    server.enqueue(reply)
    async with embedder(server, retry) as openai:
        with pytest.raises(EmbeddingError, match=words) as caught:
            await openai.embed(["a", "b"])
    assert not isinstance(caught.value, EmbeddingUnavailableError)
    assert not caught.value.retryable and caught.value.__cause__ is not None
    assert sleeps.delays == []  # not retried


async def test_large_finite_numbers_are_scaled_not_zeroed_or_warned_about(
    server: FakeLlmServer, retry: RetryPolicy
) -> None:
    """Values past float32 (1e39) or whose squares are (1e20) are still a direction: scaled
    in float64, never turned into inf (a RuntimeWarning) or an all-zero vector."""
    server.enqueue(openai_embeddings([[1e39, 0.0, 1e39], [1e20, 1e20, 0.0]]))
    async with embedder(server, retry) as openai:
        big, large = await openai.embed(["a", "b"])
    assert big.dtype == np.float32 and large.dtype == np.float32
    assert np.allclose(big, [2**-0.5, 0.0, 2**-0.5])
    assert np.allclose(large, [2**-0.5, 2**-0.5, 0.0])


async def test_vectors_longer_than_what_is_stored_are_refused(
    server: FakeLlmServer, retry: RetryPolicy
) -> None:
    """An over-long vector is the embedder's fault (EmbeddingDimensionError), found before
    anything is stored, not a ValidationError from save_embeddings later."""
    server.enqueue(openai_embeddings([[1.0] * (MAX_EMBEDDING_DIMENSION + 1)]))
    async with embedder(server, retry) as openai:
        with pytest.raises(EmbeddingDimensionError, match="dimension 16385; at most 16384"):
            await openai.embed(["a"])
        assert openai.dimension is None


async def test_wrong_or_varying_dimensions_are_refused(
    server: FakeLlmServer, retry: RetryPolicy
) -> None:
    server.enqueue(openai_embeddings([[1.0, 0.0], [1.0, 0.0, 0.0]]))
    async with embedder(server, retry) as openai:
        with pytest.raises(EmbeddingDimensionError, match=r"varying dimensions \(2, 3\)"):
            await openai.embed(["a", "b"])
        assert openai.dimension is None  # nothing of that reply was kept
    server.enqueue(openai_embeddings([[1.0, 0.0, 0.0]]))
    async with embedder(server, retry, dimension=2) as openai:
        with pytest.raises(EmbeddingDimensionError, match="dimension 3, expected 2"):
            await openai.embed(["a"])
    # A learnt dimension holds for later replies.
    server.enqueue(openai_embeddings([[1.0, 0.0]]), openai_embeddings([[1.0, 0.0, 0.0]]))
    async with embedder(server, retry) as openai:
        await openai.embed(["a"])
        with pytest.raises(EmbeddingDimensionError, match="dimension 3, expected 2"):
            await openai.embed(["b"])
    assert OpenAIEmbedder(model="text-embedding-3-small").dimension == 1536


async def test_5xx_and_429_are_retried(
    server: FakeLlmServer, retry: RetryPolicy, sleeps: Sleeps
) -> None:
    server.enqueue(
        openai_error(500, "boom", kind="server_error"),
        openai_error(429, "slow down", kind="rate_limit_error", headers={"retry-after": "0.02"}),
        Reply(status=503, chunks=[b"unavailable"], framing="length"),
    )
    async with embedder(server, retry) as openai:
        (vector,) = await openai.embed(["Ana's cat"])
    assert np.allclose(vector, fake_embedding("Ana's cat"), atol=1e-6)
    assert len(server.requests) == 4
    assert sleeps.delays == [0.01, 0.02, 0.04]


async def test_an_error_in_a_200_reply_is_retried_like_a_failed_request(
    server: FakeLlmServer, retry: RetryPolicy, sleeps: Sleeps
) -> None:
    # vLLM: {"object": "error", ...}; OpenAI and llama.cpp: {"error": {...}}.
    server.enqueue(json_reply({"object": "error", "message": "busy", "type": "server_error"}))
    async with embedder(server, retry) as openai:
        assert len(await openai.embed(["a"])) == 1
        server.enqueue(*[json_reply({"error": {"message": "no such model"}})] * 4)
        with pytest.raises(EmbeddingUnavailableError, match="no such model"):
            await openai.embed(["a"])
    assert len(server.requests) == 6 and sleeps.delays == [0.01, 0.01, 0.02, 0.04]


async def test_an_outage_is_a_typed_retryable_error(
    server: FakeLlmServer, retry: RetryPolicy, sleeps: Sleeps
) -> None:
    server.enqueue(*[openai_error(502, "bad gateway", kind="server_error")] * 4)
    async with embedder(server, retry) as openai:
        with pytest.raises(EmbeddingUnavailableError) as caught:
            await openai.embed(["a", "b"])
        error = caught.value
        assert error.retryable and error.embedder == "openai" and error.status == 502
        assert isinstance(error.__cause__, ProviderUnavailableError)
        assert "could not embed 2 texts with openai" in str(error)
        assert "'embed-test'" in str(error) and "bad gateway" in str(error)
        assert len(sleeps.delays) == 3
        # The server is back: the same embedder works.
        assert len(await openai.embed(["a", "b"])) == 2


async def test_rate_limits_past_the_retries_are_unavailable(
    server: FakeLlmServer, sleeps: Sleeps
) -> None:
    server.enqueue(
        openai_error(429, "quota", kind="rate_limit_error", headers={"retry-after": "600"})
    )
    async with embedder(server, RetryPolicy(sleep=sleeps)) as openai:
        with pytest.raises(EmbeddingUnavailableError) as caught:
            await openai.embed(["a"])
    assert isinstance(caught.value.__cause__, RateLimitedError)


async def test_auth_errors_are_not_outages(server: FakeLlmServer, retry: RetryPolicy) -> None:
    server.enqueue(openai_error(401, "Incorrect API key", kind="invalid_api_key"))
    async with embedder(server, retry) as openai:
        with pytest.raises(EmbeddingError, match="check OPENAI_API_KEY") as caught:
            await openai.embed(["a"])
    assert type(caught.value) is EmbeddingError and caught.value.status == 401


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_nothing_listening_is_an_outage_with_the_url_redacted(sleeps: Sleeps) -> None:
    port = _closed_port()
    base_url = f"http://{URL_KEY}@127.0.0.1:{port}/v1?api-key={QUERY_KEY}"
    async with OpenAIEmbedder(base_url=base_url, api_key=KEY, retry=RetryPolicy(sleep=sleeps)) as e:
        with pytest.raises(EmbeddingUnavailableError) as caught:
            await e.embed(["a"])
        shown = "".join(traceback.format_exception(caught.value)) + repr(caught.value) + repr(e)
    assert f"http://***@127.0.0.1:{port}/v1?api-key=***" in str(caught.value)
    assert "connection refused" in str(caught.value)
    assert isinstance(caught.value.__cause__, ProviderUnavailableError)
    assert isinstance(caught.value.__cause__.__cause__, httpx.ConnectError)
    for secret in (KEY, URL_KEY, QUERY_KEY):
        assert secret not in shown
    assert sleeps.delays == []


async def test_credentials_in_the_base_url_never_show(
    server: FakeLlmServer, retry: RetryPolicy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # httpx logs each request's URL at INFO
    parts = urllib.parse.urlsplit(server.openai_base_url)
    base_url = urllib.parse.urlunsplit(
        parts._replace(netloc=f"{URL_KEY}@{parts.netloc}", query=f"api-key={QUERY_KEY}")
    )
    # A server that echoes the key back in its error message.
    server.enqueue(*[openai_error(500, f"bad key {QUERY_KEY} {KEY}", kind="server_error")] * 4)
    async with OpenAIEmbedder(
        base_url=base_url, api_key=KEY, model="embed-test", retry=retry
    ) as openai:
        with pytest.raises(EmbeddingUnavailableError) as caught:
            await openai.embed(["a"])
        shown = "".join(traceback.format_exception(caught.value)) + repr(openai)
        vectors = await openai.embed(["a"])
    assert len(vectors) == 1
    assert server.requests[-1].path == f"/v1/embeddings?api-key={QUERY_KEY}"
    shown += caplog.text
    assert "***" in shown
    for secret in (KEY, URL_KEY, QUERY_KEY):
        assert secret not in shown


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValidationError, match="batch_size"):
        OpenAIEmbedder(batch_size=0)
    with pytest.raises(ValidationError, match="dimension"):
        OpenAIEmbedder(dimension=-1)


class _SmallReplies(OpenAIEmbedder):
    max_reply_bytes = 4096


async def test_a_reply_past_the_size_limit_is_refused_not_read_whole(
    server: FakeLlmServer, retry: RetryPolicy, sleeps: Sleeps
) -> None:
    """A broken or hostile server cannot make a worker read an unbounded body into memory
    (the limit is 256 MiB; a subclass lowers it here). An error reply is read only as far as
    the limit, and its status still decides (a 503 is retried)."""
    server.enqueue(openai_embeddings([[1.0] * 2000]))
    async with _SmallReplies(
        base_url=server.openai_base_url, api_key=KEY, model="embed-test", retry=retry
    ) as small:
        with pytest.raises(EmbeddingError, match="larger than 4,096 bytes") as caught:
            await small.embed(["a"])
        assert not isinstance(caught.value, EmbeddingUnavailableError)
        assert sleeps.delays == []  # not retried
        server.enqueue(json_reply({"error": {"message": "x" * 100_000}}, status=503))
        server.enqueue(openai_embeddings([[1.0, 0.0]]))
        (vector,) = await small.embed(["b"])
    assert vector.tolist() == [1.0, 0.0] and len(sleeps.delays) == 1
    assert OpenAIEmbedder.max_reply_bytes == 256 << 20
