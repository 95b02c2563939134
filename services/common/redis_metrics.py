"""How long each Redis operation of a service takes, and how often Redis fails it.

One helper for every store: a `RedisOperation` names one operation of one service (both
constants in code: `session_append`, `limits_acquire`, `cache_get`, never a key) and
times what runs inside `with operation.timed():`. A Lua script built with one is timed
on every call (`LuaScript(..., timed=...)`). Its label children are bound once, so a
timed command costs two clock reads and one histogram observation (a few microseconds).

A Redis failure (a `RedisError`, a socket error, a timeout) raised inside the block is
counted in `llmgw_redis_errors_total`; the duration is observed either way, so a slow
failing Redis shows in the histogram too. A cancellation is neither: the command's end
was never seen.
"""

from __future__ import annotations

import time
from types import TracebackType

from prometheus_client import Counter, Histogram
from redis.exceptions import RedisError

# What "Redis could not serve the command" looks like to redis-py callers.
REDIS_FAILURES = (RedisError, OSError, TimeoutError)

# From 0.1 ms (a local GET) to 2.5 s (past the client's socket timeout of 2 s).
_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
)  # fmt: skip
COMMAND_DURATION = Histogram(
    "llmgw_redis_command_duration_seconds",
    "Time of one Redis operation as the service saw it (a command, a pipeline or a Lua "
    "script, round trip included), failed ones too, by service and operation (a name "
    "fixed in code, never a key).",
    ["service", "operation"],
    buckets=_BUCKETS,
)
ERRORS = Counter(
    "llmgw_redis_errors_total",
    "Redis operations that failed (connection refused or lost, timeout, an error reply), "
    "by service and operation.",
    ["service", "operation"],
)


class _Timing:
    __slots__ = ("_operation", "_start")

    def __init__(self, operation: RedisOperation) -> None:
        self._operation = operation
        self._start = 0.0

    def __enter__(self) -> None:
        self._start = time.perf_counter()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is not None and not issubclass(kind, REDIS_FAILURES):
            # Cancelled, or the caller's own exception: not a Redis command's outcome.
            return
        self._operation.duration.observe(time.perf_counter() - self._start)
        if kind is not None:
            self._operation.errors.inc()


class RedisOperation:
    """One named Redis operation of one service."""

    __slots__ = ("duration", "errors", "name", "service")

    def __init__(self, service: str, name: str) -> None:
        self.service = service
        self.name = name
        self.duration = COMMAND_DURATION.labels(service, name)
        self.errors = ERRORS.labels(service, name)

    def timed(self) -> _Timing:
        """A context manager timing one use (safe to use concurrently)."""
        return _Timing(self)
