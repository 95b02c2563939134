"""The breaker registry over a real Redis: the machine's table replayed through the Lua
scripts, replicas sharing state, the probe race, batching, Redis outages, metrics."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from services.common.breaker_machine import BreakerMachine
from services.common.gateway_config import BreakerConfig
from services.common.redis_store import create_redis
from services.launcher.processes import wait_port
from services.router.routing.breaker import (
    Admission,
    BreakerRegistry,
    BreakerState,
    BreakerView,
    Outcome,
    key_ttl_seconds,
)
from tests.conftest import RedisServer
from tests.unit.router.test_breaker_machine import CONFIG, SCENARIOS, T0

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN
OK, FAIL, NEUTRAL = Outcome.SUCCESS, Outcome.FAILURE, Outcome.NEUTRAL
PREFIX = "llmgw:breaker:"
KEY = "openai/gpt-4o:eu"  # keys are opaque: '/' and ':' included


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


MakeRegistry = Callable[..., BreakerRegistry]


@pytest.fixture
def client(redis_client: aioredis.Redis) -> aioredis.Redis:
    """A direct client, to look at what the registries store and count script calls."""
    return redis_client


@pytest.fixture
async def make_registry(redis_server: RedisServer) -> AsyncIterator[MakeRegistry]:
    """Registries (= router replicas), each with its own Redis client; closed after."""
    made: list[tuple[BreakerRegistry, aioredis.Redis | None]] = []

    def make(
        clock: Clock, config: BreakerConfig = CONFIG, *, with_redis: bool = True
    ) -> BreakerRegistry:
        redis = create_redis(redis_server.url) if with_redis else None
        registry = BreakerRegistry(redis, config, clock=clock)
        made.append((registry, redis))
        return registry

    yield make
    for registry, redis in made:
        await registry.close()
        if redis is not None:
            await redis.aclose()


async def script_calls(client: aioredis.Redis) -> int:
    stats = await client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def stored(client: aioredis.Redis, key: str = KEY) -> BreakerMachine:
    fields = await client.hmget(PREFIX + key, ["s", "r", "c", "w", "t", "f", "l"])
    values = [float(x) for x in fields if x is not None]
    assert len(values) == 7, f"no breaker hash for {key}"
    s, r, c, w, t, f, last = values
    return BreakerMachine(BreakerState(int(s)), r, int(c), int(w), int(t), int(f), last)


async def open_breaker(registry: BreakerRegistry, clock: Clock, key: str = KEY) -> float:
    """Three failures in a row at the clock's time; returns the reopen time."""
    for _ in range(CONFIG.consecutive_failures):
        await registry.record(key, FAIL)
    view = registry.view(key)
    assert view.state is OPEN
    assert view.reopen_at == clock.now + CONFIG.open_seconds
    return view.reopen_at


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {within}s")
        await asyncio.sleep(0.02)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize("backend", ["redis", "local"])
@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_registry_follows_the_machine_table(
    name: str, backend: str, make_registry: MakeRegistry, client: aioredis.Redis
) -> None:
    clock = Clock()
    registry = make_registry(clock, with_redis=backend == "redis")
    reference = BreakerMachine()
    for i, step in enumerate(SCENARIOS[name]):
        clock.now = T0 + step.at
        if step.outcome is None:
            got: Admission | BreakerView = await registry.admit(KEY)
            reference.admit(clock.now, CONFIG)
        else:
            await registry.record(KEY, step.outcome, probe=step.probe)
            reference.record(step.outcome, clock.now, CONFIG, probe=step.probe)
            got = registry.view(KEY)
        assert got == step.expect, f"step {i} at +{step.at}"
    if backend == "redis":
        # Flushes any batched successes, then Redis holds exactly the machine's state.
        assert (await registry.refresh([KEY]))[KEY] == reference.view()
        assert await stored(client) == reference


async def test_a_closed_breaker_costs_no_redis_call(
    make_registry: MakeRegistry, client: aioredis.Redis
) -> None:
    clock = Clock()
    registry = make_registry(clock)
    assert (await registry.admit(KEY)).allowed  # a new key is looked up once
    await registry.refresh([KEY])  # (so Redis has loaded both scripts: NOSCRIPT counts)
    before = await script_calls(client)
    for _ in range(100):
        assert await registry.admit(KEY) == Admission(True, False, CLOSED, 0.0)
        await registry.record(KEY, OK)
    assert await script_calls(client) == before
    await registry.refresh([KEY, "other/model"])
    assert await script_calls(client) == before + 1  # every key in one round trip
    assert (await stored(client)).total == 100


async def test_failures_on_one_replica_open_the_breaker_for_another(
    make_registry: MakeRegistry, client: aioredis.Redis, redis_server: RedisServer
) -> None:
    clock = Clock()
    a, b = make_registry(clock), make_registry(clock)
    assert (await b.admit(KEY)).allowed
    reopen_at = await open_breaker(a, clock)
    assert await a.admit(KEY) == Admission(False, False, OPEN, reopen_at)
    assert b.view(KEY).state is CLOSED  # until b syncs

    views = await b.refresh([KEY])
    assert views[KEY] == BreakerView(OPEN, reopen_at, CONFIG.consecutive_failures)
    before = await script_calls(client)
    clock.now += 10
    for _ in range(10):
        assert await b.admit(KEY) == Admission(False, False, OPEN, reopen_at)
    assert await script_calls(client) == before

    # b's rejections never needed Redis.
    await redis_server.process.stop()
    assert await b.admit(KEY) == Admission(False, False, OPEN, reopen_at)


async def test_the_sync_task_spreads_state_and_flushes_batches(
    make_registry: MakeRegistry, client: aioredis.Redis
) -> None:
    clock = Clock()
    fast = CONFIG.model_copy(update={"sync_interval": 0.05})
    a, b = make_registry(clock, fast), make_registry(clock, fast)
    await b.start()
    await b.record(KEY, OK)  # batched: only the sync task sends it

    async def flushed() -> bool:
        return await client.hget(PREFIX + KEY, "t") == b"1"

    await eventually(flushed)
    reopen_at = await open_breaker(a, clock)

    async def b_sees_it_open() -> bool:
        return b.view(KEY) == BreakerView(OPEN, reopen_at, CONFIG.consecutive_failures)

    await eventually(b_sees_it_open)


async def test_exactly_one_caller_across_replicas_wins_the_probe(
    make_registry: MakeRegistry,
) -> None:
    clock = Clock()
    a, b = make_registry(clock), make_registry(clock)
    reopen_at = await open_breaker(a, clock)
    await b.refresh([KEY])
    clock.now = reopen_at
    entered_before = sample("llmgw_breaker_transitions_total", deployment=KEY, state="half_open")
    admissions = await asyncio.gather(*(r.admit(KEY) for _ in range(25) for r in (a, b)))
    winners = [x for x in admissions if x.allowed]
    assert winners == [Admission(True, True, HALF_OPEN, 0.0)]
    lease_end = reopen_at + CONFIG.probe_timeout
    losers = [x for x in admissions if not x.allowed]
    assert losers == [Admission(False, False, HALF_OPEN, lease_end)] * 49
    after = sample("llmgw_breaker_transitions_total", deployment=KEY, state="half_open")
    assert after == entered_before + 1


async def test_probe_outcomes_are_seen_by_every_replica(make_registry: MakeRegistry) -> None:
    clock = Clock()
    a, b = make_registry(clock), make_registry(clock)
    reopen_at = await open_breaker(a, clock)
    clock.now = reopen_at
    assert (await a.admit(KEY)).probe
    lease_end = clock.now + CONFIG.probe_timeout
    await b.refresh([KEY])
    assert await b.admit(KEY) == Admission(False, False, HALF_OPEN, lease_end)

    # a's call failed through no fault of the deployment: b may probe at once.
    clock.now += 1
    await a.record(KEY, NEUTRAL, probe=True)
    assert (await b.admit(KEY)).probe
    clock.now += 1
    await b.record(KEY, FAIL, probe=True)
    reopen_at = clock.now + CONFIG.open_seconds
    assert (await a.refresh([KEY]))[KEY].reopen_at == reopen_at
    assert await a.admit(KEY) == Admission(False, False, OPEN, reopen_at)

    # a's probe hangs past its lease: b probes instead and closes the breaker.
    clock.now = reopen_at
    assert (await a.admit(KEY)).probe
    clock.now += CONFIG.probe_timeout
    await b.refresh([KEY])
    assert (await b.admit(KEY)).probe
    await b.record(KEY, OK, probe=True)
    assert (await a.refresh([KEY]))[KEY] == BreakerView(CLOSED, 0.0, 0)
    assert await a.admit(KEY) == Admission(True, False, CLOSED, 0.0)


async def test_the_failure_rate_counts_every_replicas_batched_successes(
    make_registry: MakeRegistry, client: aioredis.Redis
) -> None:
    clock = Clock()
    rate_only = CONFIG.model_copy(update={"consecutive_failures": 100, "min_requests": 10})
    a, b = make_registry(clock, rate_only), make_registry(clock, rate_only)
    for _ in range(6):
        await b.record(KEY, OK)
    await b.refresh([KEY])
    for _ in range(5):
        await a.record(KEY, FAIL)
        assert a.view(KEY).state is CLOSED  # at most 5 of 11 failed
    await a.record(KEY, FAIL)  # 6 of 12: without b's six successes, 6 < min_requests
    assert a.view(KEY).state is OPEN
    hash_ = await stored(client)
    assert (hash_.total, hash_.failures) == (12, 6)


async def test_a_batched_success_resets_only_failures_older_than_it(
    make_registry: MakeRegistry,
) -> None:
    clock = Clock()
    a, b, c = make_registry(clock), make_registry(clock), make_registry(clock)
    await a.record(KEY, OK)  # batched at T0 + 0
    clock.now = T0 + 1
    await b.record(KEY, FAIL)
    clock.now = T0 + 2
    assert (await a.refresh([KEY]))[KEY].consecutive_failures == 1

    clock.now = T0 + 3
    await c.record(KEY, OK)  # batched: c has not seen the failure
    assert (await c.refresh([KEY]))[KEY].consecutive_failures == 0


async def test_redis_outage_falls_back_to_local_breakers_and_resyncs(
    make_registry: MakeRegistry,
    client: aioredis.Redis,
    redis_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="llmgw.breaker")
    clock, b_clock = Clock(), Clock()
    fast = CONFIG.model_copy(update={"sync_interval": 0.05})
    a, b = make_registry(clock, fast), make_registry(b_clock)
    await a.start()
    await a.record(KEY, OK)
    await b.refresh([KEY])

    await redis_server.process.stop()
    for _ in range(CONFIG.consecutive_failures):
        await a.record(KEY, FAIL)
    reopen_at = clock.now + CONFIG.open_seconds
    assert a.view(KEY) == BreakerView(OPEN, reopen_at, CONFIG.consecutive_failures)
    assert await a.admit(KEY) == Admission(False, False, OPEN, reopen_at)
    assert (await a.refresh([KEY]))[KEY].state is OPEN
    # b decides on its own too; both keep working and nothing raises.
    for _ in range(CONFIG.consecutive_failures):
        assert (await b.admit(KEY)).allowed
        await b.record(KEY, FAIL)
    assert await b.admit(KEY) == Admission(False, False, OPEN, reopen_at)
    b_clock.now = reopen_at
    assert (await b.admit(KEY)).probe  # a local probe, per replica
    await b.record(KEY, OK, probe=True)
    assert b.view(KEY).state is CLOSED
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2  # one per replica, not one per call

    await redis_server.process.start()
    await wait_port("127.0.0.1", redis_server.port, 10, redis_server.process)

    async def a_resynced() -> bool:
        # a opened it while Redis was away: its sync task offers that to Redis.
        return await client.hget(PREFIX + KEY, "s") == b"2"

    await eventually(a_resynced)
    assert (await b.refresh([KEY]))[KEY] == BreakerView(OPEN, reopen_at, 0)
    infos = [r for r in caplog.records if r.levelno == logging.INFO]
    assert len(infos) == 2


async def test_metrics_follow_the_transitions(make_registry: MakeRegistry) -> None:
    clock = Clock()
    registry = make_registry(clock)
    key = f"metrics/{uuid.uuid4().hex}"

    def state() -> float | None:
        return REGISTRY.get_sample_value("llmgw_breaker_state", {"deployment": key})

    def entered(name: str) -> float:
        return sample("llmgw_breaker_transitions_total", deployment=key, state=name)

    await registry.admit(key)
    assert state() == 0
    reopen_at = await open_breaker(registry, clock, key)
    assert (state(), entered("open")) == (1, 1)
    assert not (await registry.admit(key)).allowed
    assert sample("llmgw_breaker_short_circuits_total", deployment=key) == 1
    clock.now = reopen_at
    assert (await registry.admit(key)).probe
    assert (state(), entered("half_open")) == (2, 1)
    await registry.record(key, OK, probe=True)
    assert (state(), entered("closed")) == (0, 1)
    assert entered("open") == 1


async def test_disabled_breakers_admit_everything_and_record_nothing(
    make_registry: MakeRegistry, client: aioredis.Redis
) -> None:
    clock = Clock()
    registry = make_registry(clock, CONFIG.model_copy(update={"enabled": False}))
    for _ in range(10):
        assert (await registry.admit(KEY)).allowed
        await registry.record(KEY, FAIL)
    assert registry.view(KEY) == BreakerView(CLOSED, 0.0, 0)
    assert await client.exists(PREFIX + KEY) == 0
    assert await script_calls(client) == 0


async def test_configure_keeps_state_and_applies_new_thresholds(
    make_registry: MakeRegistry,
) -> None:
    clock = Clock()
    registry = make_registry(clock)
    reopen_at = await open_breaker(registry, clock)
    registry.configure(CONFIG.model_copy(update={"consecutive_failures": 1, "open_seconds": 5}))
    assert registry.view(KEY).reopen_at == reopen_at
    await registry.record("other", FAIL)
    assert registry.view("other").reopen_at == clock.now + 5


async def test_breaker_hashes_expire_after_a_while_unused(
    make_registry: MakeRegistry, client: aioredis.Redis
) -> None:
    registry = make_registry(Clock())
    await registry.record(KEY, FAIL)
    ttl_ms = await client.pttl(PREFIX + KEY)
    assert 0 < ttl_ms <= key_ttl_seconds(CONFIG) * 1000
    assert ttl_ms > (key_ttl_seconds(CONFIG) - 10) * 1000


async def test_close_flushes_batched_successes(
    make_registry: MakeRegistry, client: aioredis.Redis
) -> None:
    registry = make_registry(Clock())
    for _ in range(3):
        await registry.record(KEY, OK)
    assert await client.exists(PREFIX + KEY) == 0
    await registry.close()
    assert (await stored(client)).total == 3


async def test_a_replica_new_to_a_key_asks_redis_before_its_first_call(
    make_registry: MakeRegistry,
) -> None:
    clock = Clock()
    a, b = make_registry(clock), make_registry(clock)
    reopen_at = await open_breaker(a, clock)
    assert await b.admit(KEY) == Admission(False, False, OPEN, reopen_at)


async def test_a_snapshot_follows_redis_after_redis_lost_its_data(
    make_registry: MakeRegistry, client: aioredis.Redis
) -> None:
    clock = Clock()
    registry = make_registry(clock)
    await open_breaker(registry, clock)
    await client.flushdb()
    assert (await registry.refresh([KEY]))[KEY] == BreakerView(CLOSED, 0.0, 0)
    await registry.record(KEY, FAIL)
    assert registry.view(KEY) == BreakerView(CLOSED, 0.0, 1)
