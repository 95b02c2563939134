"""Routing metrics: every upstream attempt, every skip, and where requests were answered."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

ATTEMPTS = Counter(
    "llmgw_routing_attempts_total",
    "Upstream calls by public model, deployment and outcome (`ok` or the failure reason).",
    ["model", "deployment", "outcome"],
)
SKIPS = Counter(
    "llmgw_routing_skips_total",
    "Deployments passed over without a call: circuit_open, at_capacity, context_window, "
    "retry_after_deadline.",
    ["model", "deployment", "reason"],
)
ROUTES = Counter(
    "llmgw_routing_decisions_total",
    "Answered requests by requested model, answering model and deployment, and route "
    "(primary, retry, fallback, fallback_model).",
    ["requested_model", "model", "deployment", "route"],
)
RETRY_WAIT = Histogram(
    "llmgw_routing_retry_wait_seconds",
    "Backoff waited before calling a deployment again.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
