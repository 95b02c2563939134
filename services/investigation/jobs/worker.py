"""Workers: claim investigations from the job store and run them, heartbeating each.

A worker runs up to `concurrency` investigations at once. Each has a heartbeat task that
keeps its claim, reports a cancel request (`job.cancelled`) and, when the store says
another worker took the job over, cancels the run: the successor owns it now. Stopping
a worker cancels its runs WITHOUT finishing them; their queue entries go idle and
another replica takes them over, continuing their event sequence.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable

from google.rpc import code_pb2, status_pb2
from redis.exceptions import RedisError

from llmgw.investigation.v1 import investigation_service_pb2 as inv_pb2
from services.common.backoff import Backoff
from services.common.errors import GatewayError
from services.common.tasks import cancel_and_wait
from services.investigation.jobs.store import JobStore
from services.investigation.jobs.types import Fenced, Job

log = logging.getLogger("llmgw.investigation.worker")

# Waits after failed claims (Redis down): retried soon, then every few seconds.
_CLAIM_BACKOFF = Backoff(initial=0.1, maximum=5.0)
# Failures of Redis itself, which a worker rides out rather than dies of.
_STORE_ERRORS = (RedisError, OSError, GatewayError)

FAILED_MESSAGE = "the investigation failed"
# How often a running job looks for a cancel between heartbeats: a cancel stops the run
# within about this long, whatever the heartbeat interval.
CANCEL_POLL_SECONDS = 0.5


class Worker:
    """Claims jobs as consumer `name` and runs each with `run`."""

    def __init__(
        self,
        store: JobStore,
        run: Callable[[Job], Awaitable[None]],
        *,
        name: str,
        concurrency: int,
        heartbeat_s: float,
        block_ms: int = 1000,
        cancel_poll_s: float = CANCEL_POLL_SECONDS,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._store = store
        self._run = run
        self._name = name
        self._heartbeat_s = heartbeat_s
        self._cancel_poll_s = min(cancel_poll_s, heartbeat_s)
        self._block_ms = block_ms
        self._slots = asyncio.Semaphore(concurrency)
        self._loop: asyncio.Task[None] | None = None
        self._jobs: set[asyncio.Task[None]] = set()
        self._rng = random.Random()

    async def start(self) -> None:
        if self._loop is None:
            self._loop = asyncio.create_task(self._claim_loop(), name=f"worker {self._name}")

    async def stop(self) -> None:
        """Stops claiming and cancels the running jobs without finishing them."""
        if self._loop is not None:
            await cancel_and_wait(self._loop)
            self._loop = None
        await asyncio.gather(*(cancel_and_wait(task) for task in list(self._jobs)))

    @property
    def running(self) -> int:
        """Jobs running now."""
        return len(self._jobs)

    async def _claim_loop(self) -> None:
        failures = 0
        while True:
            await self._slots.acquire()
            try:
                job = await self._store.claim(self._name, block_ms=self._block_ms)
            except _STORE_ERRORS as error:
                self._slots.release()
                failures += 1
                log.warning("worker %s: claim failed: %s", self._name, error)
                await asyncio.sleep(_CLAIM_BACKOFF.delay(failures, None, self._rng))
                continue
            except BaseException:
                self._slots.release()
                raise
            failures = 0
            if job is None:
                self._slots.release()
                continue
            task = asyncio.create_task(self._run_job(job), name=f"investigation {job.id}")
            self._jobs.add(task)
            task.add_done_callback(self._job_done)

    def _job_done(self, task: asyncio.Task[None]) -> None:
        self._jobs.discard(task)
        self._slots.release()

    async def _run_job(self, job: Job) -> None:
        run = asyncio.create_task(self._run_and_settle(job))
        beat = asyncio.create_task(self._heartbeats(job, run))
        try:
            await asyncio.wait({run})
        except asyncio.CancelledError:
            await cancel_and_wait(run)
            raise
        finally:
            await cancel_and_wait(beat)

    async def _run_and_settle(self, job: Job) -> None:
        """Runs the job; a run that fails, or ends without finishing it, is finished FAILED."""
        try:
            await self._run(job)
        except Fenced:
            log.info("investigation %s: taken over by another worker", job.id)
            return
        except Exception:
            log.exception("investigation %s failed (attempt %d)", job.id, job.attempt)
            await self._finish_failed(job, FAILED_MESSAGE)
            return
        if not job.finished:
            log.error("investigation %s: the run ended without finishing it", job.id)
            await self._finish_failed(job, f"{FAILED_MESSAGE}: it ended without a result")

    async def _finish_failed(self, job: Job, message: str) -> None:
        error = status_pb2.Status(code=code_pb2.INTERNAL, message=message)
        try:
            await self._store.finish(
                job, inv_pb2.INVESTIGATION_STATE_FAILED, result=None, error=error
            )
        except Fenced:
            log.info("investigation %s: taken over before it could be failed", job.id)
        except _STORE_ERRORS as store_error:
            # Left pending: another worker takes it over once its claim goes idle.
            log.warning("investigation %s: could not be failed: %s", job.id, store_error)

    async def _heartbeats(self, job: Job, run: asyncio.Task[None]) -> None:
        loop = asyncio.get_running_loop()
        next_beat = loop.time() + self._heartbeat_s
        while True:
            await asyncio.sleep(self._cancel_poll_s)
            try:
                if loop.time() < next_beat:
                    if not job.cancelled.is_set() and await self._store.cancel_requested(job):
                        job.cancelled.set()
                    continue
                next_beat = loop.time() + self._heartbeat_s
                if await self._store.heartbeat(job):
                    job.cancelled.set()
            except Fenced:
                log.warning("investigation %s: lost to another worker; stopping it", job.id)
                run.cancel()
                return
            except _STORE_ERRORS as error:
                # A long outage lets another worker take over; the fence then stops this one.
                log.warning("investigation %s: heartbeat failed: %s", job.id, error)
