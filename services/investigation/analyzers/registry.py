"""The analyzers, in the order they run, and `analyze`, which runs them all.

Analyzers are pure functions of the calls made: the same calls give the same findings
in the same order, whichever model (if any) runs next. Findings come out strongest
first (severity, then the registry's order, then subject), so the first one is the root
cause candidate; the same claim from several calls is one finding with the evidence
of each.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from services.investigation.analyzers import (
    changes,
    containers,
    logs,
    network,
    nodes,
    probes,
    prometheus,
    rollout,
    scheduling,
    storage,
)
from services.investigation.analyzers.finding import MAX_EVIDENCE, AnalyzerFinding
from services.investigation.analyzers.observations import Observations, observe
from services.investigation.calls import ToolCall

Analyzer = Callable[[Observations], Iterable[AnalyzerFinding | None]]

# Findings returned at most (the strongest kept).
MAX_FINDINGS = 50

ANALYZERS: tuple[tuple[str, Analyzer], ...] = (
    ("bad_rollout", rollout.bad_rollout),
    ("oom_killed", containers.oom_killed),
    ("image_pull", containers.image_pull),
    ("config_error", containers.config_error),
    ("node_not_ready", scheduling.node_not_ready),
    ("node_pressure", nodes.node_pressure),
    ("pvc_pending", storage.pvc_pending),
    ("unschedulable", scheduling.unschedulable),
    ("probe_failure", probes.probe_failure),
    ("dns_egress_blocked", network.dns_egress_blocked),
    ("recent_change", changes.recent_change),
    ("crash_loop", containers.crash_loop),
    ("stuck_rollout", rollout.stuck_rollout),
    ("log_errors", logs.log_errors),
    ("metric_spike", prometheus.metric_spike),
    ("prometheus_alert", prometheus.prometheus_alert),
)


def analyze(
    calls: Sequence[ToolCall], *, alert_started: datetime | None = None
) -> list[AnalyzerFinding]:
    """Every analyzer's findings over `calls`, strongest first, at most `MAX_FINDINGS`;
    `alert_started` (when the alert began firing) dates the failure for the analyzers
    that compare times."""
    obs = observe(calls, alert_started)
    merged: dict[tuple[str, str, str], AnalyzerFinding] = {}
    order: dict[tuple[str, str, str], int] = {}
    for index, (_, analyzer) in enumerate(ANALYZERS):
        for found in analyzer(obs):
            if found is None:
                continue
            key = (found.analyzer, found.subject, found.title)
            if key not in merged:
                merged[key], order[key] = found, index
                continue
            known = merged[key]
            extra = tuple(ref for ref in found.evidence if ref not in known.evidence)
            evidence = (known.evidence + extra)[:MAX_EVIDENCE]
            merged[key] = dataclasses.replace(known, evidence=evidence)
    ranked = sorted(merged, key=lambda k: (-merged[k].severity, order[k], k[1], k[2]))
    return [merged[key] for key in ranked[:MAX_FINDINGS]]
