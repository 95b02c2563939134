"""Client channels for service-to-service calls, always through Envoy's internal listener.

One channel per target per process (HTTP/2 multiplexes every call over it). Calls carry
the current request id, the caller's credentials and its remaining deadline.
"""

from __future__ import annotations

import grpc

from services.common import context
from services.common.caller import forwarded_metadata

CHANNEL_OPTIONS: list[tuple[str, object]] = [
    ("grpc.max_receive_message_length", 32 * 1024 * 1024),
    ("grpc.max_send_message_length", 32 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
    # Envoy answers for every replica; a dead connection is re-established at once.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2_000),
]


def internal_channel(target: str) -> grpc.aio.Channel:
    """A channel to Envoy's internal listener (`host:port`)."""
    return grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)


def call_metadata() -> tuple[tuple[str, str], ...]:
    """Metadata for a downstream call made while serving a request: its request id, and
    the caller's key and client address (the called service authenticates the caller
    itself)."""
    rid = context.request_id.get()
    own = ((context.REQUEST_ID_HEADER, rid),) if rid else ()
    return own + forwarded_metadata()


def remaining_timeout(ctx: grpc.aio.ServicerContext, default: float | None = None) -> float | None:
    """The caller's remaining deadline in seconds, to pass on as the downstream timeout.

    None (no deadline) falls back to `default`. A deadline already passed yields a tiny
    positive timeout so the downstream call fails fast with DEADLINE_EXCEEDED.
    """
    remaining = ctx.time_remaining()
    if remaining is None:
        return default
    return max(remaining, 0.001)
