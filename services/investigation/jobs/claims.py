"""The worker side of the job store: claiming jobs, keeping them, writing their progress.

A job is an entry of the `inv:queue` stream, read through the consumer group `workers`.
The entry stays in the reader's pending list while it works, and its heartbeats keep the
entry's idle time low; an entry idle for `claim_idle_s` belongs to a worker that died
and the next `claim` anywhere takes it over (XAUTOCLAIM). Every claim raises the
record's fence; every write of a worker carries the fence it got, so a worker that was
taken over (it stalled rather than died) is refused (`Fenced`) instead of writing over
its successor.
"""

from __future__ import annotations

import logging
from typing import Any

from google.rpc import status_pb2
from redis.exceptions import ResponseError

from llmgw.common.v1 import chat_pb2
from llmgw.investigation.v1 import investigation_service_pb2 as inv_pb2
from services.investigation.jobs import keys
from services.investigation.jobs.base import MAX_CONFLICT_RETRIES, StoreBase, status_of, too_busy
from services.investigation.jobs.records import (
    FINAL_STATES,
    RUNNING,
    Record,
    progress_event,
    state_event,
)
from services.investigation.jobs.types import Fenced, Job

log = logging.getLogger("llmgw.investigation.jobs")

# Queue entries one `claim` skips (finished, cancelled or gone investigations) before it
# answers None, so a call returns within a bounded time whatever the queue holds.
MAX_SKIPS = 16


class WorkerSide(StoreBase):
    """claim, heartbeat, emit, update, finish."""

    _group_ready = False

    async def claim(self, consumer: str, *, block_ms: int) -> Job | None:
        """The next job for `consumer`: one whose worker went silent for `claim_idle_s`,
        else a new one (waiting up to `block_ms`); None when there is none."""
        for _ in range(MAX_SKIPS):
            entry = await self._next_entry(consumer, block_ms)
            if entry is None:
                return None
            job = await self._take(consumer, *entry)
            if job is not None:
                return job
        return None

    async def _next_entry(self, consumer: str, block_ms: int) -> tuple[str, str] | None:
        """(entry id, investigation id) of a stale or new queue entry, now `consumer`'s."""
        try:
            return await self._read_queue(consumer, block_ms)
        except ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
            # The group went away with the data (a Redis without persistence restarted).
            self._group_ready = False
            return await self._read_queue(consumer, block_ms)

    async def _read_queue(self, consumer: str, block_ms: int) -> tuple[str, str] | None:
        await self._ensure_group()
        stale: Any = await self._redis.xautoclaim(
            keys.QUEUE, keys.GROUP, consumer, self._claim_idle_ms, start_id="0-0", count=1
        )
        if len(stale) > 1 and stale[1]:
            return _entry(stale[1][0])
        fresh: Any = await self._redis.xreadgroup(
            keys.GROUP,
            consumer,
            {keys.QUEUE: ">"},
            count=1,
            block=block_ms if block_ms > 0 else None,
        )
        for _stream, entries in fresh or []:
            if entries:
                return _entry(entries[0])
        return None

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            await self._redis.xgroup_create(keys.QUEUE, keys.GROUP, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        self._group_ready = True

    async def _take(self, consumer: str, entry_id: str, investigation_id: str) -> Job | None:
        """Claims the investigation of a queue entry `consumer` holds; None when there is
        nothing to run (the entry is then acked) or another worker got it first."""
        for _ in range(MAX_CONFLICT_RETRIES):
            record = await self._read(investigation_id) if investigation_id else None
            if record is None or record.final:
                await self._drop_entry(entry_id)
                return None
            if record.cancel:
                done = await self._cancel_unstarted(investigation_id, record, entry_id)
                if done is None:
                    continue
                return None
            reply = await self._claim_record(consumer, entry_id, investigation_id, record)
            outcome = status_of(reply)
            if outcome == "CONFLICT":
                continue
            if outcome == "GONE":
                await self._drop_entry(entry_id)
                return None
            if outcome == "LOST":
                return None
            investigation = inv_pb2.Investigation.FromString(reply[3])
            return Job(
                id=investigation_id,
                owner=record.owner,
                key_name=record.key_name,
                attempt=investigation.attempts,
                fence=int(reply[1]),
                investigation=investigation,
                entry_id=entry_id,
                consumer=consumer,
                origin=record.origin,
            )
        log.warning("investigation %s: claim kept conflicting; left for later", investigation_id)
        return None

    async def _claim_record(
        self, consumer: str, entry_id: str, investigation_id: str, record: Record
    ) -> Any:
        """Runs claim.lua; on OK the reply carries the stored investigation as 4th item."""
        now = self._now()
        inv = inv_pb2.Investigation()
        inv.CopyFrom(record.investigation)
        first = inv.attempts == 0
        inv.attempts += 1
        inv.state = RUNNING
        if first:
            inv.start_time.CopyFrom(now)
            event = state_event(inv.name, RUNNING, now)
        else:
            event = progress_event(
                inv.name,
                "resumed",
                f"taken over by another worker (attempt {inv.attempts})",
                inv.progress_percent,
                now,
            )
        pb = inv.SerializeToString()
        reply = await self._scripts.claim(
            self._redis,
            [
                keys.record_key(investigation_id),
                keys.events_key(investigation_id),
                keys.QUEUE,
            ],
            [record.rev, pb, event.SerializeToString(), entry_id, consumer, keys.GROUP],
        )
        if isinstance(reply, list):
            return [*reply, pb]
        return reply

    async def _drop_entry(self, entry_id: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xack(keys.QUEUE, keys.GROUP, entry_id)
            pipe.xdel(keys.QUEUE, entry_id)
            await pipe.execute()

    async def heartbeat(self, job: Job) -> bool:
        """Keeps the claim; True when a cancel was asked for. Raises Fenced when lost."""
        reply = await self._scripts.heartbeat(
            self._redis,
            [keys.record_key(job.id), keys.QUEUE],
            [job.fence, job.entry_id, job.consumer, keys.GROUP],
        )
        if status_of(reply) == "FENCED":
            raise Fenced(f"investigation {job.id!r}: fence {job.fence} lost")
        return status_of(reply) == "1"

    async def queue_stats(self) -> tuple[int, int, float]:
        """(waiting, running, age in seconds of the oldest waiting job; 0 when none).
        Acknowledged entries are deleted, so the queue holds exactly the waiting entries
        (after the group's last delivered id) and the running ones (pending)."""
        await self._ensure_group()
        length = await self._redis.xlen(keys.QUEUE)
        groups = await self._redis.xinfo_groups(keys.QUEUE)
        group = next((g for g in groups if _text(g.get("name")) == keys.GROUP), None)
        running = int(group.get("pending", 0)) if group else 0
        last = _text(group.get("last-delivered-id")) if group else "0-0"
        waiting = max(0, length - running)
        age = 0.0
        if waiting:
            oldest = await self._redis.xrange(keys.QUEUE, min=f"({last}", count=1)
            if oldest:
                millis = int(_text(oldest[0][0]).split("-", 1)[0])
                age = max(0.0, self._clock() - millis / 1000)
        return waiting, running, age

    async def cancel_requested(self, job: Job) -> bool:
        """Whether a cancel was asked for (one HGET: cheap enough to ask twice a second)."""
        flag = await self._redis.hget(keys.record_key(job.id), "cancel")
        return flag in (b"1", "1")

    async def emit(self, job: Job, event: inv_pb2.InvestigationEvent) -> inv_pb2.InvestigationEvent:
        """Appends `event` (investigation, sequence and time set here); returns it as stored."""
        stored = inv_pb2.InvestigationEvent()
        stored.CopyFrom(event)
        stored.investigation = job.investigation.name
        stored.time.CopyFrom(self._now())
        stored.sequence = 0
        reply = await self._scripts.emit(
            self._redis,
            [keys.record_key(job.id), keys.events_key(job.id)],
            [job.fence, stored.SerializeToString()],
        )
        if not isinstance(reply, int):
            raise Fenced(f"investigation {job.id!r}: fence {job.fence} lost")
        stored.sequence = reply
        return stored

    async def update(self, job: Job, investigation: inv_pb2.Investigation) -> None:
        """Stores the output fields a run updates as it goes: progress, usage, cost."""
        for _ in range(MAX_CONFLICT_RETRIES):
            record = await self._read(job.id)
            if record is None:
                raise Fenced(f"investigation {job.id!r} is gone")
            inv = inv_pb2.Investigation()
            inv.CopyFrom(record.investigation)
            inv.progress_percent = investigation.progress_percent
            inv.usage.CopyFrom(investigation.usage)
            inv.cost = investigation.cost
            reply = await self._scripts.save(
                self._redis,
                [keys.record_key(job.id)],
                [job.fence, record.rev, inv.SerializeToString()],
            )
            outcome = status_of(reply)
            if outcome == "OK":
                return
            if outcome != "CONFLICT":
                raise Fenced(f"investigation {job.id!r}: fence {job.fence} lost")
        raise too_busy(job.id)

    async def finish(
        self,
        job: Job,
        state: int,
        *,
        result: inv_pb2.InvestigationResult | None,
        error: status_pb2.Status | None,
        usage: chat_pb2.Usage | None = None,
        cost: float | None = None,
    ) -> inv_pb2.Investigation:
        """Stores the final `state` with its result or error, emits the `result` (if any)
        and `state` events, acks the job. `usage`/`cost` None keep the stored values."""
        if state not in FINAL_STATES:
            raise ValueError(f"finish needs a final state, not {state}")
        for _ in range(MAX_CONFLICT_RETRIES):
            record = await self._read(job.id)
            if record is None or record.fence != job.fence:
                raise Fenced(f"investigation {job.id!r}: fence {job.fence} lost")
            inv = await self._write_final(
                job.id,
                record,
                state,
                result=result,
                error=error,
                usage=usage,
                cost=cost,
                fence=str(job.fence),
                entry_id=job.entry_id,
            )
            if inv is not None:
                job.finished = True
                return inv
        raise too_busy(job.id)


def _entry(entry: Any) -> tuple[str, str]:
    """(entry id, investigation id) of a queue entry; the id is '' for a deleted entry."""
    entry_id, fields = entry
    value = (fields or {}).get(b"id", b"")
    return entry_id.decode(), value.decode()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
