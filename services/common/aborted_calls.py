"""An aborted call lets go of its request as soon as it ends.

`ServicerContext.abort` raises `AbortError` and grpc.aio keeps that exception on the
call's `RPCState` (`abort_exception`). Its traceback holds the frames it passed
through, the interceptor's and the handler's, whose locals hold the servicer context
(which holds the `RPCState`: a reference cycle) and the request; its `__context__` is
the error being reported, whose traceback holds the same frames again. Only a full
garbage collection frees such a cycle, and a service that allocates few Python objects
per call runs one rarely: the protobuf request (C memory the collector does not count)
stayed in memory after every failed call, 40 MB for a refused 100,000-message chat, so a
few dozen of them grew a provider by gigabytes that never came back.

This interceptor runs outermost: when the call aborts, it drops the exception's
traceback and context (the status was sent already; the log has what was logged) and
its own references to the request and context before passing the exception on, so
nothing the call used outlives it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc


def _released(aborted: grpc.aio.AbortError) -> grpc.aio.AbortError:
    aborted.__context__ = None
    aborted.__cause__ = None
    return aborted.with_traceback(None)


def _unary(behavior: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def handle(request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await behavior(request, context)
        except grpc.aio.AbortError as aborted:
            # This frame is in the re-raised traceback: it must not hold them either.
            del request, context
            raise _released(aborted) from None

    return handle


def _stream(behavior: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
    async def handle(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        try:
            async for response in behavior(request, context):
                yield response
        except grpc.aio.AbortError as aborted:
            del request, context
            raise _released(aborted) from None

    return handle


class AbortReleaseInterceptor(grpc.aio.ServerInterceptor):
    """Wraps unary and server-streaming methods; a method's wrapper is built once."""

    def __init__(self) -> None:
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method: str = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is not None:
            return wrapped
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        if handler.unary_unary is not None:
            wrapped = handler._replace(unary_unary=_unary(handler.unary_unary))
        elif handler.unary_stream is not None:
            wrapped = handler._replace(unary_stream=_stream(handler.unary_stream))
        else:
            return handler
        self._wrapped[method] = wrapped
        return wrapped
