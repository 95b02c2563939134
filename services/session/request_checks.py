"""Rules for session request fields other than names and messages."""

from __future__ import annotations

import re
from collections.abc import Mapping

from google.protobuf import duration_pb2, struct_pb2

from services.common.gateway_config import SessionConfig
from services.common.struct_checks import check_json
from services.common.text_checks import check_count, has_control_characters, shown
from services.common.validation import Violations

# Fields UpdateSession may change (services.common.field_masks applies the mask rules).
MUTABLE_FIELDS = ("system_prompt", "context", "labels", "ttl")

_NANOS_PER_MS = 1_000_000
_NANOS_PER_S = 1_000_000_000

# Labels as Kubernetes and GCP have them: a short lowercase key, a short value.
LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
MAX_LABEL_VALUE_CHARS = 256
MAX_LABELS = 64
# An owner filter is a consumer's resource name (`consumers/{consumer}`).
MAX_OWNER_CHARS = 128


def ttl_ms(
    violations: Violations, field: str, ttl: duration_pb2.Duration | None, limits: SessionConfig
) -> int:
    """The TTL in milliseconds (rounded up); None means the configured default."""
    if ttl is None:
        return limits.default_ttl_seconds * 1000
    nanos = ttl.seconds * _NANOS_PER_S + ttl.nanos
    if nanos <= 0:
        violations.add(field, "must be positive")
        return 0
    if nanos > limits.max_ttl_seconds * _NANOS_PER_S:
        violations.add(field, f"must be at most {limits.max_ttl_seconds}s")
        return 0
    return -(-nanos // _NANOS_PER_MS)


def check_system_prompt(violations: Violations, field: str, text: str, max_bytes: int) -> None:
    size = len(text.encode())
    violations.require(size <= max_bytes, field, f"is {size} bytes; at most {max_bytes} allowed")


def check_context(
    violations: Violations, field: str, context: struct_pb2.Struct, max_bytes: int
) -> None:
    """Size, finite numbers and nesting (`struct_checks`): a stored context is read back as
    JSON by every REST Get and List of the session."""
    check_json(violations, field, context, max_bytes=max_bytes)


def check_labels(violations: Violations, field: str, labels: Mapping[str, str]) -> None:
    """At most `MAX_LABELS`; keys match `LABEL_KEY`, values are single-line and at most
    `MAX_LABEL_VALUE_CHARS` characters."""
    if not check_count(violations, field, list(labels), MAX_LABELS):
        return
    for key, value in labels.items():
        if not key:
            violations.add(field, "label keys must not be empty")
        elif LABEL_KEY.fullmatch(key) is None:
            violations.add(field, f"label key {shown(key)} must match {LABEL_KEY.pattern}")
        elif len(value) > MAX_LABEL_VALUE_CHARS:
            violations.add(
                f"{field}[{key}]",
                f"is {len(value)} characters long; at most {MAX_LABEL_VALUE_CHARS} allowed",
            )
        elif has_control_characters(value):
            violations.add(f"{field}[{key}]", "must not contain control characters")


def check_owner_filter(violations: Violations, field: str, owner: str) -> bool:
    if len(owner) > MAX_OWNER_CHARS or has_control_characters(owner):
        violations.add(field, f"must be a consumer name of at most {MAX_OWNER_CHARS} characters")
        return False
    return True


def page_size(violations: Violations, field: str, value: int, default: int, maximum: int) -> int:
    """0 means `default`; values above `maximum` are lowered to it (AIP-158)."""
    if value < 0:
        violations.add(field, "must not be negative")
        return default
    return min(value or default, maximum)
