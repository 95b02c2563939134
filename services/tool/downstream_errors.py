"""A downstream's failure as the gateway's error, and what it means for the breaker.

Transient (retried, and a breaker failure): connection errors, an attempt timing out,
HTTP 408, 429, 500, 502, 503, 504; any other 5xx is a breaker failure but not retried.
Every other answer shows the downstream is up: a breaker success, never retried.
Messages quote the downstream's own reason on one line, trimmed, with known secret
shapes and the tool's header values removed; ErrorInfo metadata names the tool, the
downstream and its HTTP status.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from llmgw.common.v1 import error_reason_pb2
from services.common.breaker_machine import Outcome
from services.common.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    GatewayError,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from services.common.http_replies import quote
from services.tool.body import decode_json, utf8_prefix
from services.tool.entries import ToolEntry

_R = error_reason_pb2
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_REDACTED = "[redacted]"
# Header values shorter than this are not secrets worth hiding (and would mangle text).
_MIN_SECRET = 6


def is_transient(status: int) -> bool:
    return status in TRANSIENT_STATUSES


def breaker_outcome(status: int) -> Outcome:
    return Outcome.FAILURE if status in TRANSIENT_STATUSES or status >= 500 else Outcome.SUCCESS


def _said(document: Any) -> str | None:
    if isinstance(document, str):
        return document
    if not isinstance(document, dict):
        return None
    error = document.get("error")
    if isinstance(error, dict):
        return _said({k: v for k, v in error.items() if k != "error"})
    if isinstance(error, str):
        return error
    for key in ("message", "detail", "title"):
        if isinstance(document.get(key), str):
            return str(document[key])
    return None


def short_reason(body: bytes, secrets: Iterable[str] = ()) -> str:
    """The downstream's reason from a JSON error body (`error.message`, `error`,
    `message`, `detail`, `title`) or its text, fit for a message."""
    try:
        said = _said(decode_json(body))
    except ValueError:
        said = None
    if said is None:
        said = utf8_prefix(body[:1024]).strip()
    for secret in secrets:
        if len(secret) >= _MIN_SECRET:
            said = said.replace(secret, _REDACTED)
    return quote(said)


def _metadata(entry: ToolEntry, status: int | None = None) -> dict[str, str]:
    metadata = {"tool": entry.tool_id, "downstream": entry.template.downstream}
    if status is not None:
        metadata["downstream_status"] = str(status)
    return metadata


def http_error(
    entry: ToolEntry,
    status: int,
    body: bytes,
    retry_after: float | None,
    secrets: Iterable[str] = (),
) -> GatewayError:
    """The error for a final answer that is not 2xx (retries, if any, are over)."""
    meta = _metadata(entry, status)
    reason = short_reason(body, secrets)
    if status in (400, 422):
        return InvalidArgument(
            f"the downstream service refused the arguments: {reason}",
            reason=_R.ERROR_REASON_TOOL_ARGUMENTS_INVALID,
            metadata=meta,
        )
    if status in (401, 403):
        return FailedPrecondition(
            "the tool's credentials were refused",
            reason=_R.ERROR_REASON_UPSTREAM_AUTH_FAILED,
            metadata=meta,
        )
    if status == 404 and entry.has_url_arguments:
        return NotFound(
            f"the downstream service found nothing for these arguments: {reason}",
            reason=_R.ERROR_REASON_RESOURCE_NOT_FOUND,
            metadata=meta,
        )
    if status == 404:
        return Unavailable(
            "the tool's downstream endpoint does not exist (HTTP 404)",
            reason=_R.ERROR_REASON_TOOL_FAILED,
            metadata=meta,
        )
    if status == 408:
        return DeadlineExceeded(
            f"the downstream service timed out (HTTP 408): {reason}",
            reason=_R.ERROR_REASON_TOOL_TIMEOUT,
            metadata=meta,
        )
    if status == 429:
        return ResourceExhausted(
            f"the downstream service is rate-limiting the tool (HTTP 429): {reason}",
            reason=_R.ERROR_REASON_UPSTREAM_RATE_LIMITED,
            metadata=meta,
            retry_after=retry_after,
        )
    if 300 <= status < 400:
        return FailedPrecondition(
            f"the downstream service redirected the call (HTTP {status}); tools do not "
            "follow redirects",
            reason=_R.ERROR_REASON_TOOL_FAILED,
            metadata=meta,
        )
    if 400 <= status < 500:
        return FailedPrecondition(
            f"the downstream service refused the call (HTTP {status}): {reason}",
            reason=_R.ERROR_REASON_TOOL_FAILED,
            metadata=meta,
        )
    return Unavailable(
        f"the downstream service failed (HTTP {status}): {reason}",
        reason=_R.ERROR_REASON_TOOL_FAILED,
        metadata=meta,
        retry_after=retry_after,
    )


def connection_failed(entry: ToolEntry, detail: str) -> Unavailable:
    return Unavailable(
        f"cannot reach the tool's downstream service {entry.template.downstream}: {quote(detail)}",
        reason=_R.ERROR_REASON_UPSTREAM_CONNECTION_FAILED,
        metadata=_metadata(entry),
    )


def timed_out(entry: ToolEntry, seconds: float) -> DeadlineExceeded:
    return DeadlineExceeded(
        f"tool '{entry.tool_id}' did not finish within {seconds:.3g}s",
        reason=_R.ERROR_REASON_TOOL_TIMEOUT,
        metadata=_metadata(entry),
    )


def breaker_open(entry: ToolEntry, retry_after: float) -> Unavailable:
    return Unavailable(
        f"the tool's downstream service {entry.template.downstream} is failing; its circuit "
        "breaker is open",
        reason=_R.ERROR_REASON_CIRCUIT_OPEN,
        metadata=_metadata(entry),
        retry_after=max(retry_after, 0.0),
    )
