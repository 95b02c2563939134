"""RouterService: the public chat API.

A chat request is checked (`chat_options`) and admitted (`turn_context.prepare`: one
snapshot of the catalogue, configuration and caller); what a turn spends and keeps is
`turn_accounting`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass

import grpc

from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from llmgw.router.v1 import chat_pb2, router_service_pb2, router_service_pb2_grpc
from services.common import genai_spans
from services.common.caller import current_principal
from services.common.context import annotate, request_id
from services.common.errors import GatewayError, InvalidArgument, as_gateway_error
from services.common.idempotency.run import once, once_streamed, request_scope
from services.common.idempotency.store import IdempotencyStore, Scope
from services.common.identity import acl
from services.common.session_client import SessionClient
from services.common.tool_client import ToolClient
from services.common.validation import Violations
from services.router import chat_response, chat_spans, turn_accounting
from services.router.admission import check_model
from services.router.cache.entry import CachedAnswer, from_events, from_response, to_response
from services.router.cache.store import ResponseCache
from services.router.catalog import Catalog
from services.router.chat_options import validated
from services.router.gen_ai_metrics import Attempt, Operation, RequestTiming
from services.router.limits.limiter import RateLimiter
from services.router.metrics import (
    ACTIVE_STREAMS,
    COMPLETIONS,
    TIME_TO_FIRST_TOKEN,
    TOOL_LOOP_CALLS,
    TOOL_LOOP_ITERATIONS,
)
from services.router.models import ModelDirectory
from services.router.provider_client import ProviderClient
from services.router.routing.engine import Lease
from services.router.routing.layer import RoutingLayer
from services.router.routing.plan import Candidate
from services.router.stream_assembly import StreamAssembly
from services.router.tokenizer import PromptCounter
from services.router.tool_loop import STARTED, ToolLoop
from services.router.turn import Turn
from services.router.turn_accounting import CACHE_PROVIDER, account, count_call, save
from services.router.turn_context import ChatBackends, TurnContext, prepare, reserve_next_call
from services.router.usage.recorder import UsageRecorder


def _visible(event: provider_pb2.StreamCompleteResponse) -> bool:
    """Whether the event becomes a chunk the client sees (the point of no fallback)."""
    return (
        event.WhichOneof("event") is not None
        or event.finish_reason != common_pb2.FINISH_REASON_UNSPECIFIED
    )


@dataclass
class _OpenStream:
    """A provider stream that has produced its first visible event."""

    events: AsyncGenerator[provider_pb2.StreamCompleteResponse, None]
    buffered: list[provider_pb2.StreamCompleteResponse]
    # The attempt's timing, ended when the stream does (`_relay`).
    call: Attempt

    async def all(self) -> AsyncIterator[provider_pb2.StreamCompleteResponse]:
        for event in self.buffered:
            yield event
        async for event in self.events:
            yield event


def _complete(finish_reason: int) -> bool:
    """An answer the model finished on its own terms: the only kind the cache keeps."""
    return finish_reason in (common_pb2.FINISH_REASON_STOP, common_pb2.FINISH_REASON_LENGTH)


def _cached_metadata(cached: CachedAnswer) -> tuple[tuple[str, str], ...]:
    """Where a cached answer came from, in the routing headers' terms."""
    return (
        ("x-llmgw-model", cached.model),
        ("x-llmgw-provider", cached.provider),
        ("x-llmgw-route", "cache"),
    )


def _request_scope(
    request: chat_pb2.CreateChatCompletionRequest, context: grpc.aio.ServicerContext
) -> Scope | None:
    """The scope of the request's `gateway.request_id` (or Idempotency-Key header)."""
    violations = Violations()
    where = request_scope(
        violations, "router.ChatCompletion", request, context, field="gateway.request_id"
    )
    violations.raise_if_any()
    return where


class RouterServicer(router_service_pb2_grpc.RouterServiceServicer):
    def __init__(
        self,
        catalog: Catalog,
        provider: ProviderClient,
        routing: RoutingLayer,
        *,
        sessions: SessionClient,
        tools: ToolClient,
        cache: ResponseCache,
        usage: UsageRecorder,
        limiter: RateLimiter | None = None,
        prompt_counter: PromptCounter | None = None,
        once: IdempotencyStore | None = None,
    ) -> None:
        # Request ids of chat completions (None without Redis: refused).
        self._once = once
        # Replaced on each reload; a request keeps the one it was admitted with.
        self.catalog = catalog
        # None without Redis: limits and budgets are not enforced (logged at start).
        self.limiter = limiter
        self._backends = ChatBackends(
            provider=provider,
            routing=routing,
            sessions=sessions,
            tools=tools,
            cache=cache,
            usage=usage,
            prompt_counter=prompt_counter or PromptCounter(),
        )
        self._models = ModelDirectory(provider)

    async def _admit(
        self,
        request: chat_pb2.CreateChatCompletionRequest,
        context: grpc.aio.ServicerContext,
        operation: Operation,
        request_id: str,
        timing: RequestTiming,
    ) -> TurnContext:
        streaming = operation == "chat_stream"
        upstream = validated(request, streaming=streaming)
        # One snapshot for the whole request: a reload landing mid-request changes nothing
        # it already decided.
        return await prepare(
            self._backends,
            request,
            upstream,
            context,
            catalog=self.catalog,
            limiter=self.limiter,
            streaming=streaming,
            timing=timing,
            request_id=request_id,
        )

    async def _run_tools(
        self,
        prepared: TurnContext,
        loop: ToolLoop,
        assistant: common_pb2.Message,
        context: grpc.aio.ServicerContext,
    ) -> AsyncGenerator[chat_pb2.ToolProgress, None]:
        """One round of the tool loop; its transcript then feeds the next model call."""
        before = len(loop.transcript)
        # Closed here when our caller closes us: the loop then cancels and awaits its runs.
        async with contextlib.aclosing(loop.execute(assistant, prepared.remaining())) as runs:
            async for progress in runs:
                if progress.state != STARTED:
                    TOOL_LOOP_CALLS.labels(progress.tool_name, progress.state).inc()
                yield progress
        prepared.upstream.messages.extend(loop.transcript[before:])

    async def CreateChatCompletion(
        self, request: chat_pb2.CreateChatCompletionRequest, context: grpc.aio.ServicerContext
    ) -> chat_pb2.CreateChatCompletionResponse:
        timing = RequestTiming("chat")
        where = _request_scope(request, context)
        request_id = where.request_id if where is not None else ""
        return await once(
            self._once,
            where,
            context,
            chat_pb2.CreateChatCompletionResponse,
            lambda recorder: self._create(request, recorder, request_id, timing),
        )

    async def _create(
        self,
        request: chat_pb2.CreateChatCompletionRequest,
        context: grpc.aio.ServicerContext,
        request_id: str,
        timing: RequestTiming,
    ) -> chat_pb2.CreateChatCompletionResponse:
        with genai_spans.chat(request.model, client=False) as span:
            prepared = await self._admit(request, context, "chat", request_id, timing)
            abandoned = False
            try:
                reply = await self._complete(prepared, context)
            except asyncio.CancelledError:
                abandoned = True
                raise
            finally:
                chat_spans.routed(span, prepared.catalog, prepared.decision, prepared.turn)
                await turn_accounting.finish(prepared, abandoned=abandoned)
            chat_spans.answered(span, reply)
            return reply

    async def _complete(
        self, prepared: TurnContext, context: grpc.aio.ServicerContext
    ) -> chat_pb2.CreateChatCompletionResponse:
        decision, turn = prepared.decision, prepared.turn
        engine = self._backends.routing.engine
        cached = await prepared.cache.lookup()
        if cached is not None:
            answer = to_response(cached)
            await account(prepared, cached.model, cache_hit=True)
            saved = await save(prepared, answer.message, answer.finish_reason)
            context.set_trailing_metadata(
                (
                    *_cached_metadata(cached),
                    *prepared.cache.metadata(),
                    *prepared.quota.metadata(),
                    *turn.metadata(),
                    turn.cost_metadata(),
                    *saved,
                )
            )
            COMPLETIONS.labels(prepared.resolved.label, CACHE_PROVIDER, "false", "OK").inc()
            return chat_response.completion(answer, cached.model)

        providers = prepared.catalog.config.providers

        async def attempt(
            candidate: Candidate, timeout: float | None
        ) -> provider_pb2.CompleteResponse:
            call = prepared.timing.attempt(candidate, providers)
            try:
                response = await self._backends.provider.complete(
                    prepared.target(candidate), timeout, call.upstream
                )
            except BaseException as error:
                call.failed(error)
                raise
            call.succeeded(response.usage if response.HasField("usage") else None)
            return response

        code = grpc.StatusCode.OK
        try:
            while True:
                if turn.loop is not None and turn.loop.iteration:
                    await reserve_next_call(prepared)
                result, lease = await engine.call(
                    prepared.plan,
                    decision,
                    attempt,
                    prepared.deadline(),
                    admit=prepared.quota.admit_deployment,
                )
                await lease.succeed()
                await count_call(prepared, lease, result.usage)
                finish = result.finish_reason
                if not turn.runs_tools(result.message, finish):
                    break
                assert turn.loop is not None
                if turn.loop.at_limit():
                    finish = common_pb2.FINISH_REASON_MAX_ITERATIONS
                    break
                async for _progress in self._run_tools(
                    prepared, turn.loop, result.message, context
                ):
                    pass
        except GatewayError as error:
            code = error.code
            raise
        finally:
            annotate(route=decision.log_fields())
            COMPLETIONS.labels(
                decision.model_label or prepared.resolved.label,
                decision.provider,
                "false",
                code.name,
            ).inc()
            if turn.loop is not None:
                TOOL_LOOP_ITERATIONS.observe(turn.loop.iteration)
        if _complete(finish):
            await prepared.cache.store(from_response(result, decision.model, decision.provider))
        await account(prepared, decision.model)
        saved = await save(prepared, result.message, finish)
        # Trailers, not headers: sending headers apart from the answer would open a window
        # in which this replica dying leaves Envoy a started response it cannot retry.
        context.set_trailing_metadata(
            (
                *decision.metadata(),
                *prepared.cache.metadata(),
                *prepared.quota.metadata(),
                *turn.metadata(),
                turn.cost_metadata(),
                *saved,
            )
        )
        prepared.timing.answered(
            prepared.resolved.label, turn.usage.output_tokens, tools=turn.loop is not None
        )
        return chat_response.completion(
            result, decision.model, finish_reason=finish, total_usage=turn.usage
        )

    async def _open_stream(
        self, prepared: TurnContext, candidate: Candidate, timeout: float | None
    ) -> _OpenStream:
        call = prepared.timing.attempt(candidate, prepared.catalog.config.providers)
        events = self._backends.provider.stream(prepared.target(candidate), timeout, call.upstream)
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

    async def StreamChatCompletion(
        self, request: chat_pb2.CreateChatCompletionRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[chat_pb2.StreamChatCompletionResponse]:
        timing = RequestTiming("chat_stream")
        where = _request_scope(request, context)
        request_id = where.request_id if where is not None else ""
        chunks = once_streamed(
            self._once,
            where,
            context,
            chat_pb2.StreamChatCompletionResponse,
            lambda recorder: self._streamed(request, recorder, request_id, timing),
        )
        # Closed here, not left to the garbage collector, when the client goes away.
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                yield chunk

    async def _streamed(
        self,
        request: chat_pb2.CreateChatCompletionRequest,
        context: grpc.aio.ServicerContext,
        request_id: str,
        timing: RequestTiming,
    ) -> AsyncGenerator[chat_pb2.StreamChatCompletionResponse, None]:
        with genai_spans.chat(request.model, client=False) as span:
            prepared = await self._admit(request, context, "chat_stream", request_id, timing)
            abandoned = False
            try:
                async for chunk in self._stream(prepared, request, context):
                    chat_spans.streamed(span, chunk)
                    yield chunk
            except (asyncio.CancelledError, GeneratorExit):
                abandoned = True
                raise
            finally:
                chat_spans.routed(span, prepared.catalog, prepared.decision, prepared.turn)
                await turn_accounting.finish(prepared, abandoned=abandoned)

    async def _stream(
        self,
        prepared: TurnContext,
        request: chat_pb2.CreateChatCompletionRequest,
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[chat_pb2.StreamChatCompletionResponse]:
        decision, turn = prepared.decision, prepared.turn
        engine = self._backends.routing.engine
        include_usage = request.stream_options.include_usage
        cached = await prepared.cache.lookup()
        if cached is not None:
            async for chunk in self._replay(cached, prepared, context, include_usage):
                yield chunk
            return
        # The events of an answer the cache will keep (the tool loop is never cached).
        recorded: list[provider_pb2.StreamCompleteResponse] | None = (
            [] if prepared.cache.decision.write else None
        )
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        chunks: chat_response.ChunkBuilder | None = None
        ACTIVE_STREAMS.inc()
        try:
            while True:
                try:
                    if turn.loop is not None and turn.loop.iteration:
                        await reserve_next_call(prepared)
                    # Until a call's first visible event, its failure may retry or fall back.
                    opened, lease = await engine.call(
                        prepared.plan,
                        decision,
                        lambda candidate, timeout: self._open_stream(prepared, candidate, timeout),
                        prepared.deadline(),
                        admit=prepared.quota.admit_deployment,
                    )
                except GatewayError as error:
                    if chunks is None:
                        raise
                    # A later call of the tool loop: chunks went out already.
                    yield chunks.error(error.to_status())
                    raise
                if chunks is None:
                    lease.first_token()
                    TIME_TO_FIRST_TOKEN.labels(decision.model_label).observe(
                        time.perf_counter() - started
                    )
                    prepared.timing.first_chunk(prepared.resolved.label)
                    await context.send_initial_metadata(
                        (
                            *decision.metadata(),
                            *prepared.cache.metadata(),
                            *prepared.quota.metadata(),
                            *turn.metadata(),
                        )
                    )
                    chunks = chat_response.ChunkBuilder(decision.model)
                assembly = StreamAssembly()
                async for chunk in self._relay(
                    opened, lease, chunks, assembly, turn, recorded=recorded
                ):
                    yield chunk
                await count_call(prepared, lease, assembly.usage or common_pb2.Usage())
                answer, finish = assembly.message(), assembly.finish_reason
                if turn.runs_tools(answer, finish):
                    assert turn.loop is not None
                    if not turn.loop.at_limit():
                        running = self._run_tools(prepared, turn.loop, answer, context)
                        async with contextlib.aclosing(running):
                            async for progress in running:
                                yield chunks.progress(progress)
                        continue
                    finish = common_pb2.FINISH_REASON_MAX_ITERATIONS
                for chunk in self._held_back(chunks, assembly, turn):
                    yield chunk
                yield chunks.finish(finish)
                prepared.timing.answered(
                    prepared.resolved.label,
                    turn.usage.output_tokens,
                    tools=turn.loop is not None,
                )
                break
            if recorded is not None and _complete(finish):
                await prepared.cache.store(from_events(recorded, decision.model, decision.provider))
            await account(prepared, decision.model)
            saved = await save(prepared, answer, finish)
            context.set_trailing_metadata((turn.cost_metadata(), *saved))
            if include_usage and (turn.usage.input_tokens or turn.usage.output_tokens):
                yield chunks.usage(turn.usage)
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        except GatewayError as error:
            code = error.code
            raise
        finally:
            annotate(route=decision.log_fields())
            ACTIVE_STREAMS.dec()
            COMPLETIONS.labels(
                decision.model_label or prepared.resolved.label,
                decision.provider,
                "true",
                code.name,
            ).inc()
            if turn.loop is not None:
                TOOL_LOOP_ITERATIONS.observe(turn.loop.iteration)

    async def _replay(
        self,
        cached: CachedAnswer,
        prepared: TurnContext,
        context: grpc.aio.ServicerContext,
        include_usage: bool,
    ) -> AsyncIterator[chat_pb2.StreamChatCompletionResponse]:
        """A cached answer as the stream it was (or as a stream, if it was unary)."""
        await context.send_initial_metadata(
            (
                *_cached_metadata(cached),
                *prepared.cache.metadata(),
                *prepared.quota.metadata(),
                *prepared.turn.metadata(),
            )
        )
        chunks = chat_response.ChunkBuilder(cached.model)
        assembly = StreamAssembly()
        for event in cached.events:
            assembly.add(event)
            chunk = chunks.content(event)
            if chunk is not None:
                yield chunk
        yield chunks.finish(assembly.finish_reason)
        await account(prepared, cached.model, cache_hit=True)
        saved = await save(prepared, assembly.message(), assembly.finish_reason)
        context.set_trailing_metadata(tuple(saved))
        COMPLETIONS.labels(prepared.resolved.label, CACHE_PROVIDER, "true", "OK").inc()
        if include_usage and assembly.usage is not None:
            yield chunks.usage(assembly.usage)

    @staticmethod
    def _held_back(
        chunks: chat_response.ChunkBuilder, assembly: StreamAssembly, turn: Turn
    ) -> list[chat_pb2.StreamChatCompletionResponse]:
        """Tool-call chunks held back while the gateway might have run the calls."""
        if turn.loop is None:
            return []
        return [chunk for event in assembly.tool_events if (chunk := chunks.content(event))]

    async def _relay(
        self,
        opened: _OpenStream,
        lease: Lease,
        chunks: chat_response.ChunkBuilder,
        assembly: StreamAssembly,
        turn: Turn,
        *,
        recorded: list[provider_pb2.StreamCompleteResponse] | None,
    ) -> AsyncIterator[chat_pb2.StreamChatCompletionResponse]:
        """One model call's stream after its first visible event: never switches
        deployment; a failure ends it with an error chunk and the status. The finish
        chunk is left to the caller (a tool loop goes on after it); so are tool-call
        pieces when the gateway may run the calls itself."""
        try:
            async for event in opened.all():
                assembly.add(event)
                if recorded is not None:
                    recorded.append(event)
                if event.WhichOneof("event") == "tool_call" and turn.loop is not None:
                    continue
                chunk = chunks.content(event)
                if chunk is not None:
                    yield chunk
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
            # Chunks went out: an HTTP/1.1 SSE client cannot see the status that ends
            # the RPC; this event tells it (the OpenAI SDK raises it).
            yield chunks.error(reported.to_status())
            raise reported from None
        finally:
            await opened.events.aclose()
        opened.call.succeeded(assembly.usage)
        await lease.succeed()

    async def ListModels(
        self, request: router_service_pb2.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> router_service_pb2.ListModelsResponse:
        models = await self._models.list(self.catalog)
        principal = current_principal()
        if principal is not None:
            # Only what the caller may use (by name or by one of its aliases).
            models = [
                m
                for m in models
                if any(acl.allows_model(principal, name) for name in (m.id, *m.aliases))
            ]
        return router_service_pb2.ListModelsResponse(object="list", data=models)

    async def GetModel(
        self, request: router_service_pb2.GetModelRequest, context: grpc.aio.ServicerContext
    ) -> router_service_pb2.Model:
        if not request.model:
            raise InvalidArgument.for_field("model", "required")
        # Checked before the lookup: a caller learns nothing of models it may not use.
        check_model(current_principal(), request.model, self.catalog.resolve(request.model))
        return await self._models.get(self.catalog, request.model)
