"""Failures of calls to our own services, as the errors we report to our caller.

A status carrying our ErrorInfo was produced by the other service on purpose (its caller
made a mistake, or its upstream failed): it is passed on unchanged, details included. A
status without one comes from the transport or Envoy (no healthy replica, a connection
reset) and is reported as our dependency being unavailable — never blamed on the caller.
"""

from __future__ import annotations

import grpc

from llmgw.common.v1 import error_reason_pb2
from services.common.errors import DeadlineExceeded, GatewayError, RemoteError, Unavailable


def translate_rpc_error(error: grpc.aio.AioRpcError, service: str) -> GatewayError:
    remote = RemoteError.from_rpc_error(error)
    if remote.reason_text:
        return remote
    if error.code() is grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceeded(f"the deadline passed before the {service} service answered")
    return Unavailable(
        f"{service} service unavailable: {error.details() or error.code().name}",
        reason=error_reason_pb2.ERROR_REASON_DEPENDENCY_UNAVAILABLE,
    )
