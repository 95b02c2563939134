"""Overload is explicit: beyond Envoy's limits a clear 503 / UNAVAILABLE that says when
to retry, and below them no call is dropped by a replica that is merely busy."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from llmgw.router.v1 import chat_pb2
from llmgw.router.v1 import router_service_pb2_grpc as router_grpc
from services.launcher.topology import Topology
from tests.integration.envoy_support.stack import EnvoyStack, envoy_stack

pytestmark = pytest.mark.integration

MAX_REQUESTS = 2


def _two_requests_at_most(topology: Topology) -> Topology:
    policy = topology.cluster_policy
    breakers = dataclasses.replace(policy.circuit_breakers, max_requests=MAX_REQUESTS)
    return dataclasses.replace(
        topology, cluster_policy=dataclasses.replace(policy, circuit_breakers=breakers)
    )


@pytest.fixture(scope="module")
def small_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EnvoyStack]:
    """The router cluster admits MAX_REQUESTS requests at once."""
    with envoy_stack(tmp_path_factory.mktemp("small"), adjust=_two_requests_at_most) as running:
        yield running


def _chat(model: str) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}]}


async def test_beyond_the_circuit_breaker_rest_callers_get_503_with_retry_after(
    small_stack: EnvoyStack,
) -> None:
    async with httpx.AsyncClient(base_url=small_stack.public_url, timeout=10) as client:
        held = [
            asyncio.create_task(client.post("/v1/chat/completions", json=_chat("slow:1500")))
            for _ in range(MAX_REQUESTS)
        ]
        await asyncio.sleep(0.5)
        unary = await client.post("/v1/chat/completions", json=_chat("echo"))
        stream = await client.post("/v1/chat/completions:stream", json=_chat("echo"))
        assert [r.status_code for r in await asyncio.gather(*held)] == [200] * MAX_REQUESTS
    for response in (unary, stream):
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "1"
        body = response.json()
        status = body.get("error", body)
        assert status["code"] == grpc.StatusCode.UNAVAILABLE.value[0]
        assert status["message"] == "the gateway is at its concurrency limit; retry after 1 s"
    assert unary.json()["error"]["type"] == "server_error"


async def test_beyond_the_circuit_breaker_grpc_callers_get_retry_info(
    small_stack: EnvoyStack,
) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{small_stack.public_port}") as channel:
        stub = router_grpc.RouterServiceStub(channel)
        held = [
            asyncio.ensure_future(
                stub.CreateChatCompletion(chat_pb2.CreateChatCompletionRequest(model="slow:1500"))
            )
            for _ in range(MAX_REQUESTS)
        ]
        await asyncio.sleep(0.5)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.CreateChatCompletion(chat_pb2.CreateChatCompletionRequest(model="echo"))
        await asyncio.gather(*held)
    error = refused.value
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    assert status.message == error.details()
    info = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(info)
    assert info.retry_delay.seconds == 1
    assert dict(error.trailing_metadata() or ())["retry-after"] == "1"


@pytest.fixture
def one_router(tmp_path: Path) -> Iterator[EnvoyStack]:
    with envoy_stack(tmp_path, routers=1) as running:
        yield running


async def test_a_burst_of_calls_at_a_busy_replica_loses_none(one_router: EnvoyStack) -> None:
    """1,500 calls arrive while the replica's event loop is held: they wait in gRPC's
    queue of calls not yet accepted, and every one is answered once the loop is free.
    (gRPC's default drops such calls at random beyond 1,000 as CANCELLED.)"""
    burst = 1500
    async with grpc.aio.insecure_channel(f"127.0.0.1:{one_router.public_port}") as channel:
        stub = router_grpc.RouterServiceStub(channel)
        blocker = asyncio.ensure_future(
            stub.CreateChatCompletion(chat_pb2.CreateChatCompletionRequest(model="block:2000"))
        )
        await asyncio.sleep(0.3)

        async def one() -> str:
            try:
                await stub.CreateChatCompletion(
                    chat_pb2.CreateChatCompletionRequest(model="echo"), timeout=60
                )
            except grpc.aio.AioRpcError as error:
                return error.code().name
            return "OK"

        outcomes = Counter(await asyncio.gather(*(one() for _ in range(burst))))
        await blocker
    print(f"\nburst of {burst} at a busy replica: {dict(outcomes)}")
    assert outcomes == Counter({"OK": burst})
