"""Anthropic failures (SDK exceptions, `event: error` in a stream) mapped to the tree."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2

from services.common.errors import GatewayError
from services.provider.adapters.aiohttp_transport import too_large
from services.provider.adapters.upstream_errors import (
    UpstreamFailure,
    connection_failed,
    malformed,
    response_too_large,
    status_for_error_type,
    timed_out,
    to_gateway_error,
)

# What the call sites catch: the SDK's errors and httpx2's (read while streaming a body).
CAUGHT = (anthropic.AnthropicError, httpx2.HTTPError)


def from_exception(error: Exception, *, provider: str, model: str) -> GatewayError:
    oversized = too_large(error)
    if oversized is not None:
        return response_too_large(provider, oversized.limit)
    if isinstance(error, anthropic.APIStatusError):
        failure = UpstreamFailure(
            error.status_code,
            error.api_message or error.message,
            error.type or "",
            error.error_code or "",
            error.response.headers,
        )
        return to_gateway_error(failure, provider=provider, model=model)
    if isinstance(error, anthropic.APITimeoutError | httpx2.TimeoutException):
        return timed_out(provider)
    if isinstance(error, anthropic.APIConnectionError):
        return connection_failed(provider, str(error.__cause__ or error))
    if isinstance(error, httpx2.TransportError):
        return connection_failed(provider, str(error))
    return malformed(provider, str(error))


def from_stream_error(event: Any, *, provider: str, model: str) -> GatewayError:
    """`{"type": "error", "error": {"type", "message", "details"}}` sent mid-stream."""
    error = event.get("error") if isinstance(event, dict) else None
    if not isinstance(error, dict):
        error = {}
    kind = str(error.get("type") or "")
    details = error.get("details")
    code = details.get("error_code") if isinstance(details, dict) else None
    failure = UpstreamFailure(
        status_for_error_type(kind),
        str(error.get("message") or ""),
        kind,
        code if isinstance(code, str) else "",
        in_stream=True,
    )
    return to_gateway_error(failure, provider=provider, model=model)
