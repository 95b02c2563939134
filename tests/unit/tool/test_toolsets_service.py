"""Toolsets inside the tool service: registered as built-in tools with the toolset
executor, run with schema validation, the result cap and the breaker; switched on and
off by `tools.toolsets`; their ids reserved."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from grpc_status import rpc_status

from llmgw.tool.v1 import tool_service_pb2 as tool_pb2
from services.common.tool_config import ToolsetsConfig
from services.tool.result_cap import cap_result, size
from services.tool.toolsets import ToolsetConfigError, build_toolsets, enabled_toolsets
from tests.fakes.kubernetes_fake import FakeKubernetes
from tests.support.kube import write_kubeconfig
from tests.unit.tool.conftest import StartServer

POD = "payments-5c8d7f9b6-x2x7q"


@pytest.fixture
async def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeKubernetes]:
    async with FakeKubernetes("crashloop") as fake:
        monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kc", fake.url)))
        yield fake


def _call(tool: str, **arguments: Any) -> tool_pb2.ExecuteToolRequest:
    call = tool_pb2.ExecuteToolRequest(name=f"tools/{tool}")
    call.arguments.update(arguments)
    return call


async def test_toolset_tools_are_listed_as_builtin_read_only(
    cluster: FakeKubernetes, start_server: StartServer
) -> None:
    server = await start_server()
    listing = await server.stub.ListTools(tool_pb2.ListToolsRequest(page_size=1000))
    tools = {t.name: t for t in listing.tools if t.name.startswith("tools/kubernetes_")}
    assert len(tools) == 10
    policies = tools["tools/kubernetes_network_policies"]
    assert policies.toolset.read_only is True
    assert json_format.MessageToDict(policies.parameters)["required"] == ["namespace"]
    pods = tools["tools/kubernetes_list_pods"]
    assert pods.source == tool_pb2.TOOL_SOURCE_BUILTIN
    assert pods.WhichOneof("executor") == "toolset"
    assert (pods.toolset.toolset, pods.toolset.read_only) == ("kubernetes", True)
    assert pods.toolset.max_result_tokens == 4000
    assert pods.timeout.seconds == 20
    schema = json_format.MessageToDict(pods.parameters)
    assert schema["additionalProperties"] is False and schema["required"] == ["namespace"]


async def test_execute_describe_pod_and_schema_checks(
    cluster: FakeKubernetes, start_server: StartServer
) -> None:
    server = await start_server()
    reply = await server.stub.ExecuteTool(
        _call("kubernetes_describe_pod", namespace="shop", name=POD), timeout=10
    )
    result = json_format.MessageToDict(reply.result)
    assert result["pod"]["containers"][0]["reason"] == "CrashLoopBackOff"
    assert (reply.truncated, reply.attempts) == (False, 1)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.ExecuteTool(
            _call("kubernetes_describe_pod", namespace="shop", name=POD, extra=1), timeout=10
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert not any("extra" in path for path in cluster.paths())


async def test_a_large_result_is_cut_with_a_note(
    cluster: FakeKubernetes, start_server: StartServer
) -> None:
    server = await start_server(toolsets={"max_result_tokens": 100})
    reply = await server.stub.ExecuteTool(_call("kubernetes_events", namespace="shop"), timeout=10)
    result = json_format.MessageToDict(reply.result)
    assert reply.truncated is True and result["truncated"] is True
    assert "pass kind and name, or lower limit" in result["note"]
    # The newest event is the one kept (events read newest last).
    assert [e["reason"] for e in result["events"]] == ["BackOff"]
    assert len(reply.result.SerializeToString()) < 700


async def test_missing_pod_is_not_found_through_the_service(
    cluster: FakeKubernetes, start_server: StartServer
) -> None:
    server = await start_server()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.ExecuteTool(
            _call("kubernetes_describe_pod", namespace="shop", name="ghost"), timeout=10
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.details() == "pod 'ghost' in namespace 'shop' not found"


async def test_breaker_opens_on_a_failing_api(
    cluster: FakeKubernetes, start_server: StartServer
) -> None:
    server = await start_server(breaker={"consecutive_failures": 2})
    cluster.fail_status = 500
    for _ in range(2):
        with pytest.raises(grpc.aio.AioRpcError):
            await server.stub.ExecuteTool(_call("kubernetes_list_nodes"), timeout=10)
    seen = len(cluster.requests)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.ExecuteTool(_call("kubernetes_list_nodes"), timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "circuit breaker is open" in (caught.value.details() or "")
    assert len(cluster.requests) == seen


async def test_toolset_ids_are_reserved(cluster: FakeKubernetes, start_server: StartServer) -> None:
    server = await start_server()
    tool = tool_pb2.Tool(description="x", http=tool_pb2.HttpExecutor(method="GET"))
    tool.parameters.update({"type": "object"})
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await server.stub.CreateTool(
            tool_pb2.CreateToolRequest(tool_id="kubernetes_mine", tool=tool),
            metadata=(("authorization", "Bearer x"),),
            timeout=10,
        )
    status = rpc_status.from_call(caught.value)
    assert status is not None and "reserved" in status.message


def test_switches() -> None:
    environ = {"KUBECONFIG": "/nonexistent"}
    assert enabled_toolsets(ToolsetsConfig(), environ) == ["kubernetes"]
    assert enabled_toolsets(ToolsetsConfig(), {}) == []
    off = ToolsetsConfig.model_validate({"kubernetes": {"enabled": False}})  # YAML's `off`
    assert enabled_toolsets(off, environ) == []
    on = ToolsetsConfig.model_validate({"kubernetes": {"enabled": "on"}})
    with pytest.raises(ToolsetConfigError, match="KUBECONFIG or KUBERNETES_SERVICE_HOST"):
        build_toolsets(on, {})
    with pytest.raises(ToolsetConfigError, match="toolset kubernetes: KUBECONFIG"):
        build_toolsets(ToolsetsConfig(), environ)


# --- The cap alone ----------------------------------------------------------------------


def test_cap_keeps_a_small_result_whole() -> None:
    value = {"pods": [{"name": "a"}], "truncated": False}
    assert cap_result(value, 1000, "hint") == (value, False)


def test_cap_drops_trailing_items_of_the_largest_list() -> None:
    value: dict[str, Any] = {
        "pods": [{"name": f"pod-{i}", "pad": "x" * 50} for i in range(100)],
        "truncated": False,
    }
    capped, cut = cap_result(value, 1000, "narrow label_selector")
    assert cut is True and size(capped) <= 1000
    assert capped["truncated"] is True and capped["note"].endswith("narrow label_selector")
    names = [p["name"] for p in capped["pods"]]
    assert names == [f"pod-{i}" for i in range(len(names))] and 5 < len(names) < 20
    assert len(value["pods"]) == 100  # the caller's value is left alone


def test_cap_keeps_the_newest_log_lines() -> None:
    value = {"lines": [f"line {i}" for i in range(1000)], "matched": None}
    capped, _ = cap_result(value, 500, "pass tail_lines")
    assert capped["lines"][-1] == "line 999" and size(capped) <= 500


def test_cap_of_a_result_without_lists_is_a_preview() -> None:
    capped, cut = cap_result({"message": "é" * 5000}, 400, "hint")
    assert cut is True and size(capped) <= 400
    assert set(capped) == {"truncated", "note", "preview"} and capped["preview"]
