"""The errors the limiter raises: a refusal (RESOURCE_EXHAUSTED) and Redis being
unavailable while limits must be enforced (UNAVAILABLE)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from services.common.errors import QuotaViolation, ResourceExhausted, Unavailable
from services.common.rate_limits import QuotaStatus, Refusal, Unit
from services.router.limits.headers import format_reset, quota_metadata


class RateLimited(ResourceExhausted):
    """A request refused by one or more limits.

    QuotaFailure holds one violation per refusing limit (subject `consumers/alice`,
    description `100 requests per minute`). RetryInfo is the time after which every
    refusing limit has started a new window, the longest of their resets: retrying
    sooner is refused again by at least one of them. `quota` is what the caller has left
    per unit, for the response's `x-ratelimit-*` headers.
    """

    def __init__(self, refusals: Sequence[Refusal], quota: Mapping[Unit, QuotaStatus]) -> None:
        if not refusals:
            raise ValueError("RateLimited needs at least one refusal")
        retry_after = max(r.reset_seconds for r in refusals)
        shown = "; ".join(f"{r.limit.subject}: {r.limit.describe()}" for r in refusals)
        what = "budget" if all(r.limit.unit == "cost" for r in refusals) else "rate limit"
        super().__init__(
            f"{what} exceeded ({shown}); retry in {format_reset(retry_after)}",
            [QuotaViolation(r.limit.subject, r.limit.describe()) for r in refusals],
            retry_after=retry_after,
        )
        self.refusals = list(refusals)
        self.quota = dict(quota)
        # REST clients (the OpenAI SDK among them) wait `retry-after` seconds on a 429.
        self.trailers = (*quota_metadata(quota), ("retry-after", str(math.ceil(retry_after))))


class DeploymentLimited(RateLimited):
    """A deployment's own limit has no room: the router tries the next deployment, and
    only when every one refused is this the request's answer."""


def limits_unavailable() -> Unavailable:
    """Redis cannot be reached and the limiter fails closed: refuse rather than let
    requests through uncounted."""
    return Unavailable("rate limits cannot be checked right now (Redis is unavailable)")
