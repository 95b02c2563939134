"""A provider's failure, mapped to the gateway's error tree the same way for every family.

Each family's `*_errors` module reduces its SDK exceptions, error bodies and in-stream
error events to an `UpstreamFailure`; this module picks the status, the reason, the
RetryInfo and the message. Messages quote the provider (trimmed, secrets redacted) and
never carry a credential or a stack trace. ErrorInfo metadata names the provider and
the provider's HTTP status, so the router can tell whose failure it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from llmgw.common.v1 import error_reason_pb2
from services.common.errors import (
    Aborted,
    DeadlineExceeded,
    GatewayError,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from services.common.http_replies import quote, retry_after_seconds

_R = error_reason_pb2

# Provider error types that name a status, for errors reported inside a 200 stream.
_TYPE_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "requests": 429,
    "tokens": 429,
    "insufficient_quota": 429,
    "api_error": 500,
    "server_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
_CONTEXT_MARKERS = (
    "context_length_exceeded",
    "context length",
    "context window",
    "maximum context",
    "prompt is too long",
    "too many tokens",
)
# llama.cpp's server answers HTTP 500 for an embedding input longer than its batch: the
# caller's text is too long, not the server down, so it is no reason to retry elsewhere.
_OVERSIZED_INPUT_MARKERS = ("is too large to process",)
_CONTENT_MARKERS = (
    "content_filter",
    "content_policy",
    "content policy",
    "content management policy",
    "usage policy",
    "safety system",
)


@dataclass(frozen=True)
class UpstreamFailure:
    """What a family extracts from one failure.

    `status` is the HTTP status, or for an error inside a 200 stream the status its type
    implies (`in_stream` set). `error_type` and `error_code` are the provider's own
    (`rate_limit_error`, `context_length_exceeded`, ...).
    """

    status: int
    message: str
    error_type: str = ""
    error_code: str = ""
    headers: Mapping[str, str] | None = None
    in_stream: bool = False


def status_for_error_type(error_type: str, default: int = 500) -> int:
    return _TYPE_STATUS.get(error_type, default)


def _mentions(failure: UpstreamFailure, markers: tuple[str, ...]) -> bool:
    text = f"{failure.error_type} {failure.error_code} {failure.message}".lower()
    return any(marker in text for marker in markers)


def to_gateway_error(failure: UpstreamFailure, *, provider: str, model: str) -> GatewayError:
    """`model` is empty for calls about no model (listing models, health checks)."""
    status = failure.status
    metadata = {"provider": provider}
    if failure.in_stream:
        where = f"in its stream ({failure.error_code or failure.error_type or 'error'})"
    else:
        where = f"(HTTP {status})"
        metadata["upstream_status"] = str(status)
    if failure.error_type:
        metadata["upstream_error_type"] = failure.error_type
    if failure.error_code:
        metadata["upstream_error_code"] = failure.error_code
    said = quote(failure.message)
    retry_after = retry_after_seconds(failure.headers)

    if status == 429:
        return ResourceExhausted(
            f"provider '{provider}' rate-limited the gateway {where}: {said}",
            reason=_R.ERROR_REASON_UPSTREAM_RATE_LIMITED,
            metadata=metadata,
            retry_after=retry_after,
        )
    if status == 529 or failure.error_type == "overloaded_error":
        return Unavailable(
            f"provider '{provider}' is overloaded {where}: {said}",
            reason=_R.ERROR_REASON_UPSTREAM_OVERLOADED,
            metadata=metadata,
            retry_after=retry_after,
        )
    if status in (401, 403):
        return Unavailable(
            f"provider '{provider}' rejected the gateway's credentials {where}: {said}",
            reason=_R.ERROR_REASON_UPSTREAM_AUTH_FAILED,
            metadata=metadata,
        )
    if status == 402:
        return Unavailable(
            f"provider '{provider}' refused the gateway's account (billing) {where}: {said}",
            reason=_R.ERROR_REASON_UPSTREAM_AUTH_FAILED,
            metadata=metadata,
        )
    if status == 404:
        missing = f"model '{model}'" if model else "the requested resource"
        return NotFound(
            f"{missing} not found at provider '{provider}' {where}: {said}",
            reason=_R.ERROR_REASON_UPSTREAM_MODEL_NOT_FOUND,
            metadata=metadata,
            resource_type="model",
            resource_name=model,
        )
    if status == 408:
        return DeadlineExceeded(
            f"provider '{provider}' timed out {where}: {said}",
            reason=_R.ERROR_REASON_UPSTREAM_TIMEOUT,
            metadata=metadata,
        )
    if status == 409:
        return Aborted(
            f"provider '{provider}' reported a conflict {where}: {said}",
            reason=_R.ERROR_REASON_UPSTREAM_UNAVAILABLE,
            metadata=metadata,
        )
    if 400 <= status < 500:
        reason = _R.ERROR_REASON_UPSTREAM_INVALID_REQUEST
        if _mentions(failure, _CONTEXT_MARKERS):
            reason = _R.ERROR_REASON_CONTEXT_LENGTH_EXCEEDED
        elif _mentions(failure, _CONTENT_MARKERS):
            reason = _R.ERROR_REASON_CONTENT_FILTERED
        return InvalidArgument(
            f"provider '{provider}' rejected the request {where}: {said}",
            reason=reason,
            metadata=metadata,
        )
    if status == 500 and _mentions(failure, _OVERSIZED_INPUT_MARKERS):
        return InvalidArgument(
            f"provider '{provider}' rejected the request {where}: {said}",
            reason=_R.ERROR_REASON_CONTEXT_LENGTH_EXCEEDED,
            metadata=metadata,
        )
    return Unavailable(
        f"provider '{provider}' failed {where}: {said}",
        reason=_R.ERROR_REASON_UPSTREAM_UNAVAILABLE,
        metadata=metadata,
        retry_after=retry_after,
    )


def connection_failed(provider: str, detail: str = "") -> Unavailable:
    suffix = f": {quote(detail)}" if detail else ""
    return Unavailable(
        f"cannot reach provider '{provider}'{suffix}",
        reason=_R.ERROR_REASON_UPSTREAM_CONNECTION_FAILED,
        metadata={"provider": provider},
    )


def timed_out(provider: str) -> DeadlineExceeded:
    return DeadlineExceeded(
        f"provider '{provider}' did not answer within the deadline",
        reason=_R.ERROR_REASON_UPSTREAM_TIMEOUT,
        metadata={"provider": provider},
    )


def stream_ended_early(provider: str, detail: str) -> Unavailable:
    """The stream closed or broke before the provider's terminal event: never a success."""
    return Unavailable(
        f"provider '{provider}' stream ended early ({detail}); the answer is incomplete",
        reason=_R.ERROR_REASON_UPSTREAM_UNAVAILABLE,
        metadata={"provider": provider},
    )


def stream_idle(provider: str, seconds: float) -> Unavailable:
    """The stream stayed open but sent no event (keep-alive comments at most)."""
    return Unavailable(
        f"provider '{provider}' sent no stream event for {seconds:g}s (stream_idle_timeout); "
        "the stream was abandoned and the answer is incomplete",
        reason=_R.ERROR_REASON_UPSTREAM_TIMEOUT,
        metadata={"provider": provider},
    )


def stream_event_too_large(provider: str, limit: int) -> Unavailable:
    return Unavailable(
        f"provider '{provider}' sent a stream event over {limit} bytes (max_event_bytes); "
        "the stream was abandoned",
        reason=_R.ERROR_REASON_UPSTREAM_UNAVAILABLE,
        metadata={"provider": provider},
    )


def response_too_large(provider: str, limit: int) -> Unavailable:
    return Unavailable(
        f"provider '{provider}' sent a response over {limit} bytes (max_response_bytes)",
        reason=_R.ERROR_REASON_UPSTREAM_UNAVAILABLE,
        metadata={"provider": provider},
    )


def malformed(provider: str, detail: str) -> Unavailable:
    """The provider answered 2xx with a body we cannot read."""
    return Unavailable(
        f"provider '{provider}' sent an unreadable response: {quote(detail)}",
        reason=_R.ERROR_REASON_UPSTREAM_UNAVAILABLE,
        metadata={"provider": provider},
    )
