"""The kubernetes toolset through Envoy: a stack whose tool service has KUBECONFIG
pointing at the fake Kubernetes API (a bearer-token kubeconfig), called over REST and
gRPC, with a result too large for the configured cap cut and annotated."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import json_format

from llmgw.tool.v1 import tool_service_pb2 as tool_pb2
from llmgw.tool.v1 import tool_service_pb2_grpc as tool_grpc
from services.launcher.stack import REPO_ROOT
from tests.support.gateway import Gateway, running_gateway
from tests.support.kube import write_kubeconfig

pytestmark = pytest.mark.integration

TOKEN = "integration-service-account-token"
POD = "api-7f6b9c5d4-zzzzz"


@pytest.fixture(scope="module")
def kube_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The fake API as its own process (bad_rollout scenario, bearer token required)."""
    run_dir = tmp_path_factory.mktemp("kube")
    port_file = run_dir / "port"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.kubernetes_fake",
            "--scenario",
            "bad_rollout",
            "--token",
            TOKEN,
            "--port-file",
            str(port_file),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not port_file.exists():
            assert process.poll() is None and time.monotonic() < deadline, "fake did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{int(port_file.read_text())}"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="module")
def kube_gateway(kube_api: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    run_dir = tmp_path_factory.mktemp("kube-gateway")
    kubeconfig = write_kubeconfig(run_dir / "kubeconfig", kube_api, token=TOKEN)

    def configure(document: dict[str, Any]) -> None:
        # 1600 bytes: a pod's description fits, the namespace's four pods do not.
        document["tools"]["toolsets"] = {"max_result_tokens": 400}

    with running_gateway(
        run_dir, configure=configure, env=lambda fakes: {"KUBECONFIG": str(kubeconfig)}
    ) as running:
        yield running


@pytest.fixture
async def stub(kube_gateway: Gateway) -> AsyncIterator[tool_grpc.ToolServiceStub]:
    async with grpc.aio.insecure_channel(kube_gateway.grpc_target) as channel:
        yield tool_grpc.ToolServiceStub(channel)


async def test_describe_pod_over_rest(kube_gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=kube_gateway.public_url, timeout=30) as client:
        response = await client.post(
            "/v1/tools/kubernetes_describe_pod:execute",
            json={"arguments": {"namespace": "shop", "name": POD}},
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "tools/kubernetes_describe_pod" and body["truncated"] is False
    pod = body["result"]["pod"]
    assert pod["containers"][0]["reason"] == "CrashLoopBackOff"
    assert pod["containers"][0]["last_state"]["exit_code"] == 2
    assert body["result"]["events"][-1]["reason"] == "BackOff"


async def test_describe_pod_over_grpc_and_not_found(stub: tool_grpc.ToolServiceStub) -> None:
    call = tool_pb2.ExecuteToolRequest(name="tools/kubernetes_describe_pod")
    call.arguments.update({"namespace": "shop", "name": POD})
    reply = await stub.ExecuteTool(call, timeout=30)
    result = json_format.MessageToDict(reply.result)
    assert result["pod"]["owner"] == "ReplicaSet/api-7f6b9c5d4"
    assert result["pod"]["containers"][0]["image"] == "registry.example.com/api:2.4.0"
    call.arguments.update({"name": "ghost"})
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ExecuteTool(call, timeout=30)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.details() == "pod 'ghost' in namespace 'shop' not found"


async def test_a_result_over_the_cap_is_cut_with_a_note(stub: tool_grpc.ToolServiceStub) -> None:
    call = tool_pb2.ExecuteToolRequest(name="tools/kubernetes_list_pods")
    call.arguments.update({"namespace": "shop"})
    reply = await stub.ExecuteTool(call, timeout=30)
    result = json_format.MessageToDict(reply.result)
    assert reply.truncated is True and result["truncated"] is True
    assert "narrow label_selector or field_selector" in result["note"]
    assert 0 < len(result["pods"]) < 4


async def test_rollout_history_and_listing(stub: tool_grpc.ToolServiceStub) -> None:
    call = tool_pb2.ExecuteToolRequest(name="tools/kubernetes_rollout_history")
    call.arguments.update({"namespace": "shop", "name": "api"})
    result = json_format.MessageToDict((await stub.ExecuteTool(call, timeout=30)).result)
    assert [c["field"] for c in result["diff"]["changes"]] == ["image", "env"]
    listing = await stub.ListTools(tool_pb2.ListToolsRequest(page_size=1000), timeout=30)
    names = {t.name for t in listing.tools}
    assert {
        "tools/kubernetes_list_pods",
        "tools/kubernetes_pod_logs",
        "tools/kubernetes_network_policies",
    } <= names
