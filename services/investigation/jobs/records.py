"""Investigation records and events as the job store writes them.

Pure functions over the protos: the store reads a record, builds the next version here,
and writes it with a script that checks nothing changed in between.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from google.protobuf import timestamp_pb2

from llmgw.investigation.v1 import investigation_service_pb2 as inv_pb2
from services.common.trace_origin import NO_ORIGIN, TraceOrigin

RESOURCE_TYPE = "llmgw.investigation.v1.Investigation"
COLLECTION = "investigations/"

QUEUED = inv_pb2.INVESTIGATION_STATE_QUEUED
RUNNING = inv_pb2.INVESTIGATION_STATE_RUNNING
FINAL_STATES = frozenset(
    {
        inv_pb2.INVESTIGATION_STATE_SUCCEEDED,
        inv_pb2.INVESTIGATION_STATE_FAILED,
        inv_pb2.INVESTIGATION_STATE_CANCELLED,
    }
)

# The hash fields every read takes, in this order (`Record.parse`).
RECORD_FIELDS = ("pb", "owner", "key_name", "fence", "cancel", "rev", "traceparent", "tracestate")


def investigation_name(investigation_id: str) -> str:
    return COLLECTION + investigation_id


def timestamp(clock: Callable[[], float]) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(round(clock() * 1e9))
    return stamp


@dataclass(frozen=True)
class Record:
    """One read of a record hash."""

    investigation: inv_pb2.Investigation
    owner: str
    key_name: str
    fence: int
    cancel: bool
    rev: str
    # The creating request's trace context (services/common/trace_origin.py).
    origin: TraceOrigin = NO_ORIGIN

    @classmethod
    def parse(cls, values: Sequence[bytes | None]) -> Record | None:
        """The record from an HMGET of `RECORD_FIELDS`; None when it is gone."""
        pb, owner, key_name, fence, cancel, rev, traceparent, tracestate = values
        if pb is None or rev is None:
            return None
        return cls(
            investigation=inv_pb2.Investigation.FromString(pb),
            owner=(owner or b"").decode(),
            key_name=(key_name or b"").decode(),
            fence=int(fence or 0),
            cancel=cancel == b"1",
            rev=rev.decode(),
            origin=TraceOrigin((traceparent or b"").decode(), (tracestate or b"").decode()),
        )

    def visible_to(self, owner: str | None) -> bool:
        return owner is None or owner == self.owner

    @property
    def final(self) -> bool:
        return self.investigation.state in FINAL_STATES


def queued(
    inv: inv_pb2.Investigation, investigation_id: str, owner: str, now: timestamp_pb2.Timestamp
) -> inv_pb2.Investigation:
    """The record of a new investigation: the caller's input with every output-only
    field reset, then named, owned, QUEUED."""
    record = inv_pb2.Investigation()
    record.CopyFrom(inv)
    for output_only in (
        "result",
        "error",
        "usage",
        "start_time",
        "end_time",
    ):
        record.ClearField(output_only)
    record.alert.ClearField("resolved_at")
    record.progress_percent = 0
    record.cost = 0.0
    record.attempts = 0
    record.duplicate_alerts = 0
    record.session = ""
    record.name = investigation_name(investigation_id)
    record.owner = owner
    record.create_time.CopyFrom(now)
    record.state = QUEUED
    return record


def state_event(name: str, state: int, now: timestamp_pb2.Timestamp) -> inv_pb2.InvestigationEvent:
    return inv_pb2.InvestigationEvent(investigation=name, time=now, state=state)  # type: ignore[arg-type]


def result_event(
    name: str, result: inv_pb2.InvestigationResult, now: timestamp_pb2.Timestamp
) -> inv_pb2.InvestigationEvent:
    return inv_pb2.InvestigationEvent(investigation=name, time=now, result=result)


def progress_event(
    name: str, stage: str, message: str, percent: int, now: timestamp_pb2.Timestamp
) -> inv_pb2.InvestigationEvent:
    progress = inv_pb2.Progress(stage=stage, message=message, percent=percent)
    return inv_pb2.InvestigationEvent(investigation=name, time=now, progress=progress)


def cancelled_result(detail: str) -> inv_pb2.InvestigationResult:
    return inv_pb2.InvestigationResult(
        completeness=inv_pb2.COMPLETENESS_PARTIAL,
        partial_reason=inv_pb2.PARTIAL_REASON_CANCELLED,
        partial_detail=detail,
    )


def without_outputs(inv: inv_pb2.Investigation) -> inv_pb2.Investigation:
    """The investigation without its tool calls' outputs (listing pages stay small)."""
    for call in inv.result.tool_calls:
        call.output = ""
    return inv


def is_final_state_event(event: inv_pb2.InvestigationEvent) -> bool:
    return event.WhichOneof("event") == "state" and event.state in FINAL_STATES
