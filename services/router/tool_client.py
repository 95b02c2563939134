"""Calls to the Tool service for the gateway-side tool loop, through Envoy's internal
listener: the registered tools' definitions (cached briefly) and their execution."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

import grpc
from google.protobuf import struct_pb2

from llmgw.tool.v1 import tool_service_pb2 as tool_pb2
from llmgw.tool.v1 import tool_service_pb2_grpc as tool_grpc
from services.common.channels import InternalChannel
from services.common.remote import translate_rpc_error

# How long a tool definition is reused before it is fetched again: a tool registered,
# changed or removed at run time reaches the loop within this time.
DEFINITION_TTL_SECONDS = 5.0


class ToolClient:
    """A ToolService stub on the router's shared internal channel."""

    def __init__(
        self,
        internal: InternalChannel,
        *,
        ttl: float = DEFINITION_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stub = tool_grpc.ToolServiceStub(internal.channel)
        self._metadata = internal.metadata
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, tool_pb2.Tool]] = {}

    async def get(self, tool_id: str, timeout: float | None) -> tool_pb2.Tool:
        """The tool `tools/{tool_id}`; NOT_FOUND (from the tool service) when unknown."""
        cached = self._cache.get(tool_id)
        now = self._clock()
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            reply = await self._stub.GetTool(
                tool_pb2.GetToolRequest(name=f"tools/{tool_id}"),
                timeout=timeout,
                metadata=self._metadata(timeout),
            )
        except grpc.aio.AioRpcError as error:
            raise translate_rpc_error(error, "tool") from None
        self._cache[tool_id] = (now + self._ttl, reply.tool)
        return reply.tool

    async def get_many(self, tool_ids: Sequence[str], timeout: float | None) -> list[tool_pb2.Tool]:
        return list(await asyncio.gather(*(self.get(t, timeout) for t in tool_ids)))

    async def execute(
        self, tool_id: str, arguments: struct_pb2.Struct, timeout: float | None
    ) -> tool_pb2.ExecuteToolResponse:
        """Runs one tool; its failure is raised as the tool service reported it."""
        request = tool_pb2.ExecuteToolRequest(name=f"tools/{tool_id}", arguments=arguments)
        try:
            return await self._stub.ExecuteTool(
                request, timeout=timeout, metadata=self._metadata(timeout)
            )
        except grpc.aio.AioRpcError as error:
            raise translate_rpc_error(error, "tool") from None
