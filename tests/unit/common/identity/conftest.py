"""Fixtures: identity stores over the real Redis, on a clock the test moves."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as aioredis

from llmgw.identity.v1 import identity_pb2
from services.common.identity.store import IdentityStore
from services.common.redis_store import create_redis
from tests.conftest import RedisServer

START = 1_700_000_000.0


class FakeClock:
    """Unix seconds that move only when told."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


MakeRedis = Callable[[], aioredis.Redis]


@pytest.fixture
async def make_redis(redis_server: RedisServer) -> AsyncIterator[MakeRedis]:
    """Separate clients on the test's Redis: one per simulated replica."""
    clients: list[aioredis.Redis] = []

    def make() -> aioredis.Redis:
        client = create_redis(redis_server.url)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
def redis(make_redis: MakeRedis) -> aioredis.Redis:
    return make_redis()


@pytest.fixture
def store(redis: aioredis.Redis, clock: FakeClock) -> IdentityStore:
    return IdentityStore(redis, clock=clock)


NewConsumer = Callable[..., Awaitable[identity_pb2.Consumer]]


@pytest.fixture
def new_consumer(store: IdentityStore) -> NewConsumer:
    async def make(consumer_id: str = "alice", *groups: str) -> identity_pb2.Consumer:
        return await store.create_consumer(
            identity_pb2.Consumer(groups=[f"groups/{g}" for g in groups]), consumer_id
        )

    return make
