"""Runs a toolset's tool in this process: time limit, circuit breaker, result cap.

Time: the call gets the configured toolset timeout, cut to what is left of the
execution's deadline (the request's `timeout` and the caller's gRPC deadline). There is
one attempt: the tools only read, and a model or analyzer that wants a retry calls
again.

The circuit breaker is the tool service's per-backend one (services/tool/breakers.py),
keyed by the toolset's `host:port`: an open breaker fails the call at once; a call that
timed out or found the backend unavailable counts as a failure; any other answer,
refusals included (NOT_FOUND, PERMISSION_DENIED, INVALID_ARGUMENT), shows the backend
is up. Execution metrics are counted by the servicer as for every tool.

The result is capped at the entry's `max_result_bytes` as compact JSON
(services/tool/result_cap.py); a cut result carries `truncated` and a note, and the
response's `truncated` is set.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from google.protobuf import json_format, struct_pb2

from llmgw.common.v1 import error_reason_pb2
from services.common.breaker_machine import Outcome
from services.common.errors import DeadlineExceeded, GatewayError, Internal, Unavailable
from services.common.struct_checks import check_json
from services.common.validation import Violations
from services.tool.breakers import DownstreamBreakers
from services.tool.entries import ToolsetEntry
from services.tool.executor_http import Execution
from services.tool.result_cap import cap_result

_R = error_reason_pb2


def _timed_out(entry: ToolsetEntry, seconds: float) -> DeadlineExceeded:
    return DeadlineExceeded(
        f"tool '{entry.tool_id}' did not finish within {seconds:.3g}s",
        reason=_R.ERROR_REASON_TOOL_TIMEOUT,
        metadata={"tool": entry.tool_id, "downstream": entry.toolset.backend},
    )


def _breaker_open(entry: ToolsetEntry, retry_after: float) -> Unavailable:
    return Unavailable(
        f"the {entry.toolset.name} backend {entry.toolset.backend} is failing; its circuit "
        "breaker is open",
        reason=_R.ERROR_REASON_CIRCUIT_OPEN,
        metadata={"tool": entry.tool_id, "downstream": entry.toolset.backend},
        retry_after=max(retry_after, 0.0),
    )


def _outcome(error: GatewayError) -> Outcome:
    """What an error says about the backend: only unavailability and timeouts count."""
    if isinstance(error, Unavailable | DeadlineExceeded):
        return Outcome.FAILURE
    return Outcome.SUCCESS


def as_value(result: Any) -> struct_pb2.Value:
    """The JSON result as a Value; a result a tool should never produce is INTERNAL."""
    value = struct_pb2.Value()
    try:
        json_format.ParseDict(result, value)
    except (json_format.ParseError, ValueError, TypeError) as error:
        raise Internal("a toolset produced a result that is not JSON") from error
    if not check_json(Violations(), "result", value):
        raise Internal("a toolset produced a result nested too deeply")
    return value


class ToolsetExecutor:
    def __init__(
        self, breakers: DownstreamBreakers, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._breakers = breakers
        self._clock = clock

    async def execute(
        self, entry: ToolsetEntry, arguments: dict[str, Any], deadline: float | None
    ) -> Execution:
        """`deadline` is on this executor's clock (None: only the toolset timeout)."""
        started = self._clock()
        budget = entry.timeout
        if deadline is not None:
            budget = min(budget, deadline - started)
            if budget <= 0:
                raise _timed_out(entry, 0.0)
        backend = entry.toolset.backend
        admission = self._breakers.admit(backend)
        if not admission.allowed:
            raise _breaker_open(entry, admission.reopen_at - self._breakers.now())
        try:
            async with asyncio.timeout(budget):
                result = await entry.tool.run(arguments)
        except TimeoutError:
            self._breakers.record(backend, Outcome.FAILURE, probe=admission.probe)
            raise _timed_out(entry, self._clock() - started) from None
        except GatewayError as error:
            self._breakers.record(backend, _outcome(error), probe=admission.probe)
            raise
        except BaseException:
            # Cancelled by the caller, or a bug: not the backend's doing.
            self._breakers.record(backend, Outcome.NEUTRAL, probe=admission.probe)
            raise
        self._breakers.record(backend, Outcome.SUCCESS, probe=admission.probe)
        capped, truncated = cap_result(result, entry.max_result_bytes, entry.tool.narrowing_hint)
        return Execution(result=as_value(capped), truncated=truncated, attempts=1)
