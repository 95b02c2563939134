"""Figures of one investigation, and of a batch of them, from what the REST API returns.

Pure functions over the JSON of `GET /v1/investigations/{id}` and the events of its
`:streamEvents` SSE stream, so the benchmark's arithmetic is unit-tested apart from the
gateway it measures. Every time comes from the investigation service's own clock (the
record's create/start/end times, each event's time), not from the load client, whose
scheduling on a busy machine would otherwise blur the figures.

A model step's wall time runs from its `model_step` progress event to the next stage's
progress event (the next step's, or `verifying` after the last), less the longest tool
call the model asked for in that step (those run at once): the model call through the
router, the provider and Envoy, plus the investigation service's bookkeeping around it
(events and record updates in Redis). Less the fake model's fixed delay, it is what the
gateway adds per model step.
"""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bench.ttft import percentile

SUCCEEDED = "INVESTIGATION_STATE_SUCCEEDED"
COMPLETE = "COMPLETENESS_COMPLETE"
# The processes of the gateway an investigation uses (the CPU meter's groups).
GATEWAY_PROCESSES = ("investigation", "tool", "router", "provider", "envoy", "redis")


def timestamp(text: str) -> float:
    """Unix seconds of a protobuf JSON timestamp (RFC 3339, `Z` or an offset)."""
    return datetime.datetime.fromisoformat(text).timestamp()


def duration(text: str) -> float:
    """Seconds of a protobuf JSON duration (`"1.5s"`)."""
    if not text.endswith("s"):
        raise ValueError(f"not a protobuf duration: {text!r}")
    return float(text[:-1])


@dataclass(frozen=True)
class InvestigationFigures:
    """One investigation's figures; times in seconds."""

    succeeded: bool
    # A complete result whose root cause kept its evidence: the model's conclusion held.
    concluded: bool
    # From create_time to end_time: what the caller waited.
    duration_s: float
    # From create_time to start_time: time in the queue before a worker claimed it.
    queue_s: float
    # From start_time to end_time: the time a worker slot was held.
    run_s: float
    steps: int
    context_calls: int
    model_calls: int
    # Wall time of each model step (tool calls of the step excluded), in step order.
    step_s: tuple[float, ...]
    # Duration of every tool call as the investigation service timed it.
    tool_call_s: tuple[float, ...]


def step_walls(events: Sequence[Mapping[str, Any]]) -> list[float]:
    """Wall time of each model step: from its `model_step` progress event to the next
    progress event, less the longest tool call the model made in that step."""
    marks: list[float] = []
    closed = False
    tools: dict[int, float] = {}
    for event in events:
        progress = event.get("progress")
        if progress is not None and not closed:
            stepping = progress.get("stage") == "model_step"
            if stepping or marks:
                marks.append(timestamp(event["time"]))
                closed = not stepping
        call = event.get("tool_call")
        if call is not None and call.get("requested_by") == "model":
            step = int(call.get("step", 0))
            tools[step] = max(tools.get(step, 0.0), duration(call.get("duration", "0s")))
    spans = itertools.pairwise(marks)
    return [end - start - tools.get(step, 0.0) for step, (start, end) in enumerate(spans, 1)]


def figures(
    investigation: Mapping[str, Any], events: Sequence[Mapping[str, Any]]
) -> InvestigationFigures:
    """The figures of one finished investigation (`investigation`: its JSON resource)."""
    created = timestamp(investigation["create_time"])
    started = timestamp(investigation.get("start_time", investigation["create_time"]))
    ended = timestamp(investigation.get("end_time", investigation["create_time"]))
    result = investigation.get("result", {})
    calls = result.get("tool_calls", [])
    by_model = sum(c.get("requested_by") == "model" for c in calls)
    return InvestigationFigures(
        succeeded=investigation.get("state") == SUCCEEDED,
        concluded=result.get("completeness") == COMPLETE
        and bool(result.get("root_cause"))
        and bool(result.get("root_cause_evidence")),
        duration_s=ended - created,
        queue_s=started - created,
        run_s=ended - started,
        steps=int(result.get("steps", 0)),
        context_calls=len(calls) - by_model,
        model_calls=by_model,
        step_s=tuple(step_walls(events)),
        tool_call_s=tuple(duration(c.get("duration", "0s")) for c in calls),
    )


@dataclass(frozen=True)
class Spread:
    """p50 / p95 / max of some values (NaN when there are none)."""

    p50: float
    p95: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if not values:
            nan = float("nan")
            return cls(nan, nan, nan)
        return cls(percentile(list(values), 0.5), percentile(list(values), 0.95), max(values))


@dataclass(frozen=True)
class BatchFigures:
    """A batch of investigations started together."""

    count: int
    succeeded: int
    concluded: int
    duration: Spread
    queue: Spread
    run: Spread
    # Model steps / tool calls per investigation: the distinct values seen.
    steps: tuple[int, ...]
    context_calls: tuple[int, ...]
    model_calls: tuple[int, ...]
    # Model step wall time less the fake model's delay, over every step of the batch.
    step_added: Spread
    tool_call: Spread


def batch(items: Sequence[InvestigationFigures], model_delay_s: float) -> BatchFigures:
    """What a batch's investigations add up to; `model_delay_s`: the fake's fixed delay."""
    return BatchFigures(
        count=len(items),
        succeeded=sum(i.succeeded for i in items),
        concluded=sum(i.concluded for i in items),
        duration=Spread.of([i.duration_s for i in items]),
        queue=Spread.of([i.queue_s for i in items]),
        run=Spread.of([i.run_s for i in items]),
        steps=tuple(sorted({i.steps for i in items})),
        context_calls=tuple(sorted({i.context_calls for i in items})),
        model_calls=tuple(sorted({i.model_calls for i in items})),
        step_added=Spread.of([s - model_delay_s for i in items for s in i.step_s]),
        tool_call=Spread.of([t for i in items for t in i.tool_call_s]),
    )


@dataclass
class RunResult:
    replicas: int
    workers: int
    figures: BatchFigures
    wall_s: float
    # CPU seconds by process group over the batch (gateway processes, then the fakes).
    cpu_s: dict[str, float]
    # This process (the load client) and every other process of the machine.
    client_cpu_s: float
    other_cpu_s: float
    rss_before_mib: float
    rss_peak_mib: float
    rss_after_mib: float
    load_before: float

    @property
    def slots(self) -> int:
        return self.replicas * self.workers

    @property
    def gateway_cpu_s(self) -> float:
        return sum(self.cpu_s[name] for name in GATEWAY_PROCESSES)
