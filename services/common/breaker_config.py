"""When a circuit breaker opens and how it recovers: the settings every breaker reads
(the router's shared ones and the tool service's per-replica ones), so the two
configuration sections cannot drift apart."""

from __future__ import annotations

from pydantic import Field

from services.common.config_base import Strict


class BreakerSettings(Strict):
    enabled: bool = True
    # Opens after this many failures in a row...
    consecutive_failures: int = Field(default=5, ge=1)
    # ...or when at least `min_requests` calls in `window_seconds` failed at this rate.
    failure_rate: float = Field(default=0.5, gt=0, le=1)
    min_requests: int = Field(default=20, ge=1)
    window_seconds: float = Field(default=30.0, gt=0)
    # Seconds an open breaker short-circuits before it lets one probe call through.
    open_seconds: float = Field(default=30.0, gt=0)
    # Seconds a probe may hold the half-open breaker before another caller may probe.
    probe_timeout: float = Field(default=30.0, gt=0)
