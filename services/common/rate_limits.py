"""What a rate limit is, where it is counted, and what a caller has left.

Windows are fixed and aligned to the epoch (UTC): the minute window of time `t` is
`floor(t / 60)`, the day window `floor(t / 86400)`. A fixed window counts exactly (the
limit is a plain counter per window), costs one Redis key per limit and window, and
resets for everyone at the same instant. Its known property: a caller may spend a full
window's quota just before a boundary and a full one just after, so up to twice the
limit can pass within one window's length across a boundary (never more than the limit
inside one aligned window). A sliding log would remove that, at one stored entry per
request.

Budgets are limits too: unit `cost` (nano-units of currency, the usage recorder's unit)
per `day` or per calendar `month` (UTC), reserved and settled like tokens.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Literal

Scope = Literal["consumer", "group", "deployment"]
Unit = Literal["requests", "tokens", "cost"]
Window = Literal["minute", "hour", "day", "month"]

# Fixed windows; a month is a calendar month (its key expires after 31 days).
WINDOW_SECONDS: dict[Window, int] = {
    "minute": 60,
    "hour": 3600,
    "day": 86400,
    "month": 31 * 86400,
}
# Units reported in `x-ratelimit-*` headers (budgets are reported by GetUsage).
UNITS: tuple[Unit, ...] = ("requests", "tokens")
NANOS_PER_UNIT = 1_000_000_000
KEY_PREFIX = "llmgw:rl"

# Subjects name what is limited, as in QuotaFailure: `consumers/alice`.
_SUBJECT_COLLECTION: dict[Scope, str] = {
    "consumer": "consumers",
    "group": "groups",
    "deployment": "deployments",
}


def subject(scope: Scope, name: str) -> str:
    """The subject of `name` in `scope`: `subject("consumer", "alice") == "consumers/alice"`."""
    return f"{_SUBJECT_COLLECTION[scope]}/{name}"


@dataclass(frozen=True)
class Limit:
    """At most `limit` units per window for one subject."""

    scope: Scope
    subject: str
    unit: Unit
    window: Window
    limit: int
    # A count from which the subject is warned (budgets' soft threshold); None: never.
    soft: int | None = None

    def __post_init__(self) -> None:
        if self.limit <= 0:
            raise ValueError(f"a limit must be positive, got {self.limit} for {self.subject}")

    @property
    def window_seconds(self) -> int:
        return WINDOW_SECONDS[self.window]

    @property
    def counter(self) -> str:
        """What is counted, whatever the limit's size: two limits with the same counter
        share one Redis key per window."""
        return f"{self.scope}:{self.subject}:{self.unit}:{self.window}"

    def describe(self) -> str:
        """The limit as a caller reads it: `100 requests per minute`, `budget of 5 per
        day`."""
        if self.unit == "cost":
            return f"budget of {self.limit / NANOS_PER_UNIT:g} per {self.window}"
        return f"{self.limit} {self.unit} per {self.window}"

    def window_index(self, now: float) -> int:
        if self.window == "month":
            day = dt.datetime.fromtimestamp(now, dt.UTC)
            return day.year * 12 + day.month - 1
        return math.floor(now / self.window_seconds)

    def key(self, now: float) -> str:
        """The Redis key counting this limit in the window that contains `now`."""
        return f"{KEY_PREFIX}:{self.counter}:{self.window_index(now)}"

    def reset_after(self, now: float) -> float:
        """Seconds from `now` until the window containing `now` ends."""
        if self.window == "month":
            year, month = divmod(self.window_index(now) + 1, 12)
            start = dt.datetime(year, month + 1, 1, tzinfo=dt.UTC)
            return start.timestamp() - now
        return (self.window_index(now) + 1) * self.window_seconds - now


@dataclass(frozen=True)
class QuotaStatus:
    """One unit's most restrictive limit (least remaining) after a decision."""

    limit: int
    remaining: int
    reset_seconds: float


@dataclass(frozen=True)
class Refusal:
    """One limit without room for the request, and when its window starts afresh."""

    limit: Limit
    used: int
    reset_seconds: float
