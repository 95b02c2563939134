"""Prometheus metrics shared by every service, and the /metrics HTTP endpoint.

Service-specific metrics live with their service; these cover every RPC the same way.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from services.common.settings import PortUnavailable

RPC_REQUESTS = Counter(
    "llmgw_rpc_requests_total",
    "RPCs handled, by final gRPC status code.",
    ["service", "method", "code"],
)
RPC_LATENCY = Histogram(
    "llmgw_rpc_duration_seconds",
    "Time to the final status of an RPC (whole stream for streaming RPCs).",
    ["service", "method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RPC_IN_FLIGHT = Gauge(
    "llmgw_rpc_in_flight",
    "RPCs being handled now (active streams included).",
    ["service", "method"],
)
READY = Gauge(
    "llmgw_ready",
    "1 while every required dependency answers, else 0.",
    ["service"],
)
DEPENDENCY_UP = Gauge(
    "llmgw_dependency_up",
    "Result of the last readiness probe of a dependency (1 up, 0 down).",
    ["service", "dependency"],
)


def start_metrics_server(host: str, port: int) -> int:
    """Serve /metrics in a background thread; returns the bound port (port 0 picks one)."""
    try:
        server, _thread = start_http_server(port, addr=host)
    except OSError as error:
        raise PortUnavailable(
            f"cannot serve metrics on {host}:{port}: {error.strerror or error}"
        ) from None
    return int(server.server_port)
