"""The shared interceptor wraps every kind of handler: a unary, server-streaming,
client-streaming or bidirectional method is refused without the gateway's proof, and a
request that does not decode is INVALID_ARGUMENT (never UNKNOWN/INTERNAL with a traceback
per call), on any method, health checks included.

The methods belong to a service nobody mapped, as one added later would: it is gated
under its own name.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2

from llmgw.session.v1 import session_service_pb2 as session_pb2
from services.common.identity.assertion import InternalKeys
from services.common.identity.gate import NOT_THROUGH_THE_GATEWAY, Gate
from services.common.interceptors import UNDECODABLE_MESSAGE
from services.common.server import RunningServer, ServiceDefinition, create_server
from services.common.settings import ServiceSettings
from tests.support.trust import TEST_INTERNAL_SECRET, edge_metadata

SERVICE = "llmgw.test.v1.TransferService"
Request = session_pb2.GetSessionRequest
Reply = session_pb2.GetSessionResponse
# A length-delimited string field (1: name) holding two bytes that are not UTF-8.
UNDECODABLE = bytes.fromhex("0a02fffe")
EDGE = edge_metadata()


def reply(name: str) -> Reply:
    return Reply(session=session_pb2.Session(name=name))


class Transfers:
    """One method of each kind; records every call that reached it."""

    def __init__(self) -> None:
        self.reached: list[str] = []

    async def echo(self, request: Request, context: grpc.aio.ServicerContext) -> Reply:
        self.reached.append("Echo")
        return reply(request.name)

    async def watch(
        self, request: Request, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Reply]:
        self.reached.append("Watch")
        for part in request.name.split(","):
            yield reply(part)

    async def upload(
        self, requests: AsyncIterator[Request], context: grpc.aio.ServicerContext
    ) -> Reply:
        self.reached.append("Upload")
        return reply(",".join([r.name async for r in requests]))

    async def exchange(
        self, requests: AsyncIterator[Request], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Reply]:
        self.reached.append("Exchange")
        async for request in requests:
            yield reply(request.name)

    def handler(self) -> grpc.GenericRpcHandler:
        kinds = {
            "Echo": grpc.unary_unary_rpc_method_handler,
            "Watch": grpc.unary_stream_rpc_method_handler,
            "Upload": grpc.stream_unary_rpc_method_handler,
            "Exchange": grpc.stream_stream_rpc_method_handler,
        }
        behaviours = {
            "Echo": self.echo,
            "Watch": self.watch,
            "Upload": self.upload,
            "Exchange": self.exchange,
        }
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                name: make(
                    behaviours[name],
                    request_deserializer=Request.FromString,
                    response_serializer=Reply.SerializeToString,
                )
                for name, make in kinds.items()
            },
        )


@pytest.fixture
def transfers() -> Transfers:
    return Transfers()


@pytest.fixture
async def server(transfers: Transfers) -> AsyncIterator[RunningServer]:
    # Authentication off: the proof of the call's origin is required all the same.
    gate = Gate(InternalKeys(TEST_INTERNAL_SECRET, "test"), None)
    settings = ServiceSettings(service="tool", port=0, metrics_port=0, access_log=False)
    running = await create_server(
        settings,
        ServiceDefinition(
            register=lambda srv: srv.add_generic_rpc_handlers((transfers.handler(),)),
            service_names=[SERVICE],
            gate=gate,
        ),
    )
    yield running
    await running.stop(0)


@pytest.fixture
async def channel(server: RunningServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        yield ch


def _method(channel: grpc.aio.Channel, kind: str, name: str, raw: bool = False) -> Any:
    make: Callable[..., Any] = getattr(channel, kind)
    return make(
        f"/{SERVICE}/{name}",
        request_serializer=None if raw else Request.SerializeToString,
        response_deserializer=Reply.FromString,
    )


async def _requests(*items: Any) -> AsyncIterator[Any]:
    for item in items:
        yield item


async def _call(channel: grpc.aio.Channel, name: str, *items: Any, **kwargs: Any) -> list[str]:
    """Calls method `name` with `items` (raw bytes or requests); the names answered."""
    raw = isinstance(items[0], bytes)
    if name == "Echo":
        answer = await _method(channel, "unary_unary", name, raw)(items[0], **kwargs)
        return [answer.session.name]
    if name == "Watch":
        call = _method(channel, "unary_stream", name, raw)(items[0], **kwargs)
        return [r.session.name async for r in call]
    if name == "Upload":
        answer = await _method(channel, "stream_unary", name, raw)(_requests(*items), **kwargs)
        return [answer.session.name]
    call = _method(channel, "stream_stream", name, raw)(_requests(*items), **kwargs)
    return [r.session.name async for r in call]


KINDS = ["Echo", "Watch", "Upload", "Exchange"]


@pytest.mark.parametrize("name", KINDS)
async def test_every_kind_of_method_works_with_the_gateways_proof(
    channel: grpc.aio.Channel, transfers: Transfers, name: str
) -> None:
    answered = await _call(channel, name, Request(name="a"), metadata=EDGE, timeout=5)
    assert answered == ["a"]
    assert transfers.reached == [name]


@pytest.mark.parametrize("name", KINDS)
@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param((), id="nothing"),
        pytest.param((("x-llmgw-client-address", "10.0.0.1"),), id="forged-address"),
        pytest.param((("x-llmgw-edge-token", "guessed"),), id="forged-edge-token"),
        pytest.param((("x-llmgw-principal", "v1.e30.AAAA"),), id="forged-assertion"),
    ],
)
async def test_every_kind_of_method_refuses_a_call_without_the_proof(
    channel: grpc.aio.Channel,
    transfers: Transfers,
    name: str,
    metadata: tuple[tuple[str, str], ...],
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _call(channel, name, Request(name="a"), metadata=metadata, timeout=5)
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert transfers.reached == []


async def test_the_refusal_says_calls_must_come_through_the_gateway(
    channel: grpc.aio.Channel,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _call(channel, "Exchange", Request(name="a"), timeout=5)
    assert caught.value.details() == NOT_THROUGH_THE_GATEWAY


@pytest.mark.parametrize("name", KINDS)
async def test_an_undecodable_request_is_invalid_argument_on_every_kind(
    channel: grpc.aio.Channel,
    transfers: Transfers,
    name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _call(channel, name, UNDECODABLE, metadata=EDGE, timeout=5)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == UNDECODABLE_MESSAGE
    # Unary requests are refused before the handler runs; a streaming handler meets the
    # refusal at the message that did not decode.
    assert transfers.reached == ([] if name in ("Echo", "Watch") else [name])
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert [r.levelno for r in caplog.records if r.getMessage() == "request body could not be "
            "decoded"] == [logging.DEBUG]  # fmt: skip


async def test_a_stream_is_refused_at_its_first_undecodable_message(
    channel: grpc.aio.Channel,
) -> None:
    good = Request(name="fine").SerializeToString()
    call = _method(channel, "stream_stream", "Exchange", raw=True)(
        _requests(good, UNDECODABLE, good), metadata=EDGE, timeout=5
    )
    answered = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for item in call:
            answered.append(item.session.name)
    assert answered == ["fine"]
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_without_the_proof_an_undecodable_request_is_unauthenticated(
    channel: grpc.aio.Channel,
) -> None:
    # Nothing about the request is looked at before the caller is known.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _call(channel, "Echo", UNDECODABLE, timeout=5)
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED


async def test_an_undecodable_health_check_is_invalid_argument(
    channel: grpc.aio.Channel, caplog: pytest.LogCaptureFixture
) -> None:
    check = channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=None,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await check(UNDECODABLE, timeout=5)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert not [r for r in caplog.records if r.exc_info]
    reply = await check(health_pb2.HealthCheckRequest().SerializeToString(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
