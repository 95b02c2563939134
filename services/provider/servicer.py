"""The ProviderService RPCs: validate, pick the provider instance, call its adapter.

The adapters raise only GatewayErrors; the server interceptor turns them into
statuses. CheckProvider is the exception: an unhealthy provider is its answer, not an
error. A configuration reload swaps the adapters whole; a call keeps the adapter it
started with, and the servicer tells when replaced adapters have no call left. Each
completion is a `chat {model}` span (GenAI conventions) around the upstream call, the
HTTP request as its child.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import aclosing, contextmanager

import grpc
from google.protobuf import duration_pb2, timestamp_pb2

from llmgw.common.v1 import error_reason_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from llmgw.provider.v1 import provider_service_pb2_grpc as provider_grpc
from services.common import genai_spans
from services.common.channels import remaining_timeout
from services.common.errors import GatewayError, NotFound
from services.provider.adapters.base import ProviderAdapter
from services.provider.metrics import ACTIVE_STREAMS, ModelLabels, UpstreamCall
from services.provider.request_validation import (
    validate_complete,
    validate_embed,
    validate_provider,
)

# Seconds a health check may take when the caller set no deadline.
CHECK_TIMEOUT = 10.0


class ProviderServicer(provider_grpc.ProviderServiceServicer):
    def __init__(self, adapters: Mapping[str, ProviderAdapter], labels: ModelLabels) -> None:
        self._adapters = dict(adapters)
        self._labels = labels
        # Calls in flight per adapter (by identity) and a signal each time one ends.
        self._in_flight: dict[int, int] = {}
        self._released = asyncio.Event()

    @property
    def adapters(self) -> dict[str, ProviderAdapter]:
        return dict(self._adapters)

    def replace_adapters(
        self, adapters: Mapping[str, ProviderAdapter], labels: ModelLabels
    ) -> list[ProviderAdapter]:
        """Serve new calls with `adapters`; returns the replaced ones, still in use by
        the calls that started on them (close them once `wait_idle` says so)."""
        replaced = list(self._adapters.values())
        self._adapters = dict(adapters)
        self._labels = labels
        return replaced

    async def wait_idle(self, adapters: Iterable[ProviderAdapter], timeout: float) -> bool:
        """True once no call uses any of `adapters`; False if `timeout` passed first."""
        keys = {id(adapter) for adapter in adapters}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while keys & self._in_flight.keys():
            self._released.clear()
            try:
                await asyncio.wait_for(self._released.wait(), deadline - loop.time())
            except TimeoutError:
                return False
        return True

    @contextmanager
    def _use(self, name: str) -> Iterator[ProviderAdapter]:
        """The adapter for `name`, counted as in use until the block ends."""
        adapter = self._adapter(name)
        key = id(adapter)
        self._in_flight[key] = self._in_flight.get(key, 0) + 1
        try:
            yield adapter
        finally:
            left = self._in_flight[key] - 1
            if left:
                self._in_flight[key] = left
            else:
                del self._in_flight[key]
                self._released.set()

    def _adapter(self, name: str) -> ProviderAdapter:
        adapter = self._adapters.get(name)
        if adapter is None:
            known = ", ".join(sorted(self._adapters)) or "none"
            raise NotFound(
                f"provider '{name}' is not configured (configured: {known})",
                reason=error_reason_pb2.ERROR_REASON_PROVIDER_NOT_FOUND,
                resource_type="provider",
                resource_name=name,
            )
        return adapter

    async def Complete(
        self, request: provider_pb2.CompleteRequest, context: grpc.aio.ServicerContext
    ) -> provider_pb2.CompleteResponse:
        validate_complete(request)
        with self._use(request.provider) as adapter:
            label = self._labels(request.provider, request.model)
            call = UpstreamCall(request.provider, label, "Complete")
            with genai_spans.chat(request.model, client=True) as span:
                _name_provider(span, request.provider, adapter)
                try:
                    response = await adapter.complete(request, remaining_timeout(context))
                except GatewayError as error:
                    call.failed(error)
                    raise detached(error) from None
                except BaseException as error:
                    call.failed(error)
                    raise
                span.completion(response)
        call.succeeded(response.usage if response.HasField("usage") else None)
        context.set_trailing_metadata(call.trailers())
        response.provider = request.provider
        return response

    async def StreamComplete(
        self, request: provider_pb2.CompleteRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[provider_pb2.StreamCompleteResponse]:
        validate_complete(request)
        with self._use(request.provider) as adapter:
            label = self._labels(request.provider, request.model)
            call = UpstreamCall(request.provider, label, "StreamComplete")
            active = ACTIVE_STREAMS.labels(request.provider)
            active.inc()
            usage = None
            try:
                with genai_spans.chat(request.model, client=True) as span:
                    _name_provider(span, request.provider, adapter)
                    # aclosing: when the caller goes away while we wait to send, the
                    # adapter's generator (and the upstream response) is closed now, not
                    # at GC.
                    stream = adapter.stream(request, remaining_timeout(context))
                    async with aclosing(stream) as events:
                        async for event in events:
                            if event.WhichOneof("event") is not None:
                                call.first_token()
                            if event.HasField("usage"):
                                usage = event.usage
                            span.event(event)
                            yield event
            except GatewayError as error:
                call.failed(error)
                raise detached(error) from None
            except BaseException as error:
                call.failed(error)
                raise
            else:
                call.succeeded(usage)
                context.set_trailing_metadata(call.trailers())
            finally:
                active.dec()

    async def Embed(
        self, request: provider_pb2.EmbedRequest, context: grpc.aio.ServicerContext
    ) -> provider_pb2.EmbedResponse:
        validate_embed(request)
        with self._use(request.provider) as adapter:
            label = self._labels(request.provider, request.model)
            call = UpstreamCall(request.provider, label, "Embed")
            try:
                response = await adapter.embed(request, remaining_timeout(context))
            except GatewayError as error:
                call.failed(error)
                raise detached(error) from None
            except BaseException as error:
                call.failed(error)
                raise
        call.succeeded(response.usage if response.HasField("usage") else None)
        context.set_trailing_metadata(call.trailers())
        response.provider = request.provider
        return response

    async def ListProviderModels(
        self, request: provider_pb2.ListProviderModelsRequest, context: grpc.aio.ServicerContext
    ) -> provider_pb2.ListProviderModelsResponse:
        validate_provider(request.provider)
        with self._use(request.provider) as adapter:
            try:
                models = await adapter.list_models(remaining_timeout(context))
            except GatewayError as error:
                raise detached(error) from None
        return provider_pb2.ListProviderModelsResponse(models=models)

    async def CheckProvider(
        self, request: provider_pb2.CheckProviderRequest, context: grpc.aio.ServicerContext
    ) -> provider_pb2.CheckProviderResponse:
        validate_provider(request.provider)
        response = provider_pb2.CheckProviderResponse(provider=request.provider, healthy=True)
        response.check_time.CopyFrom(timestamp_pb2.Timestamp(seconds=int(time.time())))
        start = time.perf_counter()
        with self._use(request.provider) as adapter:
            try:
                await adapter.check(remaining_timeout(context, CHECK_TIMEOUT))
            except GatewayError as error:
                response.healthy = False
                response.error = error.message
        response.latency.CopyFrom(_duration(time.perf_counter() - start))
        return response

    async def ListProviders(
        self, request: provider_pb2.ListProvidersRequest, context: grpc.aio.ServicerContext
    ) -> provider_pb2.ListProvidersResponse:
        return provider_pb2.ListProvidersResponse(
            providers=[adapter.info for adapter in self._adapters.values()]
        )


def _name_provider(span: genai_spans.Recorder, name: str, adapter: ProviderAdapter) -> None:
    if span.recording:
        span.provider(name, genai_spans.family_of(adapter.info.type))


def detached(error: GatewayError) -> GatewayError:
    """`error` cut loose from the upstream call it describes, before it leaves the service.

    An adapter's error chains the SDK exception it was mapped from (`__context__`, set
    even by `raise ... from None`), and its traceback holds the adapter's frames: the
    encoded request, the JSON body built for it (a 100,000-message chat is ~40 MB of
    Python objects), the SDK's request and response. The server interceptor keeps the
    error in a reference cycle until a full garbage collection, which a busy process
    runs rarely: every refused large request stayed in memory (39 MB each, 3.3 GB after
    80). The caller needs the status only; the log has what the adapter logged.
    """
    error.__context__ = None
    error.__cause__ = None
    return error.with_traceback(None)


def _duration(seconds: float) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(round(seconds * 1e9))
    return duration
