"""In-process stand-ins for the Tool service and the Router, for the investigation's
unit tests: scripted answers, recorded requests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from google.protobuf import json_format, struct_pb2

from llmgw.router.v1 import chat_pb2 as router_chat_pb2
from llmgw.tool.v1 import tool_service_pb2 as tool_pb2
from services.common.errors import GatewayError
from services.investigation.chat_client import ModelAnswer, ModelToolCall


def toolset_tool(name: str, toolset: str = "kubernetes", *, description: str = "") -> tool_pb2.Tool:
    tool = tool_pb2.Tool(name=f"tools/{name}", description=description or f"{name} reads things")
    tool.parameters.update({"type": "object", "additionalProperties": True})
    tool.toolset.toolset = toolset
    tool.toolset.read_only = True
    return tool


class FakeTools:
    """ListTools and ExecuteTool: `results[name]` is a JSON value, a GatewayError to
    raise, or a function of the arguments."""

    def __init__(self, tools: list[tool_pb2.Tool], results: dict[str, Any]) -> None:
        self.tools = tools
        self.results = results
        self.executed: list[tuple[str, dict[str, Any]]] = []

    async def list_all(self, timeout: float | None) -> list[tool_pb2.Tool]:
        return list(self.tools)

    async def execute(
        self,
        tool_id: str,
        arguments: struct_pb2.Struct,
        timeout: float | None,
        request_id: str = "",
    ) -> tool_pb2.ExecuteToolResponse:
        args = json_format.MessageToDict(arguments)
        self.executed.append((tool_id, args))
        outcome = self.results[tool_id]
        if callable(outcome):
            outcome = outcome(args)
        if isinstance(outcome, GatewayError):
            raise outcome
        reply = tool_pb2.ExecuteToolResponse(name=f"tools/{tool_id}")
        json_format.ParseDict(outcome, reply.result)
        return reply


def answer(
    content: str = "",
    calls: list[tuple[str, str, str]] | None = None,
    *,
    tokens: tuple[int, int] = (100, 20),
    cost: float = 0.0,
) -> ModelAnswer:
    tool_calls = [ModelToolCall(i, n, a) for i, n, a in calls or []]
    return ModelAnswer(
        content=content,
        tool_calls=tool_calls,
        finish_reason="tool_calls" if tool_calls else "stop",
        model="fake-model",
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        cost=cost,
    )


Script = ModelAnswer | GatewayError | Callable[[router_chat_pb2.CreateChatCompletionRequest], Any]


class FakeChat:
    """Answers model calls from a script, one entry per call (the last repeats)."""

    def __init__(self, script: list[Script]) -> None:
        self.script = script
        self.requests: list[router_chat_pb2.CreateChatCompletionRequest] = []
        self.investigations: list[str] = []
        self.block = asyncio.Event()
        self.block.set()
        # Set once a call has arrived.
        self.called = asyncio.Event()

    async def complete(
        self,
        request: router_chat_pb2.CreateChatCompletionRequest,
        timeout: float | None,
        *,
        investigation: str = "",
    ) -> ModelAnswer:
        self.investigations.append(investigation)
        copy = router_chat_pb2.CreateChatCompletionRequest()
        copy.CopyFrom(request)
        self.requests.append(copy)
        self.called.set()
        await self.block.wait()
        entry = self.script[min(len(self.requests) - 1, len(self.script) - 1)]
        if callable(entry) and not isinstance(entry, ModelAnswer):
            entry = entry(request)
        if isinstance(entry, GatewayError):
            raise entry
        assert isinstance(entry, ModelAnswer)
        return entry
