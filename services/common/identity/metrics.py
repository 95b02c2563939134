"""Metrics of API key checks."""

from __future__ import annotations

from prometheus_client import Counter

AUTH_FAILURES = Counter(
    "llmgw_auth_failures_total",
    "API keys refused, by reason (malformed, unknown, wrong_secret, expired, revoked, "
    "disabled, unavailable).",
    ["reason"],
)
