"""Exact rate limits shared by every router replica, counted in Redis.

`acquire` runs one Lua script over every limit that applies to a request (each scope,
unit and window): only if all of them have room are all of them incremented, requests
by 1, tokens by the request's estimate and budgets (unit `cost`) by its estimated
cost, so a refused request consumes nothing anywhere. Redis runs a script alone, so N
replicas admit exactly the configured limit, not N times it. After the call, `settle`
corrects the reserved tokens and cost to the actual usage in the same window keys
(kept in the `Reservation`, so a window that rolled over meanwhile is still the one
corrected); `release` gives back the tokens and cost of a request that never reached a
provider and keeps its request count: the gateway admitted and handled it, and
refunding failures would let a caller whose calls fail retry without limit.

Windows come from the caller's clock (see model.py): replicas must keep their clocks in
sync (NTP); a replica whose clock is off by d seconds moves its window boundaries by d.
All keys of one request go to one script, so in a Redis Cluster they would need one
hash slot; the gateway uses a single Redis (or a primary with replicas).

When Redis cannot be reached, `fail_open` decides: False (the default) refuses with
UNAVAILABLE so limits are never silently off; True admits the request uncounted. Either
way `llmgw_rate_limit_errors_total{operation="acquire"}` counts it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from services.common.lua_scripts import LuaScript
from services.common.rate_limits import Limit, QuotaStatus, Refusal, Unit
from services.common.redis_metrics import RedisOperation
from services.router.limits import metrics
from services.router.limits.errors import RateLimited, limits_unavailable

log = logging.getLogger("llmgw.limits")

# What "Redis cannot be used" looks like.
_UNREACHABLE = (RedisError, OSError, asyncio.TimeoutError)
# A window's key outlives the window by this much, so a replica whose clock is a little
# behind still finds it, and a settle just after the window ended still lands.
DEFAULT_KEY_SLACK_SECONDS = 60.0


@dataclass
class Reservation:
    """What one admitted request counted; settle or release it exactly once (later
    calls do nothing, so a `finally: release` after a `settle` is safe)."""

    tokens_estimate: int
    # The token counters incremented by the estimate, in the windows of the acquire.
    token_keys: tuple[str, ...] = ()
    # Per unit, the most restrictive limit after this request was counted.
    quota: Mapping[Unit, QuotaStatus] = field(default_factory=dict)
    # False when nothing was counted: no limits applied, or Redis was unreachable and
    # the limiter fails open.
    counted: bool = False
    # The estimated cost (nano-units) and the budget counters it was added to.
    cost_estimate: int = 0
    cost_keys: tuple[str, ...] = ()
    # Limits whose soft threshold this request crossed.
    crossed: tuple[Limit, ...] = ()
    _open: bool = field(default=True, repr=False)

    def _close(self) -> bool:
        """True the first time: the caller may apply the correction."""
        was_open, self._open = self._open, False
        return was_open


class _Scripts:
    def __init__(self) -> None:
        self.acquire = LuaScript(
            __package__, "acquire", timed=RedisOperation("router", "limits_acquire")
        )
        self.settle = LuaScript(
            __package__,
            "settle",
            borrowed=[(__package__, "adjust")],
            timed=RedisOperation("router", "limits_settle"),
        )


def _merge(limits: Iterable[Limit]) -> list[Limit]:
    """One limit per counter (the smallest): the script must see each key once, or it
    would check a counter before either increment and then increment it twice."""
    by_counter: dict[str, Limit] = {}
    for limit in limits:
        known = by_counter.get(limit.counter)
        if known is None or limit.limit < known.limit:
            by_counter[limit.counter] = limit
    return list(by_counter.values())


def _quota(limits: Sequence[Limit], counts: Sequence[int], now: float) -> dict[Unit, QuotaStatus]:
    """Per unit, the limit with the least remaining; on a tie, the one resetting last."""
    best: dict[Unit, QuotaStatus] = {}
    for limit, count in zip(limits, counts, strict=True):
        status = QuotaStatus(limit.limit, max(0, limit.limit - count), limit.reset_after(now))
        known = best.get(limit.unit)
        if known is None or (status.remaining, -status.reset_seconds) < (
            known.remaining,
            -known.reset_seconds,
        ):
            best[limit.unit] = status
    return best


class RateLimiter:
    """Acquire, settle and release against limits counted in one shared Redis."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        clock: Callable[[], float] = time.time,
        fail_open: bool = False,
        key_slack_seconds: float = DEFAULT_KEY_SLACK_SECONDS,
    ) -> None:
        self._redis = redis
        self._clock = clock
        self._fail_open = fail_open
        self._slack = key_slack_seconds
        self._scripts = _Scripts()
        self._failing = False

    @property
    def fail_open(self) -> bool:
        return self._fail_open

    async def acquire(
        self, limits: Iterable[Limit], tokens_estimate: int, cost_estimate: int = 0
    ) -> Reservation:
        """Counts one request, `tokens_estimate` tokens and `cost_estimate` nano-units
        against every limit, or nothing anywhere (a limit on requests among `limits`
        counts the request: leave those out to reserve only tokens and cost).

        Raises RateLimited (RESOURCE_EXHAUSTED) when any limit lacks room, and
        Unavailable when Redis cannot be reached and the limiter fails closed.
        """
        if tokens_estimate < 0 or cost_estimate < 0:
            raise ValueError(
                f"estimates must be >= 0, got {tokens_estimate} tokens, {cost_estimate} cost"
            )
        merged = _merge(limits)
        if not merged:
            return Reservation(tokens_estimate, cost_estimate=cost_estimate)
        now = self._clock()
        keys = [limit.key(now) for limit in merged]
        amounts = {"requests": 1, "tokens": tokens_estimate, "cost": cost_estimate}
        args: list[int] = []
        for limit in merged:
            expiry_ms = math.ceil((limit.reset_after(now) + self._slack) * 1000)
            args += [limit.limit, amounts[limit.unit], expiry_ms]
        reply = await self._run("acquire", self._scripts.acquire, keys, args)
        if reply is None:
            if self._fail_open:
                return Reservation(tokens_estimate, cost_estimate=cost_estimate)
            raise limits_unavailable()
        admitted = int(reply[0])
        counts = [int(reply[1 + 2 * i]) for i in range(len(merged))]
        quota = _quota(merged, counts, now)
        if not admitted:
            refusals = [
                Refusal(limit, counts[i], limit.reset_after(now))
                for i, limit in enumerate(merged)
                if int(reply[2 + 2 * i])
            ]
            for refusal in refusals:
                metrics.rejected(refusal.limit)
            raise RateLimited(refusals, quota)
        pairs = list(zip(keys, merged, strict=True))
        crossed = tuple(
            limit
            for i, limit in enumerate(merged)
            if limit.soft is not None and counts[i] - amounts[limit.unit] < limit.soft <= counts[i]
        )
        for limit in crossed:
            metrics.crossed(limit)
            log.warning(
                "%s reached %s of its %s",
                limit.subject,
                _share(counts[merged.index(limit)], limit.limit),
                limit.describe(),
                extra={"subject": limit.subject, "window": limit.window},
            )
        return Reservation(
            tokens_estimate,
            tuple(k for k, lim in pairs if lim.unit == "tokens"),
            quota,
            counted=True,
            cost_estimate=cost_estimate,
            cost_keys=tuple(k for k, lim in pairs if lim.unit == "cost"),
            crossed=crossed,
        )

    async def settle(
        self, reservation: Reservation, actual_tokens: int, actual_cost: int | None = None
    ) -> None:
        """Corrects the reserved tokens to `actual_tokens` (prompt plus completion) and
        the reserved cost to `actual_cost` (None: as estimated) in the windows the
        reservation counted in, never below 0. A Redis failure is logged and counted,
        not raised: the request itself already succeeded."""
        keys, deltas = settlement(reservation, actual_tokens, actual_cost)
        if keys:
            await self._run("settle", self._scripts.settle, keys, deltas)

    async def release(self, reservation: Reservation) -> None:
        """A request that never reached a provider: its tokens and cost are given back,
        its request count is kept (see the module docstring)."""
        await self.settle(reservation, 0, 0)

    async def _run(
        self, operation: str, script: LuaScript, keys: Sequence[str], args: Sequence[int]
    ) -> Any:
        """The script's reply, or None when Redis cannot be used."""
        try:
            reply = await script(self._redis, keys, args)
        except _UNREACHABLE as error:
            metrics.failed(operation)
            if not self._failing:
                self._failing = True
                log.warning(
                    "rate limits: Redis unreachable (%s: %s); requests are %s until it "
                    "answers again",
                    type(error).__name__,
                    error,
                    "admitted uncounted" if self._fail_open else "refused",
                )
            return None
        if self._failing:
            self._failing = False
            log.info("rate limits: Redis answers again; limits are counted")
        return reply


Adjustments = tuple[tuple[str, ...], tuple[int, ...]]
NO_ADJUSTMENTS: Adjustments = ((), ())


def settlement(
    reservation: Reservation, actual_tokens: int, actual_cost: int | None = None
) -> Adjustments:
    """The counter corrections that settle `reservation` (see `RateLimiter.settle`),
    for a caller that applies them itself (the usage recorder does, in the call that
    records the request, with adjust.lua). Closes the reservation: a later settle or
    release does nothing."""
    return joint_settlement([reservation], actual_tokens, actual_cost)


def joint_settlement(
    reservations: Sequence[Reservation], actual_tokens: int, actual_cost: int | None = None
) -> Adjustments:
    """The corrections that settle several reservations of one request (one per model
    call of a tool loop) to the request's whole usage: the difference between the
    usage and every estimate together goes to the first reservation's counters. Closes
    them all."""
    if actual_tokens < 0 or (actual_cost is not None and actual_cost < 0):
        raise ValueError(f"actual usage must be >= 0, got {actual_tokens}, {actual_cost}")
    closed_now = [r for r in reservations if r._close()]
    still_open = [r for r in closed_now if r.counted]
    if not still_open:
        return NO_ADJUSTMENTS
    first = still_open[0]
    keys: list[str] = []
    deltas: list[int] = []
    token_delta = actual_tokens - sum(r.tokens_estimate for r in still_open)
    if token_delta:
        keys += first.token_keys
        deltas += [token_delta] * len(first.token_keys)
    if actual_cost is not None:
        cost_delta = actual_cost - sum(r.cost_estimate for r in still_open)
        if cost_delta:
            keys += first.cost_keys
            deltas += [cost_delta] * len(first.cost_keys)
    return tuple(keys), tuple(deltas)


def _share(count: int, limit: int) -> str:
    return f"{100 * count / limit:.0f}%"
