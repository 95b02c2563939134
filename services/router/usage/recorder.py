"""Usage and cost per subject (a consumer or a group), model and day, in Redis.

One hash per subject and UTC day, `llmgw:usage:{subject}:{YYYY-MM-DD}`, with counters for
the day (`requests`, `input`, `output`, `cached`, `cost` in nano-units, `hits`) and the
same per model (`m:{model}:requests`, ...). One Lua call adds a whole batch of requests
atomically, each with its rate limit settlement (a pipeline of a dozen HINCRBYs cost the
router ~0.8 ms of CPU per request in redis-py): concurrent requests on any number of
replicas add up exactly. Requests that finish while the previous call is in flight go
together in the next one (`services/common/group_commit.py`), so at high rates the Redis
round trip is not paid per request; alone, a request is written at once. Days are kept
`RETENTION_DAYS`.

Recording happens after the answer was produced: a Redis failure is logged and counted,
never turned into a failed request.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
from prometheus_client import Counter, Histogram
from redis.exceptions import RedisError

from llmgw.common.v1 import chat_pb2 as common_pb2
from services.common.group_commit import GroupCommit, Overloaded
from services.common.lua_scripts import LuaScript, ScriptArg
from services.common.redis_metrics import RedisOperation
from services.router.limits.limiter import NO_ADJUSTMENTS, Adjustments

log = logging.getLogger(__name__)

RETENTION_DAYS = 400
PREFIX = "llmgw:usage"
# Whom usage is recorded for while authentication is off (every caller).
ANONYMOUS = "consumers/anonymous"
FIELDS = ("requests", "input", "output", "cached", "cost", "hits")

_RECORD = LuaScript(
    "services.router.usage",
    "record",
    borrowed=[("services.router.limits", "adjust")],
    timed=RedisOperation("router", "usage_record"),
)

RECORD_FAILURES = Counter(
    "llmgw_usage_record_failures_total", "Usage records that could not be written to Redis."
)
RECORD_BATCH = Histogram(
    "llmgw_usage_record_batch_size",
    "Requests whose usage one Redis call recorded.",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
# The most requests one call records, and the most that may wait for a call.
MAX_BATCH = 64
MAX_PENDING = 10_000


def day_of(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).date().isoformat()


def usage_key(subject: str, day: str) -> str:
    return f"{PREFIX}:{subject}:{day}"


@dataclass(frozen=True)
class UsageRecord:
    """One finished request."""

    model: str
    usage: common_pb2.Usage
    cost_nanos: int
    cache_hit: bool = False

    def counters(self) -> dict[str, int]:
        return {
            "requests": 1,
            "input": self.usage.input_tokens,
            "output": self.usage.output_tokens,
            "cached": self.usage.cached_input_tokens,
            "cost": self.cost_nanos,
            "hits": int(self.cache_hit),
        }


@dataclass(frozen=True)
class _Write:
    """One request's part of a batch: its keys and the script arguments after the
    batch's header."""

    keys: list[str]
    args: list[ScriptArg]
    model: str


class UsageRecorder:
    def __init__(
        self,
        redis: aioredis.Redis | None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._clock = clock
        self._writes = GroupCommit(
            self._write,
            max_batch=MAX_BATCH,
            max_pending=MAX_PENDING,
            on_batch=RECORD_BATCH.observe,
        )

    async def record(
        self,
        subjects: Sequence[str],
        record: UsageRecord,
        adjustments: Adjustments = NO_ADJUSTMENTS,
    ) -> bool:
        """Adds the request to each subject's day and applies the rate limiter's
        `adjustments` (its reservation's settlement) in the same call; False when it
        could not be stored."""
        if self._redis is None:
            return False
        day = day_of(self._clock())
        pairs: list[ScriptArg] = []
        for name, value in record.counters().items():
            if value:
                pairs += [name, value]
        adjust_keys, deltas = adjustments
        write = _Write(
            keys=[*(usage_key(s, day) for s in subjects), *adjust_keys],
            args=[record.model, len(subjects), len(pairs) // 2, len(deltas), *pairs, *deltas],
            model=record.model,
        )
        try:
            return await self._writes.submit(write)
        except Overloaded as error:
            RECORD_FAILURES.inc()
            log.warning("usage of a %s request not recorded: %s", record.model, error)
            return False

    async def aclose(self) -> None:
        """Writes what is still waiting (on shutdown, before Redis is closed)."""
        await self._writes.aclose()

    async def _write(self, batch: Sequence[_Write]) -> list[bool]:
        assert self._redis is not None
        keys: list[str] = []
        args: list[ScriptArg] = [RETENTION_DAYS * 86_400, len(batch)]
        for write in batch:
            keys += write.keys
            args += write.args
        try:
            await _RECORD(self._redis, keys, args)
        except (RedisError, OSError) as error:
            RECORD_FAILURES.inc(len(batch))
            models = sorted({write.model for write in batch})
            log.warning(
                "usage of %d request(s) (%s) not recorded: %s",
                len(batch),
                ", ".join(models),
                error,
            )
            return [False] * len(batch)
        return [True] * len(batch)

    async def days(self, subject: str, days: Sequence[str]) -> dict[str, dict[str, int]]:
        """The stored counters of each day that has any."""
        if self._redis is None or not days:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for day in days:
                pipe.hgetall(usage_key(subject, day))
            replies = await pipe.execute()
        found = {}
        for day, raw in zip(days, replies, strict=True):
            if raw:
                found[day] = {_text(k): int(v) for k, v in raw.items()}
        return found


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
