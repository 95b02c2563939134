"""The HTTP client a provider instance owns, and the timeout of one request.

One client per instance for its whole life, so connections are reused. Provider SDKs
are built with `max_retries=0`: the router owns retries and fallbacks.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx2

from services.common.gateway_config import ProviderConfig
from services.provider.adapters.aiohttp_transport import AiohttpTransport


def default_timeout(config: ProviderConfig) -> httpx2.Timeout:
    return httpx2.Timeout(config.timeout, connect=config.connect_timeout)


def request_timeout(config: ProviderConfig, remaining: float | None) -> httpx2.Timeout:
    """The caller's remaining deadline bounds every phase; connecting also gets at most
    `connect_timeout`. No deadline: the instance's configured timeout."""
    if remaining is None:
        return default_timeout(config)
    return httpx2.Timeout(remaining, connect=min(config.connect_timeout, remaining))


def http_client(
    config: ProviderConfig,
    *,
    base_url: str = "",
    headers: Mapping[str, str] | None = None,
) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(
        base_url=base_url,
        headers=headers,
        timeout=default_timeout(config),
        transport=AiohttpTransport(
            max_connections=config.max_connections, max_body_bytes=config.max_response_bytes
        ),
    )
