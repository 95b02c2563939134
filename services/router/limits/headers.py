"""The remaining quota as response headers (REST) and metadata (gRPC).

Names and value formats follow OpenAI's: `x-ratelimit-limit-requests: 100`,
`x-ratelimit-remaining-requests: 99`, `x-ratelimit-reset-requests: 1m30s`, and the same
with `-tokens`. Each unit reports its most restrictive limit (the one with the least
remaining); a unit no limit counts is left out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from services.common.rate_limits import UNITS, QuotaStatus, Unit


def format_reset(seconds: float) -> str:
    """Seconds as a Go-style duration (`0s`, `12s`, `1m30s`, `1h0m5s`), rounded up to a
    whole second so that a caller waiting that long finds the window reset."""
    total = max(0, math.ceil(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def quota_headers(quota: Mapping[Unit, QuotaStatus]) -> dict[str, str]:
    """`x-ratelimit-*` headers for the units in `quota`, requests first."""
    headers: dict[str, str] = {}
    for unit in UNITS:
        status = quota.get(unit)
        if status is None:
            continue
        headers[f"x-ratelimit-limit-{unit}"] = str(status.limit)
        headers[f"x-ratelimit-remaining-{unit}"] = str(status.remaining)
        headers[f"x-ratelimit-reset-{unit}"] = format_reset(status.reset_seconds)
    return headers


def quota_metadata(quota: Mapping[Unit, QuotaStatus]) -> tuple[tuple[str, str], ...]:
    """The same pairs as gRPC metadata (initial metadata on success, trailing metadata
    on a refusal)."""
    return tuple(quota_headers(quota).items())
