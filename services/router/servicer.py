"""RouterService: the public chat API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc

from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from llmgw.router.v1 import chat_pb2, router_service_pb2, router_service_pb2_grpc
from services.common.channels import remaining_timeout
from services.common.context import request_id
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

# Used when the caller sets no deadline: long generations must still end.
DEFAULT_TIMEOUT_SECONDS = 600.0


def _gateway_options(request: chat_pb2.CreateChatCompletionRequest) -> None:
    """Refuse gateway options whose capability is not built yet, rather than ignore them."""
    options = request.gateway
    pending = {
        "gateway.session": bool(options.session),
        "gateway.routing_strategy": bool(options.routing_strategy),
        "gateway.disable_fallbacks": options.disable_fallbacks,
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


class RouterServicer(router_service_pb2_grpc.RouterServiceServicer):
    def __init__(self, catalog: Catalog, provider: ProviderClient) -> None:
        self.catalog = catalog
        self._provider = provider
        self._models = ModelDirectory(provider)

    def _plan(
        self, request: chat_pb2.CreateChatCompletionRequest, *, streaming: bool
    ) -> tuple[ResolvedModel, provider_pb2.CompleteRequest]:
        problems = Violations()
        if request.stream and not streaming:
            problems.add("stream", "true needs the streaming RPC (StreamChatCompletion)")
        upstream = to_complete_request(request, problems)
        problems.raise_if_any()
        _gateway_options(request)
        resolved = self.catalog.resolve(request.model)
        deployment = resolved.deployments[0]
        upstream.provider = deployment.provider
        upstream.model = deployment.model
        upstream.include_usage = streaming
        return resolved, upstream

    async def CreateChatCompletion(
        self, request: chat_pb2.CreateChatCompletionRequest, context: grpc.aio.ServicerContext
    ) -> chat_pb2.CreateChatCompletionResponse:
        resolved, upstream = self._plan(request, streaming=False)
        code = grpc.StatusCode.OK
        try:
            result = await self._provider.complete(
                upstream, remaining_timeout(context, DEFAULT_TIMEOUT_SECONDS)
            )
        except GatewayError as error:
            code = error.code
            raise
        finally:
            COMPLETIONS.labels(resolved.name, upstream.provider, "false", code.name).inc()
        _record_usage(resolved.name, upstream.provider, result.usage)
        return chat_response.completion(result, resolved.name)

    async def StreamChatCompletion(
        self, request: chat_pb2.CreateChatCompletionRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[chat_pb2.StreamChatCompletionResponse]:
        resolved, upstream = self._plan(request, streaming=True)
        include_usage = request.stream_options.include_usage
        chunks = chat_response.ChunkBuilder(resolved.name)
        started = time.perf_counter()
        sent = False
        usage: common_pb2.Usage | None = None
        code = grpc.StatusCode.OK
        ACTIVE_STREAMS.inc()
        try:
            events = self._provider.stream(
                upstream, remaining_timeout(context, DEFAULT_TIMEOUT_SECONDS)
            )
            async for event in events:
                chunk = chunks.content(event)
                if chunk is not None:
                    if not sent:
                        TIME_TO_FIRST_TOKEN.labels(resolved.name).observe(
                            time.perf_counter() - started
                        )
                        sent = True
                    yield chunk
                if event.finish_reason != common_pb2.FINISH_REASON_UNSPECIFIED:
                    sent = True
                    yield chunks.finish(event.finish_reason)
                if event.HasField("usage"):
                    usage = event.usage
            if usage is not None:
                _record_usage(resolved.name, upstream.provider, usage)
                if include_usage:
                    yield chunks.usage(usage)
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception as error:
            reported = as_gateway_error(error, request_id.get())
            code = reported.code
            if sent:
                # Once chunks went out, an HTTP/1.1 SSE client cannot see the status
                # that ends the RPC; this event tells it (the OpenAI SDK raises it).
                yield chunks.error(reported.to_status())
            raise
        finally:
            ACTIVE_STREAMS.dec()
            COMPLETIONS.labels(resolved.name, upstream.provider, "true", code.name).inc()

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
