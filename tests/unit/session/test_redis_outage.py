"""Redis down: every RPC answers UNAVAILABLE at once, readiness goes NOT_SERVING within 5 s,
and both recover by themselves when Redis returns."""

from __future__ import annotations

import asyncio
import signal
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2

from llmgw.session.v1 import session_service_pb2 as session_pb2
from services.launcher.processes import wait_port
from tests.conftest import RedisServer
from tests.unit.session.conftest import SessionServer, StartServer
from tests.unit.session.helpers import all_messages, append, create, reason_of, user

SERVICE = "llmgw.session.v1.SessionService"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def health(server: SessionServer) -> int:
    reply = await server.health.Check(health_pb2.HealthCheckRequest(service=SERVICE))
    return reply.status


async def wait_for_health(server: SessionServer, status: int, within: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < within:
        if await health(server) == status:
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise AssertionError(f"health did not become {status} within {within}s")


async def assert_every_rpc_unavailable(server: SessionServer, name: str) -> None:
    stub = server.stub
    calls = [
        (stub.CreateSession, session_pb2.CreateSessionRequest()),
        (stub.GetSession, session_pb2.GetSessionRequest(name=name)),
        (stub.ListSessions, session_pb2.ListSessionsRequest()),
        (
            stub.UpdateSession,
            session_pb2.UpdateSessionRequest(session=session_pb2.Session(name=name)),
        ),
        (stub.DeleteSession, session_pb2.DeleteSessionRequest(name=name)),
        (
            stub.AppendMessages,
            session_pb2.AppendMessagesRequest(session=name, messages=[user("x")]),
        ),
        (stub.ListMessages, session_pb2.ListMessagesRequest(parent=name)),
        (stub.ClearHistory, session_pb2.ClearHistoryRequest(session=name)),
    ]
    for method, request in calls:
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await method(request, timeout=10)
        assert time.monotonic() - started < 1, method
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE, method
        assert reason_of(caught.value) == "DEPENDENCY_UNAVAILABLE"
        assert "redis" not in (caught.value.details() or "").lower()


async def test_outage_and_recovery(start_server: StartServer, redis_server: RedisServer) -> None:
    # The production probe interval (1 s): NOT_SERVING within 5 s must hold with it.
    server = await start_server(readiness_interval=1.0)
    session = await create(server.stub, "kept")
    await append(server.stub, session.name, "before the outage")
    assert await health(server) == SERVING

    await redis_server.process.stop()
    stopped = time.monotonic()
    await assert_every_rpc_unavailable(server, session.name)
    await wait_for_health(server, NOT_SERVING, within=5 - (time.monotonic() - stopped))
    print(f"\nNOT_SERVING {time.monotonic() - stopped:.2f}s after Redis stopped")

    await redis_server.process.start()
    await wait_port("127.0.0.1", redis_server.port, 10, redis_server.process)
    took = await wait_for_health(server, SERVING, within=5)
    print(f"SERVING again {took:.2f}s after Redis returned")
    texts = [m.message.content[0].text for m in await all_messages(server.stub, session.name)]
    assert texts == ["before the outage"]
    await append(server.stub, session.name, "after")


async def test_a_hung_redis_fails_within_the_socket_timeout(
    server: SessionServer, redis_server: RedisServer
) -> None:
    session = await create(server.stub, "hung")
    redis_server.process.signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await server.stub.GetSession(
                session_pb2.GetSessionRequest(name=session.name), timeout=10
            )
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
        assert time.monotonic() - started < 3
    finally:
        redis_server.process.signal(signal.SIGCONT)
    reply = await server.stub.GetSession(session_pb2.GetSessionRequest(name=session.name))
    assert reply.session.name == session.name
