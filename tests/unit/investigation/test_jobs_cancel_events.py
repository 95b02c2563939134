"""Cancel (queued, running, final) and following events (resume, end at the final state)."""

from __future__ import annotations

import asyncio

from llmgw.investigation.v1 import investigation_service_pb2 as inv_pb2
from services.investigation.jobs import JobStore
from tests.unit.investigation.conftest import CLAIM_IDLE_S, Clock, alert_investigation

QUEUED = inv_pb2.INVESTIGATION_STATE_QUEUED
RUNNING = inv_pb2.INVESTIGATION_STATE_RUNNING
CANCELLED = inv_pb2.INVESTIGATION_STATE_CANCELLED
SUCCEEDED = inv_pb2.INVESTIGATION_STATE_SUCCEEDED


async def test_cancel_of_a_queued_one_is_immediate(store: JobStore, clock: Clock) -> None:
    await store.create(alert_investigation(), investigation_id="i", owner="o", key_name="")
    clock.advance(2)

    cancelled = await store.cancel("i", "o")

    assert cancelled.state == CANCELLED
    assert cancelled.end_time.ToNanoseconds() == round(clock.now * 1e9)
    assert cancelled.result.completeness == inv_pb2.COMPLETENESS_PARTIAL
    assert cancelled.result.partial_reason == inv_pb2.PARTIAL_REASON_CANCELLED
    assert cancelled.result.partial_detail
    assert await store.get("i", "o") == cancelled
    events = await store.history("i")
    assert [(e.sequence, e.state) for e in events] == [(1, QUEUED), (2, CANCELLED)]
    # No worker ever runs it.
    assert await store.claim("w", block_ms=10) is None
    # Cancelling again changes nothing.
    assert await store.cancel("i", "o") == cancelled


async def test_cancel_of_a_running_one_is_reported_to_its_worker(store: JobStore) -> None:
    await store.create(alert_investigation(), investigation_id="i", owner="o", key_name="")
    job = await store.claim("w", block_ms=10)
    assert job is not None
    assert await store.heartbeat(job) is False

    answered = await store.cancel("i", "o")

    assert answered.state == RUNNING
    assert await store.heartbeat(job) is True
    result = inv_pb2.InvestigationResult(
        completeness=inv_pb2.COMPLETENESS_PARTIAL, partial_reason=inv_pb2.PARTIAL_REASON_CANCELLED
    )
    finished = await store.finish(job, CANCELLED, result=result, error=None, usage=None, cost=None)
    assert await store.cancel("i", "o") == finished


async def test_a_takeover_of_a_cancelled_running_job_finishes_it_cancelled(
    store: JobStore,
) -> None:
    await store.create(alert_investigation(), investigation_id="i", owner="", key_name="")
    assert await store.claim("dead", block_ms=10) is not None
    await store.cancel("i", None)
    await asyncio.sleep(CLAIM_IDLE_S * 1.5)

    assert await store.claim("w", block_ms=10) is None

    stored = await store.get("i", None)
    assert stored.state == CANCELLED
    assert stored.result.partial_reason == inv_pb2.PARTIAL_REASON_CANCELLED


async def test_events_replay_then_follow_until_the_final_state(store: JobStore) -> None:
    await store.create(alert_investigation(), investigation_id="i", owner="o", key_name="")
    job = await store.claim("w", block_ms=10)
    assert job is not None
    seen: list[inv_pb2.InvestigationEvent] = []
    two_seen = asyncio.Event()

    async def follow() -> None:
        async for event in store.events("i", "o", 0, poll_ms=50):
            seen.append(event)
            if len(seen) == 2:
                two_seen.set()

    follower = asyncio.create_task(follow())
    await asyncio.wait_for(two_seen.wait(), 2)
    progress = inv_pb2.InvestigationEvent(progress=inv_pb2.Progress(stage="analyzing"))
    await store.emit(job, progress)
    await store.finish(
        job, SUCCEEDED, result=inv_pb2.InvestigationResult(summary="done"), error=None
    )
    await asyncio.wait_for(follower, 2)

    assert [e.sequence for e in seen] == [1, 2, 3, 4, 5]
    assert seen == await store.history("i")
    assert seen[-1].state == SUCCEEDED


async def test_events_resume_after_a_sequence(store: JobStore) -> None:
    await store.create(alert_investigation(), investigation_id="i", owner="", key_name="")
    job = await store.claim("w", block_ms=10)
    assert job is not None
    for stage in ("gathering_context", "analyzing"):
        await store.emit(job, inv_pb2.InvestigationEvent(progress=inv_pb2.Progress(stage=stage)))
    await store.finish(job, inv_pb2.INVESTIGATION_STATE_FAILED, result=None, error=None)

    resumed = [e async for e in store.events("i", None, 3)]
    past_the_end = [e async for e in store.events("i", None, 99)]

    assert [e.sequence for e in resumed] == [4, 5]
    assert resumed[0].progress.stage == "analyzing"
    assert past_the_end == []
