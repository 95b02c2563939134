"""Redis clients for the services that keep state, and their readiness probe."""

from __future__ import annotations

import redis.asyncio as aioredis

from services.common.readiness import DependencyCheck


def create_redis(url: str) -> aioredis.Redis:
    """A pooled async client; fails fast instead of hanging when Redis is gone."""
    return aioredis.Redis.from_url(
        url,
        socket_connect_timeout=1.0,
        socket_timeout=2.0,
        health_check_interval=5,
        max_connections=256,
    )


def redis_check(client: aioredis.Redis) -> DependencyCheck:
    """Readiness probe: Redis answers PING within a second."""

    async def ping() -> object:
        return await client.ping()

    return DependencyCheck(name="redis", probe=ping, timeout=1.0)
