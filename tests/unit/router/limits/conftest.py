"""Limiters (= router replicas, one Redis client each) over the test's real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from services.router.limits.limiter import RateLimiter
from tests.conftest import RedisServer

# A minute, hour and day boundary (2023-11-14T00:00:00Z): offsets from it are readable.
T0 = 1_699_920_000.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


MakeLimiter = Callable[..., RateLimiter]


def replica_client(url: str) -> aioredis.Redis:
    """A replica's client with a bounded pool: 100 calls at once queue for 16
    connections instead of opening 100, which on a loaded test machine can take longer
    than the production client's 1 s connect timeout (the calls would then fail with
    UNAVAILABLE, and the exactness test would count the wrong thing)."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=16, timeout=10, socket_connect_timeout=5, socket_timeout=10
    )
    return aioredis.Redis.from_pool(pool)


@pytest.fixture
def client(redis_client: aioredis.Redis) -> aioredis.Redis:
    """A direct client, to look at the counters the limiters keep."""
    return redis_client


@pytest.fixture
async def make_limiter(redis_server: RedisServer) -> AsyncIterator[MakeLimiter]:
    made: list[aioredis.Redis] = []

    def make(clock: Clock, *, fail_open: bool = False) -> RateLimiter:
        redis = replica_client(redis_server.url)
        made.append(redis)
        return RateLimiter(redis, clock=clock, fail_open=fail_open)

    yield make
    for redis in made:
        await redis.aclose()
