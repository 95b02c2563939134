"""Enum fields of requests: a number the proto does not define is refused.

Proto3 enums are open: the binary codec keeps any number, so `unit: 99` reaches the
servicer as 99 and, unchecked, is stored and silently matched by nothing. Every enum a
request carries goes through `check_enum`, which names the field and the accepted names.
"""

from __future__ import annotations

from google.protobuf.descriptor import EnumDescriptor
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

from services.common.validation import Violations


def _descriptor(enum: EnumTypeWrapper | EnumDescriptor) -> EnumDescriptor:
    return enum.DESCRIPTOR if isinstance(enum, EnumTypeWrapper) else enum


def check_enum(
    violations: Violations,
    field: str,
    value: int,
    enum: EnumTypeWrapper | EnumDescriptor,
    *,
    required: bool = False,
) -> bool:
    """A violation when `value` is not one of `enum`'s numbers, or is its zero
    (`*_UNSPECIFIED`) value while `required`."""
    descriptor = _descriptor(enum)
    known = descriptor.values_by_number
    if value not in known:
        names = ", ".join(v.name for v in descriptor.values if v.number != 0)
        violations.add(field, f"{value} is not a {descriptor.name} (one of {names})")
        return False
    if required and value == 0:
        violations.add(field, "is required")
        return False
    return True
