"""ToolService over a real channel (server built by `app.build`, real Redis, the fake
downstream): registry methods, execution, batches, statuses with details, readiness."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from prometheus_client import REGISTRY

from llmgw.tool.v1 import tool_service_pb2 as tool_pb2
from llmgw.tool.v1 import tool_service_pb2_grpc as tool_grpc
from services.common.errors import find_detail
from services.common.server import create_server
from services.common.settings import ServiceSettings
from services.tool.app import build
from tests.conftest import RedisServer
from tests.fakes import DownstreamBehaviour, FakeDownstream
from tests.support.trust import TEST_INTERNAL_SECRET, edge_channel
from tests.unit.tool.conftest import WEATHER_SCHEMA, StartServer, ToolServer, tools_section

Stub = tool_grpc.ToolServiceStub


def _call(name: str, timeout: float | None = None, **arguments: Any) -> tool_pb2.ExecuteToolRequest:
    call = tool_pb2.ExecuteToolRequest(name=name)
    call.arguments.update(arguments)
    if timeout is not None:
        call.timeout.FromNanoseconds(int(timeout * 1e9))
    return call


async def _status(awaitable: Any) -> status_pb2.Status:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await awaitable
    status = rpc_status.from_call(caught.value)
    assert status is not None
    return status


def _violations(status: status_pb2.Status) -> dict[str, str]:
    bad = find_detail(status, error_details_pb2.BadRequest)
    assert bad is not None
    return {v.field: v.description for v in bad.field_violations}


def _reason(status: status_pb2.Status) -> str:
    info = find_detail(status, error_details_pb2.ErrorInfo)
    return info.reason if info else ""


def _tool(url: str, **fields: Any) -> tool_pb2.Tool:
    tool = tool_pb2.Tool(
        description="Weather, registered at run time.",
        http=tool_pb2.HttpExecutor(method="GET", url_template=url + "/weather/{city}"),
        **fields,
    )
    json_format.ParseDict(WEATHER_SCHEMA, tool.parameters)
    return tool


# --- Registry -------------------------------------------------------------------------


async def test_list_tools_pages_in_name_order(stub: Stub) -> None:
    names: list[str] = []
    token = ""
    while True:
        page = await stub.ListTools(tool_pb2.ListToolsRequest(page_size=4, page_token=token))
        assert len(page.tools) <= 4
        names += [tool.name for tool in page.tools]
        token = page.next_page_token
        if not token:
            break
    assert names == sorted(names) and len(names) == 6
    assert "tools/weather" in names
    whole = await stub.ListTools(tool_pb2.ListToolsRequest())
    assert [tool.name for tool in whole.tools] == names and not whole.next_page_token
    schema = next(t for t in whole.tools if t.name == "tools/search_corpus").parameters
    assert json_format.MessageToDict(schema)["required"] == ["query"]


async def test_list_tools_refuses_forged_tokens(stub: Stub) -> None:
    status = await _status(stub.ListTools(tool_pb2.ListToolsRequest(page_token="bm9wZQ")))
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "page_token" in _violations(status)
    negative = await _status(stub.ListTools(tool_pb2.ListToolsRequest(page_size=-1)))
    assert "page_size" in _violations(negative)


async def test_get_tool(stub: Stub) -> None:
    got = await stub.GetTool(tool_pb2.GetToolRequest(name="tools/get_chunk"))
    assert got.tool.source == tool_pb2.TOOL_SOURCE_BUILTIN
    assert got.tool.http.method == "GET"
    missing = await _status(stub.GetTool(tool_pb2.GetToolRequest(name="tools/nothing")))
    assert missing.code == grpc.StatusCode.NOT_FOUND.value[0]
    info = find_detail(missing, error_details_pb2.ResourceInfo)
    assert info is not None and info.resource_name == "tools/nothing"
    bad = await _status(stub.GetTool(tool_pb2.GetToolRequest(name="nothing")))
    assert "name" in _violations(bad)


async def test_create_execute_delete_round_trip(stub: Stub, downstream: FakeDownstream) -> None:
    created = await stub.CreateTool(
        tool_pb2.CreateToolRequest(tool_id="runtime_weather", tool=_tool(downstream.url))
    )
    assert created.tool.name == "tools/runtime_weather"
    assert created.tool.source == tool_pb2.TOOL_SOURCE_RUNTIME
    assert created.tool.retry_policy.max_attempts == 3  # the configured default
    got = await stub.GetTool(tool_pb2.GetToolRequest(name="tools/runtime_weather"))
    assert got.tool == created.tool
    reply = await stub.ExecuteTool(_call("tools/runtime_weather", city="Lima"))
    assert reply.result.struct_value.fields["city"].string_value == "Lima"
    again = await _status(
        stub.CreateTool(
            tool_pb2.CreateToolRequest(tool_id="runtime_weather", tool=_tool(downstream.url))
        )
    )
    assert again.code == grpc.StatusCode.ALREADY_EXISTS.value[0]
    await stub.DeleteTool(tool_pb2.DeleteToolRequest(name="tools/runtime_weather"))
    gone = await _status(stub.ExecuteTool(_call("tools/runtime_weather", city="Lima")))
    assert gone.code == grpc.StatusCode.NOT_FOUND.value[0]
    twice = await _status(stub.DeleteTool(tool_pb2.DeleteToolRequest(name="tools/runtime_weather")))
    assert twice.code == grpc.StatusCode.NOT_FOUND.value[0]


async def test_create_tool_reports_every_problem(stub: Stub) -> None:
    tool = tool_pb2.Tool(
        http=tool_pb2.HttpExecutor(
            method="TRACE", url_template="http://169.254.169.254/latest/{path}"
        ),
        max_output_bytes=-1,
        retry_policy=tool_pb2.RetryPolicy(max_attempts=50),
    )
    tool.timeout.FromSeconds(0)
    json_format.ParseDict({"type": "array"}, tool.parameters)
    status = await _status(stub.CreateTool(tool_pb2.CreateToolRequest(tool_id="bad id", tool=tool)))
    found = _violations(status)
    assert set(found) == {
        "tool_id",
        "tool.description",
        "tool.parameters",
        "tool.http.method",
        "tool.timeout",
        "tool.retry_policy.max_attempts",
        "tool.max_output_bytes",
    }


async def test_create_tool_checks_the_host_and_the_url(
    stub: Stub, downstream: FakeDownstream
) -> None:
    refused = {
        "http://169.254.169.254/latest/meta-data": "is not in tools.allowed_hosts",
        "http://{host}/x": "an argument may never choose the host",
        "gopher://127.0.0.1/x": "http:// or https://",
        "http://me@127.0.0.1/x": "user information",
        downstream.url + "/weather/{town}": "must name a required property",
    }
    for url, problem in refused.items():
        tool = _tool(downstream.url)
        tool.http.url_template = url
        status = await _status(stub.CreateTool(tool_pb2.CreateToolRequest(tool_id="t", tool=tool)))
        assert problem in _violations(status)["tool.http.url_template"], url
    no_executor = tool_pb2.Tool(description="d")
    json_format.ParseDict(WEATHER_SCHEMA, no_executor.parameters)
    status = await _status(
        stub.CreateTool(tool_pb2.CreateToolRequest(tool_id="t", tool=no_executor))
    )
    assert "executor" in _violations(status)["tool.http"]


async def test_static_tools_cannot_be_deleted_or_replaced(
    stub: Stub, downstream: FakeDownstream
) -> None:
    for name in ("tools/weather", "tools/search_corpus"):
        status = await _status(stub.DeleteTool(tool_pb2.DeleteToolRequest(name=name)))
        assert status.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    taken = await _status(
        stub.CreateTool(tool_pb2.CreateToolRequest(tool_id="weather", tool=_tool(downstream.url)))
    )
    assert taken.code == grpc.StatusCode.ALREADY_EXISTS.value[0]


async def test_builtin_names_are_reserved_even_when_not_configured(
    start_server: StartServer, downstream: FakeDownstream
) -> None:
    server = await start_server(downstream={"search_url": downstream.url})
    status = await _status(
        server.stub.CreateTool(
            tool_pb2.CreateToolRequest(tool_id="review_code", tool=_tool(downstream.url))
        )
    )
    assert "reserved for a built-in tool" in _violations(status)["tool_id"]


async def test_registrations_reach_another_replica_within_a_second(
    start_server: StartServer, downstream: FakeDownstream
) -> None:
    first, second = await start_server(), await start_server()
    await first.stub.CreateTool(
        tool_pb2.CreateToolRequest(tool_id="shared", tool=_tool(downstream.url))
    )
    request = tool_pb2.GetToolRequest(name="tools/shared")
    deadline = time.monotonic() + 1.0
    while True:
        try:
            await second.stub.GetTool(request)
            break
        except grpc.aio.AioRpcError as error:
            assert error.code() is grpc.StatusCode.NOT_FOUND
            assert time.monotonic() < deadline, "not visible on the other replica within 1 s"
            await asyncio.sleep(0.02)
    await second.stub.DeleteTool(tool_pb2.DeleteToolRequest(name="tools/shared"))
    deadline = time.monotonic() + 1.0
    while True:
        try:
            await first.stub.GetTool(request)
        except grpc.aio.AioRpcError as error:
            assert error.code() is grpc.StatusCode.NOT_FOUND
            break
        assert time.monotonic() < deadline, "deletion not seen on the other replica within 1 s"
        await asyncio.sleep(0.02)


async def test_redis_outage(
    server: ToolServer, redis_server: RedisServer, downstream: FakeDownstream
) -> None:
    await redis_server.process.stop()
    check = health_pb2.HealthCheckRequest(service="llmgw.tool.v1.ToolService")
    deadline = time.monotonic() + 5
    while (await server.health.Check(check)).status != health_pb2.HealthCheckResponse.NOT_SERVING:
        assert time.monotonic() < deadline, "readiness did not follow Redis"
        await asyncio.sleep(0.05)
    listed = await server.stub.ListTools(tool_pb2.ListToolsRequest())
    assert len(listed.tools) == 6
    reply = await server.stub.ExecuteTool(_call("tools/weather", city="Bern"))
    assert reply.result.struct_value.fields["city"].string_value == "Bern"
    status = await _status(
        server.stub.CreateTool(tool_pb2.CreateToolRequest(tool_id="t", tool=_tool(downstream.url)))
    )
    assert status.code == grpc.StatusCode.UNAVAILABLE.value[0]
    assert find_detail(status, error_details_pb2.RetryInfo) is not None
    await redis_server.restart()
    while (await server.health.Check(check)).status != health_pb2.HealthCheckResponse.SERVING:
        assert time.monotonic() < deadline + 10, "readiness did not come back"
        await asyncio.sleep(0.05)


# --- Execution ------------------------------------------------------------------------


async def test_execute_returns_result_attempts_and_duration(
    stub: Stub, downstream: FakeDownstream
) -> None:
    downstream.script(DownstreamBehaviour(path="/search", status=503))
    reply = await stub.ExecuteTool(_call("tools/search_corpus", query="envoy health", top_k=1))
    assert reply.name == "tools/search_corpus"
    assert reply.attempts == 2 and not reply.truncated
    assert reply.duration.ToNanoseconds() > 0
    results = json_format.MessageToDict(reply.result)["results"]
    assert [r["chunk_id"] for r in results] == ["envoy-1"]


async def test_unknown_tool_is_not_found(stub: Stub) -> None:
    status = await _status(stub.ExecuteTool(_call("tools/teleport")))
    assert status.code == grpc.StatusCode.NOT_FOUND.value[0]
    assert _reason(status) == "TOOL_NOT_FOUND"


async def test_schema_violations_one_per_problem(stub: Stub, downstream: FakeDownstream) -> None:
    status = await _status(stub.ExecuteTool(_call("tools/search_corpus", top_k=99, page=2)))
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert _reason(status) == "TOOL_ARGUMENTS_INVALID"
    assert _violations(status) == {
        "arguments.query": "is a required property",
        "arguments.top_k": "99 is greater than the maximum of 50",
        "arguments.page": "is not a parameter of this tool",
    }
    assert downstream.hits == 0


async def test_the_shortest_time_limit_wins(stub: Stub, downstream: FakeDownstream) -> None:
    downstream.set_default(DownstreamBehaviour(delay=3))
    by_request = await _status(stub.ExecuteTool(_call("tools/weather", timeout=0.2, city="x")))
    assert by_request.code == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
    assert _reason(by_request) == "TOOL_TIMEOUT"
    with pytest.raises(grpc.aio.AioRpcError) as by_caller:
        await stub.ExecuteTool(_call("tools/weather", city="x"), timeout=0.5)
    assert by_caller.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    # Neither was retried: the time limit ended the attempt, not the tool's timeout.
    assert downstream.hits == 2
    zero = await _status(stub.ExecuteTool(_call("tools/weather", timeout=0, city="x")))
    assert zero.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]


async def test_batch_keeps_order_and_gives_each_call_its_status(
    stub: Stub, downstream: FakeDownstream
) -> None:
    downstream.script(DownstreamBehaviour(path="/weather/slow", delay=0.3))
    request = tool_pb2.BatchExecuteToolsRequest(
        calls=[
            _call("tools/weather", city="slow"),
            _call("tools/weather", city="fast"),
            _call("tools/nothing"),
            _call("tools/search_corpus", top_k=0),
            _call("tools/get_chunk", chunk_id="missing"),
        ]
    )
    reply = await stub.BatchExecuteTools(request)
    assert [r.index for r in reply.results] == [0, 1, 2, 3, 4]
    codes = [r.status.code for r in reply.results]
    assert codes == [0, 0, 5, 3, 5]
    assert reply.results[0].response.result.struct_value.fields["city"].string_value == "slow"
    assert not reply.results[2].HasField("response")
    # The same status the call alone gets, details included.
    alone = await _status(stub.ExecuteTool(request.calls[3]))
    assert reply.results[3].status == alone


async def test_batch_concurrency_is_bounded(stub: Stub, downstream: FakeDownstream) -> None:
    downstream.set_default(DownstreamBehaviour(delay=0.1))
    calls = [_call("tools/weather", city=f"c{i}") for i in range(6)]
    await stub.BatchExecuteTools(tool_pb2.BatchExecuteToolsRequest(calls=calls, max_concurrency=2))
    assert downstream.stats().peak_in_flight == 2
    downstream.reset()
    downstream.set_default(DownstreamBehaviour(delay=0.1))
    await stub.BatchExecuteTools(tool_pb2.BatchExecuteToolsRequest(calls=calls))
    assert downstream.stats().peak_in_flight == 6


async def test_batch_limits(stub: Stub) -> None:
    too_many = tool_pb2.BatchExecuteToolsRequest(calls=[_call("tools/weather", city="x")] * 65)
    status = await _status(stub.BatchExecuteTools(too_many))
    assert "at most 64" in _violations(status)["calls"]
    empty = await _status(stub.BatchExecuteTools(tool_pb2.BatchExecuteToolsRequest()))
    assert "calls" in _violations(empty)


async def test_executions_are_counted(stub: Stub) -> None:
    def count(tool: str, code: str) -> float:
        value = REGISTRY.get_sample_value(
            "llmgw_tool_executions_total", {"tool": tool, "code": code}
        )
        return value or 0.0

    before = (count("weather", "OK"), count("(unknown)", "NOT_FOUND"))
    await stub.ExecuteTool(_call("tools/weather", city="x"))
    await _status(stub.ExecuteTool(_call("tools/made_up")))
    assert (count("weather", "OK"), count("(unknown)", "NOT_FOUND")) == (
        before[0] + 1,
        before[1] + 1,
    )


async def test_without_redis_only_static_tools_are_served(
    downstream: FakeDownstream, tmp_path: Path
) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump({"tools": tools_section(downstream)}))
    settings = ServiceSettings(
        service="tool",
        port=0,
        metrics_port=0,
        config_path=config,
        access_log=False,
        internal_secret=TEST_INTERNAL_SECRET,
    )
    running = await create_server(settings, await build(settings))
    try:
        async with edge_channel(f"127.0.0.1:{running.port}") as channel:
            stub = tool_grpc.ToolServiceStub(channel)
            health = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest()
            )
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            assert len((await stub.ListTools(tool_pb2.ListToolsRequest())).tools) == 6
            status = await _status(
                stub.CreateTool(tool_pb2.CreateToolRequest(tool_id="t", tool=_tool(downstream.url)))
            )
            assert status.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
            assert "need Redis" in status.message
    finally:
        await running.stop(0)


# --- Hostile input ----------------------------------------------------------------------


@pytest.mark.parametrize("number", [float("nan"), float("inf")])
async def test_arguments_json_cannot_hold_are_refused_before_any_call(
    stub: Stub, downstream: FakeDownstream, number: float
) -> None:
    status = await _status(stub.ExecuteTool(_call("tools/weather", city="Lima", n=[number])))
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert _reason(status) == "TOOL_ARGUMENTS_INVALID"
    assert list(_violations(status)) == ["arguments.n[0]"]
    assert downstream.hits == 0


async def test_arguments_nested_past_the_bound_are_refused(
    stub: Stub, downstream: FakeDownstream
) -> None:
    deep: dict[str, Any] = {"leaf": 1}
    for _ in range(25):
        deep = {"a": deep}
    status = await _status(stub.ExecuteTool(_call("tools/weather", city="Lima", x=deep)))
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    [field] = _violations(status)
    assert field.startswith("arguments.x.a")
    assert downstream.hits == 0


async def test_create_tool_bounds_its_sizes_and_schema(
    stub: Stub, downstream: FakeDownstream
) -> None:
    tool = _tool(downstream.url, allowed_consumers=["c" * 1000])
    tool.description = "d" * 100_000
    tool.http.headers["X-Big"] = "v" * 100_000
    tool.parameters.update({"maximum": float("nan")})
    status = await _status(
        stub.CreateTool(
            tool_pb2.CreateToolRequest(tool_id="big", tool=tool, request_id="r" * 10_000)
        )
    )
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert set(_violations(status)) == {
        "request_id",
        "tool.description",
        "tool.parameters.maximum",
        "tool.http.headers[X-Big]",
        "tool.allowed_consumers[0]",
    }
    assert status.ByteSize() < 2100
