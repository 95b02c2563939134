"""What a request to the investigation service must satisfy, field by field."""

from __future__ import annotations

import re
import secrets

from llmgw.investigation.v1 import investigation_service_pb2 as inv_pb2
from services.common.enum_checks import check_enum
from services.common.investigation_config import InvestigationConfig
from services.common.resource_names import ResourceNames
from services.common.text_checks import (
    MAX_MODEL_NAME_CHARS,
    check_count,
    check_string_map,
    check_text,
    shown,
)
from services.common.validation import Violations
from services.investigation.jobs.listing import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from services.investigation.limits import check_limits

NAMES = ResourceNames("investigations", "investigation", r"[a-z0-9][a-z0-9-]{0,62}")
TOOLSETS = ("kubernetes", "prometheus")
MAX_ALERT_NAME = 256
MAX_LABELS = 64
MAX_ANNOTATIONS = 32
MAX_LABEL_VALUE = 1024
MAX_ANNOTATION_VALUE = 8192
MAX_QUESTION = 8000
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]{0,127}")
_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_FINGERPRINT = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def new_investigation_id() -> str:
    return "inv-" + secrets.token_hex(8)


def check_alert(violations: Violations, field: str, alert: inv_pb2.Alert) -> None:
    check_text(
        violations,
        f"{field}.alert_name",
        alert.alert_name,
        MAX_ALERT_NAME,
        required=True,
        single_line=True,
    )
    if alert.namespace and _NAMESPACE.fullmatch(alert.namespace) is None:
        violations.add(f"{field}.namespace", "must be a Kubernetes namespace name (RFC 1123 label)")
    if check_string_map(
        violations,
        f"{field}.labels",
        alert.labels,
        max_entries=MAX_LABELS,
        max_key_chars=128,
        max_value_chars=MAX_LABEL_VALUE,
    ):
        for key in alert.labels:
            if _LABEL_NAME.fullmatch(key) is None:
                violations.add(f"{field}.labels", f"key {shown(key)} is not a label name")
    check_string_map(
        violations,
        f"{field}.annotations",
        alert.annotations,
        max_entries=MAX_ANNOTATIONS,
        max_key_chars=128,
        max_value_chars=MAX_ANNOTATION_VALUE,
    )
    check_enum(violations, f"{field}.priority", alert.priority, inv_pb2.Priority)
    check_text(violations, f"{field}.source", alert.source, 64, single_line=True)
    if alert.fingerprint and _FINGERPRINT.fullmatch(alert.fingerprint) is None:
        violations.add(f"{field}.fingerprint", "must be 1..128 characters of [A-Za-z0-9._:-]")
    check_text(violations, f"{field}.generator_url", alert.generator_url, 4096, single_line=True)


def check_investigation(
    violations: Violations, field: str, spec: inv_pb2.Investigation, config: InvestigationConfig
) -> None:
    """A new investigation (Create, Run): its alert, toolsets, model and limits. Output-only
    fields are ignored."""
    if not spec.HasField("alert"):
        violations.add(f"{field}.alert", "is required")
    else:
        check_alert(violations, f"{field}.alert", spec.alert)
    if check_count(violations, f"{field}.toolsets", spec.toolsets, len(TOOLSETS)):
        for i, name in enumerate(spec.toolsets):
            if name not in TOOLSETS:
                violations.add(f"{field}.toolsets[{i}]", f"must be one of {', '.join(TOOLSETS)}")
    check_text(violations, f"{field}.model", spec.model, MAX_MODEL_NAME_CHARS, single_line=True)
    for violation in check_limits(spec.limits, config, f"{field}.limits"):
        violations.add(violation.field, violation.description)


def check_id(violations: Violations, field: str, investigation_id: str) -> None:
    if investigation_id:
        NAMES.check_id(violations, field, investigation_id)


def page_size(violations: Violations, value: int) -> int:
    if value < 0 or value > MAX_PAGE_SIZE:
        violations.add("page_size", f"must be 0..{MAX_PAGE_SIZE}")
    return value or DEFAULT_PAGE_SIZE


def check_question(violations: Violations, field: str, question: str) -> None:
    check_text(violations, field, question.strip(), MAX_QUESTION, required=True)


def fresh(spec: inv_pb2.Investigation) -> inv_pb2.Investigation:
    """The caller's investigation with only its input fields (output-only ones cleared)."""
    out = inv_pb2.Investigation(model=spec.model, toolsets=spec.toolsets)
    out.alert.CopyFrom(spec.alert)
    out.alert.ClearField("resolved_at")
    label = spec.alert.labels.get("namespace", "")
    if not out.alert.namespace and _NAMESPACE.fullmatch(label):
        out.alert.namespace = label
    if spec.HasField("limits"):
        out.limits.CopyFrom(spec.limits)
    return out
