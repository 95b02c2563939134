"""PrincipalCache: hits, revocation across replicas, TTL, key expiry, Redis down; the same
for vouched callers (loaded by key name, without the secret)."""

from __future__ import annotations

import pytest

from llmgw.identity.v1 import identity_pb2
from services.common.errors import Unauthenticated, Unavailable
from services.common.identity import secrets
from services.common.identity.cache import PrincipalCache
from services.common.identity.principal import Principal
from services.common.identity.store import IdentityStore, Refusal
from tests.conftest import RedisServer
from tests.unit.common.identity.conftest import FakeClock, MakeRedis, NewConsumer


class CountingStore(IdentityStore):
    """Counts the lookups that reach Redis."""

    verifies = 0
    loads = 0

    async def verify(self, token: str) -> Principal | Refusal:
        self.verifies += 1
        return await super().verify(token)

    async def principal_of_key(self, key_name: str) -> Principal | Refusal:
        self.loads += 1
        return await super().principal_of_key(key_name)


@pytest.fixture
def replica(make_redis: MakeRedis, clock: FakeClock) -> CountingStore:
    """A second replica's store: its own Redis client, the same Redis."""
    return CountingStore(make_redis(), clock=clock)


def cache_of(
    store: IdentityStore,
    clock: FakeClock,
    *,
    ttl: float = 30.0,
    version_interval: float = 0.25,
    timeout: float = 0.5,
) -> PrincipalCache:
    return PrincipalCache(
        store, ttl=ttl, version_interval=version_interval, timeout=timeout, clock=clock
    )


async def test_a_valid_key_is_served_from_the_cache_until_its_ttl(
    store: IdentityStore, new_consumer: NewConsumer, replica: CountingStore, clock: FakeClock
) -> None:
    await new_consumer()
    issued = await store.create_key("consumers/alice")
    cache = cache_of(replica, clock, ttl=30)

    first = await cache.lookup(issued.secret)
    assert first is not None and first.name == "consumers/alice"
    clock.advance(29)
    assert await cache.lookup(issued.secret) is first
    assert replica.verifies == 1
    clock.advance(1)
    assert await cache.lookup(issued.secret) is not None
    assert replica.verifies == 2


async def test_a_revoke_on_one_replica_is_refused_by_another_within_the_version_interval(
    store: IdentityStore, new_consumer: NewConsumer, replica: CountingStore, clock: FakeClock
) -> None:
    await new_consumer()
    issued = await store.create_key("consumers/alice")
    other = cache_of(replica, clock)
    assert await other.lookup(issued.secret) is not None

    await store.revoke_key(issued.api_key.name)
    # Within one interval the cached answer stands (that is the cache's job) ...
    clock.advance(0.1)
    assert await other.lookup(issued.secret) is not None
    # ... and the first lookup after it reads the version and refuses: 0.25 s < 1 s.
    clock.advance(0.15)
    assert await other.lookup(issued.secret) is None
    with pytest.raises(Unauthenticated):
        await other.authenticate(issued.secret)


async def test_deleting_a_consumer_or_changing_a_group_reaches_the_other_replica(
    store: IdentityStore, new_consumer: NewConsumer, replica: CountingStore, clock: FakeClock
) -> None:
    await store.create_group(identity_pb2.Group(allowed_models=["a"]), "team")
    await new_consumer("alice", "team")
    issued = await store.create_key("consumers/alice")
    other = cache_of(replica, clock)
    before = await other.lookup(issued.secret)
    assert before is not None and list(before.groups[0].allowed_models) == ["a"]

    await store.update_group(
        identity_pb2.Group(name="groups/team", allowed_models=["b"]), ["allowed_models"]
    )
    clock.advance(0.25)
    after = await other.lookup(issued.secret)
    assert after is not None and list(after.groups[0].allowed_models) == ["b"]

    await store.delete_consumer("consumers/alice")
    clock.advance(0.25)
    assert await other.lookup(issued.secret) is None


async def test_a_cached_key_stops_working_when_it_expires(
    store: IdentityStore, new_consumer: NewConsumer, clock: FakeClock
) -> None:
    await new_consumer()
    issued = await store.create_key("consumers/alice", ttl=10)
    cache = cache_of(store, clock, ttl=30, version_interval=3600)
    assert await cache.lookup(issued.secret) is not None
    clock.advance(10)
    assert await cache.lookup(issued.secret) is None


async def test_a_wrong_secret_never_matches_a_cached_key_nor_locks_its_owner_out(
    store: IdentityStore, new_consumer: NewConsumer, replica: CountingStore, clock: FakeClock
) -> None:
    await new_consumer()
    issued = await store.create_key("consumers/alice")
    parsed = secrets.parse_key(issued.secret)
    assert parsed is not None
    wrong = secrets.format_key(parsed.key_id, secrets.new_secret())
    cache = cache_of(replica, clock)

    assert await cache.lookup(issued.secret) is not None
    assert await cache.lookup(wrong) is None
    assert await cache.lookup(wrong) is None
    assert replica.verifies == 2  # the second wrong attempt was a cached refusal
    assert await cache.lookup(issued.secret) is not None
    assert replica.verifies == 2


async def test_missing_and_malformed_keys_are_unauthenticated_without_redis(
    store: IdentityStore, replica: CountingStore, clock: FakeClock
) -> None:
    cache = cache_of(replica, clock)
    for key in (None, ""):
        with pytest.raises(Unauthenticated) as caught:
            await cache.authenticate(key)
        assert caught.value.message == "an API key is required"
    with pytest.raises(Unauthenticated):
        await cache.authenticate("sk-something-else")
    assert replica.verifies == 0


async def test_redis_down_serves_cached_keys_until_their_ttl_and_refuses_the_rest(
    store: IdentityStore,
    new_consumer: NewConsumer,
    redis_server: RedisServer,
    clock: FakeClock,
) -> None:
    await new_consumer()
    known = await store.create_key("consumers/alice")
    unseen = await store.create_key("consumers/alice")
    parsed = secrets.parse_key(known.secret)
    assert parsed is not None
    wrong = secrets.format_key(parsed.key_id, secrets.new_secret())
    cache = cache_of(store, clock, ttl=30, timeout=2)
    assert await cache.lookup(known.secret) is not None
    assert await cache.lookup(wrong) is None

    await redis_server.process.stop()
    clock.advance(1)  # past the version interval: the version check fails too
    assert await cache.lookup(known.secret) is not None
    assert await cache.lookup(wrong) is None
    with pytest.raises(Unavailable) as caught:
        await cache.authenticate(unseen.secret)
    assert caught.value.retry_after is not None

    clock.advance(29)
    with pytest.raises(Unavailable):
        await cache.lookup(known.secret)

    await redis_server.restart()
    assert await cache.lookup(known.secret) is not None
    assert await cache.lookup(unseen.secret) is not None


# -- vouched callers --------------------------------------------------------------------


async def test_a_vouched_caller_is_loaded_once_per_ttl_and_never_by_its_secret(
    store: IdentityStore, new_consumer: NewConsumer, replica: CountingStore, clock: FakeClock
) -> None:
    await new_consumer()
    issued = await store.create_key("consumers/alice")
    cache = cache_of(replica, clock, ttl=30)

    first = await cache.vouched("consumers/alice", issued.api_key.name)
    assert first.name == "consumers/alice" and first.key_name == issued.api_key.name
    clock.advance(29)
    assert await cache.vouched("consumers/alice", issued.api_key.name) is first
    assert (replica.loads, replica.verifies) == (1, 0)
    clock.advance(1)
    await cache.vouched("consumers/alice", issued.api_key.name)
    assert replica.loads == 2


async def test_a_vouched_caller_is_refused_within_the_version_interval_of_a_revoke(
    store: IdentityStore, new_consumer: NewConsumer, replica: CountingStore, clock: FakeClock
) -> None:
    await new_consumer()
    issued = await store.create_key("consumers/alice")
    other = cache_of(replica, clock)
    await other.vouched("consumers/alice", issued.api_key.name)

    await store.revoke_key(issued.api_key.name)
    clock.advance(0.25)
    with pytest.raises(Unauthenticated, match="no longer valid"):
        await other.vouched("consumers/alice", issued.api_key.name)
    # The refusal is cached too: guessing names costs one Redis read per name and TTL.
    loads = replica.loads
    with pytest.raises(Unauthenticated):
        await other.vouched("consumers/alice", issued.api_key.name)
    assert replica.loads == loads


async def test_a_vouched_key_stops_working_when_it_expires(
    store: IdentityStore, new_consumer: NewConsumer, clock: FakeClock
) -> None:
    await new_consumer()
    issued = await store.create_key("consumers/alice", ttl=10)
    cache = cache_of(store, clock, ttl=30, version_interval=3600)
    await cache.vouched("consumers/alice", issued.api_key.name)
    clock.advance(10)
    with pytest.raises(Unauthenticated):
        await cache.vouched("consumers/alice", issued.api_key.name)


async def test_a_vouched_key_must_belong_to_the_vouched_consumer(
    store: IdentityStore, new_consumer: NewConsumer, clock: FakeClock
) -> None:
    await new_consumer()
    await new_consumer("bob")
    issued = await store.create_key("consumers/alice")
    cache = cache_of(store, clock)
    with pytest.raises(Unauthenticated):
        await cache.vouched("consumers/bob", issued.api_key.name)
    await cache.vouched("consumers/alice", issued.api_key.name)  # the cached entry is fine
    with pytest.raises(Unauthenticated):
        await cache.vouched("consumers/bob", issued.api_key.name)


async def test_redis_down_serves_cached_vouched_callers_and_refuses_the_rest(
    store: IdentityStore,
    new_consumer: NewConsumer,
    redis_server: RedisServer,
    clock: FakeClock,
) -> None:
    await new_consumer()
    known = await store.create_key("consumers/alice")
    unseen = await store.create_key("consumers/alice")
    cache = cache_of(store, clock, ttl=30, timeout=2)
    await cache.vouched("consumers/alice", known.api_key.name)

    await redis_server.process.stop()
    clock.advance(1)
    await cache.vouched("consumers/alice", known.api_key.name)
    with pytest.raises(Unavailable) as caught:
        await cache.vouched("consumers/alice", unseen.api_key.name)
    assert caught.value.retry_after is not None
    await redis_server.restart()
