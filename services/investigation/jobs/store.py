"""Investigations as durable jobs in Redis: the store the servicer and the workers share.

The caller side (this module) creates, reads, lists and cancels investigations and
follows their events; the worker side (`claims.py`) claims and runs them. Records
are protos rewritten whole: a method reads the record, builds the next version in
Python and writes it with a Lua script that refuses (CONFLICT) when the record's
revision moved on meanwhile, then reads again; so every write is atomic with the read
it was built from. Another owner's investigation raises the very NotFound of a missing
one, so callers cannot tell the two apart.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from google.protobuf import timestamp_pb2

from llmgw.investigation.v1 import investigation_service_pb2 as inv_pb2
from services.common.errors import AlreadyExists
from services.common.trace_origin import current_origin
from services.investigation.jobs import keys
from services.investigation.jobs.base import MAX_CONFLICT_RETRIES, not_found, status_of, too_busy
from services.investigation.jobs.claims import WorkerSide
from services.investigation.jobs.listing import list_page
from services.investigation.jobs.records import (
    FINAL_STATES,
    QUEUED,
    Record,
    investigation_name,
    is_final_state_event,
    queued,
    state_event,
)

# Events read per round trip.
_EVENT_BATCH = 100

_Events = list[inv_pb2.InvestigationEvent]


class JobStore(WorkerSide):
    """The investigation job store (see the module docstring and `keys.py`)."""

    async def create(
        self, inv: inv_pb2.Investigation, *, investigation_id: str, owner: str, key_name: str
    ) -> inv_pb2.Investigation:
        """Stores `inv` QUEUED (event 1: state QUEUED) and enqueues it, with the trace
        context of the request being served (its runs link to it)."""
        record, outcome = await self._create(
            inv, investigation_id, owner, key_name, fp_key=None, fp_seen=""
        )
        if outcome == "EXISTS":
            raise _exists(investigation_id)
        return record

    async def _create(
        self,
        inv: inv_pb2.Investigation,
        investigation_id: str,
        owner: str,
        key_name: str,
        *,
        fp_key: str | None,
        fp_seen: str,
    ) -> tuple[inv_pb2.Investigation, str]:
        now = self._now()
        record = queued(inv, investigation_id, owner, now)
        # Every way in (Create, Run, the webhook) comes through here, inside its RPC's span.
        origin = current_origin()
        script_keys = [
            keys.record_key(investigation_id),
            keys.events_key(investigation_id),
            keys.QUEUE,
            keys.ALL_INDEX,
            keys.owner_index(owner),
        ]
        if fp_key is not None:
            script_keys.append(fp_key)
        reply = await self._scripts.create(
            self._redis,
            script_keys,
            [
                investigation_id,
                record.SerializeToString(),
                owner,
                key_name,
                now.ToMilliseconds(),
                state_event(record.name, QUEUED, now).SerializeToString(),
                fp_seen,
                origin.traceparent,
                origin.tracestate,
            ],
        )
        return record, status_of(reply)

    async def open_for_alert(
        self, inv: inv_pb2.Investigation, *, investigation_id: str, owner: str, key_name: str
    ) -> tuple[inv_pb2.Investigation, bool]:
        """(the fingerprint's open or recent investigation, with one more duplicate alert,
        False), or (a new investigation, True) when there is none."""
        fingerprint = inv.alert.fingerprint
        if not fingerprint:
            return await self.create(
                inv, investigation_id=investigation_id, owner=owner, key_name=key_name
            ), True
        fp_key = keys.fingerprint_key(owner, fingerprint)
        for _ in range(MAX_CONFLICT_RETRIES):
            seen = await self._fingerprint_id(fp_key)
            record = await self._read(seen) if seen else None
            if record is not None and record.owner == owner:
                joined = await self._fold_duplicate(seen, record, fp_key)
                if joined is not None:
                    return joined, False
                continue
            created, outcome = await self._create(
                inv, investigation_id, owner, key_name, fp_key=fp_key, fp_seen=seen
            )
            if outcome == "OK":
                return created, True
            if outcome == "EXISTS":
                raise _exists(investigation_id)
        raise too_busy(investigation_id)

    async def _fold_duplicate(
        self, investigation_id: str, record: Record, fp_key: str
    ) -> inv_pb2.Investigation | None:
        inv = inv_pb2.Investigation()
        inv.CopyFrom(record.investigation)
        inv.duplicate_alerts += 1
        reply = await self._scripts.save(
            self._redis,
            [keys.record_key(investigation_id), fp_key],
            ["", record.rev, inv.SerializeToString(), investigation_id],
        )
        return inv if status_of(reply) == "OK" else None

    async def record_resolved(
        self, fingerprint: str, owner: str, resolved_at: timestamp_pb2.Timestamp
    ) -> inv_pb2.Investigation | None:
        """Sets `alert.resolved_at` on the fingerprint's open or recent investigation;
        None when there is none."""
        fp_key = keys.fingerprint_key(owner, fingerprint)
        seen = ""
        for _ in range(MAX_CONFLICT_RETRIES):
            seen = await self._fingerprint_id(fp_key)
            record = await self._read(seen) if seen else None
            if record is None or record.owner != owner:
                return None
            inv = inv_pb2.Investigation()
            inv.CopyFrom(record.investigation)
            inv.alert.resolved_at.CopyFrom(resolved_at)
            reply = await self._scripts.save(
                self._redis,
                [keys.record_key(seen)],
                ["", record.rev, inv.SerializeToString()],
            )
            if status_of(reply) == "OK":
                return inv
        raise too_busy(seen)

    async def record_session(self, investigation_id: str, asker: str, session: str) -> None:
        """Sets `session` on the record when `asker` owns the investigation: the field names
        the owner's follow-up conversation (an operator's own is not recorded)."""
        for _ in range(MAX_CONFLICT_RETRIES):
            record = await self._read(investigation_id)
            if record is None or record.owner != asker or record.investigation.session == session:
                return
            inv = inv_pb2.Investigation()
            inv.CopyFrom(record.investigation)
            inv.session = session
            reply = await self._scripts.save(
                self._redis,
                [keys.record_key(investigation_id)],
                ["", record.rev, inv.SerializeToString()],
            )
            if status_of(reply) == "OK":
                return
        raise too_busy(investigation_id)

    async def _fingerprint_id(self, fp_key: str) -> str:
        """The id the fingerprint key names, '' for none."""
        value: Any = await self._redis.get(fp_key)
        return value.decode() if value else ""

    async def get(self, investigation_id: str, owner: str | None) -> inv_pb2.Investigation:
        return (await self._visible(investigation_id, owner)).investigation

    async def _visible(self, investigation_id: str, owner: str | None) -> Record:
        record = await self._read(investigation_id)
        if record is None or not record.visible_to(owner):
            raise not_found(investigation_id)
        return record

    async def list(
        self,
        owner: str | None,
        *,
        page_size: int,
        page_token: str,
        state: int,
        alert_name: str,
        fingerprint: str,
    ) -> tuple[list[inv_pb2.Investigation], str]:
        """Newest first, filtered, without tool call outputs (`listing.py`)."""
        return await list_page(
            self._redis,
            owner,
            page_size=page_size,
            page_token=page_token,
            state=state,
            alert_name=alert_name,
            fingerprint=fingerprint,
        )

    async def cancel(self, investigation_id: str, owner: str | None) -> inv_pb2.Investigation:
        """QUEUED: CANCELLED now. RUNNING: flagged; its worker finishes it CANCELLED.
        Final: returned unchanged."""
        for _ in range(MAX_CONFLICT_RETRIES):
            record = await self._visible(investigation_id, owner)
            if record.final:
                return record.investigation
            if record.investigation.state == QUEUED:
                cancelled = await self._cancel_unstarted(investigation_id, record, "")
                if cancelled is not None:
                    return cancelled
                continue
            reply = await self._scripts.request_cancel(
                self._redis, [keys.record_key(investigation_id)], []
            )
            outcome = status_of(reply)
            if outcome == "OK":
                return record.investigation
            if outcome == "GONE":
                raise not_found(investigation_id)
        raise too_busy(investigation_id)

    async def events(
        self,
        investigation_id: str,
        owner: str | None,
        after_sequence: int,
        *,
        poll_ms: int = 1000,
    ) -> AsyncIterator[inv_pb2.InvestigationEvent]:
        """The stored events after `after_sequence`, then new ones as they come, until
        the event that sets a final state (or at once when that one was passed)."""
        await self._visible(investigation_id, owner)
        stream = keys.events_key(investigation_id)
        last = max(0, after_sequence)
        while True:
            entries: Any = await self._redis.xrange(
                stream, f"{last + 1}-0", "+", count=_EVENT_BATCH
            )
            if not entries:
                if await self._ended(investigation_id):
                    # Read once more: the final event may have come since the read above.
                    entries = await self._redis.xrange(
                        stream, f"{last + 1}-0", "+", count=_EVENT_BATCH
                    )
                    if not entries:
                        return
                else:
                    replies: Any = await self._redis.xread(
                        {stream: f"{last}-1"}, count=_EVENT_BATCH, block=max(1, poll_ms)
                    )
                    entries = [entry for _stream, found in replies or [] for entry in found]
            for _entry_id, fields in entries:
                event = inv_pb2.InvestigationEvent.FromString(fields[b"e"])
                last = event.sequence
                yield event
                if is_final_state_event(event):
                    return

    async def _ended(self, investigation_id: str) -> bool:
        """True when the investigation is final, or gone (expired) under the reader."""
        state: Any = await self._redis.hget(keys.record_key(investigation_id), "state")
        return state is None or int(state) in FINAL_STATES

    async def history(self, investigation_id: str) -> _Events:
        """Every stored event, oldest first."""
        stream = keys.events_key(investigation_id)
        found: _Events = []
        start = "-"
        while True:
            entries: Any = await self._redis.xrange(stream, start, "+", count=_EVENT_BATCH)
            found += [inv_pb2.InvestigationEvent.FromString(f[b"e"]) for _i, f in entries]
            if len(entries) < _EVENT_BATCH:
                return found
            start = f"{found[-1].sequence + 1}-0"


def _exists(investigation_id: str) -> AlreadyExists:
    return AlreadyExists(f"investigation '{investigation_name(investigation_id)}' already exists")
