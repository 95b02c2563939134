"""OpenAI-family failures (SDK exceptions, in-stream error objects) mapped to the tree."""

from __future__ import annotations

from typing import Any

import httpx2
import openai

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
CAUGHT = (openai.OpenAIError, httpx2.HTTPError)


def _fields(error: Any) -> tuple[str, str, str]:
    """(message, type, code): OpenAI sends `{"message", "type", "code"}`, some compatible
    servers a bare string."""
    if isinstance(error, dict):
        return (
            str(error.get("message") or ""),
            str(error.get("type") or ""),
            str(error.get("code") or ""),
        )
    return ("" if error is None else str(error)), "", ""


def from_exception(error: Exception, *, provider: str, model: str) -> GatewayError:
    oversized = too_large(error)
    if oversized is not None:
        return response_too_large(provider, oversized.limit)
    if isinstance(error, openai.APIStatusError):
        message, kind, code = _fields(error.body)
        failure = UpstreamFailure(
            error.status_code, message or error.message, kind, code, error.response.headers
        )
        return to_gateway_error(failure, provider=provider, model=model)
    if isinstance(error, openai.APITimeoutError | httpx2.TimeoutException):
        return timed_out(provider)
    if isinstance(error, openai.APIConnectionError):
        return connection_failed(provider, str(error.__cause__ or error))
    if isinstance(error, httpx2.TransportError):
        return connection_failed(provider, str(error))
    return malformed(provider, str(error))


def from_stream_error(error: Any, *, provider: str, model: str) -> GatewayError:
    """An `{"error": ...}` object sent as stream data (or in a 200 body)."""
    message, kind, code = _fields(error)
    status = status_for_error_type(code, 0) or status_for_error_type(kind)
    failure = UpstreamFailure(status, message, kind, code, in_stream=True)
    return to_gateway_error(failure, provider=provider, model=model)
