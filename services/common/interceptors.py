"""The one server interceptor: request id, authentication, access log, metrics, and error
mapping.

Calls of public services pass the `Gate` (API key, client address, service ACL) before
their handler runs, when the service was given one; the admitted caller is in
`services.common.caller` for the handler and for the calls it makes. Every handler's
exceptions end here. A `GatewayError` becomes its `google.rpc.Status`
with details; anything else is a bug on our side and becomes INTERNAL with a generic
message naming the request id (the traceback goes to the log, never to the caller).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpc_status import rpc_status

from services.common import context
from services.common.caller import Caller, reset_caller, set_caller
from services.common.errors import GatewayError, as_gateway_error
from services.common.identity.gate import Gate, service_of
from services.common.metrics import RPC_IN_FLIGHT, RPC_LATENCY, RPC_REQUESTS

log = logging.getLogger("llmgw.rpc")

UnaryBehavior = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
StreamBehavior = Callable[[Any, grpc.aio.ServicerContext], AsyncIterator[Any]]

# Health checks and reflection are called constantly by Envoy and tools; they are
# not part of the API's traffic and stay out of the access log and RPC metrics.
_UNOBSERVED_PREFIXES = ("/grpc.health.", "/grpc.reflection.")


def _request_id(ctx: grpc.aio.ServicerContext) -> str:
    for key, value in ctx.invocation_metadata() or ():
        if key == context.REQUEST_ID_HEADER and isinstance(value, str) and value:
            return value[:128]
    return context.new_request_id()


class _MethodStats:
    """One method's metric children, looked up once instead of on every call."""

    __slots__ = ("_by_code", "_requests", "_service", "in_flight", "latency", "method")

    def __init__(self, service: str, method: str) -> None:
        self._service = service
        self.method = method
        self.in_flight = RPC_IN_FLIGHT.labels(service, method)
        self.latency = RPC_LATENCY.labels(service, method)
        self._by_code: dict[grpc.StatusCode, Any] = {}

    def finished(self, code: grpc.StatusCode) -> Any:
        counter = self._by_code.get(code)
        if counter is None:
            counter = self._by_code[code] = RPC_REQUESTS.labels(
                self._service, self.method, code.name
            )
        return counter


class _Observation:
    """Bookkeeping of one RPC: contextvars, in-flight gauge, final code, access log."""

    __slots__ = ("_access_log", "_start", "_stats", "_tokens", "code")

    def __init__(self, stats: _MethodStats, access_log: bool) -> None:
        self._stats = stats
        self._access_log = access_log
        self.code = grpc.StatusCode.OK
        self._start = 0.0
        self._tokens: tuple[Any, Any, Any] | None = None

    def begin(self, ctx: grpc.aio.ServicerContext) -> None:
        self._tokens = (
            context.request_id.set(_request_id(ctx)),
            context.rpc_method.set(self._stats.method),
            context.log_fields.set(None),
        )
        self._stats.in_flight.inc()
        self._start = time.perf_counter()

    def end(self) -> None:
        elapsed = time.perf_counter() - self._start
        self._stats.in_flight.dec()
        self._stats.latency.observe(elapsed)
        self._stats.finished(self.code).inc()
        if self._access_log:
            level = logging.INFO if self.code is grpc.StatusCode.OK else logging.WARNING
            extra = {
                "method": self._stats.method,
                "code": self.code.name,
                "duration_ms": round(elapsed * 1000, 3),
            }
            fields = context.log_fields.get()
            if fields:
                extra.update(fields)
            log.log(level, "rpc finished", extra=extra)
        if self._tokens is not None:
            context.request_id.reset(self._tokens[0])
            context.rpc_method.reset(self._tokens[1])
            context.log_fields.reset(self._tokens[2])

    async def fail(self, ctx: grpc.aio.ServicerContext, error: BaseException) -> None:
        """Abort the RPC with the status for `error` (raises, as abort does)."""
        if not isinstance(error, GatewayError):
            log.error(
                "unhandled error in %s",
                self._stats.method,
                exc_info=(type(error), error, error.__traceback__),
            )
        reported = as_gateway_error(error, context.request_id.get())
        self.code = reported.code
        status = rpc_status.to_status(reported.to_status())
        await ctx.abort(
            status.code,
            status.details,
            tuple(status.trailing_metadata) + reported.trailers,
        )


class ServerInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every unary and server-streaming handler of the server.

    grpc.aio asks the interceptor on every call; the wrapped handler of a method is built
    on its first call and reused (a server's methods never change once it started).
    """

    def __init__(self, service: str, access_log: bool = True, gate: Gate | None = None) -> None:
        self._service = service
        self._access_log = access_log
        self._gate = gate
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method_path: str = handler_call_details.method
        wrapped = self._wrapped.get(method_path)
        if wrapped is not None:
            return wrapped
        handler = await continuation(handler_call_details)
        if handler is None or method_path.startswith(_UNOBSERVED_PREFIXES):
            return handler
        stats = _MethodStats(self._service, method_path.rsplit("/", 1)[-1])
        acl_service = service_of(method_path) if self._gate is not None else None
        if handler.unary_unary is not None:
            wrapped = handler._replace(
                unary_unary=self._unary(handler.unary_unary, stats, acl_service)
            )
        elif handler.unary_stream is not None:
            wrapped = handler._replace(
                unary_stream=self._stream(handler.unary_stream, stats, acl_service)
            )
        else:
            return handler
        self._wrapped[method_path] = wrapped
        return wrapped

    async def _admit(
        self, acl_service: str | None, ctx: grpc.aio.ServicerContext
    ) -> contextvars.Token[Caller] | None:
        if acl_service is None or self._gate is None:
            return None
        caller = await self._gate.admit(acl_service, ctx.invocation_metadata() or (), ctx.peer())
        principal = caller.principal
        if principal is not None:
            context.annotate(consumer=principal.name)
        return set_caller(caller)

    def _unary(
        self, behavior: UnaryBehavior, stats: _MethodStats, acl_service: str | None
    ) -> UnaryBehavior:
        async def handle(request: Any, ctx: grpc.aio.ServicerContext) -> Any:
            obs = _Observation(stats, self._access_log)
            obs.begin(ctx)
            admitted = None
            try:
                admitted = await self._admit(acl_service, ctx)
                return await behavior(request, ctx)
            except asyncio.CancelledError:
                obs.code = grpc.StatusCode.CANCELLED
                raise
            except grpc.aio.AbortError:
                obs.code = ctx.code() or grpc.StatusCode.UNKNOWN
                raise
            except Exception as error:
                await obs.fail(ctx, error)
            finally:
                if admitted is not None:
                    reset_caller(admitted)
                obs.end()

        return handle

    def _stream(
        self, behavior: StreamBehavior, stats: _MethodStats, acl_service: str | None
    ) -> StreamBehavior:
        async def handle(request: Any, ctx: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            obs = _Observation(stats, self._access_log)
            obs.begin(ctx)
            admitted = None
            try:
                admitted = await self._admit(acl_service, ctx)
                async for response in behavior(request, ctx):
                    yield response
            except asyncio.CancelledError:
                obs.code = grpc.StatusCode.CANCELLED
                raise
            except grpc.aio.AbortError:
                obs.code = ctx.code() or grpc.StatusCode.UNKNOWN
                raise
            except Exception as error:
                await obs.fail(ctx, error)
            finally:
                if admitted is not None:
                    reset_caller(admitted)
                obs.end()

        return handle
