"""Prometheus metrics of the investigation service. Labels are closed sets (states,
completeness, partial reasons, toolsets, outcomes), never an alert's or caller's string."""

from __future__ import annotations

import re

from prometheus_client import Counter, Gauge, Histogram

from llmgw.investigation.v1 import investigation_service_pb2 as inv_pb2

INVESTIGATIONS = Counter(
    "llmgw_investigations_total",
    "Investigations finished, by final state, completeness and partial reason.",
    ["state", "completeness", "partial_reason"],
)
DURATION = Histogram(
    "llmgw_investigation_duration_seconds",
    "Wall time from the first claim to the end of an investigation's last attempt.",
    buckets=(1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1800),
)
STEPS = Histogram(
    "llmgw_investigation_model_steps",
    "Model steps an investigation took.",
    buckets=(0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 30),
)
TOOL_CALLS = Counter(
    "llmgw_investigation_tool_calls_total",
    "Tool calls made by investigations, by toolset, tool (the toolsets' own names; 'other' "
    "for anything else), who asked (context or model) and outcome.",
    ["toolset", "tool", "requested_by", "outcome"],
)
# A toolset tool's name: `<toolset>_<verb>`, defined by the gateway, never by a caller.
_TOOL_NAME = re.compile(r"(kubernetes|prometheus)_[a-z_]{1,48}")
TOKENS = Counter(
    "llmgw_investigation_tokens_total",
    "Model tokens spent by investigations, by direction (input or output).",
    ["direction"],
)
COST = Counter("llmgw_investigation_cost_total", "Model cost spent by investigations.")
EVIDENCE_REJECTED = Counter(
    "llmgw_investigation_rejected_claims_total",
    "Claims of the model dropped because their evidence did not check out.",
)
RUNNING = Gauge("llmgw_investigations_running", "Investigations this replica works on now.")
QUEUE_DEPTH = Gauge(
    "llmgw_investigation_queue_depth",
    "Investigations in the shared queue (every replica reports the same figure): waiting "
    "for a worker, or running.",
    ["state"],
)
QUEUE_OLDEST_AGE = Gauge(
    "llmgw_investigation_queue_oldest_age_seconds",
    "Age of the oldest investigation waiting for a worker (0 when none waits).",
)
WEBHOOK_ALERTS = Counter(
    "llmgw_investigation_webhook_alerts_total",
    "Alerts received on the Alertmanager webhook, by what was done with them.",
    ["outcome"],
)

KNOWN_TOOLSETS = frozenset({"kubernetes", "prometheus"})


def _enum(enum: object, number: int, prefix: str) -> str:
    name: str = enum.Name(number)  # type: ignore[attr-defined]
    return name.removeprefix(prefix).lower()


def observe_finished(
    state: int, result: inv_pb2.InvestigationResult | None, seconds: float
) -> None:
    completeness = (
        _enum(inv_pb2.Completeness, result.completeness, "COMPLETENESS_") if result else "none"
    )
    reason = (
        _enum(inv_pb2.PartialReason, result.partial_reason, "PARTIAL_REASON_") if result else "none"
    )
    INVESTIGATIONS.labels(
        _enum(inv_pb2.InvestigationState, state, "INVESTIGATION_STATE_"), completeness, reason
    ).inc()
    DURATION.observe(max(seconds, 0.0))
    if result is not None:
        STEPS.observe(result.steps)
        EVIDENCE_REJECTED.inc(len(result.rejected_claims))


def observe_tool_call(toolset: str, tool: str, requested_by: str, ok: bool) -> None:
    TOOL_CALLS.labels(
        toolset if toolset in KNOWN_TOOLSETS else "other",
        tool if _TOOL_NAME.fullmatch(tool) else "other",
        "model" if requested_by == "model" else "context",
        "ok" if ok else "error",
    ).inc()


def observe_usage(input_tokens: int, output_tokens: int, cost: float) -> None:
    TOKENS.labels("input").inc(max(input_tokens, 0))
    TOKENS.labels("output").inc(max(output_tokens, 0))
    COST.inc(max(cost, 0.0))


def observe_queue(waiting: int, running: int, oldest_age: float) -> None:
    QUEUE_DEPTH.labels("waiting").set(waiting)
    QUEUE_DEPTH.labels("running").set(running)
    QUEUE_OLDEST_AGE.set(oldest_age)


def observe_webhook(outcome: int) -> None:
    WEBHOOK_ALERTS.labels(_enum(inv_pb2.WebhookOutcome, outcome, "WEBHOOK_OUTCOME_")).inc()
