"""What Prometheus shows: other alerts firing about the same objects, and series whose
latest value jumped far above their usual level.

A related alert corroborates (the same pod is also failing its SLO); a spike locates
when things changed. Neither explains an alert by itself.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterator

from services.investigation.analyzers.finding import AnalyzerFinding, clipped, finding, quote
from services.investigation.analyzers.observations import Observations
from services.investigation.evidence import EvidenceRef
from services.investigation.results import items, mapping, successful, text

# Last value over the median that counts as a spike.
SPIKE_RATIO = 3.0
# Related alerts reported (the rest are in the call for whoever reads it).
MAX_RELATED_ALERTS = 10
SUBJECT_CHARS = 300


def prometheus_alert(obs: Observations) -> Iterator[AnalyzerFinding | None]:
    reported = 0
    for call in successful(obs.calls, "prometheus_alerts"):
        for alert in items(call.result.get("alerts")):
            labels = mapping(alert.get("labels"))
            name = text(alert.get("name")) or text(labels.get("alertname"))
            namespace, pod = text(labels.get("namespace")), text(labels.get("pod"))
            if text(alert.get("state")) != "firing" or not name or reported >= MAX_RELATED_ALERTS:
                continue
            if namespace not in obs.namespaces and (namespace, pod) not in obs.pod_names:
                continue
            reported += 1
            annotations = mapping(alert.get("annotations"))
            summary = text(annotations.get("summary")) or text(annotations.get("description"))
            if pod:
                subject = f"pod/{namespace}/{pod}"
            elif text(labels.get("deployment")):
                subject = f"deployment/{namespace}/{text(labels.get('deployment'))}"
            else:
                subject = f'series/ALERTS{{alertname="{name}",namespace="{namespace}"}}'
            yield finding(
                "prometheus_alert",
                title=f"Alert {name} is firing in namespace {namespace}",
                detail=f"{name} is firing" + (f": {clipped(summary)}" if summary else "."),
                subject=clipped(subject, SUBJECT_CHARS),
                evidence=[quote(call, summary), quote(call, name)],
                severity=1,
                source="prometheus",
            )


def _value(raw: object) -> float | None:
    try:
        value = float(text(raw))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _selector(metric: dict[str, object]) -> str:
    pairs = ",".join(f"{k}={json.dumps(text(v))}" for k, v in sorted(metric.items()))
    return f"{{{pairs}}}" if pairs else ""


def metric_spike(obs: Observations) -> Iterator[AnalyzerFinding | None]:
    for call in successful(obs.calls, "prometheus_query_range"):
        query = text(call.result.get("query")) or text(call.arguments.get("query"))
        for series in items(call.result.get("series")):
            points = series.get("points")
            values = [
                v
                for point in (points if isinstance(points, list) else [])
                if isinstance(point, list) and len(point) == 2
                for v in [_value(point[1])]
                if v is not None
            ]
            if len(values) < 3:
                continue
            median, last = statistics.median(values), values[-1]
            if last <= SPIKE_RATIO * median or last <= 0:
                continue
            max_text, last_text = text(series.get("max")), text(series.get("last"))
            evidence: list[EvidenceRef | None] = [
                quote(call, f'"max":{json.dumps(max_text)},"last":{json.dumps(last_text)}'),
                quote(call, last_text),
                quote(call, max_text),
            ]
            metric = mapping(series.get("metric"))
            yield finding(
                "metric_spike",
                title=f"{clipped(query, 120)} jumped to {last:g} ({SPIKE_RATIO:g}x+ its median)",
                detail=(
                    f"Over the range, {clipped(query, 120)}{clipped(_selector(metric), 120)} had "
                    f"median {median:g}; its last value is {last:g} (max {max_text or '?'})."
                ),
                subject=clipped(f"series/{query}{_selector(metric)}", SUBJECT_CHARS),
                evidence=evidence,
                severity=2,
                source="prometheus",
            )
