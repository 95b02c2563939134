"""Losing a replica: Envoy retries what never reached it, health checks take it out.

A call in flight on a router that dies may have been carried out, so it is not repeated
(its caller gets UNAVAILABLE saying so); a call in flight on a provider that dies is
retried by the router's own routing engine.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from google.protobuf import struct_pb2

from llmgw.router.v1 import chat_pb2, router_service_pb2_grpc
from services.launcher.envoy_config import REPLICA_LOST_MESSAGE
from tests.fakes import Behaviour
from tests.support.gateway import Gateway, running_gateway

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def spare_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway of its own: this module kills its replicas."""
    with running_gateway(
        Path(tmp_path_factory.mktemp("replicas")), replicas={"router": 2, "provider": 2}
    ) as running:
        yield running


def _request(model: str = "gpt-4o-mini") -> chat_pb2.CreateChatCompletionRequest:
    return chat_pb2.CreateChatCompletionRequest(
        model=model,
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
async def test_killing_a_replica_under_load_fails_only_calls_it_held(
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
    if service == "router":
        # At most the 8 calls in flight on it when it died, none of them repeated.
        assert len(failures) <= 8, f"{len(failures)} of {calls} calls failed: {failures[:5]}"
        assert set(failures) <= {f"UNAVAILABLE: {REPLICA_LOST_MESSAGE}"}
    else:
        assert failures == [], f"{len(failures)} of {calls} calls failed: {failures[:5]}"
    # Active health checks take the dead replica out of rotation.
    for _ in range(50):
        flags = await _cluster_flags(gw.admin_url, service)
        if sorted(flags) != ["healthy", "healthy"]:
            break
        await asyncio.sleep(0.1)
    assert "healthy" in flags and len(flags) == 2 and sorted(flags) != ["healthy", "healthy"]


@pytest.fixture(scope="module")
def provider_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """Another gateway of its own, with both provider replicas alive."""
    with running_gateway(
        Path(tmp_path_factory.mktemp("provider-pair")), replicas={"router": 2, "provider": 2}
    ) as running:
        yield running


async def test_killing_a_provider_mid_stream_ends_its_streams_cleanly(
    provider_pair: Gateway,
) -> None:
    """200 unary and 50 streaming calls in flight when one of two providers is killed."""
    gw = provider_pair
    words = [f"w{i} " for i in range(20)]
    with gw.fakes["openai"].control() as control:
        control.set_default(Behaviour(delay=0.5), model="gpt-unary-slow")
        control.set_default(Behaviour(chunks=words, chunk_delay=0.1), model="gpt-stream-slow")
    killed_at: list[float] = []
    unary_failures: list[str] = []
    streams: list[tuple[str, grpc.StatusCode, float]] = []

    async with grpc.aio.insecure_channel(gw.grpc_target) as channel:
        stub = router_service_pb2_grpc.RouterServiceStub(channel)

        async def unary() -> None:
            try:
                await stub.CreateChatCompletion(_request("gpt-unary-slow"), timeout=20)
            except grpc.aio.AioRpcError as error:
                unary_failures.append(f"{error.code().name}: {error.details()}")

        async def stream() -> None:
            text, code = "", grpc.StatusCode.OK
            try:
                async for chunk in stub.StreamChatCompletion(
                    _request("gpt-stream-slow"), timeout=20
                ):
                    text += "".join(c.delta.content for c in chunk.choices)
            except grpc.aio.AioRpcError as error:
                code = error.code()
            streams.append((text, code, time.monotonic()))

        async def kill_soon() -> None:
            # Once most calls are waiting upstream and streams are mid-way (a fixed delay
            # missed them on a loaded machine).
            control = gw.fakes["openai"].control()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                stats = await asyncio.to_thread(control.stats)
                if stats.in_flight >= 150:
                    break
                await asyncio.sleep(0.05)
            gw.stack.replicas["provider"][0].process.kill()
            killed_at.append(time.monotonic())

        await asyncio.gather(
            *(unary() for _ in range(200)), *(stream() for _ in range(50)), kill_soon()
        )
        assert unary_failures == [], (
            f"{len(unary_failures)} unary calls failed: {unary_failures[:3]}"
        )
        complete = [s for s in streams if s[1] is grpc.StatusCode.OK]
        broken = [s for s in streams if s[1] is not grpc.StatusCode.OK]
        assert all(text == "".join(words) for text, _, _ in complete)
        assert broken, "some streams were on the killed replica"
        for text, code, ended in broken:
            assert code is grpc.StatusCode.UNAVAILABLE
            assert ended - killed_at[0] < 2.0
            assert "".join(words).startswith(text)  # what arrived is a clean prefix

        # New requests all succeed on the surviving replica.
        results = await asyncio.gather(
            *(stub.CreateChatCompletion(_request(), timeout=10) for _ in range(50)),
            return_exceptions=True,
        )
        assert [r for r in results if isinstance(r, BaseException)] == []
