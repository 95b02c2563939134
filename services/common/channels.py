"""Client channels for service-to-service calls, always through Envoy's internal listener.

One channel per target per process (HTTP/2 multiplexes every call over it). Calls carry
the current request id, a principal assertion for the current caller (never its API
key) and the caller's remaining deadline; with tracing on, each call is a client span and
carries its `traceparent` (the instrumentation's interceptors, `tracing.client_interceptors`),
so Envoy's internal listener and the service behind it continue the request's trace.
"""

from __future__ import annotations

import json
import time

import grpc

from services.common import context, tracing
from services.common.caller import current_caller
from services.common.identity.assertion import ASSERTION_HEADER, InternalKeys

CHANNEL_OPTIONS: list[tuple[str, object]] = [
    ("grpc.max_receive_message_length", 32 * 1024 * 1024),
    ("grpc.max_send_message_length", 32 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
    # Envoy answers for every replica; a dead connection is re-established at once.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2_000),
    # Every call waits (within its deadline) for the connection to Envoy instead of
    # failing at once while it is being made: services start before Envoy, and a call
    # made while the channel was backing off from that (up to 2 s) failed "failed to
    # connect to all addresses" although Envoy had come up. A call's deadline still
    # bounds the wait.
    (
        "grpc.service_config",
        json.dumps({"methodConfig": [{"name": [{}], "waitForReady": True}]}),
    ),
]


class InternalChannel:
    """A channel to Envoy's internal listener (`host:port`) and the credentials of the
    calls made on it."""

    def __init__(self, target: str, keys: InternalKeys) -> None:
        # No interceptors while tracing is off: calls take grpc's direct path.
        self.channel = grpc.aio.insecure_channel(
            target, options=CHANNEL_OPTIONS, interceptors=tracing.client_interceptors() or None
        )
        self._keys = keys

    def metadata(self, timeout: float | None) -> tuple[tuple[str, str], ...]:
        """Metadata for one call with `timeout` seconds (None: none): the request id and
        an assertion for the current caller bound to it.

        A call made outside any request (a background health check) gets a fresh request
        id and vouches for no consumer: the service itself is calling.
        """
        rid = context.request_id.get() or context.new_request_id()
        caller = current_caller()
        assertion = self._keys.mint(
            consumer=caller.consumer,
            key_name=caller.key_name,
            address=caller.address,
            request_id=rid,
            timeout=timeout,
        )
        return ((context.REQUEST_ID_HEADER, rid), (ASSERTION_HEADER, assertion))

    async def close(self) -> None:
        await self.channel.close()


def remaining_timeout(ctx: grpc.aio.ServicerContext, default: float | None = None) -> float | None:
    """What is left of the current RPC's deadline in seconds, to pass on as the
    downstream timeout: the caller's deadline clipped to the service's ceiling
    (`context.deadline`, set by the interceptor), so no internal call is ever unbounded.
    A caller that set no deadline gets `default` (within the ceiling), else the ceiling.
    Outside an intercepted RPC: the caller's deadline, else `default`. A deadline
    already passed yields a tiny positive timeout so the downstream call fails fast with
    DEADLINE_EXCEEDED.
    """
    deadline = context.deadline.get()
    if deadline is not None:
        left = max(deadline.at - time.monotonic(), 0.001)
        return min(left, default) if deadline.ceiling_only and default is not None else left
    remaining = ctx.time_remaining()
    if remaining is None:
        return default
    return max(remaining, 0.001)
