"""One model call of a chat turn, routed by the engine (retries, fallbacks, limits),
in the two ways the router makes it: answered whole (`UnaryCall`, for
CreateChatCompletion) or streamed (`StreamedCall`). The turn runner drives either
through the same steps (`ModelCall`): open, first output, relay, outcome.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol, cast

from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from services.common.context import request_id
from services.common.errors import as_gateway_error
from services.router.cache.entry import CachedAnswer, from_events, from_response
from services.router.gen_ai_metrics import Attempt
from services.router.metrics import TIME_TO_FIRST_TOKEN
from services.router.routing.engine import Lease
from services.router.routing.plan import Candidate
from services.router.stream_assembly import StreamAssembly
from services.router.turn_context import TurnContext
from services.router.turn_events import Delta, Failed, TurnEvent


class ModelCall(Protocol):
    """The turn's model calls, one after another (a tool loop makes several)."""

    async def open(self) -> Lease:
        """Routes the next call until one deployment answers (for a stream: until its
        first visible event; until then a failure may still retry or fall back)."""
        ...

    def first_output(self, lease: Lease) -> None:
        """The turn's first output goes out now."""

    def relay(self, lease: Lease) -> AsyncGenerator[TurnEvent, None]:
        """The opened call's output as it comes; ends the lease. A failure after the
        output started yields `Failed` and raises."""
        ...

    def answer(self) -> provider_pb2.CompleteResponse:
        """The relayed call's result, whole."""
        ...

    def held_back(self) -> Sequence[provider_pb2.StreamCompleteResponse]:
        """Tool-call pieces `relay` held back while the gateway might have run them."""
        ...

    def cache_entry(self, model: str, provider: str) -> CachedAnswer | None:
        """The turn's answer as the response cache keeps it (None: it keeps none)."""
        ...


def _visible(event: provider_pb2.StreamCompleteResponse) -> bool:
    """Whether the event becomes a chunk the client sees (the point of no fallback)."""
    return (
        event.WhichOneof("event") is not None
        or event.finish_reason != common_pb2.FINISH_REASON_UNSPECIFIED
    )


class UnaryCall:
    """Calls answered whole: nothing to relay."""

    def __init__(self, ctx: TurnContext) -> None:
        self._ctx = ctx
        self._result = provider_pb2.CompleteResponse()

    async def _attempt(
        self, candidate: Candidate, timeout: float | None
    ) -> provider_pb2.CompleteResponse:
        ctx = self._ctx
        call = ctx.timing.attempt(candidate, ctx.catalog.config.providers)
        try:
            response = await ctx.backends.provider.complete(
                ctx.target(candidate), timeout, call.upstream
            )
        except BaseException as error:
            call.failed(error)
            raise
        call.succeeded(response.usage if response.HasField("usage") else None)
        return response

    async def open(self) -> Lease:
        ctx = self._ctx
        self._result, lease = await ctx.backends.routing.engine.call(
            ctx.plan, ctx.decision, self._attempt, ctx.deadline(), admit=ctx.quota.admit_deployment
        )
        return lease

    def first_output(self, lease: Lease) -> None:
        return

    async def relay(self, lease: Lease) -> AsyncGenerator[TurnEvent, None]:
        await lease.succeed()
        return
        yield  # an async generator that yields nothing

    def answer(self) -> provider_pb2.CompleteResponse:
        return self._result

    def held_back(self) -> Sequence[provider_pb2.StreamCompleteResponse]:
        return ()

    def cache_entry(self, model: str, provider: str) -> CachedAnswer | None:
        if not self._ctx.cache.decision.write:
            return None
        return from_response(self._result, model, provider)


@dataclass
class _OpenStream:
    """A provider stream that has produced its first visible event."""

    events: AsyncGenerator[provider_pb2.StreamCompleteResponse, None]
    buffered: list[provider_pb2.StreamCompleteResponse]
    # The attempt's timing, ended when the stream does (`relay`).
    call: Attempt

    async def all(self) -> AsyncIterator[provider_pb2.StreamCompleteResponse]:
        for event in self.buffered:
            yield event
        async for event in self.events:
            yield event


class StreamedCall:
    """Calls streamed chunk by chunk. Tool-call pieces are held back while the turn
    has a gateway tool loop (the gateway may run them itself); a stream the cache will
    keep is recorded event by event (the tool loop is never cached)."""

    def __init__(self, ctx: TurnContext) -> None:
        self._ctx = ctx
        self._started = time.perf_counter()
        self._hold_tools = ctx.turn.loop is not None
        self._recorded: list[provider_pb2.StreamCompleteResponse] | None = (
            [] if ctx.cache.decision.write else None
        )
        self._opened: _OpenStream | None = None
        self._assembly = StreamAssembly()

    async def _open_stream(self, candidate: Candidate, timeout: float | None) -> _OpenStream:
        ctx = self._ctx
        call = ctx.timing.attempt(candidate, ctx.catalog.config.providers)
        events = ctx.backends.provider.stream(ctx.target(candidate), timeout, call.upstream)
        buffered: list[provider_pb2.StreamCompleteResponse] = []
        try:
            async for event in events:
                buffered.append(event)
                if _visible(event):
                    break
        except BaseException as error:
            call.failed(error)
            await events.aclose()
            raise
        return _OpenStream(events, buffered, call)

    async def open(self) -> Lease:
        ctx = self._ctx
        self._opened, lease = await ctx.backends.routing.engine.call(
            ctx.plan,
            ctx.decision,
            self._open_stream,
            ctx.deadline(),
            admit=ctx.quota.admit_deployment,
        )
        self._assembly = StreamAssembly()
        return lease

    def first_output(self, lease: Lease) -> None:
        ctx = self._ctx
        lease.first_token()
        TIME_TO_FIRST_TOKEN.labels(ctx.decision.model_label).observe(
            time.perf_counter() - self._started
        )
        ctx.timing.first_chunk(ctx.resolved.label)

    async def relay(self, lease: Lease) -> AsyncGenerator[TurnEvent, None]:
        """One call's stream after its first visible event: never switches deployment;
        a failure ends it with `Failed` and the status."""
        opened, assembly, recorded = self._opened, self._assembly, self._recorded
        assert opened is not None
        try:
            async for event in opened.all():
                assembly.add(event)
                if recorded is not None:
                    recorded.append(event)
                kind = event.WhichOneof("event")
                if kind is None or (kind == "tool_call" and self._hold_tools):
                    continue
                yield Delta(event)
        except asyncio.CancelledError as cancelled:
            opened.call.failed(cancelled)
            await lease.fail(cancelled)
            raise
        except GeneratorExit as closed:
            # Our caller stopped reading (the client went away).
            opened.call.failed(closed)
            raise
        except Exception as error:
            opened.call.failed(error)
            await lease.fail(error)
            reported = as_gateway_error(error, request_id.get())
            yield Failed(reported.to_status())
            raise reported from None
        finally:
            await opened.events.aclose()
        opened.call.succeeded(assembly.usage)
        await lease.succeed()

    def answer(self) -> provider_pb2.CompleteResponse:
        assembly = self._assembly
        response = provider_pb2.CompleteResponse(
            message=assembly.message(),
            # StreamAssembly keeps the enum as the plain int it is on the wire.
            finish_reason=cast(common_pb2.FinishReason, assembly.finish_reason),
            refusal="".join(assembly.refusal),
        )
        if assembly.usage is not None:
            response.usage.CopyFrom(assembly.usage)
        return response

    def held_back(self) -> Sequence[provider_pb2.StreamCompleteResponse]:
        return self._assembly.tool_events if self._hold_tools else ()

    def cache_entry(self, model: str, provider: str) -> CachedAnswer | None:
        if self._recorded is None:
            return None
        return from_events(self._recorded, model, provider)
