"""The gateway's internal proofs, for tests that call a service directly.

A service answers only calls that came through Envoy's public listener (the edge token)
or that another gateway service vouched for (a principal assertion). Tests that talk to a
service without Envoy in front present the one or the other, made from the same internal
secret the service was given.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from services.common import context
from services.common.identity.assertion import (
    ASSERTION_HEADER,
    EDGE_TOKEN_HEADER,
    InternalKeys,
    edge_token,
)

# The internal secret of services built in a test's own process.
TEST_INTERNAL_SECRET = "test-internal-secret-0123456789abcdef"

Metadata = tuple[tuple[str, str], ...]


def edge_metadata(secret: str = TEST_INTERNAL_SECRET) -> Metadata:
    """What Envoy's public listener adds to every request it forwards."""
    return ((EDGE_TOKEN_HEADER, edge_token(secret)),)


def vouched_metadata(
    secret: str = TEST_INTERNAL_SECRET,
    *,
    consumer: str = "",
    key_name: str = "",
    address: str = "",
    issuer: str = "test",
) -> Metadata:
    """A request id and a principal assertion for it, as a gateway service sends them."""
    rid = context.new_request_id()
    token = InternalKeys(secret, issuer).mint(
        consumer=consumer, key_name=key_name, address=address, request_id=rid, timeout=30
    )
    return ((context.REQUEST_ID_HEADER, rid), (ASSERTION_HEADER, token))


class _AddMetadata:
    """Adds fresh metadata from `make` to every call (grpc.aio files an interceptor under
    one call kind only, hence one subclass per kind)."""

    def __init__(self, make: Callable[[], Metadata]) -> None:
        self._make = make

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()), *self._make())
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )


class _UnaryUnary(_AddMetadata, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _UnaryStream(_AddMetadata, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _StreamUnary(_AddMetadata, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(self._details(details), requests)


class _StreamStream(_AddMetadata, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(self._details(details), requests)


def _adding(make: Callable[[], Metadata]) -> list[Any]:
    return [kind(make) for kind in (_UnaryUnary, _UnaryStream, _StreamUnary, _StreamStream)]


def edge_channel(target: str, secret: str = TEST_INTERNAL_SECRET) -> grpc.aio.Channel:
    """A channel whose calls look as if Envoy's public listener forwarded them."""
    return grpc.aio.insecure_channel(target, interceptors=_adding(lambda: edge_metadata(secret)))


def vouched_channel(
    target: str, secret: str = TEST_INTERNAL_SECRET, *, consumer: str = "", key_name: str = ""
) -> grpc.aio.Channel:
    """A channel whose calls another gateway service vouched for (as `consumer`)."""
    return grpc.aio.insecure_channel(
        target,
        interceptors=_adding(
            lambda: vouched_metadata(secret, consumer=consumer, key_name=key_name)
        ),
    )


def with_metadata(target: str, metadata: Metadata) -> grpc.aio.Channel:
    """A channel that adds `metadata` (an admin key, an edge token) to every call."""
    return grpc.aio.insecure_channel(target, interceptors=_adding(lambda: metadata))
