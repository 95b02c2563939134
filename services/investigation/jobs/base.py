"""State and steps shared by the caller side and the worker side of the job store."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from google.protobuf import timestamp_pb2
from google.rpc import status_pb2

from llmgw.common.v1 import chat_pb2
from llmgw.investigation.v1 import investigation_service_pb2 as inv_pb2
from services.common.errors import Aborted, NotFound
from services.investigation.jobs import keys
from services.investigation.jobs.records import (
    RECORD_FIELDS,
    RESOURCE_TYPE,
    Record,
    cancelled_result,
    investigation_name,
    result_event,
    state_event,
    timestamp,
)
from services.investigation.jobs.scripts import Scripts
from services.investigation.jobs.types import Fenced

# Rewrites of one record retried after a concurrent write (CONFLICT) before giving up.
# Conflicts need another write to the same investigation in the same few milliseconds
# (a duplicate alert, a cancel), so a handful of retries is plenty.
MAX_CONFLICT_RETRIES = 32


def not_found(investigation_id: str) -> NotFound:
    name = investigation_name(investigation_id)
    return NotFound(
        f"investigation '{name}' not found", resource_type=RESOURCE_TYPE, resource_name=name
    )


def too_busy(investigation_id: str) -> Aborted:
    return Aborted(
        f"investigation '{investigation_name(investigation_id)}' changed concurrently; retry"
    )


class StoreBase:
    """The Redis client, the scripts, the clock and the settings of one store."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        retention_s: float,
        dedup_window_s: float,
        claim_idle_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._scripts = Scripts()
        self._retention_ms = max(1, round(retention_s * 1000))
        self._dedup_ms = max(0, round(dedup_window_s * 1000))
        self._claim_idle_ms = max(1, round(claim_idle_s * 1000))
        self._clock = clock

    def _now(self) -> timestamp_pb2.Timestamp:
        return timestamp(self._clock)

    async def _read(self, investigation_id: str) -> Record | None:
        values: Any = await self._redis.hmget(keys.record_key(investigation_id), RECORD_FIELDS)
        return Record.parse(values)

    async def _cancel_unstarted(
        self, investigation_id: str, record: Record, entry_id: str
    ) -> inv_pb2.Investigation | None:
        """Finishes a job no worker has started as CANCELLED (its state event only); None on
        CONFLICT."""
        return await self._write_final(
            investigation_id,
            record,
            inv_pb2.INVESTIGATION_STATE_CANCELLED,
            result=cancelled_result("cancelled before a worker took it up"),
            error=None,
            usage=None,
            cost=None,
            fence="",
            entry_id=entry_id,
            result_event_too=False,
        )

    async def _write_final(
        self,
        investigation_id: str,
        record: Record,
        state: int,
        *,
        result: inv_pb2.InvestigationResult | None,
        error: status_pb2.Status | None,
        usage: chat_pb2.Usage | None,
        cost: float | None,
        fence: str,
        entry_id: str,
        result_event_too: bool = True,
    ) -> inv_pb2.Investigation | None:
        """Stores `record` finished in `state` (finish.lua); None on CONFLICT (read again).
        The events: `result` (when given and `result_event_too`), then `state`.
        Raises Fenced when `fence` is given and no longer the record's, NotFound when gone."""
        now = self._now()
        inv = inv_pb2.Investigation()
        inv.CopyFrom(record.investigation)
        inv.state = state  # type: ignore[assignment]
        inv.end_time.CopyFrom(now)
        if result is not None:
            inv.result.CopyFrom(result)
        if error is not None:
            inv.error.CopyFrom(error)
        if usage is not None:
            inv.usage.CopyFrom(usage)
        if cost is not None:
            inv.cost = cost
        if state == inv_pb2.INVESTIGATION_STATE_SUCCEEDED:
            inv.progress_percent = 100
        name = inv.name
        result_bytes = (
            result_event(name, result, now).SerializeToString()
            if result is not None and result_event_too
            else b""
        )
        fp = inv.alert.fingerprint
        script_keys = [
            keys.record_key(investigation_id),
            keys.events_key(investigation_id),
            keys.QUEUE,
        ]
        if fp:
            script_keys.append(keys.fingerprint_key(record.owner, fp))
        reply = await self._scripts.finish(
            self._redis,
            script_keys,
            [
                fence,
                record.rev,
                inv.SerializeToString(),
                int(state),
                result_bytes,
                state_event(name, state, now).SerializeToString(),
                entry_id,
                keys.GROUP,
                self._retention_ms,
                self._dedup_ms,
                investigation_id,
            ],
        )
        outcome = status_of(reply)
        if outcome == "CONFLICT":
            return None
        if outcome == "FENCED":
            raise Fenced(f"investigation {investigation_id!r}: fence {fence} lost")
        if outcome == "GONE":
            if fence:
                raise Fenced(f"investigation {investigation_id!r} is gone")
            raise not_found(investigation_id)
        return inv


def status_of(reply: object) -> str:
    """A script's status reply as text (`OK`, `CONFLICT`...); '' for a non-status reply."""
    if isinstance(reply, bytes):
        return reply.decode()
    if isinstance(reply, str):
        return reply
    return ""
