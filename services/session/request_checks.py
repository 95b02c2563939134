"""Rules for session request fields other than names and messages."""

from __future__ import annotations

from collections.abc import Mapping

from google.protobuf import duration_pb2, struct_pb2

from services.common.gateway_config import SessionConfig
from services.common.validation import Violations

# Fields UpdateSession may change (services.common.field_masks applies the mask rules).
MUTABLE_FIELDS = ("system_prompt", "context", "labels", "ttl")

_NANOS_PER_MS = 1_000_000
_NANOS_PER_S = 1_000_000_000


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
    size = context.ByteSize()
    violations.require(
        size <= max_bytes, field, f"is {size} bytes serialized; at most {max_bytes} allowed"
    )


def check_labels(violations: Violations, field: str, labels: Mapping[str, str]) -> None:
    violations.require(all(labels), field, "label keys must not be empty")


def page_size(violations: Violations, field: str, value: int, default: int, maximum: int) -> int:
    """0 means `default`; values above `maximum` are lowered to it (AIP-158)."""
    if value < 0:
        violations.add(field, "must not be negative")
        return default
    return min(value or default, maximum)
