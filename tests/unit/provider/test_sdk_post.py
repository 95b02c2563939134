"""The prebuilt POST sends what the SDK's own `post` sends, and fails as the SDK does
(the openai SDK for OpenAI and Azure, the anthropic SDK)."""

from __future__ import annotations

import gzip
import socket
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx2
import openai
import orjson
import pytest
from aiohttp import web
from anthropic._models import FinalRequestOptions as AnthropicOptions
from openai._models import FinalRequestOptions as OpenAIOptions

from services.common.gateway_config import ProviderConfig
from services.provider.adapters import sdk_post
from services.provider.adapters.aiohttp_transport import UNARY, ResponseTooLarge
from services.provider.adapters.http_client import http_client, request_timeout
from services.provider.adapters.sdk_post import JsonPoster

CONFIG = ProviderConfig(type="openai")
TIMEOUT = request_timeout(CONFIG, 30.0)
BODY = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})


class Recorder:
    """Answers every POST with `status` and `answer`, keeping what arrived."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str], bytes]] = []
        self.status = 200
        self.answer: dict[str, Any] = {"ok": True}
        self.gzip = False
        self.content_type = "application/json"

    async def handle(self, request: web.Request) -> web.Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.seen.append((request.path_qs, headers, await request.read()))
        if not self.gzip:
            return web.Response(
                body=orjson.dumps(self.answer), status=self.status, content_type=self.content_type
            )
        return web.Response(
            body=gzip.compress(orjson.dumps(self.answer)),
            status=self.status,
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )


@pytest.fixture
async def server() -> AsyncIterator[tuple[Recorder, str]]:
    recorder = Recorder()
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", recorder.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield recorder, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


# What the SDK sends per request, derived from each call's timeout.
PER_REQUEST = ("x-stainless-read-timeout", "x-stainless-timeout")
BEARER = {"bearer_auth": True}


def _poster(client: Any) -> JsonPoster:
    if isinstance(client, anthropic.AsyncAnthropic):
        return JsonPoster(client, AnthropicOptions)
    return JsonPoster(client, OpenAIOptions, security=BEARER)


def _clients(root: str) -> list[tuple[Any, str]]:
    return [
        (
            openai.AsyncOpenAI(
                api_key="sk-one",
                base_url=f"{root}/v1",
                max_retries=0,
                default_headers={"X-Team": "search"},
                http_client=http_client(CONFIG),
            ),
            "/chat/completions",
        ),
        (
            openai.AsyncAzureOpenAI(
                azure_endpoint=root,
                api_version="2024-10-21",
                api_key="azure-key",
                max_retries=0,
                default_headers={"X-Team": "search"},
                http_client=http_client(CONFIG),
            ),
            "/deployments/my%20dep/chat/completions",
        ),
        (
            anthropic.AsyncAnthropic(
                api_key="sk-ant",
                base_url=root,
                max_retries=0,
                default_headers={"X-Team": "search"},
                http_client=http_client(CONFIG),
            ),
            "/v1/messages",
        ),
    ]


async def _close(clients: list[tuple[Any, str]]) -> None:
    for client, _ in clients:
        await client.close()


async def test_the_wire_request_is_the_sdks_own(server: tuple[Recorder, str]) -> None:
    recorder, root = server
    for client, path in _clients(root):
        options: Any = {"timeout": TIMEOUT, "headers": {"Content-Type": "application/json"}}
        if not isinstance(client, anthropic.AsyncAnthropic):
            options["security"] = BEARER
        try:
            await client.post(path, cast_to=httpx2.Response, content=BODY, options=options)
            poster = _poster(client)
            for _ in range(2):  # built once, then reused
                response = await poster.post(path, BODY, TIMEOUT, stream=False)
                assert orjson.loads(response.content) == {"ok": True}
        finally:
            await client.close()
        (sdk_path, sdk_headers, sdk_body), *ours = recorder.seen[-3:]
        for name in PER_REQUEST:
            sdk_headers.pop(name, None)
        for our_path, our_headers, our_body in ours:
            assert (our_path, our_body) == (sdk_path, sdk_body)
            assert our_headers == sdk_headers
    azure_path, azure_headers, _ = recorder.seen[5]
    assert azure_path == "/openai/deployments/my%20dep/chat/completions?api-version=2024-10-21"
    assert azure_headers["api-key"] == "azure-key" and "authorization" not in azure_headers
    openai_headers = recorder.seen[0][1]
    assert openai_headers["authorization"] == "Bearer sk-one"
    assert openai_headers["x-team"] == "search"
    anthropic_path, anthropic_headers, _ = recorder.seen[-1]
    assert anthropic_path == "/v1/messages"
    assert "sk-ant" in anthropic_headers.get("x-api-key", "") + anthropic_headers.get(
        "authorization", ""
    )
    assert anthropic_headers["anthropic-version"]


async def test_an_error_status_raises_the_sdks_error_with_its_body(
    server: tuple[Recorder, str],
) -> None:
    recorder, root = server
    recorder.status = 429
    recorder.answer = {"error": {"message": "slow down", "type": "requests", "code": "rate"}}
    clients = _clients(root)
    client, path = clients[0]
    try:
        with pytest.raises(openai.RateLimitError) as caught:
            await _poster(client).post(path, BODY, TIMEOUT, stream=True)
    finally:
        await _close(clients)
    assert caught.value.status_code == 429
    assert caught.value.body == recorder.answer["error"]


async def test_templates_are_kept_for_a_bounded_number_of_paths(
    server: tuple[Recorder, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, root = server
    monkeypatch.setattr(sdk_post, "MAX_TEMPLATES", 2)
    clients = _clients(root)
    poster = _poster(clients[1][0])
    try:
        for n in range(4):
            await poster.post(f"/deployments/d{n}/chat/completions", BODY, TIMEOUT, stream=False)
    finally:
        await _close(clients)
    assert len(poster._templates) == 2


async def test_a_compressed_answer_arrives_decoded_and_so_does_a_compressed_error(
    server: tuple[Recorder, str],
) -> None:
    recorder, root = server
    recorder.gzip = True
    recorder.answer = {"ok": "compressed"}
    clients = _clients(root)
    client, path = clients[0]
    poster = _poster(client)
    try:
        answer = await poster.post(path, BODY, TIMEOUT, stream=False)
        streamed = await poster.post(path, BODY, TIMEOUT, stream=True)
        pieces = [piece async for piece in streamed.aiter_bytes()]
        recorder.status = 400
        recorder.answer = {"error": {"message": "bad field", "type": "invalid_request_error"}}
        with pytest.raises(openai.BadRequestError) as caught:
            await poster.post(path, BODY, TIMEOUT, stream=False)
    finally:
        await _close(clients)
    assert recorder.seen[0][1]["accept-encoding"]  # the SDK's client asks for it
    assert orjson.loads(answer.content) == {"ok": "compressed"}
    assert orjson.loads(b"".join(pieces)) == {"ok": "compressed"}
    assert caught.value.body == recorder.answer["error"]
    assert "content-encoding" not in caught.value.response.headers


async def test_an_answer_over_the_body_limit_is_refused_and_a_refused_connection_named(
    server: tuple[Recorder, str],
) -> None:
    recorder, root = server
    recorder.answer = {"text": "x" * 2000}
    client = openai.AsyncOpenAI(
        api_key="sk-one",
        base_url=f"{root}/v1",
        max_retries=0,
        http_client=http_client(ProviderConfig(type="openai", max_response_bytes=1000)),
    )
    poster = _poster(client)
    try:
        with pytest.raises(ResponseTooLarge) as caught:
            await poster.post("/chat/completions", BODY, TIMEOUT, stream=False)
        assert caught.value.limit == 1000
        # A unary answer is bounded even when it calls itself a stream.
        recorder.content_type = "text/event-stream"
        with pytest.raises(ResponseTooLarge):
            await poster.post("/chat/completions", BODY, TIMEOUT, stream=False)
        streamed = await poster.post("/chat/completions", BODY, TIMEOUT, stream=True)
        assert len(b"".join([piece async for piece in streamed.aiter_bytes()])) > 1000
    finally:
        await client.close()
    unused = _unused_port()
    closed = openai.AsyncOpenAI(
        api_key="sk-one",
        base_url=f"http://127.0.0.1:{unused}/v1",
        max_retries=0,
        http_client=http_client(CONFIG),
    )
    try:
        with pytest.raises(httpx2.ConnectError) as refused:
            await _poster(closed).post("/chat/completions", BODY, TIMEOUT, stream=False)
    finally:
        await closed.close()
    assert str(unused) in str(refused.value.request.url)


def test_a_client_without_the_gateways_transport_is_refused() -> None:
    client = openai.AsyncOpenAI(api_key="sk-one", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(TypeError, match="http_client"):
        _poster(client)


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_the_httpx2_interface_bounds_a_request_marked_unary_whatever_its_answer_says(
    server: tuple[Recorder, str],
) -> None:
    """The Ollama client's way: a request with the UNARY extension is read bounded."""
    recorder, root = server
    recorder.answer = {"text": "x" * 2000}
    recorder.content_type = "application/x-ndjson"
    client = http_client(ProviderConfig(type="ollama", max_response_bytes=1000))
    try:
        unary = client.build_request("POST", f"{root}/api/chat", extensions={UNARY: True})
        with pytest.raises(ResponseTooLarge):
            await client.send(unary)
        streamed = await client.send(client.build_request("POST", f"{root}/api/chat"))
    finally:
        await client.aclose()
    assert len(streamed.content) > 1000
