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


def _translate(error: grpc.aio.AioRpcError) -> GatewayError:
    return translate_rpc_error(error, "provider")


class ProviderClient:
    """A ProviderService stub on one shared channel."""

    def __init__(self, internal: InternalChannel) -> None:
        self._stub = provider_grpc.ProviderServiceStub(internal.channel)
        self._metadata = internal.metadata

    async def complete(
        self, request: provider_pb2.CompleteRequest, timeout: float | None
    ) -> provider_pb2.CompleteResponse:
        try:
            return await self._stub.Complete(
                request, timeout=timeout, metadata=self._metadata(timeout)
            )
        except grpc.aio.AioRpcError as error:
            raise _translate(error) from None

    async def stream(
        self, request: provider_pb2.CompleteRequest, timeout: float | None
    ) -> AsyncGenerator[provider_pb2.StreamCompleteResponse, None]:
        call = self._stub.StreamComplete(request, timeout=timeout, metadata=self._metadata(timeout))
        try:
            async for event in call:
                yield event
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
