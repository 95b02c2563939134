"""Redis clients for the services that keep state, and their readiness probe."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis import exceptions as redis_exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from services.common.readiness import DependencyCheck


def create_redis(url: str) -> aioredis.Redis:
    """A pooled async client; fails fast instead of hanging when Redis is gone.

    One immediate retry on a connection error, none on a timeout. After a Redis restart
    the pool still holds connections the old process closed (redis-py does not check
    pooled connections before use); a command sent on one never reached Redis, so
    resending it is safe. A timed-out command may have run (an append, a counter
    increment), so it is never resent: the caller gets UNAVAILABLE and decides.
    """
    client = aioredis.Redis.from_url(
        url,
        socket_connect_timeout=1.0,
        socket_timeout=2.0,
        health_check_interval=5,
        max_connections=256,
    )
    client.set_retry(Retry(NoBackoff(), 1, supported_errors=(redis_exceptions.ConnectionError,)))
    return client


def redis_check(client: aioredis.Redis) -> DependencyCheck:
    """Readiness probe: Redis answers PING within a second."""

    async def ping() -> object:
        return await client.ping()

    return DependencyCheck(name="redis", probe=ping, timeout=1.0)
