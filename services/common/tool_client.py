"""Calls to the Tool service, through Envoy's internal listener: the registered tools'
definitions (cached briefly) and their execution, for the router's gateway-side tool loop
and the investigation service's toolsets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

import grpc
from google.protobuf import struct_pb2

from llmgw.tool.v1 import tool_service_pb2 as tool_pb2
from llmgw.tool.v1 import tool_service_pb2_grpc as tool_grpc
from services.common.caller import current_caller
from services.common.channels import InternalChannel
from services.common.remote import translate_rpc_error

# How long a tool definition is reused before it is fetched again: a tool registered,
# changed or removed at run time reaches the loop within this time.
DEFINITION_TTL_SECONDS = 5.0
# Most definitions kept; the oldest go first beyond it.
MAX_CACHED_DEFINITIONS = 4096


class ToolClient:
    """A ToolService stub on a service's shared internal channel.

    What GetTool answers depends on who asks (the caller's groups decide which tools it
    may see, a tool's `allowed_consumers` narrows that, and only admins see that list), so
    a cached definition is reused only for the consumer it was fetched for: one caller's
    view is never served to another.
    """

    def __init__(
        self,
        internal: InternalChannel,
        *,
        ttl: float = DEFINITION_TTL_SECONDS,
        max_entries: int = MAX_CACHED_DEFINITIONS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stub = tool_grpc.ToolServiceStub(internal.channel)
        self._metadata = internal.metadata
        self._ttl = ttl
        self._max_entries = max_entries
        self._clock = clock
        # (consumer the definition was fetched for, tool id) -> (expiry, definition).
        self._cache: dict[tuple[str, str], tuple[float, tool_pb2.Tool]] = {}

    async def get(self, tool_id: str, timeout: float | None) -> tool_pb2.Tool:
        """The tool `tools/{tool_id}` as the current caller sees it; NOT_FOUND or
        PERMISSION_DENIED (from the tool service) when it is unknown or not allowed."""
        scope = (current_caller().consumer, tool_id)
        cached = self._cache.get(scope)
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
        self._cache.pop(scope, None)
        self._cache[scope] = (now + self._ttl, reply.tool)
        while len(self._cache) > self._max_entries:
            del self._cache[next(iter(self._cache))]
        return reply.tool

    async def list_all(self, timeout: float | None, *, max_pages: int = 20) -> list[tool_pb2.Tool]:
        """Every tool the current caller may see (at most `max_pages` pages of 1,000)."""
        tools: list[tool_pb2.Tool] = []
        token = ""
        for _ in range(max_pages):
            try:
                reply = await self._stub.ListTools(
                    tool_pb2.ListToolsRequest(page_size=1000, page_token=token),
                    timeout=timeout,
                    metadata=self._metadata(timeout),
                )
            except grpc.aio.AioRpcError as error:
                raise translate_rpc_error(error, "tool") from None
            tools.extend(reply.tools)
            token = reply.next_page_token
            if not token:
                break
        return tools

    async def get_many(self, tool_ids: Sequence[str], timeout: float | None) -> list[tool_pb2.Tool]:
        return list(await asyncio.gather(*(self.get(t, timeout) for t in tool_ids)))

    async def execute(
        self,
        tool_id: str,
        arguments: struct_pb2.Struct,
        timeout: float | None,
        request_id: str = "",
    ) -> tool_pb2.ExecuteToolResponse:
        """Runs one tool (at most once per `request_id`, when given); its failure is
        raised as the tool service reported it."""
        request = tool_pb2.ExecuteToolRequest(
            name=f"tools/{tool_id}", arguments=arguments, request_id=request_id
        )
        try:
            return await self._stub.ExecuteTool(
                request, timeout=timeout, metadata=self._metadata(timeout)
            )
        except grpc.aio.AioRpcError as error:
            raise translate_rpc_error(error, "tool") from None
