"""Cached answers in Redis, one namespace per consumer group unless configured as shared.

A cache never fails a request: a read that fails (Redis unreachable, slow or erroring,
an unreadable entry) is a miss, a write that fails is dropped. Failures are counted per
operation and logged without flooding: a WARNING on the first, then at most one per
minute with the number since, and one INFO when Redis answers again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from services.common.cache_config import CacheConfig
from services.common.redis_metrics import RedisOperation
from services.router.cache import metrics
from services.router.cache.entry import CachedAnswer, decode, encode

log = logging.getLogger("llmgw.cache")

SHARED_NAMESPACE = "shared"
# A cache operation gives up after this long: a slow Redis must not slow requests down.
DEFAULT_TIMEOUT_SECONDS = 0.5
# While Redis keeps failing, one WARNING per this many seconds.
LOG_INTERVAL_SECONDS = 60.0

_REDIS_FAILURES = (RedisError, OSError, TimeoutError)
# Timed around the operation's own timeout, so a Redis slower than it counts as failed.
_GET = RedisOperation("router", "cache_get")
_PUT = RedisOperation("router", "cache_put")


class _FailureLog:
    """Rate-limited logging of Redis failures across operations."""

    def __init__(self, clock: Callable[[], float], interval: float) -> None:
        self._clock = clock
        self._interval = interval
        self._failing = False
        self._last_warning = 0.0
        self._unlogged = 0

    def failed(self, operation: str, error: BaseException) -> None:
        now = self._clock()
        if self._failing and now - self._last_warning < self._interval:
            self._unlogged += 1
            return
        since = f" ({self._unlogged} more failures since the last warning)" if self._failing else ""
        log.warning(
            "response cache: Redis %s failed (%s: %s); requests go to providers%s",
            operation,
            type(error).__name__,
            error,
            since,
        )
        self._failing, self._last_warning, self._unlogged = True, now, 0

    def succeeded(self) -> None:
        if self._failing:
            self._failing, self._unlogged = False, 0
            log.info("response cache: Redis answers again")


class ResponseCache:
    """Gets and puts cached answers; every method is safe to call with Redis down.

    `redis` must return bytes (no `decode_responses`), as `create_redis` clients do;
    None runs without a cache (every get misses, every put is refused).
    """

    def __init__(
        self,
        redis: aioredis.Redis | None,
        config: CacheConfig,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._config = config
        self._timeout = timeout
        self._failures = _FailureLog(clock, LOG_INTERVAL_SECONDS)

    @property
    def config(self) -> CacheConfig:
        return self._config

    def configure(self, config: CacheConfig) -> None:
        """A reloaded configuration; applies from the next operation on."""
        self._config = config

    def namespace_for(self, group: str, *, group_shared: bool = False) -> str:
        """The namespace of a caller's consumer group: `shared` when the cache is shared
        (configured so, or the group's own `shared_cache`) or there is no group.

        `group` is the group's resource name (`groups/{group}`), which never equals
        `shared`, so no group can read the shared namespace by its name.
        """
        if self._config.shared or group_shared or not group:
            return SHARED_NAMESPACE
        return group

    def redis_key(self, namespace: str, key: str) -> str:
        return f"{self._config.key_prefix}:{namespace}:{key}"

    async def get(self, namespace: str, key: str) -> CachedAnswer | None:
        """The answer stored under `key`, or None (absent, expired, unreadable, or Redis
        failed)."""
        value = await self.get_bytes(namespace, key)
        if value is None:
            return None
        answer = decode(value)
        if answer is None:
            # Another format version (during a rolling upgrade) or a foreign value; the
            # next write replaces it.
            metrics.ERRORS.labels("decode").inc()
        return answer

    async def get_bytes(self, namespace: str, key: str) -> bytes | None:
        """The stored value under `key` as is (the embeddings cache decodes its own), or
        None (absent, expired, or Redis failed)."""
        if self._redis is None:
            return None
        try:
            with _GET.timed():
                async with asyncio.timeout(self._timeout):
                    value = await self._redis.get(self.redis_key(namespace, key))
        except _REDIS_FAILURES as error:
            self._failed("get", error)
            return None
        self._failures.succeeded()
        return value if isinstance(value, bytes) else None

    async def put(self, namespace: str, key: str, answer: CachedAnswer, ttl_seconds: int) -> bool:
        """Stores `answer` for `ttl_seconds` (> 0), replacing any entry; False when it
        was not stored (larger than `max_entry_bytes`, no Redis, or Redis failed)."""
        return await self.put_bytes(namespace, key, encode(answer), ttl_seconds)

    async def put_bytes(self, namespace: str, key: str, value: bytes, ttl_seconds: int) -> bool:
        """Stores an encoded value, as `put` does."""
        if ttl_seconds <= 0:
            raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds}")
        if self._redis is None:
            return False
        if len(value) > self._config.max_entry_bytes:
            log.debug(
                "response cache: answer of %d bytes not stored (max_entry_bytes %d)",
                len(value),
                self._config.max_entry_bytes,
            )
            return False
        try:
            with _PUT.timed():
                async with asyncio.timeout(self._timeout):
                    await self._redis.set(self.redis_key(namespace, key), value, ex=ttl_seconds)
        except _REDIS_FAILURES as error:
            self._failed("put", error)
            return False
        self._failures.succeeded()
        metrics.STORED_BYTES.inc(len(value))
        return True

    def _failed(self, operation: str, error: BaseException) -> None:
        metrics.ERRORS.labels(operation).inc()
        self._failures.failed(operation, error)
