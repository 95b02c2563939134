"""Every RPC has a deadline: the caller's, clipped to the service's ceiling, or the
ceiling when the caller sent none; calls made while serving it inherit what is left."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from llmgw.session.v1 import session_service_pb2 as session_pb2
from llmgw.session.v1 import session_service_pb2_grpc as session_grpc
from services.common.channels import remaining_timeout
from services.common.server import RunningServer, ServiceDefinition, create_server
from services.common.settings import ServiceSettings

SESSION = "llmgw.session.v1.SessionService"
CEILING = 2.0
# gRPC carries deadlines rounded up to its timer's resolution.
ROUNDING = 0.05


class Inner(session_grpc.SessionServiceServicer):
    """Answers with the deadline it was called with (-1: none)."""

    async def GetSession(self, request, context):  # type: ignore[no-untyped-def]
        remaining = context.time_remaining()
        return session_pb2.GetSessionResponse(
            session=session_pb2.Session(name=str(-1 if remaining is None else remaining))
        )


class Outer(session_grpc.SessionServiceServicer):
    """Calls Inner with what is left of its own deadline; `default` asks for one of its
    own when the caller set none."""

    def __init__(self, inner_target: str) -> None:
        self._target = inner_target

    async def GetSession(self, request, context):  # type: ignore[no-untyped-def]
        default = float(request.name) if request.name else None
        timeout = remaining_timeout(context, default)
        async with grpc.aio.insecure_channel(self._target) as channel:
            return await session_grpc.SessionServiceStub(channel).GetSession(
                session_pb2.GetSessionRequest(), timeout=timeout
            )


async def _serve(servicer: session_grpc.SessionServiceServicer) -> RunningServer:
    settings = ServiceSettings(
        service="session", port=0, metrics_port=0, access_log=False, request_deadline=CEILING
    )
    return await create_server(
        settings,
        ServiceDefinition(
            register=lambda srv: session_grpc.add_SessionServiceServicer_to_server(servicer, srv),
            service_names=[SESSION],
        ),
    )


@pytest.fixture
async def outer() -> AsyncIterator[session_grpc.SessionServiceStub]:
    inner = await _serve(Inner())
    outer = await _serve(Outer(f"127.0.0.1:{inner.port}"))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{outer.port}") as channel:
        yield session_grpc.SessionServiceStub(channel)
    await outer.stop(0)
    await inner.stop(0)


async def _inner_deadline(
    stub: session_grpc.SessionServiceStub, timeout: float | None, default: str = ""
) -> float:
    reply = await stub.GetSession(session_pb2.GetSessionRequest(name=default), timeout=timeout)
    return float(reply.session.name)


async def test_a_call_without_a_deadline_gets_the_ceiling(
    outer: session_grpc.SessionServiceStub,
) -> None:
    assert 1.0 < await _inner_deadline(outer, None) <= CEILING + ROUNDING


async def test_a_longer_deadline_is_clipped_to_the_ceiling(
    outer: session_grpc.SessionServiceStub,
) -> None:
    assert 1.0 < await _inner_deadline(outer, 3600) <= CEILING + ROUNDING


async def test_a_shorter_deadline_is_passed_on(outer: session_grpc.SessionServiceStub) -> None:
    assert 0.3 < await _inner_deadline(outer, 0.8) <= 0.8 + ROUNDING


async def test_a_default_applies_only_when_the_caller_set_no_deadline(
    outer: session_grpc.SessionServiceStub,
) -> None:
    assert 0.1 < await _inner_deadline(outer, None, default="0.5") <= 0.5 + ROUNDING
    assert 1.0 < await _inner_deadline(outer, 1.5, default="0.5") <= 1.5 + ROUNDING
    # Never above the ceiling.
    assert 1.0 < await _inner_deadline(outer, None, default="60") <= CEILING + ROUNDING
