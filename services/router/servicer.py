"""RouterService: the public chat API.

The chat RPCs are thin: each checks its request and its request id's scope, admits it
(`turn_context.prepare`: one snapshot of the catalogue, configuration and caller),
and translates the turn runner's events (`turn_runner`) into its own shape: one
answer (`unary_fold`) or chunks (`stream_chunks`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator

import grpc

from llmgw.router.v1 import chat_pb2, router_service_pb2, router_service_pb2_grpc
from services.common import genai_spans
from services.common.caller import current_principal
from services.common.errors import InvalidArgument
from services.common.idempotency.run import once, once_streamed, request_scope
from services.common.idempotency.store import IdempotencyStore, Scope
from services.common.identity import acl
from services.common.session_client import SessionClient
from services.common.tool_client import ToolClient
from services.common.validation import Violations
from services.router import chat_spans
from services.router.admission import check_model
from services.router.cache.store import ResponseCache
from services.router.catalog import Catalog
from services.router.chat_options import validated
from services.router.gen_ai_metrics import Operation, RequestTiming
from services.router.limits.limiter import RateLimiter
from services.router.models import ModelDirectory
from services.router.provider_client import ProviderClient
from services.router.routing.layer import RoutingLayer
from services.router.stream_chunks import chunks
from services.router.tokenizer import PromptCounter
from services.router.turn_context import ChatBackends, TurnContext, prepare
from services.router.turn_runner import run_turn
from services.router.unary_fold import fold
from services.router.usage.recorder import UsageRecorder


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
        # The Session service, also for the Responses surface's stored responses.
        self.sessions = sessions
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

    @property
    def backends(self) -> ChatBackends:
        """The provider, routing, cache and usage backends (the embedder's too)."""
        return self._backends

    @property
    def prompt_counter(self) -> PromptCounter:
        """The prompt token counter reservations use (also `count_tokens`' counter)."""
        return self._backends.prompt_counter

    async def admit(
        self,
        request: chat_pb2.CreateChatCompletionRequest,
        context: grpc.aio.ServicerContext,
        operation: Operation,
        request_id: str,
        timing: RequestTiming,
    ) -> TurnContext:
        """Checks the request and admits it (also the drop-in surfaces' way in)."""
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
            turn = await self.admit(request, context, "chat", request_id, timing)
            reply = await fold(run_turn(turn, span), context)
            chat_spans.answered(span, reply)
            return reply

    async def StreamChatCompletion(
        self, request: chat_pb2.CreateChatCompletionRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[chat_pb2.StreamChatCompletionResponse]:
        timing = RequestTiming("chat_stream")
        where = _request_scope(request, context)
        request_id = where.request_id if where is not None else ""
        streamed = once_streamed(
            self._once,
            where,
            context,
            chat_pb2.StreamChatCompletionResponse,
            lambda recorder: self._streamed(request, recorder, request_id, timing),
        )
        # Closed here, not left to the garbage collector, when the client goes away.
        async with contextlib.aclosing(streamed):
            async for chunk in streamed:
                yield chunk

    async def _streamed(
        self,
        request: chat_pb2.CreateChatCompletionRequest,
        context: grpc.aio.ServicerContext,
        request_id: str,
        timing: RequestTiming,
    ) -> AsyncGenerator[chat_pb2.StreamChatCompletionResponse, None]:
        with genai_spans.chat(request.model, client=False) as span:
            turn = await self.admit(request, context, "chat_stream", request_id, timing)
            include_usage = request.stream_options.include_usage
            translated = chunks(run_turn(turn, span), context, include_usage=include_usage)
            async with contextlib.aclosing(translated):
                async for chunk in translated:
                    chat_spans.streamed(span, chunk)
                    yield chunk

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
