"""The internal channel: calls wait for Envoy within their deadline instead of failing
while the connection is being made."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from services.common.channels import InternalChannel
from services.common.identity.assertion import InternalKeys
from services.launcher.processes import free_port
from tests.support.trust import TEST_INTERNAL_SECRET


async def test_a_call_made_before_the_listener_exists_waits_for_it() -> None:
    port = free_port()
    internal = InternalChannel(f"127.0.0.1:{port}", InternalKeys(TEST_INTERNAL_SECRET, "test"))
    stub = health_pb2_grpc.HealthStub(internal.channel)
    # A first call fails while nothing listens, putting the channel into its backoff.
    with pytest.raises(grpc.aio.AioRpcError) as early:
        await stub.Check(health_pb2.HealthCheckRequest(), timeout=0.3)
    assert early.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED

    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")

    async def start_later() -> None:
        await asyncio.sleep(0.5)
        await server.start()

    starter = asyncio.create_task(start_later())
    try:
        reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        await starter
        await server.stop(None)
        await internal.close()
