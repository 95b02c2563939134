"""The one narrow interface every provider family implements."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Protocol

from llmgw.provider.v1 import provider_service_pb2 as provider_pb2


class ProviderAdapter(Protocol):
    """One configured provider instance, holding its own credentials and HTTP client.

    Every failure is raised as a `services.common.errors.GatewayError` with an
    `UPSTREAM_*` reason; nothing else escapes. `timeout` is the caller's remaining
    deadline in seconds (None: the instance's configured timeout).
    """

    @property
    def info(self) -> provider_pb2.ProviderInfo:
        """Name, family, endpoint and whether a credential is set; never the credential."""
        ...

    async def complete(
        self, request: provider_pb2.CompleteRequest, timeout: float | None
    ) -> provider_pb2.CompleteResponse: ...

    def stream(
        self, request: provider_pb2.CompleteRequest, timeout: float | None
    ) -> AsyncGenerator[provider_pb2.StreamCompleteResponse, None]:
        """Events as they arrive. Every event carries `id` and `model`; the last one carries
        `finish_reason` and `usage`. The iterator ends only after the provider's terminal
        event; closing it early closes the upstream response."""
        ...

    async def embed(
        self, request: provider_pb2.EmbedRequest, timeout: float | None
    ) -> provider_pb2.EmbedResponse:
        """One vector per input text, in order; FAILED_PRECONDITION for a family with no
        embeddings API."""
        ...

    async def list_models(self, timeout: float | None) -> list[provider_pb2.ProviderModel]: ...

    async def check(self, timeout: float | None) -> None:
        """A cheap authenticated call; raises when the provider does not answer well."""
        ...

    async def close(self) -> None:
        """Releases the HTTP client and its connections."""
        ...
