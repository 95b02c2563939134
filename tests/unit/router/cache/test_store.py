"""The response cache over a real Redis: round trip, TTL, namespaces, size limit,
foreign values, Redis outages (never raising, counted, logged without flooding)."""

from __future__ import annotations

import logging

import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from llmgw.common.v1 import chat_pb2 as common_pb2
from llmgw.provider.v1 import provider_service_pb2 as provider_pb2
from services.common.cache_config import CacheConfig
from services.common.redis_store import create_redis
from services.launcher.processes import free_port
from services.router.cache import entry
from services.router.cache.entry import CachedAnswer
from services.router.cache.store import LOG_INTERVAL_SECONDS, SHARED_NAMESPACE, ResponseCache
from tests.conftest import RedisServer

CONFIG = CacheConfig(enabled=True, key_prefix="test:cache")
KEY = "ab" * 32
GROUP = "groups/eng"


def _answer(text: str = "Hello there, world.") -> CachedAnswer:
    response = provider_pb2.CompleteResponse(
        finish_reason=common_pb2.FINISH_REASON_STOP,
        usage=common_pb2.Usage(input_tokens=3, output_tokens=4),
    )
    response.message.role = common_pb2.ROLE_ASSISTANT
    response.message.content.add(text=text)
    return entry.from_response(response, "gpt-4o", "openai", created=100.0)


def _sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def _errors(operation: str) -> float:
    return _sample("llmgw_cache_errors_total", {"operation": operation})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def client(redis_client: aioredis.Redis) -> aioredis.Redis:
    return redis_client


@pytest.fixture
async def cache(client: aioredis.Redis) -> ResponseCache:
    return ResponseCache(client, CONFIG)


async def test_put_then_get_returns_the_answer(cache: ResponseCache) -> None:
    stored = _sample("llmgw_cache_stored_bytes_total")
    answer = _answer()
    assert await cache.get(GROUP, KEY) is None
    assert await cache.put(GROUP, KEY, answer, 60) is True
    assert await cache.get(GROUP, KEY) == answer
    assert _sample("llmgw_cache_stored_bytes_total") - stored == len(entry.encode(answer))


async def test_the_entry_lives_for_the_ttl(cache: ResponseCache, client: aioredis.Redis) -> None:
    await cache.put(GROUP, KEY, _answer(), 120)
    redis_key = f"test:cache:{GROUP}:{KEY}"
    assert cache.redis_key(GROUP, KEY) == redis_key
    assert 110 <= await client.ttl(redis_key) <= 120
    assert await client.get(redis_key) == entry.encode(_answer())
    await cache.put(GROUP, KEY, _answer("again"), 30)  # a refresh replaces entry and TTL
    assert 20 <= await client.ttl(redis_key) <= 30
    assert await cache.get(GROUP, KEY) == _answer("again")


async def test_namespaces_are_separate(cache: ResponseCache) -> None:
    await cache.put("groups/eng", KEY, _answer("eng"), 60)
    await cache.put(SHARED_NAMESPACE, KEY, _answer("shared"), 60)
    assert await cache.get("groups/ops", KEY) is None
    assert await cache.get("groups/eng", KEY) == _answer("eng")
    assert await cache.get(SHARED_NAMESPACE, KEY) == _answer("shared")


def test_namespace_for_groups_and_shared_mode() -> None:
    cache = ResponseCache(None, CONFIG)
    assert cache.namespace_for("groups/eng") == "groups/eng"
    assert cache.namespace_for("groups/shared") != SHARED_NAMESPACE
    assert cache.namespace_for("") == SHARED_NAMESPACE
    assert cache.namespace_for("groups/eng", group_shared=True) == SHARED_NAMESPACE
    cache.configure(CONFIG.model_copy(update={"shared": True}))
    assert cache.namespace_for("groups/eng") == SHARED_NAMESPACE


async def test_an_answer_larger_than_the_limit_is_not_stored(
    cache: ResponseCache, client: aioredis.Redis
) -> None:
    answer = _answer("word " * 200)
    size = len(entry.encode(answer))
    cache.configure(CONFIG.model_copy(update={"max_entry_bytes": size - 1}))
    assert await cache.put(GROUP, KEY, answer, 60) is False
    assert await client.exists(cache.redis_key(GROUP, KEY)) == 0
    cache.configure(CONFIG.model_copy(update={"max_entry_bytes": size}))
    assert await cache.put(GROUP, KEY, answer, 60) is True


async def test_configure_changes_the_key_prefix(
    cache: ResponseCache, client: aioredis.Redis
) -> None:
    cache.configure(CONFIG.model_copy(update={"key_prefix": "other"}))
    await cache.put(GROUP, KEY, _answer(), 60)
    assert await client.exists(f"other:{GROUP}:{KEY}") == 1


async def test_a_foreign_value_is_a_counted_miss(
    cache: ResponseCache, client: aioredis.Redis
) -> None:
    before = _errors("decode")
    await client.set(cache.redis_key(GROUP, KEY), b"not an entry")
    assert await cache.get(GROUP, KEY) is None
    assert _errors("decode") - before == 1
    assert await cache.put(GROUP, KEY, _answer(), 60) is True  # the next write replaces it
    assert await cache.get(GROUP, KEY) == _answer()


async def test_ttl_must_be_positive(cache: ResponseCache) -> None:
    with pytest.raises(ValueError, match="ttl_seconds"):
        await cache.put(GROUP, KEY, _answer(), 0)


async def test_without_redis_every_get_misses_and_put_is_refused() -> None:
    cache = ResponseCache(None, CONFIG)
    assert await cache.put(GROUP, KEY, _answer(), 60) is False
    assert await cache.get(GROUP, KEY) is None


async def test_redis_down_misses_and_drops_without_raising(
    redis_server: RedisServer, cache: ResponseCache, caplog: pytest.LogCaptureFixture
) -> None:
    assert await cache.put(GROUP, KEY, _answer(), 60) is True
    get_errors, put_errors = _errors("get"), _errors("put")
    await redis_server.process.stop()
    with caplog.at_level(logging.INFO, logger="llmgw.cache"):
        assert await cache.get(GROUP, KEY) is None
        assert await cache.put(GROUP, KEY, _answer(), 60) is False
        await redis_server.restart()
        assert await cache.put(GROUP, KEY, _answer("back"), 60) is True
        assert await cache.get(GROUP, KEY) == _answer("back")
    assert (_errors("get") - get_errors, _errors("put") - put_errors) == (1, 1)
    messages = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "llmgw.cache"]
    assert len(messages) == 2
    assert messages[0][0] == logging.WARNING and "Redis get failed" in messages[0][1]
    assert messages[1] == (logging.INFO, "response cache: Redis answers again")


async def test_redis_unreachable_is_logged_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    closed = create_redis(f"redis://127.0.0.1:{free_port()}/0")
    clock = Clock()
    cache = ResponseCache(closed, CONFIG, clock=clock)
    before = _errors("get")
    try:
        with caplog.at_level(logging.WARNING, logger="llmgw.cache"):
            for _ in range(5):
                assert await cache.get(GROUP, KEY) is None
                assert await cache.put(GROUP, KEY, _answer(), 60) is False
            clock.now += LOG_INTERVAL_SECONDS
            assert await cache.get(GROUP, KEY) is None
    finally:
        await closed.aclose()
    assert _errors("get") - before == 6
    messages = [r.getMessage() for r in caplog.records if r.name == "llmgw.cache"]
    assert len(messages) == 2
    assert "9 more failures since the last warning" in messages[1]
