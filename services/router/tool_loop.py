"""The gateway-side tool loop: which of the model's tool calls run, and what it is told.

A request names registered tools (`gateway.tools`); the router offers them to the model,
runs the calls the model makes through the Tool service (concurrently), feeds each
result back as a `tool` message and calls the model again, until the model answers
without tool calls or `max_iterations` model calls were made.

What the model is told back is always a tool message, never a failed request: a tool
error, arguments that are not a JSON object, or an exact repeat of a call already made in
this loop (same tool, same arguments) become an `{"error": ...}` result the model can act
on. A repeat is refused rather than run again, which stops the commonest runaway loop.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from google.protobuf import json_format, struct_pb2
from google.rpc import error_details_pb2

from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.router.v1 import chat_pb2
from llmgw.tool.v1 import tool_service_pb2 as tool_pb2
from services.common import genai_spans
from services.common.errors import GatewayError, RemoteError, find_detail
from services.common.idempotency.request_ids import derived

DEFAULT_MAX_ITERATIONS = 5
MAX_ITERATIONS_LIMIT = 20
MAX_GATEWAY_TOOLS = 32
TOOL_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")

STARTED, SUCCEEDED, FAILED, REFUSED = "started", "succeeded", "failed", "refused"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _error_content(code: str, message: str, **extra: Any) -> str:
    return _json({"error": {"code": code, "message": message, **extra}})


def _failure_content(error: GatewayError) -> str:
    extra: dict[str, Any] = {}
    if isinstance(error, RemoteError):
        bad = find_detail(error.status, error_details_pb2.BadRequest)
        if bad is not None:
            extra["violations"] = [
                {"field": v.field, "description": v.description} for v in bad.field_violations
            ]
    return _error_content(error.code.name, str(error), **extra)


def _result_content(reply: tool_pb2.ExecuteToolResponse) -> str:
    result = json_format.MessageToDict(reply.result)
    if reply.truncated:
        return _json({"truncated": True, "result": result})
    return _json(result)


class ToolExecutor(Protocol):
    """What runs one tool (the Tool service client)."""

    async def execute(
        self,
        tool_id: str,
        arguments: struct_pb2.Struct,
        timeout: float | None,
        request_id: str = "",
    ) -> tool_pb2.ExecuteToolResponse: ...


@dataclass(frozen=True)
class ToolRun:
    """One tool call of the model and what became of it."""

    iteration: int
    call: common_pb2.ToolCall
    state: str
    # The tool message's content: the result's JSON, or an `{"error": ...}` object.
    content: str
    error: str = ""

    def message(self) -> common_pb2.Message:
        return common_pb2.Message(
            role=common_pb2.ROLE_TOOL,
            tool_call_id=self.call.id,
            name=self.call.name,
            content=[common_pb2.ContentPart(text=self.content)],
        )

    def progress(self) -> chat_pb2.ToolProgress:
        return chat_pb2.ToolProgress(
            iteration=self.iteration,
            tool_call_id=self.call.id,
            tool_name=self.call.name,
            state=self.state,
            error=self.error,
        )


def _canonical(call: common_pb2.ToolCall, arguments: dict[str, Any]) -> str:
    return call.name + "\x00" + json.dumps(arguments, sort_keys=True, separators=(",", ":"))


@dataclass
class ToolLoop:
    """The state of one request's loop."""

    tools: Mapping[str, tool_pb2.Tool]
    client: ToolExecutor
    max_iterations: int
    # Calls of one model turn that run; each further one is refused to the model.
    max_calls_per_turn: int = 16
    # The chat request's id ("" without one): each execution derives its own from it.
    request_id: str = ""
    # Model calls made so far.
    iteration: int = 0
    # Every assistant tool-call turn and tool result, in order (the session's record).
    transcript: list[common_pb2.Message] = field(default_factory=list)
    _seen: dict[str, tuple[int, str]] = field(default_factory=dict)

    def definitions(self) -> list[common_pb2.ToolDefinition]:
        """The registered tools as the model is offered them."""
        return [
            common_pb2.ToolDefinition(
                name=tool_id, description=tool.description, parameters=tool.parameters
            )
            for tool_id, tool in self.tools.items()
        ]

    def owns(self, calls: Sequence[common_pb2.ToolCall]) -> bool:
        """Whether the gateway runs these calls: all of them name its tools. Calls of
        the caller's own tools (alone or mixed in) go back to the caller."""
        return bool(calls) and all(call.name in self.tools for call in calls)

    def at_limit(self) -> bool:
        return self.iteration >= self.max_iterations

    def _admit(self, call: common_pb2.ToolCall) -> tuple[struct_pb2.Struct | None, ToolRun | None]:
        """The call's arguments, or the refusal the model gets instead of a run."""
        try:
            arguments = json.loads(call.arguments or "{}")
        except ValueError:
            arguments = None
        if not isinstance(arguments, dict):
            message = "the arguments are not a JSON object"
            content = _error_content("INVALID_ARGUMENT", message)
            return None, ToolRun(self.iteration, call, REFUSED, content, message)
        key = _canonical(call, arguments)
        earlier = self._seen.get(key)
        if earlier is not None:
            message = (
                f"refused: an exact repeat of call {earlier[1]} (iteration {earlier[0]}); "
                "its result is above"
            )
            return None, ToolRun(
                self.iteration, call, REFUSED, _error_content("REPEATED_CALL", message), message
            )
        self._seen[key] = (self.iteration, call.id)
        struct = struct_pb2.Struct()
        struct.update(arguments)
        return struct, None

    def _over(self, call: common_pb2.ToolCall) -> tuple[None, ToolRun]:
        """The refusal of a call beyond the turn's cap."""
        message = (
            f"refused: at most {self.max_calls_per_turn} tool calls run per turn; "
            "call the rest in a later turn"
        )
        return None, ToolRun(
            self.iteration, call, REFUSED, _error_content("TOO_MANY_CALLS", message), message
        )

    async def _run(
        self, call: common_pb2.ToolCall, arguments: struct_pb2.Struct, timeout: float | None
    ) -> ToolRun:
        request_id = (
            derived(self.request_id, "tool", str(self.iteration), call.id)
            if self.request_id
            else ""
        )
        try:
            with genai_spans.execute_tool(call.name, call.id):
                reply = await self.client.execute(call.name, arguments, timeout, request_id)
        except GatewayError as error:
            return ToolRun(self.iteration, call, FAILED, _failure_content(error), str(error))
        return ToolRun(self.iteration, call, SUCCEEDED, _result_content(reply))

    async def execute(
        self, assistant: common_pb2.Message, timeout: float | None
    ) -> AsyncGenerator[chat_pb2.ToolProgress, None]:
        """Runs the assistant turn's tool calls concurrently, yielding progress as each
        starts and ends; afterwards the turn and its results are in `transcript` (in
        the calls' order) and feed the next model call."""
        runs: list[ToolRun | None] = []
        pending: dict[asyncio.Task[ToolRun], int] = {}
        try:
            for call in assistant.tool_calls:
                arguments, refusal = (
                    self._admit(call)
                    if len(pending) < self.max_calls_per_turn
                    else self._over(call)
                )
                runs.append(refusal)
                if refusal is not None:
                    yield refusal.progress()
                    continue
                assert arguments is not None
                task = asyncio.ensure_future(self._run(call, arguments, timeout))
                pending[task] = len(runs) - 1
                yield chat_pb2.ToolProgress(
                    iteration=self.iteration,
                    tool_call_id=call.id,
                    tool_name=call.name,
                    state=STARTED,
                )
            waiting = set(pending)
            while waiting:
                done, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                for task in sorted(done, key=pending.__getitem__):
                    run = task.result()
                    runs[pending[task]] = run
                    yield run.progress()
        finally:
            # A caller gone away (or a failure) leaves no execution running unobserved,
            # whichever progress event it stopped at.
            unfinished = [task for task in pending if not task.done()]
            for task in unfinished:
                task.cancel()
            if unfinished:
                await asyncio.gather(*unfinished, return_exceptions=True)
        self.transcript.append(assistant)
        self.transcript.extend(run.message() for run in runs if run is not None)
