"""The tool service through Envoy (gRPC and REST) over the downstream fake."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from llmgw.tool.v1 import tool_service_pb2 as tool_pb2
from llmgw.tool.v1 import tool_service_pb2_grpc as tool_grpc
from services.common.errors import find_detail
from tests.fakes import DownstreamBehaviour, DownstreamControl, FakeDownstream
from tests.support.gateway import FAKE_WEATHER_KEY, Gateway

pytestmark = pytest.mark.integration

Stub = tool_grpc.ToolServiceStub


@pytest.fixture
async def tools(gw: Gateway) -> AsyncIterator[Stub]:
    async with grpc.aio.insecure_channel(gw.grpc_target) as channel:
        yield tool_grpc.ToolServiceStub(channel)


@pytest.fixture
async def rest(gw: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gw.public_url, timeout=30) as client:
        yield client


def _control(gw: Gateway) -> DownstreamControl:
    return DownstreamControl(gw.fakes["downstream"].root_url)


def _call(name: str, **arguments: Any) -> tool_pb2.ExecuteToolRequest:
    call = tool_pb2.ExecuteToolRequest(name=f"tools/{name}")
    call.arguments.update(arguments)
    return call


async def _status(awaitable: Any) -> status_pb2.Status:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await awaitable
    status = rpc_status.from_call(caught.value)
    assert status is not None, caught.value
    return status


def _violations(status: status_pb2.Status) -> dict[str, str]:
    bad = find_detail(status, error_details_pb2.BadRequest)
    assert bad is not None
    return {v.field: v.description for v in bad.field_violations}


def _rest_violations(body: dict[str, Any]) -> dict[str, str]:
    bad = next(d for d in body["details"] if d["@type"].endswith("BadRequest"))
    return {v["field"]: v["description"] for v in bad["field_violations"]}


# tool, arguments, (method and path the downstream saw, a key of its answer)
BUILTIN_CALLS: list[tuple[str, dict[str, Any], tuple[str, str, str]]] = [
    ("search_corpus", {"query": "sessions in redis", "top_k": 2}, ("POST", "/search", "results")),
    ("get_chunk", {"chunk_id": "tools-1"}, ("GET", "/chunks/tools-1", "text")),
    ("review_code", {"code": "eval(x)", "language": "py"}, ("POST", "/review", "findings")),
    (
        "analyze_architecture",
        {"description": "a gateway", "components": ["envoy", "router"]},
        ("POST", "/architecture", "recommendations"),
    ),
    (
        "generate_documentation",
        {"code": "def f(): pass", "format": "markdown"},
        ("POST", "/documentation", "documentation"),
    ),
]


@pytest.mark.parametrize(("tool", "arguments", "expected"), BUILTIN_CALLS)
async def test_every_builtin_tool_over_grpc(
    gw: Gateway,
    tools: Stub,
    tool: str,
    arguments: dict[str, Any],
    expected: tuple[str, str, str],
) -> None:
    method, path, key = expected
    reply = await tools.ExecuteTool(_call(tool, **arguments), timeout=10)
    assert reply.name == f"tools/{tool}"
    assert (reply.attempts, reply.truncated) == (1, False)
    assert key in json_format.MessageToDict(reply.result)
    with _control(gw) as control:
        (sent,) = control.requests()
    assert (sent.method, sent.path) == (method, path)
    if method == "POST":
        assert sent.json == arguments  # integers stay integers (top_k: 2, not 2.0)


async def test_search_corpus_over_rest(rest: httpx.AsyncClient) -> None:
    response = await rest.post(
        "/v1/tools/search_corpus:execute", json={"arguments": {"query": "envoy health"}}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "tools/search_corpus"
    assert body["result"]["results"][0]["chunk_id"] == "envoy-1"
    assert (body["attempts"], body["truncated"]) == (1, False)
    assert body["duration"].endswith("s")


async def test_tools_are_listed_with_their_schemas(gw: Gateway, rest: httpx.AsyncClient) -> None:
    listing = (await rest.get("/v1/tools")).json()
    names = [tool["name"] for tool in listing["tools"]]
    assert names == sorted(names)
    assert {
        "tools/search_corpus",
        "tools/get_chunk",
        "tools/review_code",
        "tools/analyze_architecture",
        "tools/generate_documentation",
        "tools/weather",
    } <= set(names)
    weather = (await rest.get("/v1/tools/weather")).json()["tool"]
    assert weather["source"] == "TOOL_SOURCE_CONFIG"
    assert weather["parameters"]["required"] == ["city"]
    # The credential is shown as the reference it is configured as, never its value...
    assert weather["http"]["headers"] == {"X-Weather-Key": "${FAKE_WEATHER_KEY}"}
    executed = await rest.post("/v1/tools/weather:execute", json={"arguments": {"city": "Oslo"}})
    assert executed.json()["result"]["city"] == "Oslo"
    with _control(gw) as control:
        sent = control.requests()[-1]
    # ...and expanded from the service's environment when the tool is called.
    assert sent.headers["x-weather-key"] == FAKE_WEATHER_KEY


async def test_slow_tool_is_deadline_exceeded(
    gw: Gateway, tools: Stub, rest: httpx.AsyncClient
) -> None:
    with _control(gw) as control:
        control.set_default(DownstreamBehaviour(delay=3), path="/weather/*")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await tools.ExecuteTool(_call("weather", city="slow"), timeout=0.5)
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    response = await rest.post(
        "/v1/tools/weather:execute", json={"arguments": {"city": "slow"}, "timeout": "0.3s"}
    )
    assert response.status_code == 504
    info = next(d for d in response.json()["details"] if d["@type"].endswith("ErrorInfo"))
    assert info["reason"] == "TOOL_TIMEOUT"


async def test_failing_then_succeeding_is_retried(gw: Gateway, tools: Stub) -> None:
    with _control(gw) as control:
        control.script(DownstreamBehaviour(path="/search", status=503))
    reply = await tools.ExecuteTool(_call("search_corpus", query="tools"), timeout=10)
    assert reply.attempts == 2
    with _control(gw) as control:
        assert control.stats().hits_by_path == {"/search": 2}


async def test_failing_always_opens_the_breaker(tools: Stub, rest: httpx.AsyncClient) -> None:
    # A downstream of its own (its own host:port, so its own breaker): the shared one
    # must stay closed for the other tests.
    async with FakeDownstream() as failing:
        failing.set_default(DownstreamBehaviour(status=503, message="down for maintenance"))
        tool = tool_pb2.Tool(
            description="Searches a corpus that is down.",
            http=tool_pb2.HttpExecutor(
                method="POST", url_template=failing.url + "/search", json_body=True
            ),
            retry_policy=tool_pb2.RetryPolicy(max_attempts=1),
        )
        json_format.ParseDict({"type": "object"}, tool.parameters)
        await tools.CreateTool(tool_pb2.CreateToolRequest(tool_id="failing_search", tool=tool))
        try:
            url = "/v1/tools/failing_search:execute"
            for attempt in range(5):  # the default breaker opens after 5 failures in a row
                response = await rest.post(url, json={"arguments": {"query": "x"}})
                assert response.status_code == 503, response.text
                assert "down for maintenance" in response.json()["message"]
                assert failing.hits == attempt + 1
            rejected = await rest.post(url, json={"arguments": {"query": "x"}})
            assert rejected.status_code == 503
            details = rejected.json()["details"]
            info = next(d for d in details if d["@type"].endswith("ErrorInfo"))
            assert info["reason"] == "CIRCUIT_OPEN"
            assert any(d["@type"].endswith("RetryInfo") for d in details)
            assert failing.hits == 5
        finally:
            await tools.DeleteTool(tool_pb2.DeleteToolRequest(name="tools/failing_search"))


async def test_oversized_result_is_truncated(gw: Gateway, tools: Stub) -> None:
    with _control(gw) as control:
        control.script(DownstreamBehaviour(path="/weather/*", pad_to=200_000))
    reply = await tools.ExecuteTool(_call("weather", city="big"), timeout=10)
    assert reply.truncated
    assert len(reply.result.string_value) == 65536  # the default cap, ASCII here


async def test_unknown_tool_is_not_found(tools: Stub, rest: httpx.AsyncClient) -> None:
    status = await _status(tools.ExecuteTool(_call("teleport"), timeout=10))
    assert status.code == grpc.StatusCode.NOT_FOUND.value[0]
    response = await rest.post("/v1/tools/teleport:execute", json={"arguments": {}})
    assert response.status_code == 404
    assert "tools/teleport" in response.json()["message"]


async def test_schema_violations_one_per_problem(
    gw: Gateway, tools: Stub, rest: httpx.AsyncClient
) -> None:
    status = await _status(
        tools.ExecuteTool(_call("search_corpus", top_k=100, colour="red"), timeout=10)
    )
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    expected = {
        "arguments.query": "is a required property",
        "arguments.top_k": "100 is greater than the maximum of 50",
        "arguments.colour": "is not a parameter of this tool",
    }
    assert _violations(status) == expected
    response = await rest.post(
        "/v1/tools/search_corpus:execute", json={"arguments": {"top_k": 100, "colour": "red"}}
    )
    assert response.status_code == 400
    assert _rest_violations(response.json()) == expected
    with _control(gw) as control:
        assert control.stats().hits == 0


async def test_batch_with_one_failing_call(tools: Stub) -> None:
    reply = await tools.BatchExecuteTools(
        tool_pb2.BatchExecuteToolsRequest(
            calls=[
                _call("weather", city="Paris"),
                _call("get_chunk", chunk_id="no-such-chunk"),
                _call("search_corpus", query="routing"),
            ],
            max_concurrency=2,
        ),
        timeout=10,
    )
    assert [r.index for r in reply.results] == [0, 1, 2]
    assert [r.status.code for r in reply.results] == [0, grpc.StatusCode.NOT_FOUND.value[0], 0]
    assert "no-such-chunk" in reply.results[1].status.message
    assert reply.results[0].response.result.struct_value.fields["city"].string_value == "Paris"
    assert reply.results[2].response.attempts == 1


async def test_batch_over_rest(rest: httpx.AsyncClient) -> None:
    response = await rest.post(
        "/v1/tools:batchExecute",
        json={
            "calls": [
                {"name": "tools/weather", "arguments": {"city": "Lyon"}},
                {"name": "tools/weather", "arguments": {}},
            ],
            "max_concurrency": 2,
        },
    )
    assert response.status_code == 200, response.text
    first, second = response.json()["results"]
    assert first["response"]["result"]["city"] == "Lyon"
    assert second["status"]["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]


async def test_create_and_delete_a_tool(gw: Gateway, tools: Stub, rest: httpx.AsyncClient) -> None:
    root = gw.fakes["downstream"].root_url
    tool = {
        "description": "Weather, registered at run time.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
        "http": {"method": "GET", "url_template": root + "/weather/{city}"},
    }
    created = await rest.post("/v1/tools", params={"tool_id": "runtime_weather"}, json=tool)
    try:
        assert created.status_code == 200, created.text
        assert created.json()["tool"]["source"] == "TOOL_SOURCE_RUNTIME"
        reply = await tools.ExecuteTool(_call("runtime_weather", city="Quito"), timeout=10)
        assert reply.result.struct_value.fields["city"].string_value == "Quito"
        listed = (await rest.get("/v1/tools")).json()["tools"]
        assert "tools/runtime_weather" in [t["name"] for t in listed]
    finally:
        deleted = await rest.delete("/v1/tools/runtime_weather")
    assert deleted.status_code == 200
    gone = await rest.get("/v1/tools/runtime_weather")
    assert gone.status_code == 404
    config_tool = await rest.delete("/v1/tools/weather")
    assert config_tool.status_code == 400  # FAILED_PRECONDITION
    tool["http"]["url_template"] = "http://169.254.169.254/latest/meta-data/{city}"
    refused = await rest.post("/v1/tools", params={"tool_id": "metadata"}, json=tool)
    assert refused.status_code == 400
    assert (
        "not in tools.allowed_hosts" in _rest_violations(refused.json())["tool.http.url_template"]
    )
