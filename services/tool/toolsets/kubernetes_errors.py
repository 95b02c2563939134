"""The Kubernetes API's failures as the gateway's errors.

The API server explains every refusal in a `kind: Status` body; its message is quoted
(one line, bounded, secrets redacted) so the caller learns what to change:

- 404 -> NOT_FOUND naming the object looked for (`pod 'web-1' in namespace 'shop'`);
- 403 -> PERMISSION_DENIED: the service account may not read it (RBAC);
- 401 -> FAILED_PRECONDITION: the configured credentials were refused;
- 400, 422 -> INVALID_ARGUMENT (a selector or option the server refused: a field label
  the kind does not support is `field label not supported: <label>`), except where
  the caller says otherwise (a log that does not exist is FAILED_PRECONDITION: the
  kubelet's `container "x" in pod "y" is waiting to start: <reason>` or `previous
  terminated container "x" in pod "y" not found`); the caller's hint says what to do;
- 429, 5xx, connection failures and unreadable answers -> UNAVAILABLE; a server
  certificate the configured CA does not verify says so (TLS verification, and
  OpenSSL's reason), as does another TLS failure;
- a request that timed out -> DEADLINE_EXCEEDED.

Only UNAVAILABLE and DEADLINE_EXCEEDED mean the API is unwell (`backend_failed`): the
circuit breaker counts those, and nothing else.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator, Callable

import httpx2
import msgspec
from lightkube import ApiError

from llmgw.common.v1 import error_reason_pb2
from services.common.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    GatewayError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from services.common.http_replies import quote

_R = error_reason_pb2
RESOURCE_TYPE = "kubernetes"


def backend_failed(error: GatewayError) -> bool:
    """Whether the error says the API did not work (what the breaker counts)."""
    return isinstance(error, Unavailable | DeadlineExceeded)


def _refusal(
    status: int, said: str, what: str, bad_request: type[GatewayError], hint: str = ""
) -> GatewayError:
    reason = quote(said)
    if status == 404:
        return NotFound(
            f"{what} not found",
            resource_type=RESOURCE_TYPE,
            resource_name=what,
        )
    if status == 403:
        return PermissionDenied(
            f"the gateway's Kubernetes service account may not read {what}: {reason}",
            reason=_R.ERROR_REASON_UPSTREAM_AUTH_FAILED,
        )
    if status == 401:
        return FailedPrecondition(
            "the Kubernetes API refused the configured credentials (HTTP 401)",
            reason=_R.ERROR_REASON_UPSTREAM_AUTH_FAILED,
        )
    if status in (400, 422):
        advice = f" ({hint})" if hint else ""
        if bad_request is InvalidArgument:
            return InvalidArgument(
                f"the Kubernetes API refused the request for {what}: {reason}{advice}",
                reason=_R.ERROR_REASON_TOOL_ARGUMENTS_INVALID,
            )
        return bad_request(f"{what}: {reason}{advice}", reason=_R.ERROR_REASON_TOOL_FAILED)
    if status == 429 or status >= 500:
        return Unavailable(
            f"the Kubernetes API failed (HTTP {status}): {reason}",
            reason=_R.ERROR_REASON_TOOL_FAILED,
        )
    return FailedPrecondition(
        f"the Kubernetes API refused the request for {what} (HTTP {status}): {reason}",
        reason=_R.ERROR_REASON_TOOL_FAILED,
    )


def _tls_failure(error: BaseException) -> ssl.SSLError | None:
    """The TLS error under a connection failure (httpx wraps the one ssl raised)."""
    seen: BaseException | None = error
    for _ in range(8):  # the chain is short; bounded against a cycle
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _unreachable(error: httpx2.HTTPError) -> Unavailable:
    tls = _tls_failure(error)
    if isinstance(tls, ssl.SSLCertVerificationError):
        said = tls.verify_message or tls.reason or "certificate verify failed"
        return Unavailable(
            "TLS verification of the Kubernetes API's certificate failed: "
            f"{quote(str(said))} (check the cluster's CA: certificate-authority in the "
            "kubeconfig, or the service account's ca.crt)",
            reason=_R.ERROR_REASON_UPSTREAM_CONNECTION_FAILED,
        )
    if tls is not None:
        return Unavailable(
            f"the TLS handshake with the Kubernetes API failed: {quote(tls.reason or str(tls))}",
            reason=_R.ERROR_REASON_UPSTREAM_CONNECTION_FAILED,
        )
    return Unavailable(
        f"cannot reach the Kubernetes API: {quote(str(error) or type(error).__name__)}",
        reason=_R.ERROR_REASON_UPSTREAM_CONNECTION_FAILED,
    )


@contextlib.asynccontextmanager
async def api_errors(
    what: str,
    *,
    bad_request: type[GatewayError] = InvalidArgument,
    hint: Callable[[str], str] | None = None,
) -> AsyncIterator[None]:
    """Turns what lightkube raises inside the block into a GatewayError about `what`;
    `hint` makes advice from the server's message of a 400 ("" for none)."""
    try:
        yield
    except ApiError as error:
        status = error.status.code or error.response.status_code
        said = error.status.message or ""
        advice = hint(said) if hint is not None and status in (400, 422) else ""
        raise _refusal(status, said, what, bad_request, advice) from None
    except httpx2.HTTPStatusError as error:
        # An error answer that is not a Status object (a proxy's page, a plain-text 400).
        response = error.response
        said = response.text[:1024] if response.is_stream_consumed else ""
        status = response.status_code
        advice = hint(said) if hint is not None and status in (400, 422) else ""
        raise _refusal(status, said, what, bad_request, advice) from None
    except httpx2.TimeoutException:
        raise DeadlineExceeded(
            f"the Kubernetes API did not answer in time (reading {what})",
            reason=_R.ERROR_REASON_TOOL_TIMEOUT,
        ) from None
    except httpx2.HTTPError as error:
        raise _unreachable(error) from None
    except (msgspec.ValidationError, msgspec.DecodeError) as error:
        raise Unavailable(
            f"the Kubernetes API answered with {what} this client cannot read: {quote(str(error))}",
            reason=_R.ERROR_REASON_TOOL_FAILED,
        ) from None
