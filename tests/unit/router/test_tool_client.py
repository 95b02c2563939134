"""The router's ToolClient: definitions cached per caller (never one caller's view for
another), for their TTL, within a bound; every call vouches for the current caller."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from llmgw.tool.v1 import tool_service_pb2 as tool_pb2
from llmgw.tool.v1 import tool_service_pb2_grpc as tool_grpc
from services.common.caller import Caller, reset_caller, set_caller
from services.common.channels import InternalChannel
from services.common.identity.assertion import ASSERTION_HEADER, InternalKeys
from services.common.tool_client import ToolClient
from tests.support.trust import TEST_INTERNAL_SECRET


class Tools(tool_grpc.ToolServiceServicer):
    """Answers GetTool with the asking consumer in the description; records who asked."""

    def __init__(self) -> None:
        self.keys = InternalKeys(TEST_INTERNAL_SECRET, "tool")
        self.asked: list[tuple[str, str]] = []

    async def GetTool(
        self, request: tool_pb2.GetToolRequest, context: grpc.aio.ServicerContext
    ) -> tool_pb2.GetToolResponse:
        metadata = dict(context.invocation_metadata() or ())
        consumer = self.keys.verify(str(metadata[ASSERTION_HEADER])).consumer
        self.asked.append((consumer, request.name))
        return tool_pb2.GetToolResponse(
            tool=tool_pb2.Tool(name=request.name, description=f"as seen by {consumer}")
        )


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def tools() -> Tools:
    return Tools()


@pytest.fixture
async def internal(tools: Tools) -> AsyncIterator[InternalChannel]:
    server = grpc.aio.server()
    tool_grpc.add_ToolServiceServicer_to_server(tools, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = InternalChannel(f"127.0.0.1:{port}", InternalKeys(TEST_INTERNAL_SECRET, "router"))
    yield channel
    await channel.close()
    await server.stop(0)


async def _get_as(client: ToolClient, consumer: str, tool_id: str) -> tool_pb2.Tool:
    token = set_caller(Caller(principal=None, consumer=consumer))
    try:
        return await client.get(tool_id, timeout=5)
    finally:
        reset_caller(token)


async def test_each_caller_gets_its_own_view(internal: InternalChannel, tools: Tools) -> None:
    client = ToolClient(internal, clock=Clock())
    alice = await _get_as(client, "consumers/alice", "weather")
    bob = await _get_as(client, "consumers/bob", "weather")
    assert alice.description == "as seen by consumers/alice"
    assert bob.description == "as seen by consumers/bob"
    assert await _get_as(client, "consumers/alice", "weather") is alice
    assert tools.asked == [
        ("consumers/alice", "tools/weather"),
        ("consumers/bob", "tools/weather"),
    ]


async def test_a_definition_is_fetched_again_after_its_ttl(
    internal: InternalChannel, tools: Tools
) -> None:
    clock = Clock()
    client = ToolClient(internal, ttl=5, clock=clock)
    await _get_as(client, "", "weather")
    clock.now += 4.9
    await _get_as(client, "", "weather")
    assert len(tools.asked) == 1
    clock.now += 0.1
    await _get_as(client, "", "weather")
    assert len(tools.asked) == 2


async def test_the_cache_is_bounded_oldest_first(internal: InternalChannel, tools: Tools) -> None:
    client = ToolClient(internal, max_entries=2, clock=Clock())
    for consumer in ("consumers/a", "consumers/b", "consumers/c"):
        await _get_as(client, consumer, "weather")
    await _get_as(client, "consumers/c", "weather")
    await _get_as(client, "consumers/b", "weather")
    assert len(tools.asked) == 3
    await _get_as(client, "consumers/a", "weather")  # dropped: fetched again
    assert len(tools.asked) == 4
