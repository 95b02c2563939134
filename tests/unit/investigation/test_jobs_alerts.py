"""Alerts: one investigation per fingerprint while open or within the dedup window;
a resolved alert recorded against it."""

from __future__ import annotations

import redis.asyncio as aioredis
from google.protobuf import timestamp_pb2

from llmgw.investigation.v1 import investigation_service_pb2 as inv_pb2
from services.investigation.jobs import JobStore
from tests.unit.investigation.conftest import alert_investigation


async def _open(
    store: JobStore, investigation_id: str, fingerprint: str = "fp", owner: str = "o"
) -> tuple[inv_pb2.Investigation, bool]:
    return await store.open_for_alert(
        alert_investigation(fingerprint=fingerprint),
        investigation_id=investigation_id,
        owner=owner,
        key_name="",
    )


async def test_an_open_fingerprint_is_deduplicated(store: JobStore) -> None:
    first, opened = await _open(store, "a")
    assert opened
    joined, opened_again = await _open(store, "b")

    assert not opened_again
    assert joined.name == first.name
    assert joined.duplicate_alerts == 1
    assert (await _open(store, "c"))[0].duplicate_alerts == 2
    assert (await store.get("a", "o")).duplicate_alerts == 2
    # Another fingerprint, or another owner's same fingerprint, opens its own.
    assert (await _open(store, "d", fingerprint="other"))[1]
    assert (await _open(store, "e", owner="p"))[1]


async def test_within_the_dedup_window_after_finishing_then_a_new_one(
    store: JobStore, redis_client: aioredis.Redis
) -> None:
    await _open(store, "a")
    job = await store.claim("w", block_ms=10)
    assert job is not None
    await store.finish(job, inv_pb2.INVESTIGATION_STATE_SUCCEEDED, result=None, error=None)

    joined, opened = await _open(store, "b")
    assert (joined.name, opened) == ("investigations/a", False)
    assert joined.state == inv_pb2.INVESTIGATION_STATE_SUCCEEDED

    await redis_client.delete("inv:fp:o:fp")  # as the window's expiry does
    fresh, opened = await _open(store, "b")
    assert (fresh.name, opened) == ("investigations/b", True)


async def test_a_fingerprint_whose_investigation_expired_opens_a_new_one(
    store: JobStore, redis_client: aioredis.Redis
) -> None:
    await _open(store, "a")
    await redis_client.delete("inv:{a}:rec")

    fresh, opened = await _open(store, "b")

    assert opened and fresh.name == "investigations/b"
    assert await redis_client.get("inv:fp:o:fp") == b"b"


async def test_a_resolved_alert_is_recorded_against_its_investigation(store: JobStore) -> None:
    await _open(store, "a")
    resolved_at = timestamp_pb2.Timestamp(seconds=1_750_000_100)

    recorded = await store.record_resolved("fp", "o", resolved_at)

    assert recorded is not None and recorded.name == "investigations/a"
    assert recorded.alert.resolved_at == resolved_at
    assert (await store.get("a", None)).alert.resolved_at == resolved_at
    assert await store.record_resolved("fp", "other-owner", resolved_at) is None
    assert await store.record_resolved("unknown", "o", resolved_at) is None
