"""ToolService: the registry's standard methods and validated, time-limited execution.

Every RPC is limited to what the caller may do (services/tool/access.py): lists, reads
and executions to the tools its groups and each tool's `allowed_consumers` allow,
registering and deleting tools to admins. HTTP tools run in services/tool/executor_http.py,
the toolsets' read-only tools in services/tool/executor_toolset.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import grpc
from google.rpc import status_pb2

from llmgw.tool.v1 import tool_service_pb2 as tool_pb2
from llmgw.tool.v1 import tool_service_pb2_grpc as tool_grpc
from services.common import context as request_context
from services.common.caller import current_principal
from services.common.channels import remaining_timeout
from services.common.errors import GatewayError, Internal
from services.common.idempotency.run import once, request_scope
from services.common.idempotency.store import IdempotencyStore
from services.common.identity.principal import Principal
from services.common.tool_config import ToolBreakerConfig, reserved_tool_id
from services.common.validation import Violations
from services.tool.access import may_use, require_registrar, shown, usable_entry
from services.tool.breakers import DownstreamBreakers
from services.tool.entries import ToolsetEntry, duration
from services.tool.executor_http import HttpExecutor
from services.tool.executor_toolset import ToolsetExecutor
from services.tool.metrics import UNKNOWN_TOOL, observe_execution
from services.tool.names import check_tool_id, parse_tool_name
from services.tool.page_tokens import decode_page_token, encode_page_token
from services.tool.registry import ToolRegistry
from services.tool.schema import arguments_of, check_arguments
from services.tool.tool_checks import check_tool

log = logging.getLogger("llmgw.tool")

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_BATCH_CALLS = 64
# Executions end this much before the caller's deadline, so the answer (a batch's
# per-call statuses above all) reaches the caller before it gives up.
DEADLINE_MARGIN = 0.05


def _page_size(violations: Violations, value: int) -> int:
    """0 means the default; values above the maximum are lowered to it (AIP-158)."""
    if value < 0:
        violations.add("page_size", "must not be negative")
        return DEFAULT_PAGE_SIZE
    return min(value or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


class ToolServicer(tool_grpc.ToolServiceServicer):
    def __init__(
        self,
        registry: ToolRegistry,
        executor: HttpExecutor,
        clock: Callable[[], float] = time.monotonic,
        once: IdempotencyStore | None = None,
        toolsets: ToolsetExecutor | None = None,
    ) -> None:
        self._registry = registry
        self._executor = executor
        # Runs the read-only toolsets' tools (services/tool/toolsets) in process.
        self._toolsets = toolsets or ToolsetExecutor(DownstreamBreakers(ToolBreakerConfig()), clock)
        self._clock = clock
        # Request ids of CreateTool and the executions (None without Redis: refused).
        self._once = once

    # Registry ---------------------------------------------------------------------

    async def ListTools(
        self, request: tool_pb2.ListToolsRequest, context: grpc.aio.ServicerContext
    ) -> tool_pb2.ListToolsResponse:
        violations = Violations()
        size = _page_size(violations, request.page_size)
        after = (
            decode_page_token(violations, "page_token", request.page_token)
            if request.page_token
            else ""
        )
        violations.raise_if_any()
        principal = current_principal()
        # Filtered before paging: the token names the last tool shown, never a hidden one.
        rest = [
            entry
            for entry in self._registry.entries()
            if entry.tool_id > after and may_use(principal, entry)
        ]
        page = rest[:size]
        token = encode_page_token(page[-1].tool_id) if len(rest) > size else ""
        return tool_pb2.ListToolsResponse(
            tools=[shown(principal, entry) for entry in page], next_page_token=token
        )

    async def GetTool(
        self, request: tool_pb2.GetToolRequest, context: grpc.aio.ServicerContext
    ) -> tool_pb2.GetToolResponse:
        violations = Violations()
        tool_id = parse_tool_name(violations, "name", request.name)
        violations.raise_if_any()
        principal = current_principal()
        entry = usable_entry(principal, tool_id, self._registry.require)
        return tool_pb2.GetToolResponse(tool=shown(principal, entry))

    async def CreateTool(
        self, request: tool_pb2.CreateToolRequest, context: grpc.aio.ServicerContext
    ) -> tool_pb2.CreateToolResponse:
        require_registrar(current_principal())
        violations = Violations()
        tool_id = request.tool_id
        check_tool_id(violations, "tool_id", tool_id)
        reserved = reserved_tool_id(tool_id)
        if reserved is not None and self._registry.get(tool_id) is None:
            violations.add("tool_id", reserved)
        definition = None
        if not request.HasField("tool"):
            violations.add("tool", "is required")
        else:
            definition = check_tool(violations, tool_id, request.tool, self._registry.allow_list)
        where = request_scope(violations, "tool.CreateTool", request, context)
        violations.raise_if_any()
        assert definition is not None

        async def create() -> tool_pb2.CreateToolResponse:
            entry = await self._registry.create(tool_id, request.tool, definition)
            log.info("tool registered", extra={"tool": tool_id})
            return tool_pb2.CreateToolResponse(tool=shown(current_principal(), entry))

        return await once(
            self._once, where, context, tool_pb2.CreateToolResponse, lambda _: create()
        )

    async def DeleteTool(
        self, request: tool_pb2.DeleteToolRequest, context: grpc.aio.ServicerContext
    ) -> tool_pb2.DeleteToolResponse:
        require_registrar(current_principal())
        violations = Violations()
        tool_id = parse_tool_name(violations, "name", request.name)
        violations.raise_if_any()
        await self._registry.delete(tool_id)
        log.info("tool unregistered", extra={"tool": tool_id})
        return tool_pb2.DeleteToolResponse()

    # Execution --------------------------------------------------------------------

    def _caller_deadline(self, context: grpc.aio.ServicerContext) -> float | None:
        remaining = remaining_timeout(context)
        if remaining is None:
            return None
        margin = DEADLINE_MARGIN if remaining > 4 * DEADLINE_MARGIN else 0.0
        return self._clock() + max(remaining - margin, 0.0)

    async def _execute(
        self,
        call: tool_pb2.ExecuteToolRequest,
        caller_deadline: float | None,
        principal: Principal | None,
    ) -> tool_pb2.ExecuteToolResponse:
        started = self._clock()
        violations = Violations()
        tool_id = parse_tool_name(violations, "name", call.name)
        deadline = caller_deadline
        if call.HasField("timeout"):
            seconds = call.timeout.ToNanoseconds() / 1e9
            if seconds <= 0:
                violations.add("timeout", "must be positive")
            elif deadline is None or started + seconds < deadline:
                deadline = started + seconds
        violations.raise_if_any()
        # Before the arguments are checked: their errors would reveal that the tool exists.
        entry = usable_entry(principal, tool_id, self._registry.require)
        arguments = arguments_of(call.arguments)
        check_arguments(entry.validator, arguments, entry.name)
        if isinstance(entry, ToolsetEntry):
            execution = await self._toolsets.execute(entry, arguments, deadline)
        else:
            execution = await self._executor.execute(entry, arguments, deadline)
        return tool_pb2.ExecuteToolResponse(
            name=entry.name,
            result=execution.result,
            truncated=execution.truncated,
            attempts=execution.attempts,
            duration=duration(self._clock() - started),
        )

    async def _observed(
        self,
        call: tool_pb2.ExecuteToolRequest,
        caller_deadline: float | None,
        principal: Principal | None,
    ) -> tool_pb2.ExecuteToolResponse:
        """`_execute`, counted in the execution metrics."""
        tool_id = call.name.removeprefix("tools/")
        label = tool_id if self._registry.get(tool_id) is not None else UNKNOWN_TOOL
        started = self._clock()
        code = grpc.StatusCode.INTERNAL
        try:
            response = await self._execute(call, caller_deadline, principal)
            code = grpc.StatusCode.OK
            return response
        except GatewayError as error:
            code = error.code
            raise
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        finally:
            elapsed = self._clock() - started if label != UNKNOWN_TOOL else None
            observe_execution(label, code.name, elapsed)

    async def ExecuteTool(
        self, request: tool_pb2.ExecuteToolRequest, context: grpc.aio.ServicerContext
    ) -> tool_pb2.ExecuteToolResponse:
        violations = Violations()
        where = request_scope(violations, "tool.ExecuteTool", request, context)
        violations.raise_if_any()
        deadline, principal = self._caller_deadline(context), current_principal()
        return await once(
            self._once,
            where,
            context,
            tool_pb2.ExecuteToolResponse,
            lambda _: self._observed(request, deadline, principal),
        )

    async def BatchExecuteTools(
        self, request: tool_pb2.BatchExecuteToolsRequest, context: grpc.aio.ServicerContext
    ) -> tool_pb2.BatchExecuteToolsResponse:
        violations = Violations()
        count = len(request.calls)
        violations.require(count > 0, "calls", "at least one call is required")
        violations.require(
            count <= MAX_BATCH_CALLS,
            "calls",
            f"at most {MAX_BATCH_CALLS} calls per batch ({count} given)",
        )
        violations.require(request.max_concurrency >= 0, "max_concurrency", "must not be negative")
        for i, call in enumerate(request.calls):
            violations.require(
                not call.request_id,
                f"calls[{i}].request_id",
                "a call of a batch has no request id of its own; set the batch's request_id",
            )
        where = request_scope(violations, "tool.BatchExecuteTools", request, context)
        violations.raise_if_any()
        return await once(
            self._once,
            where,
            context,
            tool_pb2.BatchExecuteToolsResponse,
            lambda _: self._batch(request, context),
        )

    async def _batch(
        self, request: tool_pb2.BatchExecuteToolsRequest, context: grpc.aio.ServicerContext
    ) -> tool_pb2.BatchExecuteToolsResponse:
        deadline = self._caller_deadline(context)
        principal = current_principal()
        limit = asyncio.Semaphore(request.max_concurrency) if request.max_concurrency else None

        async def run(
            index: int, call: tool_pb2.ExecuteToolRequest
        ) -> tool_pb2.BatchExecuteToolsResult:
            async with limit or contextlib.nullcontext():
                try:
                    response = await self._observed(call, deadline, principal)
                except GatewayError as error:
                    return tool_pb2.BatchExecuteToolsResult(index=index, status=error.to_status())
                except Exception:
                    # One call's bug must not fail its siblings; it is reported like the
                    # interceptor reports one: logged, opaque to the caller.
                    log.exception("unhandled error in batch call %d", index)
                    status = Internal.for_request(request_context.request_id.get()).to_status()
                    return tool_pb2.BatchExecuteToolsResult(index=index, status=status)
            return tool_pb2.BatchExecuteToolsResult(
                index=index, status=status_pb2.Status(code=0), response=response
            )

        results = await asyncio.gather(*(run(i, call) for i, call in enumerate(request.calls)))
        return tool_pb2.BatchExecuteToolsResponse(results=results)
