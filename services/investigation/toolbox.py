"""The toolsets an investigation may use, and every call it makes to them.

Tools are the Tool service's read-only toolset tools (ListTools, executor `toolset`),
called with ExecuteTool under the investigation owner's identity. Each call made is
numbered (`c1`, `c2`...) and recorded as a ToolCall; its output is what the model reads
and evidence quotes. Context calls (made before the model, the same for every
investigation of one alert) are cached in Redis for a short while, per owner, so a storm
of one alert does not read the cluster once per alert.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Collection, Iterable, Sequence
from typing import Any

import grpc
import redis.asyncio as aioredis
from google.protobuf import json_format, struct_pb2
from redis.exceptions import RedisError

from llmgw.investigation.v1 import investigation_service_pb2 as inv_pb2
from llmgw.tool.v1 import tool_service_pb2 as tool_pb2
from services.common import genai_spans
from services.common.errors import GatewayError, code_from_int
from services.common.tool_client import ToolClient
from services.investigation.calls import PlannedCall, ToolCall, plain, render

# The most bytes of one call's output kept (the Tool service caps results first; this
# bounds what a misconfigured cap could let through).
MAX_OUTPUT_BYTES = 64 * 1024
# Context calls made at once.
CONTEXT_CONCURRENCY = 6
_CACHE_PREFIX = "inv:ctxcache:"


def _toolset(tool: tool_pb2.Tool) -> str:
    return tool.toolset.toolset if tool.WhichOneof("executor") == "toolset" else ""


def _cut(output: str) -> tuple[str, bool]:
    data = output.encode()
    if len(data) <= MAX_OUTPUT_BYTES:
        return output, False
    return data[:MAX_OUTPUT_BYTES].decode(errors="ignore"), True


class Toolbox:
    """One investigation's tools and calls."""

    def __init__(
        self,
        client: ToolClient,
        *,
        owner: str,
        toolsets: Collection[str],
        timeout_s: float,
        redis: aioredis.Redis | None = None,
        cache_ttl_s: int = 0,
    ) -> None:
        self._client = client
        self._owner = owner
        self._wanted = set(toolsets)
        self._timeout = timeout_s
        self._redis = redis
        self._cache_ttl = cache_ttl_s
        self.tools: dict[str, tool_pb2.Tool] = {}
        self.calls: list[ToolCall] = []
        self._made: dict[str, ToolCall] = {}

    async def load(self, timeout: float | None) -> None:
        """The toolset tools the owner may use (of the investigation's toolsets, or every
        toolset when it names none)."""
        listed = await self._client.list_all(timeout)
        self.tools = {
            t.name.removeprefix("tools/"): t
            for t in listed
            if _toolset(t) and (not self._wanted or _toolset(t) in self._wanted)
        }

    def toolsets(self) -> list[str]:
        return sorted({_toolset(t) for t in self.tools.values()})

    def by_id(self) -> dict[str, ToolCall]:
        return {c.id: c for c in self.calls}

    def previous(self, planned: PlannedCall) -> ToolCall | None:
        """The call already made with the same tool and arguments, if any."""
        return self._made.get(planned.key())

    def restore(self, invocations: Iterable[inv_pb2.ToolInvocation]) -> None:
        """Calls made by an earlier attempt (from its events), so a takeover neither
        repeats them nor renumbers them."""
        for invocation in invocations:
            self._record(call_from_invocation(invocation))

    def _record(self, call: ToolCall) -> None:
        self.calls.append(call)
        self._made.setdefault(PlannedCall(call.tool, call.arguments).key(), call)

    def _ids(self, count: int) -> list[str]:
        # Ids follow the calls already recorded; one investigation makes its calls one
        # batch at a time, so a batch's ids are given before its calls run at once.
        return [f"c{len(self.calls) + i + 1}" for i in range(count)]

    async def gather(self, planned: Sequence[PlannedCall]) -> list[ToolCall]:
        """Context calls, at most CONTEXT_CONCURRENCY at once; ids in plan order. Calls
        already made and tools not available are skipped."""
        todo = _distinct([p for p in planned if p.tool in self.tools and self.previous(p) is None])
        gate = asyncio.Semaphore(CONTEXT_CONCURRENCY)

        async def one(call_id: str, p: PlannedCall) -> ToolCall:
            async with gate:
                return await self._run(call_id, p, "context", 0, cached=True)

        made = await asyncio.gather(
            *(one(i, p) for i, p in zip(self._ids(len(todo)), todo, strict=True))
        )
        for call in made:
            self._record(call)
        return list(made)

    async def call_many(self, planned: Sequence[PlannedCall], step: int) -> list[ToolCall]:
        """Calls of one model step (tools the caller checked are offered), run at once,
        numbered in the model's order."""
        made = await asyncio.gather(
            *(
                self._run(i, p, "model", step, cached=False)
                for i, p in zip(self._ids(len(planned)), planned, strict=True)
            )
        )
        for call in made:
            self._record(call)
        return list(made)

    async def _run(
        self, call_id: str, planned: PlannedCall, by: str, step: int, *, cached: bool
    ) -> ToolCall:
        tool = self.tools[planned.tool]
        started = time.monotonic()
        hit = await self._cached(planned) if cached else None
        if hit is not None:
            result, truncated = hit
            ok, code, output = True, "", render(result)
        else:
            try:
                with genai_spans.execute_tool(planned.tool, call_id):
                    reply = await self._client.execute(
                        planned.tool, _struct(planned.arguments), self._timeout
                    )
            except GatewayError as error:
                result, truncated, ok = None, False, False
                code, output = error.code.name, error.message
            else:
                result = json_format.MessageToDict(reply.result)
                truncated, ok, code = reply.truncated, True, ""
                output = render(result)
                if cached:
                    await self._store(planned, result, truncated)
        output, cut = _cut(output)
        return ToolCall(
            id=call_id,
            toolset=_toolset(tool),
            tool=planned.tool,
            arguments=dict(planned.arguments),
            result=result,
            output=output,
            truncated=truncated or cut,
            ok=ok,
            error_code=code,
            requested_by=by,
            step=step,
            duration_s=time.monotonic() - started,
        )

    def _cache_key(self, planned: PlannedCall) -> str:
        digest = hashlib.sha256(f"{self._owner}\n{planned.key()}".encode()).hexdigest()
        return _CACHE_PREFIX + digest

    async def _cached(self, planned: PlannedCall) -> tuple[Any, bool] | None:
        if self._redis is None or self._cache_ttl <= 0:
            return None
        try:
            raw = await self._redis.get(self._cache_key(planned))
        except (RedisError, OSError):  # a cache that fails is a miss
            return None
        if raw is None:
            return None
        try:
            entry = json.loads(raw)
            return entry["r"], bool(entry["t"])
        except (ValueError, KeyError, TypeError):
            return None

    async def _store(self, planned: PlannedCall, result: Any, truncated: bool) -> None:
        if self._redis is None or self._cache_ttl <= 0:
            return
        try:
            await self._redis.set(
                self._cache_key(planned),
                json.dumps({"r": result, "t": truncated}, separators=(",", ":")),
                ex=self._cache_ttl,
            )
        except (RedisError, OSError):  # caching is best effort
            return


def _distinct(planned: Sequence[PlannedCall]) -> list[PlannedCall]:
    seen: set[str] = set()
    out = []
    for p in planned:
        if p.key() not in seen:
            seen.add(p.key())
            out.append(p)
    return out


def _struct(arguments: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(arguments)
    return out


def to_invocation(call: ToolCall) -> inv_pb2.ToolInvocation:
    out = inv_pb2.ToolInvocation(
        id=call.id,
        toolset=call.toolset,
        tool=call.tool,
        output=call.output,
        truncated=call.truncated,
        requested_by=call.requested_by,
        step=call.step,
    )
    out.arguments.update(call.arguments)
    out.duration.FromNanoseconds(int(call.duration_s * 1e9))
    if not call.ok:
        code = grpc.StatusCode.__members__.get(call.error_code, grpc.StatusCode.UNKNOWN)
        out.status.code = code.value[0]
        out.status.message = call.output
    return out


def call_from_invocation(invocation: inv_pb2.ToolInvocation) -> ToolCall:
    """A call recorded in an event, as the toolbox knows calls."""
    ok = invocation.status.code == 0
    result: Any = None
    if ok:
        try:
            result = json.loads(invocation.output)
        except ValueError:
            result = None
    code = "" if ok else code_from_int(invocation.status.code).name
    return ToolCall(
        id=invocation.id,
        toolset=invocation.toolset,
        tool=invocation.tool,
        arguments=plain(json_format.MessageToDict(invocation.arguments)),
        result=result,
        output=invocation.output,
        truncated=invocation.truncated,
        ok=ok,
        error_code=code,
        requested_by=invocation.requested_by or "context",
        step=invocation.step,
        duration_s=invocation.duration.seconds + invocation.duration.nanos / 1e9,
    )
