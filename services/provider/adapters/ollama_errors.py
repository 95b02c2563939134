"""Ollama failures (HTTP statuses, `{"error": ...}` bodies and stream lines, transport
errors) mapped to the tree. Ollama's errors carry a message but no type."""

from __future__ import annotations

from collections.abc import Mapping

import httpx2
import orjson

from services.common.errors import GatewayError
from services.provider.adapters.aiohttp_transport import too_large
from services.provider.adapters.upstream_errors import (
    UpstreamFailure,
    connection_failed,
    response_too_large,
    timed_out,
    to_gateway_error,
)


def _message(body: bytes) -> str:
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace")
    if isinstance(decoded, dict) and decoded.get("error"):
        return str(decoded["error"])
    return body.decode("utf-8", "replace")


def from_response(
    status: int, body: bytes, headers: Mapping[str, str], *, provider: str, model: str
) -> GatewayError:
    failure = UpstreamFailure(status, _message(body), headers=headers)
    return to_gateway_error(failure, provider=provider, model=model)


def from_transport(error: httpx2.HTTPError, *, provider: str) -> GatewayError:
    oversized = too_large(error)
    if oversized is not None:
        return response_too_large(provider, oversized.limit)
    if isinstance(error, httpx2.TimeoutException):
        return timed_out(provider)
    return connection_failed(provider, str(error))


def from_stream_error(message: object, *, provider: str, model: str) -> GatewayError:
    """An `{"error": "..."}` line: a failure while generating, as an HTTP 500 would be."""
    failure = UpstreamFailure(500, str(message), in_stream=True)
    return to_gateway_error(failure, provider=provider, model=model)
