"""Prometheus metrics of the tool service (RPC counts and latencies are shared ones)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from services.common.breaker_machine import BreakerState

EXECUTIONS = Counter(
    "llmgw_tool_executions_total",
    "Tool executions (batch calls included) by final gRPC status code; tool is "
    "'(unknown)' for names that are not registered.",
    ["tool", "code"],
)
EXECUTION_SECONDS = Histogram(
    "llmgw_tool_execution_seconds",
    "Wall time of a tool execution, retries and backoff included.",
    ["tool"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
BREAKER_STATE = Gauge(
    "llmgw_tool_breaker_state",
    "Circuit breaker of a downstream host:port on this replica: 0 closed, 1 open, 2 half-open.",
    ["downstream"],
)

UNKNOWN_TOOL = "(unknown)"
_GAUGE_VALUE = {BreakerState.CLOSED: 0, BreakerState.OPEN: 1, BreakerState.HALF_OPEN: 2}


def observe_breaker(downstream: str, state: BreakerState) -> None:
    BREAKER_STATE.labels(downstream).set(_GAUGE_VALUE[state])


def observe_execution(tool: str, code: str, seconds: float | None) -> None:
    EXECUTIONS.labels(tool, code).inc()
    if seconds is not None:
        EXECUTION_SECONDS.labels(tool).observe(seconds)
