"""Claims, heartbeats, fencing, takeover after a worker goes silent, finishing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis

from llmgw.investigation.v1 import investigation_service_pb2 as inv_pb2
from services.investigation.jobs import Fenced, JobStore
from tests.unit.investigation.conftest import (
    CLAIM_IDLE_S,
    DEDUP_WINDOW_S,
    RETENTION_S,
    Clock,
    alert_investigation,
)

RUNNING = inv_pb2.INVESTIGATION_STATE_RUNNING
SUCCEEDED = inv_pb2.INVESTIGATION_STATE_SUCCEEDED


def _progress(stage: str) -> inv_pb2.InvestigationEvent:
    return inv_pb2.InvestigationEvent(progress=inv_pb2.Progress(stage=stage, percent=10))


async def test_claim_takes_a_new_job_running(store: JobStore, clock: Clock) -> None:
    await store.create(alert_investigation(), investigation_id="i", owner="o", key_name="k")
    clock.advance(5)

    job = await store.claim("w1", block_ms=10)

    assert job is not None
    assert (job.id, job.owner, job.key_name, job.attempt, job.fence) == ("i", "o", "k", 1, 1)
    assert job.investigation.state == RUNNING
    assert job.investigation.attempts == 1
    assert job.investigation.start_time.ToNanoseconds() == round(clock.now * 1e9)
    assert await store.get("i", "o") == job.investigation
    events = await store.history("i")
    assert [e.sequence for e in events] == [1, 2]
    assert events[1].state == RUNNING
    # Nothing else to take.
    assert await store.claim("w2", block_ms=10) is None


async def test_emit_numbers_events_and_stores_them(store: JobStore, clock: Clock) -> None:
    await store.create(alert_investigation(), investigation_id="i", owner="", key_name="")
    job = await store.claim("w", block_ms=10)
    assert job is not None
    clock.advance(1)

    stored = await store.emit(job, _progress("gathering_context"))

    assert stored.sequence == 3
    assert stored.investigation == "investigations/i"
    assert stored.time.ToNanoseconds() == round(clock.now * 1e9)
    assert (await store.history("i"))[-1] == stored


async def test_takeover_after_claim_idle_continues_the_sequence_and_fences_the_old_worker(
    store: JobStore,
) -> None:
    await store.create(alert_investigation(), investigation_id="i", owner="", key_name="")
    old = await store.claim("w1", block_ms=10)
    assert old is not None
    await store.emit(old, _progress("gathering_context"))  # seq 3

    # Heartbeats keep the claim past claim_idle...
    for _ in range(3):
        await asyncio.sleep(CLAIM_IDLE_S / 2)
        assert await store.heartbeat(old) is False
    assert await store.claim("w2", block_ms=10) is None
    # ...silence loses it.
    await asyncio.sleep(CLAIM_IDLE_S * 1.5)
    new = await store.claim("w2", block_ms=10)

    assert new is not None
    assert (new.attempt, new.fence) == (2, 2)
    assert new.investigation.attempts == 2
    assert new.investigation.start_time == old.investigation.start_time
    resumed = (await store.history("i"))[-1]
    assert (resumed.sequence, resumed.progress.stage) == (4, "resumed")
    with pytest.raises(Fenced):
        await store.emit(old, _progress("analyzing"))
    with pytest.raises(Fenced):
        await store.heartbeat(old)
    with pytest.raises(Fenced):
        await store.update(old, inv_pb2.Investigation(progress_percent=50))
    with pytest.raises(Fenced):
        await store.finish(old, SUCCEEDED, result=None, error=None, usage=None, cost=None)
    assert (await store.emit(new, _progress("analyzing"))).sequence == 5
    assert [e.sequence for e in await store.history("i")] == [1, 2, 3, 4, 5]


async def test_update_replaces_output_fields(store: JobStore) -> None:
    await store.create(alert_investigation(), investigation_id="i", owner="", key_name="")
    job = await store.claim("w", block_ms=10)
    assert job is not None
    progress = inv_pb2.Investigation(progress_percent=40, cost=0.25, state=SUCCEEDED)
    progress.usage.total_tokens = 1200

    await store.update(job, progress)

    stored = await store.get("i", None)
    assert (stored.progress_percent, stored.cost, stored.usage.total_tokens) == (40, 0.25, 1200)
    assert stored.state == RUNNING  # only the output fields are taken


async def test_finish_stores_the_result_acks_and_starts_expiry(
    store: JobStore, redis_client: aioredis.Redis, clock: Clock
) -> None:
    await store.create(
        alert_investigation(fingerprint="fp"), investigation_id="i", owner="o", key_name=""
    )
    await store.open_for_alert(
        alert_investigation(fingerprint="fp"), investigation_id="j", owner="o", key_name=""
    )
    job = await store.claim("w", block_ms=10)
    assert job is not None and job.id == "i"
    clock.advance(30)
    result = inv_pb2.InvestigationResult(summary="OOM", completeness=inv_pb2.COMPLETENESS_COMPLETE)
    usage = inv_pb2.Investigation().usage
    usage.total_tokens = 10

    finished = await store.finish(job, SUCCEEDED, result=result, error=None, usage=usage, cost=0.5)

    assert job.finished
    assert finished.state == SUCCEEDED
    assert finished.result == result
    assert (finished.usage.total_tokens, finished.cost, finished.progress_percent) == (10, 0.5, 100)
    assert finished.end_time.ToNanoseconds() == round(clock.now * 1e9)
    assert await store.get("i", "o") == finished
    events = await store.history("i")
    assert [e.WhichOneof("event") for e in events[-2:]] == ["result", "state"]
    assert events[-1].state == SUCCEEDED and events[-1].sequence == 4
    pending = await redis_client.xpending("inv:queue", "workers")
    assert pending["pending"] == 0
    queue: Any = await redis_client.xrange("inv:queue")
    assert [e[1][b"id"] for e in queue] == [b"j"]
    for key in ("inv:{i}:rec", "inv:{i}:events"):
        ttl = await redis_client.pttl(key)
        assert RETENTION_S * 1000 - 5000 < ttl <= RETENTION_S * 1000
    # The fingerprint of `j` is the one armed (opened for the alert); `i` had none.
    assert await redis_client.pttl("inv:fp:o:fp") == -1
    # A finished job takes no more writes.
    with pytest.raises(Fenced):
        await store.emit(job, _progress("late"))


async def test_finish_arms_the_dedup_window(store: JobStore, redis_client: aioredis.Redis) -> None:
    await store.open_for_alert(
        alert_investigation(fingerprint="fp"), investigation_id="i", owner="o", key_name=""
    )
    job = await store.claim("w", block_ms=10)
    assert job is not None

    await store.finish(
        job, inv_pb2.INVESTIGATION_STATE_FAILED, result=None, error=None, usage=None, cost=None
    )

    ttl = await redis_client.pttl("inv:fp:o:fp")
    assert DEDUP_WINDOW_S * 1000 - 5000 < ttl <= DEDUP_WINDOW_S * 1000


async def test_claim_skips_finished_and_gone_jobs(
    store: JobStore, redis_client: aioredis.Redis
) -> None:
    for name in ("cancelled", "gone", "live"):
        await store.create(alert_investigation(), investigation_id=name, owner="", key_name="")
    await store.cancel("cancelled", None)
    await redis_client.delete("inv:{gone}:rec")

    job = await store.claim("w", block_ms=10)

    assert job is not None and job.id == "live"
    assert await redis_client.xlen("inv:queue") == 1  # the skipped entries were dropped
    assert (await redis_client.xpending("inv:queue", "workers"))["pending"] == 1


async def test_concurrent_claims_never_hand_out_one_job_twice(redis_client: aioredis.Redis) -> None:
    stores = [
        JobStore(redis_client, retention_s=60, dedup_window_s=60, claim_idle_s=CLAIM_IDLE_S)
        for _ in range(8)
    ]
    for n in range(20):
        await stores[0].create(
            alert_investigation(), investigation_id=f"i{n}", owner="", key_name=""
        )

    async def drain(n: int) -> list[str]:
        taken = []
        while (job := await stores[n].claim(f"w{n}", block_ms=10)) is not None:
            taken.append(job.id)
        return taken

    taken = [job for jobs in await asyncio.gather(*(drain(n) for n in range(8))) for job in jobs]

    assert sorted(taken) == sorted(f"i{n}" for n in range(20))


async def test_concurrent_takeovers_of_one_stale_job_give_it_to_one_worker(
    redis_client: aioredis.Redis,
) -> None:
    stores = [
        JobStore(redis_client, retention_s=60, dedup_window_s=60, claim_idle_s=CLAIM_IDLE_S)
        for _ in range(8)
    ]
    await stores[0].create(alert_investigation(), investigation_id="i", owner="", key_name="")
    assert await stores[0].claim("dead", block_ms=10) is not None
    await asyncio.sleep(CLAIM_IDLE_S * 1.5)

    jobs = await asyncio.gather(*(s.claim(f"w{n}", block_ms=10) for n, s in enumerate(stores)))

    winners = [job for job in jobs if job is not None]
    assert len(winners) == 1
    assert (winners[0].attempt, winners[0].fence) == (2, 2)
    assert [e.progress.stage for e in await stores[0].history("i")].count("resumed") == 1


async def test_a_takeover_loses_to_a_heartbeat_that_came_before_its_claim(
    store: JobStore, redis_client: aioredis.Redis
) -> None:
    """The race of a stalled worker waking up: another worker took its queue entry
    (XAUTOCLAIM) but has not raised the fence yet when the old worker's heartbeat comes.
    The heartbeat keeps the job (its fence is still the record's), and the taker backs off."""
    await store.create(alert_investigation(), investigation_id="i", owner="", key_name="")
    old = await store.claim("w1", block_ms=10)
    assert old is not None
    await asyncio.sleep(CLAIM_IDLE_S * 1.5)
    entry = await store._next_entry("w2", block_ms=10)  # the first half of w2's claim
    assert entry == (old.entry_id, "i")

    assert await store.heartbeat(old) is False
    assert await store._take("w2", *entry) is None  # the second half

    assert (await store.get("i", None)).attempts == 1
    pending = await redis_client.xpending_range("inv:queue", "workers", "-", "+", 10)
    assert [p["consumer"] for p in pending] == [b"w1"]
    await store.emit(old, _progress("analyzing"))


async def test_queue_stats_count_waiting_and_running(store: JobStore) -> None:
    assert await store.queue_stats() == (0, 0, 0.0)
    for name in ("a", "b", "c"):
        await store.create(alert_investigation(), investigation_id=name, owner="", key_name="")
    assert (await store.queue_stats())[:2] == (3, 0)
    job = await store.claim("w", block_ms=10)
    assert job is not None
    waiting, running, _ = await store.queue_stats()
    assert (waiting, running) == (2, 1)
    await store.finish(job, SUCCEEDED, result=inv_pb2.InvestigationResult(), error=None)
    assert (await store.queue_stats())[:2] == (2, 0)
