"""The adapter of a provider instance whose required credential is not set.

The gateway still starts and serves its other providers; every call to this one answers
UNAVAILABLE (reason UPSTREAM_AUTH_FAILED) naming the variable to set.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from llmgw.common.v1 import error_reason_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from services.common.errors import Unavailable


class UnconfiguredAdapter:
    def __init__(self, info: provider_pb2.ProviderInfo, variable: str) -> None:
        self._info = info
        self._message = (
            f"provider '{info.name}' has no API key: set the environment variable {variable}"
        )

    @property
    def info(self) -> provider_pb2.ProviderInfo:
        return self._info

    @property
    def problem(self) -> str:
        """What is missing, for the start-up log; names the variable, never a value."""
        return self._message

    def _error(self) -> Unavailable:
        return Unavailable(
            self._message,
            reason=error_reason_pb2.ERROR_REASON_UPSTREAM_AUTH_FAILED,
            metadata={"provider": self._info.name},
        )

    async def complete(
        self, request: provider_pb2.CompleteRequest, timeout: float | None
    ) -> provider_pb2.CompleteResponse:
        raise self._error()

    async def stream(
        self, request: provider_pb2.CompleteRequest, timeout: float | None
    ) -> AsyncGenerator[provider_pb2.StreamCompleteResponse, None]:
        raise self._error()
        yield  # an async generator, as the protocol's `stream` is

    async def embed(
        self, request: provider_pb2.EmbedRequest, timeout: float | None
    ) -> provider_pb2.EmbedResponse:
        raise self._error()

    async def list_models(self, timeout: float | None) -> list[provider_pb2.ProviderModel]:
        raise self._error()

    async def check(self, timeout: float | None) -> None:
        raise self._error()

    async def close(self) -> None:
        return None
