"""Budgets as limits: the `cost` unit and calendar `month` window, settling and releasing
cost, soft-threshold warnings, one request's `RequestQuota` from admission to close, and
deployment limits in the routing engine. Redis is real; clocks are fake."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from llmgw.common.v1 import chat_pb2 as common_pb2
from services.common.errors import Unavailable
from services.common.gateway_config import (
    BreakerConfig,
    Deployment,
    RetryConfig,
    RoutingConfig,
)
from services.common.limits_config import RateLimitConfig
from services.common.rate_limits import NANOS_PER_UNIT, Limit, QuotaStatus, Refusal
from services.router.limits.errors import DeploymentLimited, RateLimited
from services.router.limits.limiter import DEFAULT_KEY_SLACK_SECONDS, RateLimiter
from services.router.quota import RequestQuota, cost_estimate
from services.router.routing.breaker import BreakerRegistry
from services.router.routing.decision import RouteDecision
from services.router.routing.engine import RoutingEngine
from services.router.routing.plan import Candidate, Plan
from services.router.routing.stats import StatsTable
from services.router.usage.recorder import UsageRecord, UsageRecorder

ALICE = "consumers/alice"
# 2023-11-14T00:00:00Z: a minute, hour and day boundary, mid-month.
T0 = 1_699_920_000.0
# One minute before the end of 2024 (UTC).
NEW_YEARS_EVE = dt.datetime(2024, 12, 31, 23, 59, tzinfo=dt.UTC).timestamp()
NEW_YEAR = dt.datetime(2025, 1, 1, tzinfo=dt.UTC).timestamp()


class Clock:
    """Unix seconds that move only when told."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def budget(amount: float, window: str = "day", *, soft: float | None = None) -> Limit:
    nanos = int(amount * NANOS_PER_UNIT)
    soft_nanos = None if soft is None else int(soft * NANOS_PER_UNIT)
    return Limit("consumer", ALICE, "cost", window, nanos, soft=soft_nanos)  # type: ignore[arg-type]


def requests(per: int, window: str = "minute") -> Limit:
    return Limit("consumer", ALICE, "requests", window, per)  # type: ignore[arg-type]


def tokens(per: int, window: str = "minute") -> Limit:
    return Limit("consumer", ALICE, "tokens", window, per)  # type: ignore[arg-type]


def usage(prompt: int, completion: int) -> common_pb2.Usage:
    return common_pb2.Usage(input_tokens=prompt, output_tokens=completion)


def crossings(window: str, scope: str = "consumer") -> float:
    value = REGISTRY.get_sample_value(
        "llmgw_budget_soft_threshold_crossed_total", {"scope": scope, "window": window}
    )
    return value or 0.0


@pytest.fixture
def client(redis_client: aioredis.Redis) -> aioredis.Redis:
    return redis_client


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limiter(client: aioredis.Redis, clock: Clock) -> RateLimiter:
    return RateLimiter(client, clock=clock)


async def count(client: aioredis.Redis, limit: Limit, now: float = T0) -> int | None:
    value = await client.get(limit.key(now))
    return None if value is None else int(value)


# -- the month window and the cost unit ---------------------------------------------


def test_the_month_window_is_the_calendar_month_across_a_year_boundary() -> None:
    month = budget(1, "month")
    assert month.window_index(NEW_YEAR) == month.window_index(NEW_YEARS_EVE) + 1
    assert month.window_index(NEW_YEAR - 0.001) == month.window_index(NEW_YEARS_EVE)
    assert month.key(NEW_YEARS_EVE) != month.key(NEW_YEAR)
    assert month.reset_after(NEW_YEARS_EVE) == pytest.approx(60)
    assert month.reset_after(NEW_YEAR) == pytest.approx(31 * 86400)


@pytest.mark.parametrize(
    ("start", "days"),
    [((2024, 2, 1), 29), ((2023, 2, 1), 28), ((2024, 4, 1), 30), ((2024, 12, 1), 31)],
)
def test_a_month_lasts_as_long_as_the_calendar_says(start: tuple[int, int, int], days: int) -> None:
    first = dt.datetime(*start, tzinfo=dt.UTC).timestamp()
    month = budget(1, "month")
    assert month.reset_after(first) == pytest.approx(days * 86400)
    assert month.window_index(first + days * 86400 - 1) == month.window_index(first)
    assert month.window_index(first + days * 86400) == month.window_index(first) + 1


def test_a_budget_describes_itself_in_currency_units() -> None:
    assert budget(5).describe() == "budget of 5 per day"
    assert budget(0.25, "month").describe() == "budget of 0.25 per month"


# -- the limiter with cost ------------------------------------------------------------


async def test_a_monthly_budget_refuses_until_the_new_year_starts(
    limiter: RateLimiter, client: aioredis.Redis, clock: Clock
) -> None:
    month = budget(1, "month")
    clock.now = NEW_YEARS_EVE
    await limiter.acquire([month], 0, 600_000_000)
    with pytest.raises(RateLimited) as refused:
        await limiter.acquire([month], 0, 500_000_000)
    assert refused.value.retry_after == pytest.approx(60)
    assert str(refused.value).startswith("budget exceeded (consumers/alice: budget of 1 per month)")
    assert await count(client, month, NEW_YEARS_EVE) == 600_000_000
    # The December key ends with December (plus slack), not 31 days from now.
    ttl_ms = await client.pttl(month.key(NEW_YEARS_EVE))
    assert 60_000 < ttl_ms <= (60 + DEFAULT_KEY_SLACK_SECONDS) * 1000

    clock.now = NEW_YEAR + 1
    await limiter.acquire([month], 0, 500_000_000)
    assert await count(client, month, NEW_YEAR) == 500_000_000
    assert await count(client, month, NEW_YEARS_EVE) == 600_000_000


async def test_a_refusal_by_a_rate_limit_and_a_budget_is_a_rate_limit(
    limiter: RateLimiter,
) -> None:
    limits = [requests(1), budget(1)]
    await limiter.acquire(limits, 0, NANOS_PER_UNIT)
    with pytest.raises(RateLimited) as refused:
        await limiter.acquire(limits, 0, 1)
    assert str(refused.value).startswith("rate limit exceeded (")
    assert {r.limit.unit for r in refused.value.refusals} == {"requests", "cost"}


def test_a_refusal_carries_quota_headers_and_retry_after_as_trailers() -> None:
    refusal = RateLimited(
        [Refusal(budget(2), 2 * NANOS_PER_UNIT, 3600.2)],
        {"requests": QuotaStatus(100, 97, 20.0), "cost": QuotaStatus(2, 0, 3600.2)},
    )
    assert refusal.trailers == (
        ("x-ratelimit-limit-requests", "100"),
        ("x-ratelimit-remaining-requests", "97"),
        ("x-ratelimit-reset-requests", "20s"),
        ("retry-after", "3601"),
    )
    assert str(refusal).startswith("budget exceeded (consumers/alice: budget of 2 per day)")


async def test_settle_corrects_tokens_and_cost_to_the_actual_usage(
    limiter: RateLimiter, client: aioredis.Redis
) -> None:
    per_minute, token_limit, cost = requests(10), tokens(1000), budget(1)
    reservation = await limiter.acquire([per_minute, token_limit, cost], 300, 5_000)
    assert reservation.cost_estimate == 5_000
    assert await count(client, cost) == 5_000

    await limiter.settle(reservation, 120, 1_250)
    assert await count(client, token_limit) == 120
    assert await count(client, cost) == 1_250
    assert await count(client, per_minute) == 1
    # Settled once: a release afterwards changes nothing.
    await limiter.release(reservation)
    assert (await count(client, token_limit), await count(client, cost)) == (120, 1_250)


async def test_settle_without_an_actual_cost_keeps_the_estimate(
    limiter: RateLimiter, client: aioredis.Redis
) -> None:
    token_limit, cost = tokens(1000), budget(1)
    reservation = await limiter.acquire([token_limit, cost], 300, 5_000)
    await limiter.settle(reservation, 80)
    assert (await count(client, token_limit), await count(client, cost)) == (80, 5_000)


async def test_release_gives_back_tokens_and_cost_and_keeps_the_request(
    limiter: RateLimiter, client: aioredis.Redis
) -> None:
    per_minute, token_limit, cost = requests(10), tokens(1000), budget(1)
    reservation = await limiter.acquire([per_minute, token_limit, cost], 300, 5_000)
    await limiter.release(reservation)
    assert await count(client, per_minute) == 1
    assert await count(client, token_limit) == 0
    assert await count(client, cost) == 0


async def test_the_soft_threshold_is_reported_once_by_the_request_that_crosses_it(
    limiter: RateLimiter,
) -> None:
    daily = budget(10, soft=8)
    before = crossings("day")
    first = await limiter.acquire([daily], 0, 5 * NANOS_PER_UNIT)
    assert first.crossed == ()
    crossing = await limiter.acquire([daily], 0, 3 * NANOS_PER_UNIT)  # exactly 8
    assert crossing.crossed == (daily,)
    assert crossings("day") == before + 1
    past = await limiter.acquire([daily], 0, NANOS_PER_UNIT)
    assert past.crossed == ()
    assert crossings("day") == before + 1


async def test_a_single_request_may_cross_a_soft_threshold_and_none_is_set_by_default(
    limiter: RateLimiter,
) -> None:
    monthly = budget(10, "month", soft=1)
    unwarned = Limit("group", "groups/eng", "cost", "month", 10 * NANOS_PER_UNIT)
    before, group_before = crossings("month"), crossings("month", "group")
    reservation = await limiter.acquire([monthly, unwarned], 0, 3 * NANOS_PER_UNIT)
    assert reservation.crossed == (monthly,)
    assert crossings("month") == before + 1
    assert crossings("month", "group") == group_before


# -- one request's quota --------------------------------------------------------------


async def finish(
    client: aioredis.Redis, quota: RequestQuota, used: common_pb2.Usage, cost: int
) -> None:
    """What the router does when a request ends: its usage recorded and its reservation
    settled, in one call of the usage recorder."""
    record = UsageRecord("m", used, cost)
    assert await UsageRecorder(client).record(
        ["consumers/quota-test"], record, quota.settlement(used, cost)
    )


async def test_without_a_limiter_or_limits_nothing_is_reserved(
    limiter: RateLimiter, client: aioredis.Redis
) -> None:
    for quota in (
        await RequestQuota.admit(None, [requests(1)], 10, 10),
        await RequestQuota.admit(limiter, [], 10, 10),
    ):
        assert quota.metadata() == ()
        assert quota.settlement(usage(1, 1), 5) == ((), ())
        await quota.close()
    assert await client.dbsize() == 0


async def test_a_settled_request_keeps_its_actual_usage_after_close(
    limiter: RateLimiter, client: aioredis.Redis
) -> None:
    per_minute, token_limit, cost = requests(10), tokens(1000), budget(1)
    quota = await RequestQuota.admit(limiter, [per_minute, token_limit, cost], 300, 7_000)
    assert dict(quota.metadata()) == {
        "x-ratelimit-limit-requests": "10",
        "x-ratelimit-remaining-requests": "9",
        "x-ratelimit-reset-requests": "1m0s",
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "700",
        "x-ratelimit-reset-tokens": "1m0s",
    }
    await finish(client, quota, usage(40, 60), 2_000)
    await quota.close()
    assert await count(client, per_minute) == 1
    assert await count(client, token_limit) == 100
    assert await count(client, cost) == 2_000


async def test_close_releases_an_unsettled_request_and_a_later_settle_does_nothing(
    limiter: RateLimiter, client: aioredis.Redis
) -> None:
    per_minute, token_limit, cost = requests(10), tokens(1000), budget(1)
    quota = await RequestQuota.admit(limiter, [per_minute, token_limit, cost], 300, 7_000)
    await quota.close()
    assert (await count(client, token_limit), await count(client, cost)) == (0, 0)
    assert quota.settlement(usage(40, 60), 2_000) == ((), ())
    assert (await count(client, token_limit), await count(client, cost)) == (0, 0)
    assert await count(client, per_minute) == 1


async def test_an_exhausted_budget_refuses_the_request_before_any_call(
    limiter: RateLimiter, client: aioredis.Redis
) -> None:
    cost = budget(1)
    first = await RequestQuota.admit(limiter, [cost], 0, 900_000_000)
    await finish(client, first, usage(1, 1), 900_000_000)
    with pytest.raises(RateLimited, match=r"^budget exceeded"):
        await RequestQuota.admit(limiter, [cost], 0, 200_000_000)
    assert await count(client, cost) == 900_000_000


def limited_deployment(name: str, **limits: int) -> Candidate:
    return Candidate(
        "m",
        Deployment(provider="p", model=name, rate_limits=RateLimitConfig(**limits)),
        False,
        "m",
    )


def deployment_limit(candidate: Candidate, unit: str, window: str = "minute") -> Limit:
    config = candidate.deployment.rate_limits
    assert config is not None
    (found,) = [
        lim
        for lim in config.limits("deployment", f"deployments/{candidate.label}")
        if (lim.unit, lim.window) == (unit, window)
    ]
    return found


async def test_a_deployment_call_is_reserved_then_settled_to_its_own_tokens(
    limiter: RateLimiter, client: aioredis.Redis
) -> None:
    candidate = limited_deployment("a", requests_per_minute=1, tokens_per_minute=1000)
    quota = await RequestQuota.admit(limiter, [], 250, 0)
    await quota.admit_deployment(candidate)
    assert await count(client, deployment_limit(candidate, "tokens")) == 250
    await quota.settle_call(candidate.deployment, candidate.key, usage(30, 20))
    await quota.close()
    assert await count(client, deployment_limit(candidate, "tokens")) == 50

    other = await RequestQuota.admit(limiter, [], 250, 0)
    with pytest.raises(DeploymentLimited) as refused:
        await other.admit_deployment(candidate)
    assert [r.limit.subject for r in refused.value.refusals] == ["deployments/p/a"]
    assert await count(client, deployment_limit(candidate, "requests")) == 1


async def test_close_releases_the_deployment_reservations_left_open(
    limiter: RateLimiter, client: aioredis.Redis
) -> None:
    candidate = limited_deployment("a", tokens_per_minute=1000)
    quota = await RequestQuota.admit(limiter, [], 250, 0)
    await quota.admit_deployment(candidate)
    # Admitted again (a retry): the first reservation is given back, not leaked.
    await quota.admit_deployment(candidate)
    assert await count(client, deployment_limit(candidate, "tokens")) == 250
    await quota.close()
    assert await count(client, deployment_limit(candidate, "tokens")) == 0


async def test_a_deployment_without_limits_is_not_counted(
    limiter: RateLimiter, client: aioredis.Redis
) -> None:
    quota = await RequestQuota.admit(limiter, [], 250, 0)
    await quota.admit_deployment(Candidate("m", Deployment(provider="p", model="a"), False, "m"))
    await quota.close()
    assert await client.dbsize() == 0


def test_the_cost_estimate_is_the_dearest_reachable_deployment() -> None:
    cheap = Deployment(provider="p", model="a", input_price=1.0, output_price=2.0)
    dear = Deployment(provider="p", model="b", input_price=3.0)
    # Per million tokens: 1000 * 1 + 500 * 2 = 2000 vs 1000 * 3 = 3000 (x 1000 nanos).
    assert cost_estimate([cheap], 1000, 500) == 2_000_000
    assert cost_estimate([cheap, dear], 1000, 500) == 3_000_000
    assert cost_estimate([], 1000, 500) == 0


# -- deployment limits in the routing engine ------------------------------------------


def engine(attempts_per_deployment: int = 2) -> RoutingEngine:
    config = RoutingConfig(
        retries=RetryConfig(
            backoff_initial=0.01, jitter=0, attempts_per_deployment=attempts_per_deployment
        ),
        breaker=BreakerConfig(consecutive_failures=3, open_seconds=60),
    )
    return RoutingEngine(BreakerRegistry(None, config.breaker), StatsTable(0.3), config)


def plan(*names: str) -> Plan:
    return Plan(
        "m",
        "priority",
        tuple(Candidate("m", Deployment(provider="p", model=n), False, "m") for n in names),
        "m",
    )


def refusal(retry_after: float) -> DeploymentLimited:
    limit = Limit("deployment", "deployments/p/x", "requests", "minute", 1)
    return DeploymentLimited([Refusal(limit, 1, retry_after)], {})


class Calls:
    """Answers every attempt; records which deployments were called."""

    def __init__(self, failing: frozenset[str] = frozenset()) -> None:
        self.called: list[str] = []
        self.failing = failing

    async def __call__(self, candidate: Candidate, timeout: float | None) -> str:
        self.called.append(candidate.deployment.model)
        if candidate.deployment.model in self.failing:
            raise Unavailable("down")
        return candidate.deployment.model


def refusing(retry_after: dict[str, float]) -> Callable[[Candidate], Awaitable[None]]:
    """An `admit` that refuses the named deployments with the given retry delays."""

    async def admit(candidate: Candidate) -> None:
        after = retry_after.get(candidate.deployment.model)
        if after is not None:
            raise refusal(after)

    return admit


async def test_a_rate_limited_deployment_is_skipped_without_a_call() -> None:
    calls = Calls()
    decision = RouteDecision("m", "priority")
    result, lease = await engine().call(
        plan("a", "b"), decision, calls, None, admit=refusing({"a": 10})
    )
    await lease.succeed()
    assert (result, calls.called) == ("b", ["b"])
    assert [(e.deployment, e.outcome, e.called) for e in decision.trail] == [
        ("p/a", "rate_limited", False)
    ]
    assert decision.route == "fallback"


async def test_when_every_deployment_is_limited_the_soonest_retry_is_the_answer() -> None:
    calls = Calls()
    with pytest.raises(DeploymentLimited) as refused:
        await engine().call(
            plan("a", "b", "c"),
            RouteDecision("m", "priority"),
            calls,
            None,
            admit=refusing({"a": 30, "b": 5, "c": 12}),
        )
    assert refused.value.retry_after == 5
    assert calls.called == []


async def test_a_failed_call_outranks_a_deployment_limit() -> None:
    calls = Calls(failing=frozenset({"b"}))
    with pytest.raises(Unavailable, match="down"):
        await engine(attempts_per_deployment=1).call(
            plan("a", "b"), RouteDecision("m", "priority"), calls, None, admit=refusing({"a": 5})
        )
    assert calls.called == ["b"]


async def test_request_quotas_move_the_next_request_to_the_next_deployment(
    limiter: RateLimiter,
) -> None:
    routes = engine()
    first = Candidate(
        "m",
        Deployment(provider="p", model="a", rate_limits=RateLimitConfig(requests_per_minute=1)),
        False,
        "m",
    )
    second = Candidate("m", Deployment(provider="p", model="b"), False, "m")
    two = Plan("m", "priority", (first, second), "m")
    answered = []
    for _ in range(2):
        quota = await RequestQuota.admit(limiter, [], 10, 0)
        try:
            result, lease = await routes.call(
                two, RouteDecision("m", "priority"), Calls(), None, admit=quota.admit_deployment
            )
            await lease.succeed()
            answered.append(result)
        finally:
            await quota.close()
    assert answered == ["a", "b"]


async def test_settling_with_the_usage_record_never_recreates_an_expired_window(
    limiter: RateLimiter, client: aioredis.Redis
) -> None:
    token_limit = tokens(1000)
    quota = await RequestQuota.admit(limiter, [token_limit], 300, 0)
    await client.delete(token_limit.key(T0))  # the window ended (its key expired)
    await finish(client, quota, usage(40, 60), 0)
    assert await count(client, token_limit) is None
    # The usage itself was recorded in the same call.
    assert await client.keys("llmgw:usage:consumers/quota-test:*")


async def test_an_abandoned_request_keeps_its_reservation_as_estimated(
    limiter: RateLimiter, client: aioredis.Redis
) -> None:
    """The client went away mid-call: what the provider spent is unknown, so the
    estimate stays counted (a later settle changes nothing)."""
    token_limit, cost = tokens(1000), budget(1)
    quota = await RequestQuota.admit(limiter, [token_limit, cost], 300, 7_000)
    await quota.close(abandoned=True)
    assert (await count(client, token_limit), await count(client, cost)) == (300, 7_000)
    assert quota.settlement(usage(1, 1), 1) == ((), ())


async def test_each_call_of_a_tool_loop_reserves_and_the_request_settles_once(
    limiter: RateLimiter, client: aioredis.Redis
) -> None:
    per_minute, token_limit, cost = requests(10), tokens(1000), budget(1)
    quota = await RequestQuota.admit(limiter, [per_minute, token_limit, cost], 300, 7_000)
    assert quota.reserves_calls
    await quota.next_call(400, 9_000)
    assert await count(client, token_limit) == 700
    assert await count(client, cost) == 16_000
    assert await count(client, per_minute) == 1  # one request, however many calls
    with pytest.raises(RateLimited, match="1000 tokens per minute"):
        await quota.next_call(301, 0)  # 700 + 301 no longer fits
    await finish(client, quota, usage(150, 90), 5_000)  # both calls together
    await quota.close()
    assert await count(client, token_limit) == 240
    assert await count(client, cost) == 5_000
    assert await count(client, per_minute) == 1


async def test_a_failed_tool_loop_gives_back_every_calls_reservation(
    limiter: RateLimiter, client: aioredis.Redis
) -> None:
    token_limit = tokens(1000)
    quota = await RequestQuota.admit(limiter, [token_limit], 300, 0)
    await quota.next_call(400, 0)
    await quota.close()
    assert await count(client, token_limit) == 0
