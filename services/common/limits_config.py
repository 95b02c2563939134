"""The `rate_limits:` section of the configuration file: per-consumer and per-group
request and token limits (per-deployment limits sit on each deployment entry)."""

from __future__ import annotations

from pydantic import Field, PositiveInt

from services.common.config_base import Strict
from services.common.rate_limits import Limit, Scope, Unit, Window
from services.common.rate_limits import subject as subject_of


class RateLimitConfig(Strict):
    """Limits of one subject; an unset field is no limit."""

    requests_per_minute: PositiveInt | None = None
    requests_per_hour: PositiveInt | None = None
    requests_per_day: PositiveInt | None = None
    # Prompt plus completion tokens.
    tokens_per_minute: PositiveInt | None = None
    tokens_per_hour: PositiveInt | None = None
    tokens_per_day: PositiveInt | None = None

    def limits(self, scope: Scope, subject: str) -> list[Limit]:
        """Every set field as a Limit on `subject` (e.g. `consumers/alice`)."""
        found: list[Limit] = []
        units: tuple[Unit, ...] = ("requests", "tokens")
        windows: tuple[Window, ...] = ("minute", "hour", "day")
        for unit in units:
            for window in windows:
                size = getattr(self, f"{unit}_per_{window}")
                if size is not None:
                    found.append(Limit(scope, subject, unit, window, size))
        return found


class RateLimitsConfig(Strict):
    """Who is limited, and what happens when the limits cannot be checked."""

    # True: admit requests uncounted while Redis is unreachable; False: refuse them
    # with UNAVAILABLE, so limits are never silently off.
    fail_open: bool = False
    # Seconds between two readings of every budget's remaining amount into the
    # llmgw_budget_remaining / llmgw_budget_limit gauges (router); 0 turns them off.
    budget_gauge_interval_seconds: float = Field(default=15.0, ge=0)
    # By consumer name and by consumer group name.
    consumers: dict[str, RateLimitConfig] = Field(default_factory=dict)
    groups: dict[str, RateLimitConfig] = Field(default_factory=dict)

    def limits_for(self, consumer: str | None, group: str | None) -> list[Limit]:
        """The consumer's and its group's limits (none for an unknown name)."""
        found: list[Limit] = []
        if consumer is not None and (own := self.consumers.get(consumer)) is not None:
            found += own.limits("consumer", subject_of("consumer", consumer))
        if group is not None and (shared := self.groups.get(group)) is not None:
            found += shared.limits("group", subject_of("group", group))
        return found
