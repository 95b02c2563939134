"""Rate limit metrics: refusals per limit kind, and Redis failures of the limiter."""

from __future__ import annotations

from prometheus_client import Counter

from services.common.rate_limits import Limit

REJECTIONS = Counter(
    "llmgw_rate_limit_rejections_total",
    "Limits that refused a request, by scope (consumer, group, deployment), unit "
    "(requests, tokens, cost) and window (minute, hour, day, month); a request refused "
    "by two limits counts once for each.",
    ["scope", "unit", "window"],
)
ERRORS = Counter(
    "llmgw_rate_limit_errors_total",
    "Limiter operations that could not reach Redis (acquire: the request was refused "
    "with UNAVAILABLE, or allowed uncounted when fail_open is set; settle: the token "
    "correction was dropped).",
    ["operation"],
)


SOFT_CROSSINGS = Counter(
    "llmgw_budget_soft_threshold_crossed_total",
    "Requests that took a budget past its soft threshold, by scope (consumer, group) and "
    "window (day, month); each crossing is also logged with the subject.",
    ["scope", "window"],
)


def crossed(limit: Limit) -> None:
    SOFT_CROSSINGS.labels(limit.scope, limit.window).inc()


def rejected(limit: Limit) -> None:
    REJECTIONS.labels(limit.scope, limit.unit, limit.window).inc()


def failed(operation: str) -> None:
    ERRORS.labels(operation).inc()
