"""Credentials in a base URL (userinfo, ``?api-key=``) never reach a message, a log line or a
chained exception, over real HTTP against the fake server, for both wire protocols."""

from __future__ import annotations

import base64
import logging
import traceback
import urllib.parse

import pytest

from boternity.errors import AuthenticationError, LlmError, ProviderUnavailableError
from boternity.llm import ChatTurn, CompletionRequest, RetryPolicy
from boternity.redact import redact_text, redact_url, url_secrets
from tests.fakes.llm_server import FakeLlmServer, Reply
from tests.llm.wires import KEY, Sleeps, Wire

URL_KEY = "sk-userinfo-SECRET-4242424242"
QUERY_KEY = "qk-query-SECRET-5151515151"
SECRETS = (KEY, URL_KEY, QUERY_KEY)
REQUEST = CompletionRequest(model="test-model", messages=[ChatTurn("user", "Say hello")])


def with_credentials(url: str) -> str:
    """``url`` with a key as its userinfo and another as its ``api-key`` query parameter."""
    parts = urllib.parse.urlsplit(url)
    netloc = f"{URL_KEY}@{parts.netloc}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=f"api-key={QUERY_KEY}"))


def everything_about(error: BaseException) -> str:
    """What a person could ever see of ``error``: its message, repr and full traceback."""
    return "".join(traceback.format_exception(error)) + repr(error)


def assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://sk-abc123456789@h:1/v1", "http://***@h:1/v1"),
        (
            "https://user:pw@h/v1?api-key=k1&api-version=2024",
            "https://***@h/v1?api-key=***&api-version=2024",
        ),
        (
            "postgresql://postgres@db:5432/x?password=secret&sslpassword=s&sslmode=require",
            "postgresql://postgres@db:5432/x?password=***&sslpassword=***&sslmode=require",
        ),
        ("postgresql://bob:hunter2@db/x", "postgresql://bob:***@db/x"),
        (
            "http://h/v1?access_token=t&token=u&key=v&Secret=w",
            "http://h/v1?access_token=***&token=***&key=***&Secret=***",
        ),
        ("http://[broken/v1?apikey=zzz", "http://[broken/v1?apikey=***"),
        ("https://api.openai.com/v1", "https://api.openai.com/v1"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_text_masks_urls_and_the_secrets_of_a_url() -> None:
    url = f"http://{URL_KEY}@h/v1?api-key={QUERY_KEY}"
    echoed = f"bad key {QUERY_KEY} (from {url}); basic {base64.b64encode(f'{URL_KEY}:'.encode()).decode()}"
    text = redact_text(echoed, url_secrets(url))
    assert_clean(text)
    assert base64.b64encode(f"{URL_KEY}:".encode()).decode() not in text
    assert "http://***@h/v1?api-key=***" in text


async def test_a_query_in_the_base_url_is_sent_after_the_path(
    wire: Wire, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # httpx logs each request's URL at INFO
    async with FakeLlmServer() as server:
        provider = wire.make(base_url=with_credentials(wire.base_url(server)), api_key=KEY)
        async with provider:
            assert (await provider.complete(REQUEST)).text
            assert_clean(provider.label + repr(provider))
        [request] = server.requests
        path, _, query = request.path.partition("?")
        assert path.endswith(("/v1/messages", "/v1/chat/completions"))
        assert urllib.parse.parse_qs(query) == {"api-key": [QUERY_KEY]}
    assert "HTTP Request: POST" in caplog.text
    assert_clean(caplog.text)


async def test_a_server_echoing_the_credentials_in_a_401_leaks_nothing(wire: Wire) -> None:
    async with FakeLlmServer() as server:
        url = with_credentials(wire.base_url(server))
        basic = base64.b64encode(f"{URL_KEY}:".encode()).decode()
        echo = f"invalid key {KEY} / {URL_KEY} / {QUERY_KEY} for {url}, header Basic {basic}"
        server.enqueue(wire.auth_error(echo), wire.auth_error(echo))
        async with wire.make(base_url=url, api_key=KEY, retry=RetryPolicy(max_retries=0)) as llm:
            errors: list[LlmError] = []
            with pytest.raises(AuthenticationError) as caught:
                await llm.complete(REQUEST)
            errors.append(caught.value)
            with pytest.raises(AuthenticationError) as caught:
                async for _ in llm.stream(REQUEST):
                    pass
            errors.append(caught.value)
    for error in errors:
        text = everything_about(error)
        assert_clean(text)
        assert basic not in text
        assert "invalid key ***" in str(error)


async def test_retry_warnings_and_cut_connections_leak_nothing(
    wire: Wire, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with FakeLlmServer() as server:
        url = with_credentials(wire.base_url(server))
        plain_500 = Reply(
            status=500,
            headers={"content-type": "text/plain"},
            chunks=[f"upstream {url} failed".encode()],
            framing="length",
        )
        cut = Reply(headers={"content-type": "text/event-stream"}, chunks=[b"data: {"], cut=True)
        server.enqueue(plain_500, cut, plain_500)
        retry = RetryPolicy(max_retries=2, sleep=Sleeps())
        async with wire.make(base_url=url, api_key=KEY, retry=retry) as llm:
            with pytest.raises(ProviderUnavailableError) as caught:
                async for _ in llm.stream(REQUEST):
                    pass
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert all("retrying the request to" in w for w in warnings)
    assert_clean("\n".join(warnings) + everything_about(caught.value))
    assert "http://***@127.0.0.1" in str(caught.value)
