"""Create, get and owner isolation of investigation records."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis

from llmgw.investigation.v1 import investigation_service_pb2 as inv_pb2
from services.common.errors import AlreadyExists, NotFound
from services.investigation.jobs import JobStore
from tests.unit.investigation.conftest import Clock, alert_investigation


async def test_create_stores_it_queued_with_its_first_event(
    store: JobStore, clock: Clock, redis_client: aioredis.Redis
) -> None:
    sent = alert_investigation()
    # Output-only fields a caller sets are not taken.
    sent.state = inv_pb2.INVESTIGATION_STATE_SUCCEEDED
    sent.attempts = 7
    sent.result.summary = "forged"

    created = await store.create(
        sent, investigation_id="inv-1", owner="consumers/a", key_name="consumers/a/keys/k"
    )

    assert created.name == "investigations/inv-1"
    assert created.owner == "consumers/a"
    assert created.state == inv_pb2.INVESTIGATION_STATE_QUEUED
    assert created.attempts == 0
    assert not created.HasField("result")
    assert created.create_time.ToNanoseconds() == round(clock.now * 1e9)
    assert created.alert.alert_name == "KubePodCrashLooping"
    assert await store.get("inv-1", "consumers/a") == created
    record = await redis_client.hgetall("inv:{inv-1}:rec")
    assert inv_pb2.Investigation.FromString(record[b"pb"]) == created
    assert record[b"key_name"] == b"consumers/a/keys/k"
    assert record[b"fence"] == b"0"
    assert record[b"seq"] == b"1"
    assert await redis_client.zscore("inv:idx:all", "inv-1") == int(clock.now * 1000)
    assert await redis_client.zscore("inv:idx:owner:consumers/a", "inv-1") is not None
    assert await redis_client.xlen("inv:queue") == 1
    # Nothing expires while it is open.
    assert await redis_client.ttl("inv:{inv-1}:rec") == -1

    (event,) = await store.history("inv-1")
    assert event.sequence == 1
    assert event.investigation == "investigations/inv-1"
    assert event.state == inv_pb2.INVESTIGATION_STATE_QUEUED
    entries: Any = await redis_client.xrange("inv:{inv-1}:events")
    entry_id = entries[0][0]
    assert entry_id == b"1-1"


async def test_a_taken_id_is_already_exists(store: JobStore) -> None:
    await store.create(alert_investigation(), investigation_id="dup", owner="", key_name="")
    with pytest.raises(AlreadyExists, match="investigations/dup"):
        await store.create(alert_investigation(), investigation_id="dup", owner="", key_name="")


async def test_another_owners_investigation_is_not_found(store: JobStore) -> None:
    await store.create(
        alert_investigation(), investigation_id="mine", owner="consumers/a", key_name=""
    )

    with pytest.raises(NotFound) as missing:
        await store.get("nothing", "consumers/a")
    with pytest.raises(NotFound) as foreign:
        await store.get("mine", "consumers/b")

    assert foreign.value.message == "investigation 'investigations/mine' not found"
    assert missing.value.message == "investigation 'investigations/nothing' not found"
    # Any owner (admin, auth off) sees it.
    assert (await store.get("mine", None)).owner == "consumers/a"
    with pytest.raises(NotFound):
        await store.cancel("mine", "consumers/b")
    with pytest.raises(NotFound):
        await anext(aiter(store.events("mine", "consumers/b", 0)))
