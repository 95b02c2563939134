"""RouterService: the public chat API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass

import grpc

from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from llmgw.router.v1 import chat_pb2, router_service_pb2, router_service_pb2_grpc
from services.common.context import annotate, request_id
from services.common.errors import (
    GatewayError,
    InvalidArgument,
    Unimplemented,
    as_gateway_error,
)
from services.common.validation import Violations
from services.router import chat_response
from services.router.catalog import Catalog, ResolvedModel
from services.router.chat_request import to_complete_request
from services.router.metrics import ACTIVE_STREAMS, COMPLETIONS, TIME_TO_FIRST_TOKEN, TOKENS
from services.router.models import ModelDirectory
from services.router.provider_client import ProviderClient
from services.router.routing.decision import RouteDecision
from services.router.routing.engine import Lease
from services.router.routing.layer import RoutingLayer
from services.router.routing.plan import Candidate, Plan
from services.router.routing.strategies import STRATEGIES, OrderingInput
from services.router.routing.token_estimate import (
    estimate_output_tokens,
    estimate_prompt_tokens,
)

# Used when the caller sets no deadline: long generations must still end.
DEFAULT_TIMEOUT_SECONDS = 600.0


STRATEGY_NAMES = ", ".join(sorted(STRATEGIES))


def _gateway_options(request: chat_pb2.CreateChatCompletionRequest, problems: Violations) -> None:
    """Validates the gateway options; refuses those whose capability is not built yet."""
    options = request.gateway
    if options.routing_strategy and options.routing_strategy not in STRATEGIES:
        problems.add(
            "gateway.routing_strategy",
            f"unknown strategy '{options.routing_strategy}' (one of {STRATEGY_NAMES})",
        )
    pending = {
        "gateway.session": bool(options.session),
        "gateway.cache": options.cache not in ("", "default"),
        "gateway.tools": bool(options.tools),
        "gateway.max_iterations": options.max_iterations != 0,
        "gateway.history_window": options.history_window != 0,
    }
    used = [name for name, set_ in pending.items() if set_]
    if used:
        raise Unimplemented(f"{', '.join(used)}: not implemented yet in this gateway version")


def _record_usage(model: str, provider: str, usage: common_pb2.Usage) -> None:
    TOKENS.labels(model, provider, "input").inc(usage.input_tokens)
    TOKENS.labels(model, provider, "output").inc(usage.output_tokens)
    if usage.cached_input_tokens:
        TOKENS.labels(model, provider, "cached_input").inc(usage.cached_input_tokens)


def _visible(event: provider_pb2.StreamCompleteResponse) -> bool:
    """Whether the event becomes a chunk the client sees (the point of no fallback)."""
    return (
        event.WhichOneof("event") is not None
        or event.finish_reason != common_pb2.FINISH_REASON_UNSPECIFIED
    )


@dataclass
class _Prepared:
    resolved: ResolvedModel
    upstream: provider_pb2.CompleteRequest
    plan: Plan
    decision: RouteDecision

    def target(self, candidate: Candidate) -> provider_pb2.CompleteRequest:
        """The upstream request for one attempt (attempts run one after another)."""
        self.upstream.provider = candidate.deployment.provider
        self.upstream.model = candidate.deployment.model
        return self.upstream


@dataclass
class _OpenStream:
    """A provider stream that has produced its first visible event."""

    events: AsyncGenerator[provider_pb2.StreamCompleteResponse, None]
    buffered: list[provider_pb2.StreamCompleteResponse]


def _deadline(context: grpc.aio.ServicerContext, clock: float) -> float:
    remaining = context.time_remaining()
    return clock + (DEFAULT_TIMEOUT_SECONDS if remaining is None else max(remaining, 0.0))


class RouterServicer(router_service_pb2_grpc.RouterServiceServicer):
    def __init__(self, catalog: Catalog, provider: ProviderClient, routing: RoutingLayer) -> None:
        self.catalog = catalog
        self._provider = provider
        self._routing = routing
        self._models = ModelDirectory(provider)

    def _prepare(
        self, request: chat_pb2.CreateChatCompletionRequest, *, streaming: bool
    ) -> _Prepared:
        problems = Violations()
        if request.stream and not streaming:
            problems.add("stream", "true needs the streaming RPC (StreamChatCompletion)")
        upstream = to_complete_request(request, problems)
        _gateway_options(request, problems)
        problems.raise_if_any()
        resolved = self.catalog.resolve(request.model)
        upstream.include_usage = streaming
        routing = self.catalog.config.routing
        ordering = OrderingInput(
            prompt_tokens=estimate_prompt_tokens(upstream),
            output_tokens=estimate_output_tokens(upstream, routing.estimated_output_tokens),
            streaming=streaming,
        )
        options = request.gateway
        plan = self._routing.plan(
            resolved,
            ordering,
            strategy=options.routing_strategy,
            fallbacks=not options.disable_fallbacks,
        )
        return _Prepared(resolved, upstream, plan, RouteDecision(resolved.name, plan.strategy))

    async def CreateChatCompletion(
        self, request: chat_pb2.CreateChatCompletionRequest, context: grpc.aio.ServicerContext
    ) -> chat_pb2.CreateChatCompletionResponse:
        prepared = self._prepare(request, streaming=False)
        decision = prepared.decision
        engine = self._routing.engine

        async def attempt(
            candidate: Candidate, timeout: float | None
        ) -> provider_pb2.CompleteResponse:
            return await self._provider.complete(prepared.target(candidate), timeout)

        code = grpc.StatusCode.OK
        try:
            result, lease = await engine.call(
                prepared.plan, decision, attempt, _deadline(context, engine.clock())
            )
        except GatewayError as error:
            code = error.code
            raise
        finally:
            annotate(route=decision.log_fields())
            COMPLETIONS.labels(
                decision.model or prepared.resolved.name, decision.provider, "false", code.name
            ).inc()
        await lease.succeed()
        # Trailers, not headers: sending headers apart from the answer would open a window
        # in which this replica dying leaves Envoy a started response it cannot retry.
        context.set_trailing_metadata(decision.metadata())
        _record_usage(decision.model, decision.provider, result.usage)
        return chat_response.completion(result, decision.model)

    async def _open_stream(
        self, prepared: _Prepared, candidate: Candidate, timeout: float | None
    ) -> _OpenStream:
        events = self._provider.stream(prepared.target(candidate), timeout)
        buffered: list[provider_pb2.StreamCompleteResponse] = []
        try:
            async for event in events:
                buffered.append(event)
                if _visible(event):
                    break
        except BaseException:
            await events.aclose()
            raise
        return _OpenStream(events, buffered)

    async def StreamChatCompletion(
        self, request: chat_pb2.CreateChatCompletionRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[chat_pb2.StreamChatCompletionResponse]:
        prepared = self._prepare(request, streaming=True)
        decision = prepared.decision
        engine = self._routing.engine
        include_usage = request.stream_options.include_usage
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        ACTIVE_STREAMS.inc()
        try:
            try:
                # Until the first visible event, a failure may retry or fall back.
                opened, lease = await engine.call(
                    prepared.plan,
                    decision,
                    lambda candidate, timeout: self._open_stream(prepared, candidate, timeout),
                    _deadline(context, engine.clock()),
                )
            except GatewayError as error:
                code = error.code
                raise
            lease.first_token()
            TIME_TO_FIRST_TOKEN.labels(decision.model).observe(time.perf_counter() - started)
            await context.send_initial_metadata(decision.metadata())
            async for chunk in self._relay(opened, lease, decision, include_usage):
                yield chunk
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
                decision.model or prepared.resolved.name, decision.provider, "true", code.name
            ).inc()

    async def _relay(
        self,
        opened: _OpenStream,
        lease: Lease,
        decision: RouteDecision,
        include_usage: bool,
    ) -> AsyncIterator[chat_pb2.StreamChatCompletionResponse]:
        """The stream after its first visible event: never switches deployment; a
        failure ends it with an error chunk and the status."""
        chunks = chat_response.ChunkBuilder(decision.model)
        usage: common_pb2.Usage | None = None

        async def events() -> AsyncIterator[provider_pb2.StreamCompleteResponse]:
            for event in opened.buffered:
                yield event
            async for event in opened.events:
                yield event

        try:
            async for event in events():
                chunk = chunks.content(event)
                if chunk is not None:
                    yield chunk
                if event.finish_reason != common_pb2.FINISH_REASON_UNSPECIFIED:
                    yield chunks.finish(event.finish_reason)
                if event.HasField("usage"):
                    usage = event.usage
        except asyncio.CancelledError as cancelled:
            await lease.fail(cancelled)
            raise
        except Exception as error:
            await lease.fail(error)
            reported = as_gateway_error(error, request_id.get())
            # Chunks went out: an HTTP/1.1 SSE client cannot see the status that ends
            # the RPC; this event tells it (the OpenAI SDK raises it).
            yield chunks.error(reported.to_status())
            raise reported from None
        finally:
            await opened.events.aclose()
        await lease.succeed()
        if usage is not None:
            _record_usage(decision.model, decision.provider, usage)
            if include_usage:
                yield chunks.usage(usage)

    async def ListModels(
        self, request: router_service_pb2.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> router_service_pb2.ListModelsResponse:
        models = await self._models.list(self.catalog)
        return router_service_pb2.ListModelsResponse(object="list", data=models)

    async def GetModel(
        self, request: router_service_pb2.GetModelRequest, context: grpc.aio.ServicerContext
    ) -> router_service_pb2.Model:
        if not request.model:
            raise InvalidArgument.for_field("model", "required")
        return await self._models.get(self.catalog, request.model)
