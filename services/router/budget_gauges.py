"""What is left of every budget, as gauges a forecast can extrapolate.

Budgets are set on consumers and groups (identity records in Redis) and counted by the
limiter in one Redis counter per subject and window (`Limit.key`). Every
`rate_limits.budget_gauge_interval_seconds` (15 s by default) each router replica reads
the budgets declared on those records and their counters, and sets:

- `scope="group"`: a group's own budget, per group;
- `scope="consumer_min"`: the consumer budgets of a group's members, reduced to the
  LOWEST remaining among them (consumer ids are never a label); its limit is that
  consumer's. A consumer in several groups counts in each; one in none is not shown.

Values are in the catalogue's cost unit (the price tables' currency, e.g. USD). Every
replica reads the same Redis, so every replica reports the same values: aggregate with
`max`. Work per reading is bounded: at most `MAX_GROUPS` groups and `MAX_CONSUMERS`
consumers are read (past that a warning names the bound), their counters in `MGET`s of
`READ_BATCH` keys. Series of budgets that were removed since are dropped; when Redis
cannot be read, the last values stay and a warning is logged once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import redis.asyncio as aioredis
from prometheus_client import Gauge

from llmgw.identity.v1 import identity_pb2
from services.common.errors import GatewayError
from services.common.identity.paging import MAX_PAGE_SIZE
from services.common.identity.store import IdentityStore
from services.common.rate_limits import NANOS_PER_UNIT, Limit
from services.common.redis_metrics import REDIS_FAILURES, RedisOperation
from services.router.admission import budget_limits

log = logging.getLogger("llmgw.budgets")

MAX_GROUPS = 1_000
MAX_CONSUMERS = 10_000
READ_BATCH = 500
# While the gauges are off (interval 0), how often the setting is looked at again.
IDLE_SECONDS = 15.0

REMAINING = Gauge(
    "llmgw_budget_remaining",
    "Budget left in the current window (UTC day or calendar month), in the catalogue's "
    "cost unit: scope=group a group's own budget; scope=consumer_min the lowest remaining "
    "among the consumer budgets of the group's members. Read from Redis every "
    "rate_limits.budget_gauge_interval_seconds; every router replica reports the same "
    "value (aggregate with max). It resets to the limit when a window starts.",
    ["scope", "group", "window"],
)
LIMIT = Gauge(
    "llmgw_budget_limit",
    "The configured budget per window behind llmgw_budget_remaining, same labels (for "
    "consumer_min: the budget of the consumer with the lowest remaining).",
    ["scope", "group", "window"],
)

_READ = RedisOperation("router", "budget_read")

Labels = tuple[str, str, str]
_R = TypeVar("_R", identity_pb2.Group, identity_pb2.Consumer)


@dataclass(frozen=True)
class _Reading:
    labels: Labels
    limit: Limit


def _group_id(name: str) -> str:
    return name.removeprefix("groups/")


class BudgetGauges:
    """Sets the budget gauges from the identity records and the limiter's counters."""

    def __init__(
        self,
        identity: IdentityStore,
        redis: aioredis.Redis,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._identity = identity
        self._redis = redis
        self._clock = clock
        self._shown: set[Labels] = set()
        self._failing = False
        # Listings cut at their bound (warned about once each).
        self._truncated: set[str] = set()

    async def run(self, interval: Callable[[], float]) -> None:
        """Refreshes every `interval()` seconds (read anew each time: a reload applies)
        until cancelled; `interval() == 0` clears the gauges and waits for a change."""
        while True:
            seconds = interval()
            if seconds <= 0:
                self._show({})
                await asyncio.sleep(IDLE_SECONDS)
                continue
            await self.refresh()
            await asyncio.sleep(seconds)

    async def refresh(self) -> bool:
        """One reading of every budget; False when Redis could not be read (the gauges
        then keep their last values)."""
        try:
            readings = await self._readings()
            values = await self._used([r.limit for r in readings])
        except (GatewayError, *REDIS_FAILURES) as error:
            if not self._failing:
                self._failing = True
                log.warning("budget gauges: cannot read budgets (%s); values kept", error)
            return False
        if self._failing:
            self._failing = False
            log.info("budget gauges: budgets read again")
        lowest: dict[Labels, tuple[float, float]] = {}
        for reading, used in zip(readings, values, strict=True):
            limit = reading.limit.limit
            pair = (max(limit - used, 0) / NANOS_PER_UNIT, limit / NANOS_PER_UNIT)
            known = lowest.get(reading.labels)
            if known is None or pair[0] < known[0]:
                lowest[reading.labels] = pair
        self._show(lowest)
        return True

    def _show(self, values: dict[Labels, tuple[float, float]]) -> None:
        for labels, (remaining, limit) in values.items():
            REMAINING.labels(*labels).set(remaining)
            LIMIT.labels(*labels).set(limit)
        for labels in self._shown - values.keys():
            REMAINING.remove(*labels)
            LIMIT.remove(*labels)
        self._shown = set(values)

    async def _readings(self) -> list[_Reading]:
        readings: list[_Reading] = []
        for group in await self._all(self._identity.list_groups, MAX_GROUPS, "groups"):
            for limit in budget_limits("group", group.name, group.budget):
                labels = ("group", _group_id(group.name), limit.window)
                readings.append(_Reading(labels, limit))
        for consumer in await self._all(self._identity.list_consumers, MAX_CONSUMERS, "consumers"):
            if not consumer.groups:
                continue
            for limit in budget_limits("consumer", consumer.name, consumer.budget):
                for group_name in consumer.groups:
                    labels = ("consumer_min", _group_id(group_name), limit.window)
                    readings.append(_Reading(labels, limit))
        return readings

    async def _all(
        self,
        listing: Callable[[int, str], Awaitable[tuple[list[_R], str]]],
        bound: int,
        what: str,
    ) -> list[_R]:
        """Every record of a listing, up to `bound` of them."""
        found: list[_R] = []
        token = ""
        while True:
            page, token = await listing(MAX_PAGE_SIZE, token)
            found += page
            if not token:
                return found
            if len(found) >= bound:
                if what not in self._truncated:
                    self._truncated.add(what)
                    log.warning("budget gauges: only the first %d %s are read", bound, what)
                return found[:bound]

    async def _used(self, limits: Sequence[Limit]) -> list[int]:
        """Each limit's count in its current window (0 where nothing was spent)."""
        now = self._clock()
        keys = [limit.key(now) for limit in limits]
        counts: list[int] = []
        for start in range(0, len(keys), READ_BATCH):
            with _READ.timed():
                values = await self._redis.mget(keys[start : start + READ_BATCH])
            counts += [int(v) if v is not None else 0 for v in values]
        return counts
