"""Calls to the Provider service, through Envoy's internal listener.

Failures come back as the provider's own status (details included) so the caller sees
exactly what the provider reported (services/common/remote.py).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import grpc

from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from llmgw.provider.v1 import provider_service_pb2_grpc as provider_grpc
from services.common.channels import InternalChannel
from services.common.errors import GatewayError
from services.common.remote import translate_rpc_error
from services.common.upstream_timing import UpstreamTiming


def _translate(error: grpc.aio.AioRpcError) -> GatewayError:
    return translate_rpc_error(error, "provider")


class ProviderClient:
    """A ProviderService stub on one shared channel."""

    def __init__(self, internal: InternalChannel) -> None:
        self._stub = provider_grpc.ProviderServiceStub(internal.channel)
        self._metadata = internal.metadata

    async def complete(
        self,
        request: provider_pb2.CompleteRequest,
        timeout: float | None,
        timing: UpstreamTiming | None = None,
    ) -> provider_pb2.CompleteResponse:
        """The answer; `timing` gets the upstream time the provider reported with it."""
        call = self._stub.Complete(request, timeout=timeout, metadata=self._metadata(timeout))
        try:
            response = await call
            if timing is not None:
                timing.read(await call.trailing_metadata())
        except grpc.aio.AioRpcError as error:
            raise _translate(error) from None
        return response

    async def embed(
        self,
        request: provider_pb2.EmbedRequest,
        timeout: float | None,
        timing: UpstreamTiming | None = None,
    ) -> provider_pb2.EmbedResponse:
        """One provider's vectors for the request's texts, in order."""
        call = self._stub.Embed(request, timeout=timeout, metadata=self._metadata(timeout))
        try:
            response = await call
            if timing is not None:
                timing.read(await call.trailing_metadata())
        except grpc.aio.AioRpcError as error:
            raise _translate(error) from None
        return response

    async def stream(
        self,
        request: provider_pb2.CompleteRequest,
        timeout: float | None,
        timing: UpstreamTiming | None = None,
    ) -> AsyncGenerator[provider_pb2.StreamCompleteResponse, None]:
        """The events; once they all arrived, `timing` gets the upstream times the
        provider reported."""
        call = self._stub.StreamComplete(request, timeout=timeout, metadata=self._metadata(timeout))
        try:
            async for event in call:
                yield event
            if timing is not None:
                timing.read(await call.trailing_metadata())
        except grpc.aio.AioRpcError as error:
            raise _translate(error) from None
        finally:
            # Our caller went away or stopped reading: cancel upstream at once.
            call.cancel()

    async def check(self, provider: str, timeout: float) -> provider_pb2.CheckProviderResponse:
        try:
            return await self._stub.CheckProvider(
                provider_pb2.CheckProviderRequest(provider=provider),
                timeout=timeout,
                metadata=self._metadata(timeout),
            )
        except grpc.aio.AioRpcError as error:
            raise _translate(error) from None

    async def list_models(self, provider: str, timeout: float) -> list[provider_pb2.ProviderModel]:
        try:
            reply = await self._stub.ListProviderModels(
                provider_pb2.ListProviderModelsRequest(provider=provider),
                timeout=timeout,
                metadata=self._metadata(timeout),
            )
        except grpc.aio.AioRpcError as error:
            raise _translate(error) from None
        return list(reply.models)
