"""Requests that do not decode as their method's message, through the real Envoy (REST,
where the transcoder writes a corrupt map entry; a URL that is not UTF-8, which Envoy now
refuses itself) and as raw gRPC bytes (invalid UTF-8 in a string field): always
INVALID_ARGUMENT (HTTP 400), never UNKNOWN/INTERNAL, and no traceback in any service's
log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import pytest

from tests.support.gateway import Gateway

pytestmark = pytest.mark.integration

MESSAGE = "the request body could not be decoded"
# Field 1, length-delimited, two bytes that are not UTF-8: every request message below has
# a string as its first field.
UNDECODABLE = bytes.fromhex("0a02fffe")


@pytest.fixture
async def rest(gw: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gw.public_url, timeout=10) as client:
        yield client


def _tracebacks(gw: Gateway) -> int:
    return sum(
        log.read_text(errors="replace").count("Traceback")
        for log in Path(gw.stack.logs).glob("*.log")
    )


def _message(response: httpx.Response) -> str:
    body = response.json()
    message: str = body.get("error", body)["message"]
    return message


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param(
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "hi"}], "metadata": {"k": {}}},
            id="map-value-object",
        ),
        pytest.param("/v1/sessions", {"labels": {"k": {}}}, id="map-value-session"),
    ],
)
async def test_a_body_the_transcoder_cannot_encode_faithfully_is_400(
    gw: Gateway, rest: httpx.AsyncClient, path: str, body: object
) -> None:
    """The transcoder writes a corrupt map entry for an object where a string belongs;
    the service refuses the bytes it receives."""
    before = _tracebacks(gw)
    response = await rest.post(path, json=body)
    assert response.status_code == 400, response.text
    assert _message(response) == MESSAGE
    assert _tracebacks(gw) == before


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/v1/models/%FF", id="path-parameter"),
        pytest.param("/v1/sessions?page_token=%FF", id="query-parameter"),
        pytest.param("/v1/tools?page_token=%C3%28", id="query-parameter-tool"),
    ],
)
async def test_a_url_that_is_not_utf8_is_400(
    gw: Gateway, rest: httpx.AsyncClient, path: str
) -> None:
    """Refused at the edge now (envoy/openai_compat.lua); were it to get through, the
    transcoder would put invalid UTF-8 in a string field, which the service refuses as the
    raw-bytes tests below show."""
    before = _tracebacks(gw)
    response = await rest.get(path)
    assert response.status_code == 400, response.text
    assert _tracebacks(gw) == before


@pytest.mark.parametrize(
    "method",
    [
        "/llmgw.router.v1.RouterService/GetModel",
        "/llmgw.router.v1.RouterService/StreamChatCompletion",
        "/llmgw.router.v1.AdminService/GetUsage",
        "/llmgw.session.v1.SessionService/GetSession",
        "/llmgw.tool.v1.ToolService/GetTool",
        "/grpc.health.v1.Health/Check",
    ],
)
async def test_raw_undecodable_grpc_bytes_are_invalid_argument(gw: Gateway, method: str) -> None:
    before = _tracebacks(gw)
    async with grpc.aio.insecure_channel(gw.grpc_target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            if "Stream" in method:
                async for _ in channel.unary_stream(method)(UNDECODABLE, timeout=10):
                    pass
            else:
                await channel.unary_unary(method)(UNDECODABLE, timeout=10)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    assert caught.value.details() == MESSAGE
    assert _tracebacks(gw) == before


async def test_the_provider_refuses_undecodable_bytes_from_a_vouched_caller(gw: Gateway) -> None:
    async with grpc.aio.insecure_channel(gw.internal_target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await channel.unary_unary("/llmgw.provider.v1.ProviderService/Complete")(
                UNDECODABLE, metadata=gw.vouched_metadata(), timeout=10
            )
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
