"""Losing a replica loses no request: Envoy retries, health checks take it out."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from google.protobuf import struct_pb2

from llmgw.router.v1 import chat_pb2, router_service_pb2_grpc
from tests.support.gateway import Gateway, running_gateway

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def spare_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway of its own: this module kills its replicas."""
    with running_gateway(
        Path(tmp_path_factory.mktemp("replicas")), replicas={"router": 2, "provider": 2}
    ) as running:
        yield running


def _request() -> chat_pb2.CreateChatCompletionRequest:
    return chat_pb2.CreateChatCompletionRequest(
        model="gpt-4o-mini",
        messages=[chat_pb2.ChatMessage(role="user", content=struct_pb2.Value(string_value="hi"))],
    )


async def _cluster_flags(admin_url: str, cluster: str) -> list[str]:
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{admin_url}/clusters")).text
    return [
        line.rsplit("::", 1)[1]
        for line in text.splitlines()
        if line.startswith(f"{cluster}::") and "::health_flags::" in line
    ]


class _Progress:
    """Counts finished calls; lets the test wait for a count."""

    def __init__(self) -> None:
        self.calls = 0
        self._target = 0
        self._reached = asyncio.Event()

    def count(self) -> None:
        self.calls += 1
        if self.calls >= self._target:
            self._reached.set()

    async def reach(self, target: int) -> None:
        self._target = target
        self._reached.clear()
        if self.calls < target:
            await asyncio.wait_for(self._reached.wait(), 60)


@pytest.mark.parametrize("service", ["router", "provider"])
async def test_killing_a_replica_under_load_loses_no_unary_call(
    spare_gateway: Gateway, service: str
) -> None:
    gw = spare_gateway
    victim = gw.stack.replicas[service][0]
    if victim.process.returncode is not None:
        pytest.skip(f"{victim.name} already stopped by an earlier case")
    progress = _Progress()
    failures: list[str] = []
    done = asyncio.Event()
    async with grpc.aio.insecure_channel(gw.grpc_target) as channel:
        stub = router_service_pb2_grpc.RouterServiceStub(channel)

        async def worker() -> None:
            while not done.is_set():
                try:
                    await stub.CreateChatCompletion(_request(), timeout=10)
                except grpc.aio.AioRpcError as error:
                    failures.append(f"{error.code().name}: {error.details()}")
                progress.count()

        workers = [asyncio.create_task(worker()) for _ in range(8)]
        await progress.reach(150)
        victim.process.kill()
        await progress.reach(progress.calls + 300)
        done.set()
        await asyncio.gather(*workers)
    calls = progress.calls
    assert failures == [], f"{len(failures)} of {calls} calls failed: {failures[:5]}"
    # Active health checks take the dead replica out of rotation.
    for _ in range(50):
        flags = await _cluster_flags(gw.admin_url, service)
        if sorted(flags) != ["healthy", "healthy"]:
            break
        await asyncio.sleep(0.1)
    assert "healthy" in flags and len(flags) == 2 and sorted(flags) != ["healthy", "healthy"]
