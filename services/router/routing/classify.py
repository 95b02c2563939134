"""What one failed upstream attempt means for the rest of the request.

The provider service reports upstream failures as statuses with an ErrorInfo reason
(services/provider/adapters/upstream_errors.py); a status without one comes from the
transport or Envoy (no provider replica reachable). From those the router decides:

- RETRY: transient (connection errors, timeouts, 408/409/429/5xx/529, overloaded). The
  deployment may be called again after a backoff, and other deployments are tried first.
- NEXT: this deployment cannot serve the request (its credentials were refused, the model
  is unknown upstream, the provider instance is unknown): try the others, never it again.
- LARGER_CONTEXT: the prompt does not fit this deployment's context window: only
  deployments with a larger known window may be tried.
- FATAL: the caller's own mistake or a policy refusal (400s, content filtered, caller
  deadline, cancellation). Returned as is; a content-policy refusal never falls back.
"""

from __future__ import annotations

import enum

import grpc

from llmgw.common.v1 import error_reason_pb2
from services.common.errors import GatewayError

_R = error_reason_pb2


class Disposition(enum.Enum):
    RETRY = "retry"
    NEXT = "next"
    LARGER_CONTEXT = "larger_context"
    FATAL = "fatal"


def _reason(error: GatewayError) -> int:
    text = getattr(error, "reason_text", "")
    if text:
        try:
            return _R.ErrorReason.Value("ERROR_REASON_" + text)
        except ValueError:
            return _R.ERROR_REASON_UNSPECIFIED
    return int(getattr(error, "reason", _R.ERROR_REASON_UNSPECIFIED))


_RETRY_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
    }
)
_NEXT_REASONS = frozenset(
    {
        _R.ERROR_REASON_UPSTREAM_AUTH_FAILED,
        _R.ERROR_REASON_UPSTREAM_MODEL_NOT_FOUND,
        _R.ERROR_REASON_PROVIDER_NOT_FOUND,
    }
)


def disposition(error: GatewayError, *, caller_deadline_passed: bool) -> Disposition:
    if caller_deadline_passed:
        return Disposition.FATAL
    reason = _reason(error)
    if reason in _NEXT_REASONS:
        return Disposition.NEXT
    if reason == _R.ERROR_REASON_CONTEXT_LENGTH_EXCEEDED:
        return Disposition.LARGER_CONTEXT
    if error.code in _RETRY_CODES:
        return Disposition.RETRY
    return Disposition.FATAL


def counts_against_deployment(error: GatewayError, kind: Disposition) -> bool:
    """Whether the failure is the deployment's fault (feeds its circuit breaker).

    A status without the provider service's ErrorInfo means our own path to it failed
    (Envoy, no provider replica up): worth a retry, but no deployment is to blame.
    """
    if _reason(error) == _R.ERROR_REASON_DEPENDENCY_UNAVAILABLE:
        return False
    return kind in (Disposition.RETRY, Disposition.NEXT)


def failure_label(error: GatewayError) -> str:
    """Short label of a failure for headers, logs and metrics (`UPSTREAM_RATE_LIMITED`)."""
    reason = _reason(error)
    if reason != _R.ERROR_REASON_UNSPECIFIED:
        return _R.ErrorReason.Name(reason).removeprefix("ERROR_REASON_")
    return error.code.name
