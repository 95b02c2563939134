"""Alertmanager's webhook (JSON version 4) as investigation alerts.

Each firing alert becomes an Alert (name from `alertname`, namespace from `namespace`,
priority from `severity`, Alertmanager's fingerprint for de-duplication; one computed
from the labels when absent). Resolved alerts are recorded against the investigation of
their fingerprint.
"""

from __future__ import annotations

import hashlib
import json

from llmgw.investigation.v1 import investigation_service_pb2 as inv_pb2
from services.common.validation import Violations
from services.investigation.checks import check_alert

MAX_ALERTS = 1000
FIRING, RESOLVED = "firing", "resolved"
_PRIORITY: dict[str, inv_pb2.Priority] = {
    "critical": inv_pb2.PRIORITY_CRITICAL,
    "page": inv_pb2.PRIORITY_CRITICAL,
    "high": inv_pb2.PRIORITY_HIGH,
    "error": inv_pb2.PRIORITY_HIGH,
    "major": inv_pb2.PRIORITY_HIGH,
    "warning": inv_pb2.PRIORITY_MEDIUM,
    "medium": inv_pb2.PRIORITY_MEDIUM,
    "minor": inv_pb2.PRIORITY_LOW,
    "low": inv_pb2.PRIORITY_LOW,
    "info": inv_pb2.PRIORITY_LOW,
    "none": inv_pb2.PRIORITY_LOW,
}


def priority_of(labels: dict[str, str]) -> inv_pb2.Priority:
    """Priority from the `severity` label (unspecified when absent or unknown)."""
    return _PRIORITY.get(labels.get("severity", "").strip().lower(), inv_pb2.PRIORITY_UNSPECIFIED)


def label_fingerprint(labels: dict[str, str]) -> str:
    """A stable fingerprint of a label set (for alerts sent without one)."""
    canonical = json.dumps(sorted(labels.items()), separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def check_payload(
    violations: Violations, request: inv_pb2.ReceiveAlertmanagerWebhookRequest
) -> None:
    if request.version and request.version != "4":
        violations.add(
            "version", f"must be 4 (Alertmanager's webhook version); got {request.version[:16]!r}"
        )
    if len(request.alerts) > MAX_ALERTS:
        violations.add("alerts", f"has {len(request.alerts)} entries; at most {MAX_ALERTS} allowed")
        return
    for i, alert in enumerate(request.alerts):
        if alert.status not in (FIRING, RESOLVED):
            violations.add(f"alerts[{i}].status", "must be firing or resolved")
        if "alertname" not in alert.labels:
            violations.add(f"alerts[{i}].labels", "must hold alertname")
            continue
        check_alert(violations, f"alerts[{i}]", to_alert(alert))


def to_alert(alert: inv_pb2.AlertmanagerAlert) -> inv_pb2.Alert:
    labels = dict(alert.labels)
    out = inv_pb2.Alert(
        alert_name=labels.get("alertname", ""),
        namespace=labels.get("namespace", ""),
        labels=labels,
        annotations=dict(alert.annotations),
        priority=priority_of(labels),
        source="alertmanager",
        fingerprint=alert.fingerprint or label_fingerprint(labels),
        generator_url=alert.generator_url,
    )
    if alert.HasField("starts_at"):
        out.starts_at.CopyFrom(alert.starts_at)
    return out
