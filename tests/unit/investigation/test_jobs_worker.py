"""Workers: running claimed jobs, failing them safely, cancels, stop and takeover."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

import pytest
from google.rpc import code_pb2

from llmgw.investigation.v1 import investigation_service_pb2 as inv_pb2
from services.investigation.jobs import Job, JobStore, Worker
from tests.unit.investigation.conftest import CLAIM_IDLE_S, alert_investigation

SUCCEEDED = inv_pb2.INVESTIGATION_STATE_SUCCEEDED
FAILED = inv_pb2.INVESTIGATION_STATE_FAILED
CANCELLED = inv_pb2.INVESTIGATION_STATE_CANCELLED
TIMEOUT = 2.0

Run = Callable[[Job], Awaitable[None]]


class StartWorker(Protocol):
    async def __call__(
        self, run: Run, name: str = "w1", *, concurrency: int = 2, heartbeat_s: float = 0.05
    ) -> Worker: ...


@pytest.fixture
async def workers(store: JobStore) -> AsyncIterator[StartWorker]:
    """Starts workers on `store` (stopped after the test)."""
    started: list[Worker] = []

    async def start(
        run: Run, name: str = "w1", *, concurrency: int = 2, heartbeat_s: float = 0.05
    ) -> Worker:
        worker = Worker(
            store, run, name=name, concurrency=concurrency, heartbeat_s=heartbeat_s, block_ms=50
        )
        await worker.start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        await worker.stop()


async def _final(store: JobStore, investigation_id: str) -> inv_pb2.Investigation:
    """The investigation once its final state event is stored."""
    async for _event in store.events(investigation_id, None, 0, poll_ms=50):
        pass
    return await store.get(investigation_id, None)


async def test_a_worker_runs_a_job_to_its_end(store: JobStore, workers: StartWorker) -> None:
    async def run(job: Job) -> None:
        await store.emit(job, inv_pb2.InvestigationEvent(progress=inv_pb2.Progress(stage="x")))
        await store.finish(
            job, SUCCEEDED, result=inv_pb2.InvestigationResult(summary="ok"), error=None
        )

    await workers(run)
    await store.create(alert_investigation(), investigation_id="i", owner="", key_name="")

    done = await asyncio.wait_for(_final(store, "i"), TIMEOUT)

    assert done.state == SUCCEEDED
    assert done.result.summary == "ok"


async def test_a_run_that_raises_is_failed_without_its_trace(
    store: JobStore,
    workers: StartWorker,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def run(job: Job) -> None:
        raise RuntimeError("token=hunter2 went wrong")

    await workers(run)
    await store.create(alert_investigation(), investigation_id="i", owner="", key_name="")

    done = await asyncio.wait_for(_final(store, "i"), TIMEOUT)

    assert done.state == FAILED
    assert done.error.code == code_pb2.INTERNAL
    assert done.error.message == "the investigation failed"
    assert "hunter2" not in done.SerializeToString().decode(errors="replace")
    assert "hunter2" in caplog.text  # the trace is logged, not served


async def test_a_run_that_ends_without_finishing_is_failed(
    store: JobStore, workers: StartWorker
) -> None:
    async def run(job: Job) -> None:
        return None

    await workers(run)
    await store.create(alert_investigation(), investigation_id="i", owner="", key_name="")

    done = await asyncio.wait_for(_final(store, "i"), TIMEOUT)

    assert done.state == FAILED
    assert done.error.message.startswith("the investigation failed")


async def test_a_cancel_reaches_the_run(store: JobStore, workers: StartWorker) -> None:
    started = asyncio.Event()

    async def run(job: Job) -> None:
        started.set()
        await job.cancelled.wait()
        result = inv_pb2.InvestigationResult(partial_reason=inv_pb2.PARTIAL_REASON_CANCELLED)
        await store.finish(job, CANCELLED, result=result, error=None)

    await workers(run)
    await store.create(alert_investigation(), investigation_id="i", owner="", key_name="")
    await asyncio.wait_for(started.wait(), TIMEOUT)

    await store.cancel("i", None)

    done = await asyncio.wait_for(_final(store, "i"), TIMEOUT)
    assert done.state == CANCELLED


async def test_a_cancel_reaches_the_run_within_a_second_whatever_the_heartbeat(
    store: JobStore, workers: StartWorker
) -> None:
    started = asyncio.Event()
    seen: list[float] = []

    async def run(job: Job) -> None:
        started.set()
        await job.cancelled.wait()
        seen.append(asyncio.get_running_loop().time())
        result = inv_pb2.InvestigationResult(partial_reason=inv_pb2.PARTIAL_REASON_CANCELLED)
        await store.finish(job, CANCELLED, result=result, error=None)

    # A heartbeat far apart: the cancel must not wait for it.
    await workers(run, heartbeat_s=30)
    await store.create(alert_investigation(), investigation_id="i", owner="", key_name="")
    await asyncio.wait_for(started.wait(), TIMEOUT)
    asked = asyncio.get_running_loop().time()
    await store.cancel("i", None)
    await asyncio.wait_for(_final(store, "i"), TIMEOUT)
    assert seen and seen[0] - asked < 1.0


async def test_stop_leaves_jobs_to_another_worker_which_resumes_them(
    store: JobStore,
    workers: StartWorker,
) -> None:
    first_run = asyncio.Event()
    interrupted: list[str] = []

    async def stalls(job: Job) -> None:
        await store.emit(job, inv_pb2.InvestigationEvent(progress=inv_pb2.Progress(stage="a")))
        first_run.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            interrupted.append(job.id)
            raise

    async def finishes(job: Job) -> None:
        await store.finish(job, SUCCEEDED, result=None, error=None)

    first = await workers(stalls, name="w1")
    await store.create(alert_investigation(), investigation_id="i", owner="", key_name="")
    await asyncio.wait_for(first_run.wait(), TIMEOUT)
    await first.stop()
    assert interrupted == ["i"]
    assert (await store.get("i", None)).state == inv_pb2.INVESTIGATION_STATE_RUNNING

    await workers(finishes, name="w2")
    done = await asyncio.wait_for(_final(store, "i"), TIMEOUT)

    assert (done.state, done.attempts) == (SUCCEEDED, 2)
    events = await store.history("i")
    assert [e.sequence for e in events] == list(range(1, 6))
    assert [e.WhichOneof("event") for e in events] == [
        "state",
        "state",
        "progress",
        "progress",
        "state",
    ]
    assert events[3].progress.stage == "resumed"


async def test_a_worker_whose_job_was_taken_over_stops_its_run(
    store: JobStore,
    workers: StartWorker,
) -> None:
    running = asyncio.Event()
    stopped: list[str] = []

    async def stalls(job: Job) -> None:
        running.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            stopped.append(job.id)
            raise

    # Heartbeats slower than claim_idle: the job looks abandoned in between. (One slot:
    # a free slot would have the worker take its own idle job over.)
    await workers(stalls, name="slow", heartbeat_s=CLAIM_IDLE_S * 3, concurrency=1)
    await store.create(alert_investigation(), investigation_id="i", owner="", key_name="")
    await asyncio.wait_for(running.wait(), TIMEOUT)
    await asyncio.sleep(CLAIM_IDLE_S * 1.5)
    successor = await store.claim("fast", block_ms=10)
    assert successor is not None

    for _ in range(40):
        if stopped:
            break
        await asyncio.sleep(0.05)

    assert stopped[:1] == ["i"]
    # Stopped, not failed: the successor owns it (and, silent itself, may lose it again).
    stored = await store.get("i", None)
    assert stored.state == inv_pb2.INVESTIGATION_STATE_RUNNING
    assert stored.attempts >= 2


async def test_concurrency_bounds_the_jobs_run_at_once_and_each_runs_once(
    store: JobStore,
    workers: StartWorker,
) -> None:
    active: set[str] = set()
    peak = 0
    runs: list[str] = []

    async def run(job: Job) -> None:
        nonlocal peak
        active.add(job.id)
        runs.append(job.id)
        peak = max(peak, len(active))
        await asyncio.sleep(0.05)
        active.discard(job.id)
        await store.finish(job, SUCCEEDED, result=None, error=None)

    for n in range(6):
        await store.create(alert_investigation(), investigation_id=f"i{n}", owner="", key_name="")
    await workers(run, name="w1", concurrency=2)
    await workers(run, name="w2", concurrency=1)

    for n in range(6):
        assert (await asyncio.wait_for(_final(store, f"i{n}"), TIMEOUT)).state == SUCCEEDED

    assert sorted(runs) == [f"i{n}" for n in range(6)]
    assert 1 < peak <= 3
