"""One chat turn, unary or streamed, live or from the response cache, as typed events
(`turn_events`): the one place that says what happens in which order.

A live turn: reserve the model call (a tool loop's later calls too), route and open it,
relay its output, count it; when the model asks for the gateway's tools, run them and
call the model again, up to the loop's iteration limit; then keep the answer in the
cache, account for it, save it to its session. A cache hit replays the stored answer
through the same events. Whatever happens, the request's reservations are settled or
released at the end (`turn_accounting.finish`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator

import grpc

from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from services.common.errors import GatewayError
from services.common.genai_spans import Recorder
from services.router import chat_spans
from services.router.cache.entry import CachedAnswer, to_response
from services.router.metrics import ACTIVE_STREAMS, TOOL_LOOP_CALLS
from services.router.model_call import ModelCall, StreamedCall, UnaryCall
from services.router.tool_loop import STARTED, ToolLoop
from services.router.turn_accounting import (
    account,
    count_call,
    counted,
    counted_hit,
    finish,
    save,
)
from services.router.turn_context import TurnContext, reserve_next_call
from services.router.turn_events import (
    Delta,
    Failed,
    Finished,
    Metadata,
    Settled,
    Started,
    ToolStep,
    TurnEvent,
)


def _complete(finish_reason: int) -> bool:
    """An answer the model finished on its own terms: the only kind the cache keeps."""
    return finish_reason in (common_pb2.FINISH_REASON_STOP, common_pb2.FINISH_REASON_LENGTH)


def _cached_metadata(cached: CachedAnswer) -> Metadata:
    """Where a cached answer came from, in the routing headers' terms."""
    return (
        ("x-llmgw-model", cached.model),
        ("x-llmgw-provider", cached.provider),
        ("x-llmgw-route", "cache"),
    )


def _metadata(ctx: TurnContext, route: Metadata) -> Metadata:
    """The response's headers: where it came from, then cache, quota and turn."""
    return (*route, *ctx.cache.metadata(), *ctx.quota.metadata(), *ctx.turn.metadata())


async def run_turn(ctx: TurnContext, span: Recorder) -> AsyncGenerator[TurnEvent, None]:
    """The turn's events; the caller must read them to the end or close the generator
    (its reservations are settled then, and `span` learns the route)."""
    abandoned = False
    try:
        cached = await ctx.cache.lookup()
        turn = _replay(ctx, cached) if cached is not None else _live(ctx)
        async with contextlib.aclosing(turn) as events:
            async for event in events:
                yield event
    except (asyncio.CancelledError, GeneratorExit):
        abandoned = True
        raise
    finally:
        chat_spans.routed(span, ctx.catalog, ctx.decision, ctx.turn)
        await finish(ctx, abandoned=abandoned)


async def _replay(ctx: TurnContext, cached: CachedAnswer) -> AsyncGenerator[TurnEvent, None]:
    """A cached answer as the stream it was (or as a stream, if it was unary); it
    spent no tokens but is recorded and saved like a live one."""
    metadata = _metadata(ctx, _cached_metadata(cached))
    yield Started(cached.model, metadata)
    for event in cached.events:
        if event.WhichOneof("event") is not None:
            yield Delta(event)
    answer = to_response(cached)
    yield Finished(cached.model, answer, answer.finish_reason, answer.usage)
    await account(ctx, cached.model, cache_hit=True)
    saved = await save(ctx, answer.message, answer.finish_reason)
    counted_hit(ctx)
    usage = answer.usage if answer.HasField("usage") else None
    yield Settled(metadata, (ctx.turn.cost_metadata(), *saved), usage)


def _answered(ctx: TurnContext) -> None:
    turn = ctx.turn
    ctx.timing.answered(ctx.resolved.label, turn.usage.output_tokens, tools=turn.loop is not None)


async def _live(ctx: TurnContext) -> AsyncGenerator[TurnEvent, None]:
    decision, turn = ctx.decision, ctx.turn
    calls: ModelCall = StreamedCall(ctx) if ctx.streaming else UnaryCall(ctx)
    started = False
    code = grpc.StatusCode.OK
    if ctx.streaming:
        ACTIVE_STREAMS.inc()
    try:
        while True:
            try:
                if turn.loop is not None and turn.loop.iteration:
                    await reserve_next_call(ctx)
                lease = await calls.open()
            except GatewayError as error:
                if started:
                    # A later call of the tool loop: output went out already.
                    yield Failed(error.to_status())
                raise
            if not started:
                started = True
                calls.first_output(lease)
                yield Started(decision.model, _metadata(ctx, decision.metadata()))
            async with contextlib.aclosing(calls.relay(lease)) as relayed:
                async for event in relayed:
                    yield event
            answer = calls.answer()
            await count_call(ctx, lease, answer.usage)
            finish_reason: int = answer.finish_reason
            if turn.runs_tools(answer.message, finish_reason):
                assert turn.loop is not None
                if not turn.loop.at_limit():
                    async with contextlib.aclosing(_run_tools(ctx, turn.loop, answer)) as steps:
                        async for step in steps:
                            yield step
                    continue
                finish_reason = common_pb2.FINISH_REASON_MAX_ITERATIONS
            for event in calls.held_back():
                yield Delta(event)
            yield Finished(decision.model, answer, finish_reason, turn.usage)
            break
        if ctx.streaming:
            # A stream's time per token ends with its finish chunk.
            _answered(ctx)
        if _complete(finish_reason):
            entry = calls.cache_entry(decision.model, decision.provider)
            if entry is not None:
                await ctx.cache.store(entry)
        await account(ctx, decision.model)
        saved = await save(ctx, answer.message, finish_reason)
        usage = turn.usage if turn.usage.input_tokens or turn.usage.output_tokens else None
        yield Settled(_metadata(ctx, decision.metadata()), (turn.cost_metadata(), *saved), usage)
        if not ctx.streaming:
            # A unary answer's time ends with its accounting.
            _answered(ctx)
    except asyncio.CancelledError:
        code = grpc.StatusCode.CANCELLED
        raise
    except GatewayError as error:
        code = error.code
        raise
    finally:
        if ctx.streaming:
            ACTIVE_STREAMS.dec()
        counted(ctx, code)


async def _run_tools(
    ctx: TurnContext, loop: ToolLoop, answer: provider_pb2.CompleteResponse
) -> AsyncGenerator[TurnEvent, None]:
    """One round of the tool loop; its transcript then feeds the next model call."""
    before = len(loop.transcript)
    # Closed here when our caller closes us: the loop then cancels and awaits its runs.
    async with contextlib.aclosing(loop.execute(answer.message, ctx.remaining())) as runs:
        async for progress in runs:
            if progress.state != STARTED:
                TOOL_LOOP_CALLS.labels(progress.tool_name, progress.state).inc()
            yield ToolStep(progress)
    ctx.upstream.messages.extend(loop.transcript[before:])
