"""The limiter over a real Redis: all or nothing, exact counts across replicas, token
reservations settled to the actual usage, windows, quota, Redis outages, metrics."""

from __future__ import annotations

import asyncio

import grpc
import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from services.common.errors import Unavailable
from services.common.rate_limits import Limit, QuotaStatus
from services.router.limits.errors import RateLimited
from services.router.limits.limiter import DEFAULT_KEY_SLACK_SECONDS, Reservation
from tests.conftest import RedisServer
from tests.unit.router.limits.conftest import T0, Clock, MakeLimiter

ALICE = "consumers/alice"
ENG = "groups/eng"


def requests(per: int, window: str = "minute", subject: str = ALICE) -> Limit:
    scope = "consumer" if subject.startswith("consumers/") else "group"
    return Limit(scope, subject, "requests", window, per)  # type: ignore[arg-type]


def tokens(per: int, window: str = "minute", subject: str = ALICE) -> Limit:
    scope = "consumer" if subject.startswith("consumers/") else "group"
    return Limit(scope, subject, "tokens", window, per)  # type: ignore[arg-type]


async def counter(client: aioredis.Redis, limit: Limit, now: float) -> int | None:
    value = await client.get(limit.key(now))
    return None if value is None else int(value)


def rejections(limit: Limit) -> float:
    value = REGISTRY.get_sample_value(
        "llmgw_rate_limit_rejections_total",
        {"scope": limit.scope, "unit": limit.unit, "window": limit.window},
    )
    return value or 0.0


def errors(operation: str) -> float:
    value = REGISTRY.get_sample_value("llmgw_rate_limit_errors_total", {"operation": operation})
    return value or 0.0


async def test_a_refused_request_counts_nowhere(
    make_limiter: MakeLimiter, client: aioredis.Redis
) -> None:
    limiter = make_limiter(Clock())
    per_minute, per_hour, group_tokens = requests(5), requests(50, "hour"), tokens(100, subject=ENG)
    limits = [per_minute, per_hour, group_tokens]
    await limiter.acquire(limits, 60)

    with pytest.raises(RateLimited) as refused:
        await limiter.acquire(limits, 60)  # 60 + 60 > 100: only the group's tokens refuse
    assert [r.limit for r in refused.value.refusals] == [group_tokens]
    assert await counter(client, per_minute, T0) == 1
    assert await counter(client, per_hour, T0) == 1
    assert await counter(client, group_tokens, T0) == 60

    # A limit the first request never touched is not created by a refusal either.
    fresh = requests(3, "day")
    with pytest.raises(RateLimited):
        await limiter.acquire([fresh, *limits], 60)
    assert await counter(client, fresh, T0) is None

    await limiter.acquire(limits, 40)  # exactly fills the tokens
    assert await counter(client, group_tokens, T0) == 100
    assert await counter(client, per_minute, T0) == 2


async def test_three_replicas_admit_exactly_the_request_limit(
    make_limiter: MakeLimiter, client: aioredis.Redis
) -> None:
    clock = Clock(T0 + 5)
    replicas = [make_limiter(clock) for _ in range(3)]
    limit = requests(100)

    results = await asyncio.gather(
        *(replicas[i % 3].acquire([limit], 0) for i in range(300)), return_exceptions=True
    )
    admitted = [r for r in results if isinstance(r, Reservation)]
    refused = [r for r in results if isinstance(r, RateLimited)]
    assert [r for r in results if not isinstance(r, Reservation | RateLimited)] == []
    assert len(admitted) == 100
    assert len(refused) == 200
    assert await counter(client, limit, clock.now) == 100
    assert sorted(r.quota["requests"].remaining for r in admitted) == list(range(100))
    assert all(r.retry_after == pytest.approx(55) for r in refused)


async def test_token_reservations_never_overshoot_and_settle_to_the_real_total(
    make_limiter: MakeLimiter, client: aioredis.Redis
) -> None:
    clock = Clock()
    replicas = [make_limiter(clock) for _ in range(3)]
    limit = tokens(1000)

    results = await asyncio.gather(
        *(replicas[i % 3].acquire([limit], 30) for i in range(60)), return_exceptions=True
    )
    admitted = [r for r in results if isinstance(r, Reservation)]
    assert all(isinstance(r, Reservation | RateLimited) for r in results)
    assert len(admitted) == 33  # 33 * 30 = 990; a 34th would make 1020
    assert await counter(client, limit, T0) == 990

    actual = [5 + i for i in range(len(admitted))]
    await asyncio.gather(*(replicas[i % 3].settle(r, actual[i]) for i, r in enumerate(admitted)))
    assert await counter(client, limit, T0) == sum(actual)


async def test_settle_may_overshoot_and_then_nothing_is_admitted(
    make_limiter: MakeLimiter, client: aioredis.Redis
) -> None:
    limiter = make_limiter(Clock())
    limit = tokens(100)
    reservation = await limiter.acquire([limit], 50)
    await limiter.settle(reservation, 120)  # the prompt estimate was low
    assert await counter(client, limit, T0) == 120
    with pytest.raises(RateLimited) as refused:
        await limiter.acquire([limit], 0)
    assert refused.value.quota["tokens"] == QuotaStatus(100, 0, 60)


async def test_settle_and_release_happen_once(
    make_limiter: MakeLimiter, client: aioredis.Redis
) -> None:
    limiter = make_limiter(Clock())
    per_minute, limit = requests(10), tokens(1000)
    reservation = await limiter.acquire([per_minute, limit], 300)
    await limiter.settle(reservation, 100)
    await limiter.settle(reservation, 900)
    await limiter.release(reservation)
    assert await counter(client, limit, T0) == 100

    failed = await limiter.acquire([per_minute, limit], 300)
    await limiter.release(failed)  # never reached a provider
    assert await counter(client, limit, T0) == 100  # its tokens came back
    assert await counter(client, per_minute, T0) == 2  # its request is kept


async def test_a_negative_settle_never_goes_below_zero_and_keeps_the_expiry(
    make_limiter: MakeLimiter, client: aioredis.Redis
) -> None:
    limiter = make_limiter(Clock())
    limit = tokens(1000)
    reservation = await limiter.acquire([limit], 100)
    await client.set(limit.key(T0), 30, keepttl=True)  # e.g. another request's correction
    await limiter.settle(reservation, 10)
    assert await counter(client, limit, T0) == 0
    assert await client.pttl(limit.key(T0)) > 0


async def test_settle_adjusts_the_window_the_reservation_counted_in(
    make_limiter: MakeLimiter, client: aioredis.Redis
) -> None:
    clock = Clock(T0 + 59)
    limiter = make_limiter(clock)
    limit = tokens(1000)
    reservation = await limiter.acquire([limit], 100)
    clock.now = T0 + 61
    await limiter.settle(reservation, 400)
    assert await counter(client, limit, T0) == 400
    assert await counter(client, limit, clock.now) is None


async def test_a_settle_after_the_key_expired_creates_nothing(
    make_limiter: MakeLimiter, client: aioredis.Redis
) -> None:
    limiter = make_limiter(Clock())
    limit = tokens(1000)
    reservation = await limiter.acquire([limit], 100)
    await client.delete(limit.key(T0))  # what expiry does after the window and slack
    await limiter.settle(reservation, 400)
    assert await client.exists(limit.key(T0)) == 0


async def test_a_new_window_starts_afresh(
    make_limiter: MakeLimiter, client: aioredis.Redis
) -> None:
    clock = Clock(T0 + 20)
    limiter = make_limiter(clock)
    limit = requests(2)
    await limiter.acquire([limit], 0)
    await limiter.acquire([limit], 0)
    with pytest.raises(RateLimited) as refused:
        await limiter.acquire([limit], 0)
    assert refused.value.retry_after == pytest.approx(40)

    clock.now += 61
    reservation = await limiter.acquire([limit], 0)
    assert reservation.quota["requests"] == QuotaStatus(2, 1, 39)
    ttl_ms = await client.pttl(limit.key(clock.now))
    assert (
        (38 + DEFAULT_KEY_SLACK_SECONDS) * 1000 < ttl_ms <= (39 + DEFAULT_KEY_SLACK_SECONDS) * 1000
    )


async def test_retry_after_is_when_every_refusing_limit_has_room(
    make_limiter: MakeLimiter,
) -> None:
    clock = Clock(T0 + 600)
    limiter = make_limiter(clock)
    per_minute, per_hour = requests(1), tokens(50, "hour", ENG)
    before = rejections(per_minute), rejections(per_hour)
    await limiter.acquire([per_minute, per_hour], 50)
    with pytest.raises(RateLimited) as refused:
        await limiter.acquire([per_minute, per_hour], 10)
    error = refused.value
    assert error.retry_after == pytest.approx(3000)
    assert [v.subject for v in error.violations] == [ALICE, ENG]
    assert [v.description for v in error.violations] == [
        "1 requests per minute",
        "50 tokens per hour",
    ]
    assert error.quota == {
        "requests": QuotaStatus(1, 0, 60),
        "tokens": QuotaStatus(50, 0, 3000),
    }
    assert (rejections(per_minute), rejections(per_hour)) == (before[0] + 1, before[1] + 1)


async def test_the_quota_reports_the_most_restrictive_limit_per_unit(
    make_limiter: MakeLimiter,
) -> None:
    clock = Clock(T0 + 30)
    limiter = make_limiter(clock)
    limits = [requests(10), requests(12, "hour"), tokens(1000, "day", ENG)]
    for _ in range(3):
        reservation = await limiter.acquire(limits, 100)
    assert reservation.quota == {
        "requests": QuotaStatus(10, 7, 30),
        "tokens": QuotaStatus(1000, 700, 86370),
    }
    clock.now += 60  # a new minute: 9 left in it, 8 in the hour
    reservation = await limiter.acquire(limits, 100)
    assert reservation.quota["requests"] == QuotaStatus(12, 8, 3510)


async def test_the_same_counter_twice_counts_once_with_the_smaller_limit(
    make_limiter: MakeLimiter, client: aioredis.Redis
) -> None:
    limiter = make_limiter(Clock())
    await limiter.acquire([requests(5), requests(2)], 0)
    await limiter.acquire([requests(5), requests(2)], 0)
    assert await counter(client, requests(2), T0) == 2
    with pytest.raises(RateLimited) as refused:
        await limiter.acquire([requests(2), requests(5)], 0)
    assert refused.value.violations[0].description == "2 requests per minute"


async def test_no_limits_means_no_redis_and_nothing_to_settle(
    make_limiter: MakeLimiter, client: aioredis.Redis
) -> None:
    limiter = make_limiter(Clock())
    reservation = await limiter.acquire([], 500)
    assert not reservation.counted and reservation.quota == {}
    await limiter.settle(reservation, 10)
    assert await client.dbsize() == 0
    with pytest.raises(ValueError):
        await limiter.acquire([requests(1)], -1)


async def test_redis_down_fails_closed_by_default(
    make_limiter: MakeLimiter, redis_server: RedisServer
) -> None:
    limiter = make_limiter(Clock())
    reservation = await limiter.acquire([tokens(1000)], 100)
    await redis_server.process.stop()
    before = errors("acquire"), errors("settle")

    with pytest.raises(Unavailable) as refused:
        await limiter.acquire([requests(10)], 0)
    assert refused.value.code is grpc.StatusCode.UNAVAILABLE
    await limiter.settle(reservation, 10)  # dropped and counted, never raised
    assert (errors("acquire"), errors("settle")) == (before[0] + 1, before[1] + 1)


async def test_redis_down_admits_uncounted_when_failing_open(
    make_limiter: MakeLimiter, redis_server: RedisServer, client: aioredis.Redis
) -> None:
    limiter = make_limiter(Clock(), fail_open=True)
    await redis_server.process.stop()
    before = errors("acquire")
    reservation = await limiter.acquire([requests(10)], 0)
    assert not reservation.counted
    assert errors("acquire") == before + 1
    await limiter.settle(reservation, 10)  # nothing counted, nothing to correct

    await redis_server.restart()
    admitted = await limiter.acquire([requests(10)], 0)
    assert admitted.counted and admitted.quota["requests"].remaining == 9
