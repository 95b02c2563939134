"""The budget gauges, read from real identity records and limiter counters in Redis."""

from __future__ import annotations

import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from llmgw.identity.v1 import identity_pb2
from services.common.identity.store import IdentityStore
from services.common.rate_limits import NANOS_PER_UNIT, Scope
from services.common.redis_store import create_redis
from services.router.admission import budget_limits
from services.router.budget_gauges import BudgetGauges
from services.router.limits.limiter import RateLimiter
from tests.conftest import RedisServer


def _gauge(name: str, scope: str, group: str, window: str) -> float | None:
    labels = {"scope": scope, "group": group, "window": window}
    return REGISTRY.get_sample_value(name, labels)


async def _spend(
    limiter: RateLimiter,
    scope: Scope,
    record: identity_pb2.Group | identity_pb2.Consumer,
    amount: float,
) -> None:
    """Reserves `amount` against the record's budget, as a request's cost is."""
    limits = budget_limits(scope, record.name, record.budget)
    await limiter.acquire(limits, 0, int(amount * NANOS_PER_UNIT))


async def test_group_and_lowest_consumer_budgets(redis_client: aioredis.Redis) -> None:
    identity = IdentityStore(redis_client)
    limiter = RateLimiter(redis_client)
    team = await identity.create_group(
        identity_pb2.Group(budget=identity_pb2.Budget(daily_limit=10.0, monthly_limit=100.0)),
        "team",
    )
    await identity.create_group(identity_pb2.Group(), "nobudget")
    alice = await identity.create_consumer(
        identity_pb2.Consumer(groups=[team.name], budget=identity_pb2.Budget(daily_limit=5.0)),
        "alice",
    )
    bob = await identity.create_consumer(
        identity_pb2.Consumer(groups=[team.name], budget=identity_pb2.Budget(daily_limit=2.0)),
        "bob",
    )
    await _spend(limiter, "group", team, 2.5)
    await _spend(limiter, "consumer", alice, 4.0)
    await _spend(limiter, "consumer", bob, 0.5)

    gauges = BudgetGauges(identity, redis_client)
    assert await gauges.refresh()

    assert _gauge("llmgw_budget_remaining", "group", "team", "day") == 7.5
    assert _gauge("llmgw_budget_limit", "group", "team", "day") == 10.0
    assert _gauge("llmgw_budget_remaining", "group", "team", "month") == 97.5
    assert _gauge("llmgw_budget_limit", "group", "team", "month") == 100.0
    # alice has 1.0 left of 5, bob 1.5 of 2: the lowest remaining is alice's.
    assert _gauge("llmgw_budget_remaining", "consumer_min", "team", "day") == 1.0
    assert _gauge("llmgw_budget_limit", "consumer_min", "team", "day") == 5.0
    assert _gauge("llmgw_budget_remaining", "group", "nobudget", "day") is None
    assert _gauge("llmgw_budget_remaining", "consumer_min", "team", "month") is None

    # A budget removed since is no longer shown.
    await identity.update_group(identity_pb2.Group(name=team.name), ["budget"])
    assert await gauges.refresh()
    assert _gauge("llmgw_budget_remaining", "group", "team", "day") is None
    assert _gauge("llmgw_budget_remaining", "consumer_min", "team", "day") == 1.0


async def test_no_consumer_id_becomes_a_label(redis_client: aioredis.Redis) -> None:
    identity = IdentityStore(redis_client)
    group = await identity.create_group(identity_pb2.Group(), "solo")
    await identity.create_consumer(
        identity_pb2.Consumer(groups=[group.name], budget=identity_pb2.Budget(daily_limit=1.0)),
        "carol-unique-id",
    )
    await BudgetGauges(identity, redis_client).refresh()
    for family in REGISTRY.collect():
        for sample in family.samples:
            assert "carol-unique-id" not in repr(sample.labels), sample
    assert _gauge("llmgw_budget_remaining", "consumer_min", "solo", "day") == 1.0


async def test_an_unreachable_redis_keeps_the_last_values(redis_server: RedisServer) -> None:
    client = create_redis(redis_server.url)
    try:
        identity = IdentityStore(client)
        await identity.create_group(
            identity_pb2.Group(budget=identity_pb2.Budget(daily_limit=3.0)), "kept"
        )
        gauges = BudgetGauges(identity, client)
        assert await gauges.refresh()
        await redis_server.process.stop()
        assert not await gauges.refresh()
        assert _gauge("llmgw_budget_remaining", "group", "kept", "day") == 3.0
    finally:
        await client.aclose()
