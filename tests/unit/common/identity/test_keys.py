"""API keys over the real Redis: issue, look up, expire, rotate, revoke, delete."""

from __future__ import annotations

import grpc
import pytest
import redis.asyncio as aioredis

from llmgw.identity.v1 import identity_pb2
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound
from services.common.identity import secrets
from services.common.identity.principal import Principal
from services.common.identity.store import IdentityStore, Refusal
from tests.unit.common.identity.conftest import START, FakeClock, NewConsumer


async def test_a_created_key_looks_up_to_its_consumer_and_groups(
    store: IdentityStore, new_consumer: NewConsumer
) -> None:
    await store.create_group(identity_pb2.Group(allowed_models=["*"]), "team")
    await store.create_group(identity_pb2.Group(admin=True), "ops")
    await new_consumer("alice", "team", "ops")
    issued = await store.create_key("consumers/alice")

    assert issued.api_key.name.startswith("consumers/alice/keys/")
    assert issued.secret.startswith(issued.api_key.prefix + "_")
    assert issued.api_key.active
    assert issued.api_key.create_time.seconds == int(START)
    assert not issued.api_key.HasField("expire_time")

    principal = await store.lookup(issued.secret)
    assert isinstance(principal, Principal)
    assert principal.name == "consumers/alice"
    assert principal.key_name == issued.api_key.name
    assert [g.name for g in principal.groups] == ["groups/team", "groups/ops"]
    assert principal.expire_time is None


async def test_wrong_secret_malformed_and_unknown_keys_are_refused(
    store: IdentityStore, new_consumer: NewConsumer
) -> None:
    await new_consumer()
    issued = await store.create_key("consumers/alice")
    parsed = secrets.parse_key(issued.secret)
    assert parsed is not None
    wrong = secrets.format_key(parsed.key_id, secrets.new_secret())
    unknown = secrets.format_key(secrets.new_key_id(), parsed.secret)

    assert await store.verify(wrong) == Refusal.WRONG_SECRET
    assert await store.verify(unknown) == Refusal.UNKNOWN
    assert await store.verify(issued.secret[:-1]) == Refusal.MALFORMED
    assert await store.verify("not a key") == Refusal.MALFORMED
    for token in (wrong, unknown, "", issued.secret + "x"):
        assert await store.lookup(token) is None
    assert await store.lookup(issued.secret) is not None


async def test_a_key_with_a_ttl_stops_working_when_it_expires(
    store: IdentityStore, new_consumer: NewConsumer, clock: FakeClock
) -> None:
    await new_consumer()
    issued = await store.create_key("consumers/alice", ttl=60)
    assert issued.api_key.expire_time.seconds == int(START) + 60
    principal = await store.lookup(issued.secret)
    assert principal is not None and principal.expire_time == START + 60

    clock.advance(59.9)
    assert await store.lookup(issued.secret) is not None
    clock.advance(0.1)
    assert await store.verify(issued.secret) == Refusal.EXPIRED
    assert not (await store.get_key(issued.api_key.name)).active


async def test_rotation_keeps_the_old_key_valid_for_the_overlap_only(
    store: IdentityStore, new_consumer: NewConsumer, clock: FakeClock
) -> None:
    await new_consumer()
    old = await store.create_key("consumers/alice")
    clock.advance(10)
    rotated = await store.rotate_key(old.api_key.name, overlap_seconds=300)

    assert rotated.api_key.name != old.api_key.name
    assert rotated.previous_api_key.name == old.api_key.name
    assert rotated.previous_api_key.expire_time.seconds == int(START) + 10 + 300
    assert rotated.previous_api_key.active
    new_principal = await store.lookup(rotated.secret)
    assert new_principal is not None and new_principal.name == "consumers/alice"

    clock.advance(299)
    assert await store.lookup(old.secret) is not None
    clock.advance(1)
    assert await store.verify(old.secret) == Refusal.EXPIRED
    assert await store.lookup(rotated.secret) is not None

    with pytest.raises(FailedPrecondition):
        await store.rotate_key(old.api_key.name, overlap_seconds=10)


async def test_rotation_never_extends_an_earlier_expiry_and_zero_overlap_ends_it_now(
    store: IdentityStore, new_consumer: NewConsumer
) -> None:
    await new_consumer()
    short = await store.create_key("consumers/alice", ttl=30)
    rotated = await store.rotate_key(short.api_key.name, overlap_seconds=3600, ttl=90)
    assert rotated.previous_api_key.expire_time.seconds == int(START) + 30
    assert rotated.api_key.expire_time.seconds == int(START) + 90

    other = await store.create_key("consumers/alice")
    await store.rotate_key(other.api_key.name, overlap_seconds=0)
    assert await store.verify(other.secret) == Refusal.EXPIRED
    with pytest.raises(InvalidArgument):
        await store.rotate_key(rotated.api_key.name, overlap_seconds=-1)


async def test_a_revoked_key_is_refused_at_once_and_revoking_again_keeps_the_time(
    store: IdentityStore, new_consumer: NewConsumer, clock: FakeClock
) -> None:
    await new_consumer()
    issued = await store.create_key("consumers/alice")
    revoked = await store.revoke_key(issued.api_key.name)
    assert revoked.revoke_time.seconds == int(START)
    assert not revoked.active
    assert await store.verify(issued.secret) == Refusal.REVOKED

    clock.advance(5)
    again = await store.revoke_key(issued.api_key.name)
    assert again.revoke_time == revoked.revoke_time
    with pytest.raises(FailedPrecondition):
        await store.rotate_key(issued.api_key.name, overlap_seconds=10)


async def test_a_disabled_consumer_s_keys_are_refused(
    store: IdentityStore, new_consumer: NewConsumer
) -> None:
    await new_consumer()
    issued = await store.create_key("consumers/alice")
    await store.update_consumer(
        identity_pb2.Consumer(name="consumers/alice", disabled=True), ["disabled"]
    )
    assert await store.verify(issued.secret) == Refusal.DISABLED


async def test_deleting_a_consumer_invalidates_its_keys_even_after_recreating_it(
    store: IdentityStore, new_consumer: NewConsumer, redis: aioredis.Redis
) -> None:
    await new_consumer()
    first = await store.create_key("consumers/alice")
    second = await store.create_key("consumers/alice")
    await store.delete_consumer("consumers/alice")

    assert await store.lookup(first.secret) is None
    assert await store.lookup(second.secret) is None
    await new_consumer()
    assert await store.lookup(first.secret) is None
    assert await store.list_keys("consumers/alice") == ([], "")
    assert not [k async for k in redis.scan_iter("llmgw:identity:key:*")]


async def test_keys_of_another_consumer_answer_like_missing_ones(
    store: IdentityStore, new_consumer: NewConsumer
) -> None:
    await new_consumer("alice")
    await new_consumer("bob")
    bobs = await store.create_key("consumers/bob")
    key_id = bobs.api_key.name.rsplit("/", 1)[1]
    for call in (store.get_key, store.revoke_key):
        with pytest.raises(NotFound) as caught:
            await call(f"consumers/alice/keys/{key_id}")
        assert caught.value.code == grpc.StatusCode.NOT_FOUND
        assert "bob" not in caught.value.message
    with pytest.raises(NotFound) as missing:
        await store.get_key("consumers/alice/keys/nothere")
    assert missing.value.message.replace("nothere", key_id) == caught.value.message
    assert await store.lookup(bobs.secret) is not None


async def test_list_keys_pages_and_shows_state_never_secrets(
    store: IdentityStore, new_consumer: NewConsumer
) -> None:
    await new_consumer()
    issued = [await store.create_key("consumers/alice") for _ in range(5)]
    await store.revoke_key(issued[0].api_key.name)

    page, token = await store.list_keys("consumers/alice", page_size=2)
    seen = list(page)
    while token:
        page, token = await store.list_keys("consumers/alice", page_size=2, page_token=token)
        seen.extend(page)
    assert sorted(k.name for k in seen) == sorted(i.api_key.name for i in issued)
    assert [k.name for k in seen] == sorted(k.name for k in seen)
    active = {k.name: k.active for k in seen}
    assert active[issued[0].api_key.name] is False
    assert sum(active.values()) == 4
    for key in seen:
        assert not any(i.secret in str(key) for i in issued)
    with pytest.raises(NotFound):
        await store.list_keys("consumers/nobody")


async def test_secrets_are_never_stored_in_clear(
    store: IdentityStore, new_consumer: NewConsumer, redis: aioredis.Redis
) -> None:
    await new_consumer()
    issued = await store.create_key("consumers/alice", ttl=600)
    rotated = await store.rotate_key(issued.api_key.name, overlap_seconds=60)
    parts = [secrets.parse_key(s) for s in (issued.secret, rotated.secret)]
    needles = [p.secret.encode() for p in parts if p is not None]
    assert len(needles) == 2

    dumped = b""
    async for key in redis.scan_iter("*"):
        kind = (await redis.type(key)).decode()
        if kind == "hash":
            for field, value in (await redis.hgetall(key)).items():
                dumped += key + field + value
        elif kind == "zset":
            dumped += key + b"".join(await redis.zrange(key, 0, -1))
        elif kind == "string":
            dumped += key + (await redis.get(key) or b"")
        else:
            raise AssertionError(f"unexpected Redis type {kind} of {key!r}")
    assert b"llmgw:identity:key:" in dumped
    for needle in needles:
        assert needle not in dumped


async def test_key_requests_are_validated(store: IdentityStore, new_consumer: NewConsumer) -> None:
    await new_consumer()
    with pytest.raises(InvalidArgument):
        await store.create_key("consumers/alice", ttl=0)
    with pytest.raises(InvalidArgument):
        await store.create_key("alice")
    with pytest.raises(NotFound):
        await store.create_key("consumers/bob")
    with pytest.raises(InvalidArgument):
        await store.revoke_key("consumers/alice/keys/")
