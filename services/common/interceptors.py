"""The one server interceptor: request id, authentication, access log, metrics, request
decoding and error mapping.

Every method of every kind (unary or streaming, either way) is wrapped, so no handler
runs before its call passed the `Gate` (when the service was given one); health checks
and reflection are only protected against undecodable requests. The admitted caller is in
`services.common.caller` for the handler and for the calls it makes.

A request that does not decode as its method's message (invalid UTF-8 in a string field,
a truncated or corrupt body) never reaches the handler: it is INVALID_ARGUMENT, with one
debug line and no traceback. Every handler's exceptions end here. A `GatewayError`
becomes its `google.rpc.Status` with details; anything else is a bug on our side and
becomes INTERNAL with a generic message naming the request id (the traceback goes to the
log, never to the caller).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from grpc_status import rpc_status

from services.common import context, tracing
from services.common.caller import Caller, reset_caller, set_caller
from services.common.errors import GatewayError, InvalidArgument, as_gateway_error
from services.common.identity.gate import Gate, service_of
from services.common.metrics import RPC_IN_FLIGHT, RPC_LATENCY, RPC_REQUESTS
from services.common.request_decoding import Undecodable, too_deep, undecodable

log = logging.getLogger("llmgw.rpc")

UnaryBehavior = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
StreamBehavior = Callable[[Any, grpc.aio.ServicerContext], AsyncIterator[Any]]
Deserializer = Callable[[bytes], Any]

# Health checks and reflection are called constantly by Envoy and tools; they are
# not part of the API's traffic and stay out of the access log and RPC metrics.
_UNOBSERVED_PREFIXES = ("/grpc.health.", "/grpc.reflection.")

UNDECODABLE_MESSAGE = "the request body could not be decoded"
# The longest any RPC may run (seconds) when the service's settings name no other.
DEFAULT_DEADLINE_CEILING = 600.0


def _tolerant(deserializer: Deserializer | None) -> Deserializer | None:
    """`deserializer`, answering an `Undecodable` instead of raising on a corrupt message
    (grpc would log a traceback per call and answer INTERNAL/UNKNOWN)."""
    if deserializer is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except DecodeError:
            return undecodable(data, deserializer)

    return parse


def _decoded(request: Any, method: str) -> Any:
    """`request`, or INVALID_ARGUMENT when it did not decode (naming the field when it
    held JSON nested too deep)."""
    if isinstance(request, Undecodable):
        log.debug("request body could not be decoded", extra={"method": method})
        if request.field is not None:
            raise too_deep(request)
        raise InvalidArgument(UNDECODABLE_MESSAGE)
    return request


def _released(aborted: grpc.aio.AbortError) -> grpc.aio.AbortError:
    """`aborted` without its traceback and context. grpc.aio keeps the AbortError of an
    aborted call on the call's state; its traceback holds the handler's and this
    interceptor's frames, whose locals hold the servicer context (which holds that
    state: a cycle) and the request, so only a full garbage collection would free them,
    and a quiet service runs one rarely: a refused 100,000-message chat kept its 40 MB
    request, and a few dozen grew a provider by gigabytes. The status is sent already;
    the log has what was logged."""
    aborted.__context__ = None
    aborted.__cause__ = None
    return aborted.with_traceback(None)


async def _decoded_stream(requests: AsyncIterator[Any], method: str) -> AsyncIterator[Any]:
    async for request in requests:
        yield _decoded(request, method)


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
    """Bookkeeping of one RPC: contextvars, in-flight gauge, final code, access log, and
    its server span when tracing is on (current for the handler and the access log line)."""

    __slots__ = ("_access_log", "_ceiling", "_path", "_span", "_start", "_stats", "_tokens", "code")

    def __init__(self, stats: _MethodStats, access_log: bool, ceiling: float, path: str) -> None:
        self._stats = stats
        self._access_log = access_log
        self._ceiling = ceiling
        self._path = path
        self.code = grpc.StatusCode.OK
        self._start = 0.0
        self._tokens: tuple[Any, Any, Any, Any] | None = None
        self._span: tracing.ServerSpan | None = None

    def begin(self, ctx: grpc.aio.ServicerContext) -> None:
        remaining = ctx.time_remaining()
        allowed = self._ceiling if remaining is None else min(remaining, self._ceiling)
        rid = _request_id(ctx)
        if tracing.enabled():
            self._span = tracing.start_server_span(self._path, ctx.invocation_metadata() or (), rid)
        self._tokens = (
            context.request_id.set(rid),
            context.rpc_method.set(self._stats.method),
            context.log_fields.set(None),
            context.deadline.set(
                context.Deadline(time.monotonic() + allowed, ceiling_only=remaining is None)
            ),
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
        if self._span is not None:
            self._span.end(self.code)
        if self._tokens is not None:
            context.request_id.reset(self._tokens[0])
            context.rpc_method.reset(self._tokens[1])
            context.log_fields.reset(self._tokens[2])
            context.deadline.reset(self._tokens[3])

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
    """Wraps every handler of the server, whatever its kind.

    grpc.aio asks the interceptor on every call; the wrapped handler of a method is built
    on its first call and reused (a server's methods never change once it started).
    """

    def __init__(
        self,
        service: str,
        access_log: bool = True,
        gate: Gate | None = None,
        deadline_ceiling: float = DEFAULT_DEADLINE_CEILING,
    ) -> None:
        self._service = service
        self._access_log = access_log
        self._gate = gate
        self._ceiling = deadline_ceiling
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
        if handler is None:
            return handler
        if method_path.startswith(_UNOBSERVED_PREFIXES):
            wrapped = _decoding_only(handler, method_path)
        else:
            wrapped = self._wrap(handler, method_path)
        self._wrapped[method_path] = wrapped
        return wrapped

    def _wrap(self, handler: grpc.RpcMethodHandler, method_path: str) -> grpc.RpcMethodHandler:
        method = method_path.rsplit("/", 1)[-1]
        call = _Call(
            self._gate,
            service_of(method_path) if self._gate is not None else None,
            _MethodStats(self._service, method),
            self._access_log,
            self._ceiling,
            path=method_path,
        )
        deserializer = _tolerant(handler.request_deserializer)
        if handler.unary_unary is not None:
            return handler._replace(
                unary_unary=call.unary(handler.unary_unary, False),
                request_deserializer=deserializer,
            )
        if handler.unary_stream is not None:
            return handler._replace(
                unary_stream=call.stream(handler.unary_stream, False),
                request_deserializer=deserializer,
            )
        if handler.stream_unary is not None:
            return handler._replace(
                stream_unary=call.unary(handler.stream_unary, True),
                request_deserializer=deserializer,
            )
        if handler.stream_stream is not None:
            return handler._replace(
                stream_stream=call.stream(handler.stream_stream, True),
                request_deserializer=deserializer,
            )
        # A handler of no kind grpc knows: nothing of it may run.
        raise RuntimeError(f"{method_path}: a method handler of an unknown kind")


class _Call:
    """What every call of one method goes through: observation, admission, decoding and
    error mapping, around its behaviour of either kind."""

    __slots__ = ("_access_log", "_acl_service", "_ceiling", "_gate", "_path", "_stats")

    def __init__(
        self,
        gate: Gate | None,
        acl_service: str | None,
        stats: _MethodStats,
        access_log: bool,
        ceiling: float,
        *,
        path: str,
    ) -> None:
        self._path = path
        self._gate = gate
        self._acl_service = acl_service
        self._stats = stats
        self._access_log = access_log
        self._ceiling = ceiling

    async def _admit(self, ctx: grpc.aio.ServicerContext) -> contextvars.Token[Caller] | None:
        if self._acl_service is None or self._gate is None:
            return None
        caller = await self._gate.admit(
            self._acl_service, ctx.invocation_metadata() or (), ctx.peer()
        )
        if caller.consumer:
            context.annotate(consumer=caller.consumer)
        return set_caller(caller)

    def _request(self, request: Any, streaming: bool) -> Any:
        """The request the behaviour gets: checked now, or message by message."""
        if streaming:
            return _decoded_stream(request, self._stats.method)
        return _decoded(request, self._stats.method)

    def unary(self, behavior: UnaryBehavior, streaming: bool) -> UnaryBehavior:
        async def handle(request: Any, ctx: grpc.aio.ServicerContext) -> Any:
            try:
                return await observed(request, ctx)
            except grpc.aio.AbortError as aborted:
                # This frame is in the re-raised traceback: it must not hold them either.
                del request, ctx
                raise _released(aborted) from None

        async def observed(request: Any, ctx: grpc.aio.ServicerContext) -> Any:
            obs = _Observation(self._stats, self._access_log, self._ceiling, self._path)
            obs.begin(ctx)
            admitted = None
            try:
                admitted = await self._admit(ctx)
                return await behavior(self._request(request, streaming), ctx)
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

    def stream(self, behavior: StreamBehavior, streaming: bool) -> StreamBehavior:
        async def handle(request: Any, ctx: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            try:
                async with contextlib.aclosing(observed(request, ctx)) as responses:
                    async for response in responses:
                        yield response
            except grpc.aio.AbortError as aborted:
                del request, ctx
                raise _released(aborted) from None

        async def observed(
            request: Any, ctx: grpc.aio.ServicerContext
        ) -> AsyncGenerator[Any, None]:
            obs = _Observation(self._stats, self._access_log, self._ceiling, self._path)
            obs.begin(ctx)
            admitted = None
            try:
                admitted = await self._admit(ctx)
                async for response in behavior(self._request(request, streaming), ctx):
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


async def _refuse_undecodable(ctx: grpc.aio.ServicerContext) -> None:
    await ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, UNDECODABLE_MESSAGE)


def _decoding_only(handler: grpc.RpcMethodHandler, method_path: str) -> grpc.RpcMethodHandler:
    """Health checks and reflection: unobserved and ungated, but a request that does not
    decode is INVALID_ARGUMENT there too."""
    deserializer = _tolerant(handler.request_deserializer)
    if handler.unary_unary is not None:
        unary = handler.unary_unary

        async def unary_unary(request: Any, ctx: grpc.aio.ServicerContext) -> Any:
            if isinstance(request, Undecodable):
                await _refuse_undecodable(ctx)
            return await unary(request, ctx)

        return handler._replace(unary_unary=unary_unary, request_deserializer=deserializer)
    if handler.unary_stream is not None:
        stream = handler.unary_stream

        async def unary_stream(request: Any, ctx: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            if isinstance(request, Undecodable):
                await _refuse_undecodable(ctx)
            async for response in stream(request, ctx):
                yield response

        return handler._replace(unary_stream=unary_stream, request_deserializer=deserializer)
    if handler.stream_stream is not None:
        bidi = handler.stream_stream

        async def checked(requests: AsyncIterator[Any], ctx: grpc.aio.ServicerContext) -> Any:
            async for request in requests:
                if isinstance(request, Undecodable):
                    await _refuse_undecodable(ctx)
                yield request

        async def stream_stream(
            requests: AsyncIterator[Any], ctx: grpc.aio.ServicerContext
        ) -> AsyncIterator[Any]:
            async for response in bidi(checked(requests, ctx), ctx):
                yield response

        return handler._replace(stream_stream=stream_stream, request_deserializer=deserializer)
    # Health and reflection have no client-streaming methods: left exactly as they are.
    return handler
