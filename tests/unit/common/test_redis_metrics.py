"""The Redis timing helper: what it counts, and that the stores time their operations
through it (a real Redis for successes, a closed port for failures)."""

from __future__ import annotations

import asyncio
import socket

import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY
from redis.exceptions import ConnectionError as RedisConnectionError

from services.common.cache_config import CacheConfig
from services.common.redis_metrics import RedisOperation
from services.common.redis_store import create_redis
from services.router.cache.store import ResponseCache
from services.session.store import SessionStore


def _count(service: str, operation: str) -> float:
    labels = {"service": service, "operation": operation}
    return REGISTRY.get_sample_value("llmgw_redis_command_duration_seconds_count", labels) or 0.0


def _errors(service: str, operation: str) -> float:
    labels = {"service": service, "operation": operation}
    return REGISTRY.get_sample_value("llmgw_redis_errors_total", labels) or 0.0


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_success_is_timed_and_not_an_error() -> None:
    operation = RedisOperation("test", "t_success")
    with operation.timed():
        await asyncio.sleep(0)
    assert _count("test", "t_success") == 1
    assert _errors("test", "t_success") == 0


async def test_a_redis_failure_is_timed_and_counted() -> None:
    operation = RedisOperation("test", "t_failure")
    with pytest.raises(RedisConnectionError), operation.timed():
        raise RedisConnectionError("refused")
    with pytest.raises(TimeoutError), operation.timed():
        raise TimeoutError
    assert _count("test", "t_failure") == 2
    assert _errors("test", "t_failure") == 2


async def test_a_cancellation_or_foreign_error_is_not_a_redis_outcome() -> None:
    operation = RedisOperation("test", "t_other")
    with pytest.raises(asyncio.CancelledError), operation.timed():
        raise asyncio.CancelledError
    with pytest.raises(ValueError), operation.timed():
        raise ValueError("a bug of the caller")
    assert _count("test", "t_other") == 0
    assert _errors("test", "t_other") == 0


async def test_a_timed_lua_script_is_measured_per_call(redis_client: aioredis.Redis) -> None:
    before = _count("session", "session_sweep")
    store = SessionStore(redis_client)
    await store.sweep(10)
    await store.sweep(10)
    assert _count("session", "session_sweep") == before + 2
    assert _errors("session", "session_sweep") == 0


async def test_the_cache_counts_its_failed_reads() -> None:
    client = create_redis(f"redis://127.0.0.1:{_closed_port()}/0")
    try:
        cache = ResponseCache(client, CacheConfig())
        errors, count = _errors("router", "cache_get"), _count("router", "cache_get")
        assert await cache.get("shared", "k") is None
        assert _errors("router", "cache_get") == errors + 1
        assert _count("router", "cache_get") == count + 1
    finally:
        await client.aclose()
