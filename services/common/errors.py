"""One exception tree for every service, mirroring gRPC status codes.

Handlers raise these; the server interceptor (and only it) turns them into a
`google.rpc.Status` with typed details: ErrorInfo always (stable reason, domain
`llm-gateway`), plus BadRequest, ResourceInfo, QuotaFailure and RetryInfo where they
apply. Messages are written for the caller: never a stack trace, never a secret.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import grpc
from google.protobuf import duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from llmgw.common.v1 import error_reason_pb2
from services.common.status_bounds import (
    MAX_MESSAGE_BYTES,
    bounded_status,
    clip_utf8,
    pack_bounded,
)

_M = TypeVar("_M", bound=Message)

DOMAIN = "llm-gateway"
STATUS_DETAILS_KEY = "grpc-status-details-bin"


def reason_name(reason: int) -> str:
    """`ERROR_REASON_MODEL_NOT_FOUND` -> `MODEL_NOT_FOUND` (the ErrorInfo.reason form)."""
    return error_reason_pb2.ErrorReason.Name(reason).removeprefix("ERROR_REASON_")


@dataclass(frozen=True)
class FieldViolation:
    """One problem with one request field (`messages[2].role`)."""

    field: str
    description: str


@dataclass(frozen=True)
class QuotaViolation:
    """One exhausted quota: what (subject) and which limit (description)."""

    subject: str
    description: str


class GatewayError(Exception):
    """Base of the tree. Subclasses fix the gRPC code and a default reason."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    default_reason: int = error_reason_pb2.ERROR_REASON_UNSPECIFIED
    # Extra trailing metadata sent with the status (a refusal's `x-ratelimit-*`).
    trailers: tuple[tuple[str, str], ...] = ()

    def __init__(
        self,
        message: str,
        *,
        reason: int | None = None,
        metadata: Mapping[str, str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = self.default_reason if reason is None else reason
        self.metadata = dict(metadata or {})
        self.retry_after = retry_after

    def details(self) -> list[Message]:
        """Typed details beyond ErrorInfo and RetryInfo; subclasses extend."""
        return []

    def to_status(self) -> status_pb2.Status:
        """The status, bounded whatever the message and details quote (`status_bounds`):
        ErrorInfo first, then RetryInfo, then the subclass's details, as room allows."""
        status = status_pb2.Status(
            code=self.code.value[0], message=clip_utf8(self.message, MAX_MESSAGE_BYTES)
        )
        details: list[Message] = []
        if self.reason != error_reason_pb2.ERROR_REASON_UNSPECIFIED:
            details.append(
                error_details_pb2.ErrorInfo(
                    reason=reason_name(self.reason), domain=DOMAIN, metadata=self.metadata
                )
            )
        if self.retry_after is not None:
            details.append(error_details_pb2.RetryInfo(retry_delay=_duration(self.retry_after)))
        details.extend(self.details())
        pack_bounded(status, details)
        return status


# Longest RetryInfo sent: past it a delay means "not soon" and no client waits it out.
MAX_RETRY_DELAY_SECONDS = 366 * 86_400


def _duration(seconds: float) -> duration_pb2.Duration:
    seconds = min(max(0.0, seconds), MAX_RETRY_DELAY_SECONDS)
    whole = math.floor(seconds)
    return duration_pb2.Duration(seconds=whole, nanos=round((seconds - whole) * 1e9))


class InvalidArgument(GatewayError):
    """The request is malformed; one field violation per problem."""

    code = grpc.StatusCode.INVALID_ARGUMENT
    default_reason = error_reason_pb2.ERROR_REASON_INVALID_REQUEST

    def __init__(
        self,
        message: str,
        violations: Sequence[FieldViolation] = (),
        **kwargs: object,
    ) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.violations = list(violations)

    @classmethod
    def from_violations(cls, violations: Sequence[FieldViolation]) -> InvalidArgument:
        """One error for all problems; the message names the first ones."""
        shown = "; ".join(f"{v.field}: {v.description}" for v in violations[:3])
        more = f" (and {len(violations) - 3} more)" if len(violations) > 3 else ""
        return cls(f"invalid request: {shown}{more}", violations)

    @classmethod
    def for_field(cls, field: str, description: str) -> InvalidArgument:
        """A single-violation error."""
        return cls.from_violations([FieldViolation(field, description)])

    def details(self) -> list[Message]:
        if not self.violations:
            return []
        return [
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=v.field, description=v.description
                    )
                    for v in self.violations
                ]
            )
        ]


class FailedPrecondition(GatewayError):
    """The system is not in a state that allows the operation."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class OutOfRange(GatewayError):
    """A value (page token, index) is past the valid range."""

    code = grpc.StatusCode.OUT_OF_RANGE
    default_reason = error_reason_pb2.ERROR_REASON_INVALID_REQUEST


class NotFound(GatewayError):
    """A named resource does not exist."""

    code = grpc.StatusCode.NOT_FOUND
    default_reason = error_reason_pb2.ERROR_REASON_RESOURCE_NOT_FOUND

    def __init__(
        self, message: str, *, resource_type: str = "", resource_name: str = "", **kwargs: object
    ) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.resource_type = resource_type
        self.resource_name = resource_name

    def details(self) -> list[Message]:
        if not self.resource_type:
            return []
        return [
            error_details_pb2.ResourceInfo(
                resource_type=self.resource_type, resource_name=self.resource_name
            )
        ]


class AlreadyExists(GatewayError):
    """The resource to create exists already."""

    code = grpc.StatusCode.ALREADY_EXISTS
    default_reason = error_reason_pb2.ERROR_REASON_ALREADY_EXISTS


class Unauthenticated(GatewayError):
    """No or an invalid credential."""

    code = grpc.StatusCode.UNAUTHENTICATED
    default_reason = error_reason_pb2.ERROR_REASON_UNAUTHENTICATED


class PermissionDenied(GatewayError):
    """The caller may not do this."""

    code = grpc.StatusCode.PERMISSION_DENIED
    default_reason = error_reason_pb2.ERROR_REASON_PERMISSION_DENIED


class ResourceExhausted(GatewayError):
    """A limit was hit; QuotaFailure says which, RetryInfo says when to come back."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    default_reason = error_reason_pb2.ERROR_REASON_RATE_LIMITED

    def __init__(
        self, message: str, violations: Iterable[QuotaViolation] = (), **kwargs: object
    ) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.violations = list(violations)

    def details(self) -> list[Message]:
        if not self.violations:
            return []
        return [
            error_details_pb2.QuotaFailure(
                violations=[
                    error_details_pb2.QuotaFailure.Violation(
                        subject=v.subject, description=v.description
                    )
                    for v in self.violations
                ]
            )
        ]


class Aborted(GatewayError):
    """A concurrency conflict; retrying the whole operation may succeed."""

    code = grpc.StatusCode.ABORTED


class Cancelled(GatewayError):
    """The caller cancelled."""

    code = grpc.StatusCode.CANCELLED


class DeadlineExceeded(GatewayError):
    """The deadline passed before the operation finished."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED
    default_reason = error_reason_pb2.ERROR_REASON_UPSTREAM_TIMEOUT


class Unavailable(GatewayError):
    """A dependency or upstream is unavailable; retrying later may succeed."""

    code = grpc.StatusCode.UNAVAILABLE
    default_reason = error_reason_pb2.ERROR_REASON_DEPENDENCY_UNAVAILABLE


class Unimplemented(GatewayError):
    """Part of the API that is not built yet. Honest, never a fake success."""

    code = grpc.StatusCode.UNIMPLEMENTED
    default_reason = error_reason_pb2.ERROR_REASON_NOT_IMPLEMENTED


class Internal(GatewayError):
    """A bug or broken invariant on our side. Never for a caller's mistake."""

    code = grpc.StatusCode.INTERNAL

    @classmethod
    def for_request(cls, request_id: str) -> Internal:
        """What the caller sees of an unexpected failure: only where to look it up."""
        return cls(f"internal error (request id {request_id})")


def as_gateway_error(error: BaseException, request_id: str) -> GatewayError:
    """The error to report for any exception: itself, or an opaque INTERNAL."""
    return error if isinstance(error, GatewayError) else Internal.for_request(request_id)


class RemoteError(GatewayError):
    """A status received from another service, re-raised unchanged to our caller.

    Keeps the original code, message and every detail, so an upstream's field
    violations or RetryInfo reach the client as they were produced.
    """

    def __init__(self, status: status_pb2.Status) -> None:
        super().__init__(status.message)
        self.status = status
        self.code = code_from_int(status.code)
        info = find_detail(status, error_details_pb2.ErrorInfo)
        self.reason_text = info.reason if info else ""
        self.metadata = dict(info.metadata) if info else {}
        retry = find_detail(status, error_details_pb2.RetryInfo)
        if retry is not None:
            self.retry_after = retry.retry_delay.ToTimedelta().total_seconds()

    def to_status(self) -> status_pb2.Status:
        return bounded_status(self.status)

    @classmethod
    def from_rpc_error(cls, error: grpc.aio.AioRpcError) -> RemoteError:
        """Rebuild the full status (details included) from a failed call."""
        status = status_pb2.Status(code=error.code().value[0], message=error.details() or "")
        for key, value in error.trailing_metadata() or ():
            if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
                status = status_pb2.Status.FromString(value)
                break
        return cls(status)


def code_from_int(value: int) -> grpc.StatusCode:
    """The status code numbered `value` in google.rpc (UNKNOWN for a number it lacks)."""
    for code in grpc.StatusCode:
        if code.value[0] == value:
            return code
    return grpc.StatusCode.UNKNOWN


def find_detail(status: status_pb2.Status, kind: type[_M]) -> _M | None:
    """The first detail of the given type in a status, unpacked."""
    for packed in status.details:
        if packed.Is(kind.DESCRIPTOR):
            detail = kind()
            packed.Unpack(detail)
            return detail
    return None
